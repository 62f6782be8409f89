//! `DescribeAgent`: a system request, answered by Rust agents only, that
//! returns what a peer's `PongControl` leaves out: the agent's type, each
//! behaviour's kind, topics and counters, and its `#[rpc]` methods.
//!
//! A munggoggo 0.4 agent does not know the request and answers with an
//! `RpcError`, so callers fall back to the peer status of its pong.

use serde::{Deserialize, Serialize};

use crate::agent::{BehaviourKind, HandlerRoute};
use crate::behaviour::State;
use crate::runtime::core::Core;

/// The `c_type` of the request and its reply.
pub(crate) const DESCRIBE_AGENT: &str = "DescribeAgent";

/// An agent as it describes itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AgentDescription {
    /// Its identity (a replica's own name).
    pub name: String,
    /// The identity its group of replicas shares, for a replica.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Its Rust type name.
    #[serde(default)]
    pub agent_type: String,
    /// Its state.
    pub state: State,
    /// Its behaviours and handlers.
    #[serde(default)]
    pub behaviours: Vec<BehaviourDescription>,
    /// Its `#[rpc]` methods.
    #[serde(default)]
    pub methods: Vec<MethodDescription>,
}

/// One behaviour or handler of an [`AgentDescription`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BehaviourDescription {
    /// The full name, `<identity>.<method>`.
    pub name: String,
    /// `periodic`, `oneshot`, `delay`, `cyclic`, `message`, `topic` or `fallback`.
    pub kind: String,
    /// The kind in words: `periodic every 1s`, `on message Pong`, ...
    pub detail: String,
    /// The message type a `message` handler takes.
    #[serde(default)]
    pub message_type: Option<String>,
    /// The binding keys of a `topic` handler.
    #[serde(default)]
    pub topics: Vec<String>,
    /// Its state.
    pub state: State,
    /// Completed runs or handled messages.
    pub runs: u64,
    /// Failed runs or messages.
    pub errors: u64,
    /// The last error, if any.
    #[serde(default)]
    pub last_error: Option<String>,
    /// A state machine's states and where it is now (`#[fsm]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<crate::fsm::MachineDescription>,
    /// How long its runs took since the agent started: the count of runs
    /// per duration bucket (not cumulative), one per bound of
    /// `metrics::bucket_bounds()` and a last one for longer runs. Only an
    /// agent whose runtime collects metrics (feature `metrics`) times its
    /// runs; `None` otherwise. The dashboard's p50 and p99 come from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub durations: Option<Vec<u64>>,
}

/// One `#[rpc]` method of an [`AgentDescription`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MethodDescription {
    /// The method's name.
    pub name: String,
    /// Its parameter names, in order.
    pub params: Vec<String>,
}

/// The agent's own description, as its `DescribeAgent` reply carries it.
pub(crate) fn describe(core: &Core) -> AgentDescription {
    AgentDescription {
        group: core.group.as_ref().map(ToString::to_string),
        name: core.identity.to_string(),
        agent_type: core.spec.name.to_owned(),
        state: core.state.get(),
        behaviours: core
            .behaviours
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let status = b.status();
                BehaviourDescription {
                    name: status.name,
                    kind: b.spec.kind.word().to_owned(),
                    detail: b.spec.kind.text(),
                    message_type: match b.spec.kind {
                        BehaviourKind::Handler(HandlerRoute::Type(t)) => Some(t.to_owned()),
                        _ => None,
                    },
                    topics: match b.spec.kind {
                        BehaviourKind::Handler(HandlerRoute::Topic(keys)) => {
                            keys.iter().map(|k| (*k).to_owned()).collect()
                        }
                        _ => Vec::new(),
                    },
                    state: status.state,
                    runs: status.runs,
                    errors: status.errors,
                    last_error: status.last_error,
                    machine: match (b.spec.kind, status.machine) {
                        (BehaviourKind::Fsm(fsm), Some(current)) => Some(fsm.describe(current)),
                        _ => None,
                    },
                    durations: durations(core, i),
                }
            })
            .collect(),
        methods: core
            .spec
            .rpcs
            .iter()
            .map(|r| MethodDescription {
                name: r.method.to_owned(),
                params: r.params.iter().map(|p| (*p).to_owned()).collect(),
            })
            .collect(),
    }
}

/// The bucket counts of behaviour `i`'s run durations, when the agent's
/// runtime collects metrics.
#[cfg(feature = "metrics")]
fn durations(core: &Core, i: usize) -> Option<Vec<u64>> {
    let metrics = core.metrics.get()?;
    let (_, _, runs) = metrics.behaviours.get(i)?;
    Some(runs.duration.counts().to_vec())
}

/// Without the `metrics` feature, runs are not timed.
#[cfg(not(feature = "metrics"))]
fn durations(_: &Core, _: usize) -> Option<Vec<u64>> {
    None
}
