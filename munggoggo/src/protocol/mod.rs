//! munggoggo 0.4's wire rules that more than one part of the runtime needs:
//! the envelopes of system messages and who counts as an observer. This
//! file only names the parts.

mod envelope;
mod observer;

pub(crate) use envelope::{
    rpc_body, serialized, ListTraceStore, ManageBehav, RpcCall, RpcMessage, Serialized, REPLY, REQUEST,
};
pub(crate) use observer::is_observer_traffic;
#[cfg(feature = "cli")]
pub(crate) use observer::OBSERVER_PREFIX;
