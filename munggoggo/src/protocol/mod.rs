//! munggoggo 0.4's wire rules that more than one part needs: the reserved
//! message types and the binding-key rules (shared with the macros, see
//! `rules.rs`), the envelopes of system messages and who counts as an
//! observer. This file only names the parts.

mod envelope;
mod observer;
pub(crate) mod rules;

pub(crate) use envelope::{
    rpc_body, serialized, ListTraceStore, ManageBehav, RpcCall, RpcMessage, Serialized, REPLY, REQUEST,
};
pub(crate) use observer::is_observer_traffic;
pub use observer::{is_tool, DASHBOARD_PREFIX, OBSERVER_PREFIX};
pub use rules::{is_reserved_type, validate_binding_key, CONTROL, PUBSUB, RESERVED_TYPES, RPC};

#[cfg(test)]
mod tests {
    use super::validate_binding_key;

    #[test]
    fn validation() {
        for good in [
            "#",
            "*",
            "ping",
            "a.*.b",
            "a.#",
            "a..b",
            "#.#",
            "ä.ö",
            &"a".repeat(255),
        ] {
            assert_eq!(validate_binding_key(good), Ok(()), "{good:?}");
        }
        for bad in ["", "a*", "a.#b", "**", "a.b#.c", &"a".repeat(256)] {
            assert!(validate_binding_key(bad).is_err(), "{bad:?}");
        }
        let err = validate_binding_key("news.a#").unwrap_err();
        assert!(err.contains("`a#`"), "{err}");
    }

    /// A call's request is as before (no `code`, no `known`), and a reply
    /// without them, from an older agent, still reads.
    #[test]
    fn rpc_call_fields_are_additive() {
        let call = super::RpcCall::request("m", serde_json::json!([1]));
        assert_eq!(
            serde_json::to_string(&call).unwrap(),
            r#"{"method":"m","params":[1],"result":null,"error":null}"#
        );
        let old: super::RpcCall =
            serde_json::from_str(r#"{"method":"m","params":[],"result":null,"error":"boom"}"#).unwrap();
        assert_eq!(
            (old.error.as_deref(), old.code, old.known),
            (Some("boom"), None, None)
        );
    }
}
