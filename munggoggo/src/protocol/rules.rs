//! munggoggo 0.4's wire rules that both crates check: the message types
//! the protocol reserves and what a topic binding key may be. The macros
//! check them at compile time, the runtime at run time, with this one
//! source: `munggoggo-macros/src/protocol_rules.rs` is a symlink to this
//! file (a symlink rather than `#[path]`, so that `cargo package` copies
//! it into each crate).
//!
//! No imports and no dependencies: the file compiles in both crates.

/// The type of system control messages (keepalive ping and pong).
pub const CONTROL: &str = "CONTROL";
/// The type of request/reply messages (system requests and `#[rpc]` calls).
pub const RPC: &str = "RPC";
/// The type of untyped topic publications (`publish_raw`, 0.4's `publish`).
pub const PUBSUB: &str = "PUBSUB";

/// The message types the protocol reserves: user messages cannot have them.
pub const RESERVED_TYPES: &[&str] = &[CONTROL, RPC, PUBSUB];

/// Whether `name` is a message type the protocol reserves.
pub fn is_reserved_type(name: &str) -> bool {
    RESERVED_TYPES.contains(&name)
}

/// The longest key AMQP can carry (binding and routing keys are short strings).
pub const MAX_KEY_LEN: usize = 255;

/// Checks a topic binding key; the error says what is wrong with it and
/// what to write instead, as a phrase to follow the key (`is empty: ...`).
///
/// Rejects what RabbitMQ cannot take (a key longer than 255 bytes) and what
/// is surely a mistake: the empty key (it matches only the empty routing
/// key) and a `*` or `#` inside a longer word (`a*`, `#b`), which RabbitMQ
/// takes as a plain character rather than a wildcard. Empty words (`a..b`,
/// `a.`) are allowed: RabbitMQ matches them like any other word.
pub fn validate_binding_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err(
            "is empty: it matches only messages published with an empty routing key; write `#` to match every topic"
                .to_owned(),
        );
    }
    if key.len() > MAX_KEY_LEN {
        return Err(format!(
            "is {} bytes long; AMQP allows at most {MAX_KEY_LEN}",
            key.len()
        ));
    }
    for word in key.split('.') {
        if word.len() > 1 && word.contains(['*', '#']) {
            return Err(format!(
                "has the word `{word}`: `*` and `#` are wildcards only as whole words, such as \"a.*.c\" or \"a.#\""
            ));
        }
    }
    Ok(())
}
