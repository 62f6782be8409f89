//! Agents: the [`Agent`] trait that `#[agent]` implements, the agent-level
//! options, the static description of an agent type and the registry of
//! agent types. This file only names the parts; each lives in a file of
//! its own.

mod options;
mod registry;
mod spec;
mod traits;

pub use crate::future::BoxFuture;
pub use options::{
    AgentOptions, DEFAULT_CALL_QUEUE, DEFAULT_MAX_QUEUE, DEFAULT_PREFETCH, DEFAULT_PUBLISH_WINDOW,
    DEFAULT_READAHEAD,
};
pub use registry::{registered, Registration};
pub use spec::{AgentSpec, BehaviourKind, BehaviourSpec, GroupDelivery, HandlerError, HandlerRoute, RpcSpec};
pub use traits::{unknown_index, Agent, AgentDefaults};
