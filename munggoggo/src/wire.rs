//! The wire mode: how an agent writes its user messages (docs/protocol.md,
//! "Wire modes").

use std::str::FromStr;

use crate::error::{Error, Result};

/// The environment variable that picks the wire mode of every agent a
/// [`Runtime::from_env`](crate::Runtime::from_env) starts: `compact` (the
/// default) or `0.4`.
pub const WIRE_VAR: &str = "MUNGGOGGO_WIRE";

/// How an agent writes the user messages it sends, broadcasts and
/// publishes. System messages (pings, listings, calls) are 0.4's in both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireMode {
    /// For networks of Rust agents: the body is the payload's JSON, the
    /// AMQP `type` its type name (topic publications too), and `user_id`
    /// is left out. A type with `#[message(envelope)]` still travels in
    /// 0.4's envelope.
    #[default]
    Compact,
    /// For networks with munggoggo 0.4 (Python) agents: every typed message
    /// in 0.4's `{"c_type", "c_data"}` envelope (as `SerializableObject`
    /// reads it), topic publications with type `PUBSUB`, and every message
    /// with `user_id` set to the broker login, as 0.4 does.
    Py04,
}

impl WireMode {
    /// The mode named by [`WIRE_VAR`], or the default when it is unset.
    pub fn from_env() -> Result<Self> {
        match std::env::var(WIRE_VAR) {
            Ok(value) => value.parse(),
            Err(std::env::VarError::NotPresent) => Ok(WireMode::default()),
            Err(e) => Err(Error::Config(format!("{WIRE_VAR}: {e}"))),
        }
    }

    /// Whether typed messages travel in 0.4's envelope (see
    /// [`message::envelope`](crate::message::envelope)).
    pub fn envelope(self) -> bool {
        self == WireMode::Py04
    }
}

impl FromStr for WireMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "compact" => Ok(WireMode::Compact),
            "0.4" | "py04" | "python" => Ok(WireMode::Py04),
            other => Err(Error::Config(format!(
                "{WIRE_VAR} must be `compact` or `0.4`, not `{other}`"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_its_names() {
        assert_eq!("0.4".parse::<WireMode>().unwrap(), WireMode::Py04);
        assert_eq!(" Compact ".parse::<WireMode>().unwrap(), WireMode::Compact);
        let e = "json".parse::<WireMode>().unwrap_err().to_string();
        assert!(e.contains("`compact` or `0.4`"), "{e}");
    }
}
