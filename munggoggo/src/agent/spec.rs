//! The static description of an agent type that `#[agent]` generates: its
//! behaviours and handlers ([`BehaviourSpec`], [`BehaviourKind`], which
//! messages a handler takes: [`HandlerRoute`]) and its `#[rpc]` methods.

use std::time::Duration;

use crate::error::BoxError;

/// What a behaviour method is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BehaviourKind {
    /// Runs every `period`, first after `initial_delay` (default: one period).
    Periodic {
        /// Time between runs.
        period: Duration,
        /// Time before the first run.
        initial_delay: Option<Duration>,
    },
    /// Runs once after setup.
    Oneshot,
    /// Runs once after a delay.
    Delay(Duration),
    /// Runs again and again, yielding between steps.
    Cyclic,
    /// Handles messages routed to it.
    Handler(HandlerRoute),
    /// A declared state machine (`#[fsm]`).
    Fsm(&'static crate::fsm::FsmSpec),
}

/// The words the CLI and `DescribeAgent` use for a behaviour's kind.
impl BehaviourKind {
    /// `periodic`, `oneshot`, `delay`, `cyclic`, `message`, `topic`, `fallback`, `fsm`:
    /// the `kind` of a [`BehaviourDescription`](crate::BehaviourDescription).
    pub fn word(&self) -> &'static str {
        match self {
            BehaviourKind::Periodic { .. } => "periodic",
            BehaviourKind::Oneshot => "oneshot",
            BehaviourKind::Delay(_) => "delay",
            BehaviourKind::Cyclic => "cyclic",
            BehaviourKind::Handler(HandlerRoute::Type(_)) => "message",
            BehaviourKind::Handler(HandlerRoute::Topic(_)) => "topic",
            BehaviourKind::Handler(HandlerRoute::Fallback) => "fallback",
            BehaviourKind::Fsm(_) => "fsm",
        }
    }

    /// `periodic every 1s`, `on message Pong`, `on topic ping.#`, ...: the
    /// `detail` of a [`BehaviourDescription`](crate::BehaviourDescription).
    pub fn text(&self) -> String {
        let d = |d: &std::time::Duration| humantime::format_duration(*d).to_string();
        match self {
            BehaviourKind::Periodic {
                period,
                initial_delay,
            } => match initial_delay {
                Some(delay) => format!("periodic every {} (first after {})", d(period), d(delay)),
                None => format!("periodic every {}", d(period)),
            },
            BehaviourKind::Oneshot => "oneshot".to_owned(),
            BehaviourKind::Delay(delay) => format!("once after {}", d(delay)),
            BehaviourKind::Cyclic => "cyclic".to_owned(),
            BehaviourKind::Handler(HandlerRoute::Type(t)) => format!("on message {t}"),
            BehaviourKind::Handler(HandlerRoute::Topic(keys)) => format!("on topic {}", keys.join(", ")),
            BehaviourKind::Handler(HandlerRoute::Fallback) => "on any other message".to_owned(),
            BehaviourKind::Fsm(fsm) => fsm.text(),
        }
    }
}

/// Which messages a handler takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandlerRoute {
    /// Direct and fanout messages of this type.
    Type(&'static str),
    /// Every message on a topic subscription with these binding keys.
    Topic(&'static [&'static str]),
    /// Direct and fanout messages no other handler takes.
    Fallback,
}

/// One behaviour (a `#[behaviour]` method or an `#[on_message]` handler).
#[derive(Debug, Clone, Copy)]
pub struct BehaviourSpec {
    /// The method's name; on the wire `<identity>.<method>`.
    pub method: &'static str,
    /// What it is.
    pub kind: BehaviourKind,
    /// `#[behaviour(..., singleton)]`: of a replicated agent's replicas,
    /// only the one holding the behaviour's lease runs it (see
    /// [`AgentOptions::replicated`](crate::AgentOptions::replicated)).
    pub singleton: bool,
    /// Which replicas of a replicated agent handle a topic publication or
    /// a broadcast.
    pub delivery: GroupDelivery,
}

impl BehaviourSpec {
    /// A behaviour of `kind`, not a singleton, with the default delivery.
    pub const fn new(method: &'static str, kind: BehaviourKind) -> Self {
        BehaviourSpec {
            method,
            kind,
            singleton: false,
            delivery: GroupDelivery::Default,
        }
    }
}

/// Which replicas of a replicated agent handle a topic publication or a
/// broadcast (`#[on_message(topic = "...", delivery = "...")]`, or with
/// `type = "..."` for broadcasts of a type; direct messages always go to
/// one replica). An agent that is not replicated is its own group of one:
/// every choice means the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum GroupDelivery {
    /// Not given: [`GroupDelivery::Group`].
    #[default]
    Default,
    /// Once per group: the replicas share one subscription queue, and
    /// each publication goes to one of them (as a direct message does).
    /// The default, because replicas are copies of one service: an order
    /// published once should be processed once, however many copies run.
    Group,
    /// Once per replica: each replica has a subscription queue of its own
    /// and gets every publication (for caches and local state that every
    /// copy must keep up to date).
    EachReplica,
}

/// One `#[rpc]` method.
#[derive(Debug, Clone, Copy)]
pub struct RpcSpec {
    /// The method's name.
    pub method: &'static str,
    /// Its parameter names, in order.
    pub params: &'static [&'static str],
}

/// The static description of an agent type, generated by `#[agent]`.
#[derive(Debug)]
pub struct AgentSpec {
    /// The Rust type name.
    pub name: &'static str,
    /// Behaviours and handlers, indexed as [`Agent::run`](crate::Agent::run) and [`Agent::handle`](crate::Agent::handle) expect.
    pub behaviours: &'static [BehaviourSpec],
    /// `#[rpc]` methods, indexed as [`Agent::call`](crate::Agent::call) expects.
    pub rpcs: &'static [RpcSpec],
}

/// Why a handler failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandlerError {
    /// The body did not decode into the handler's payload type.
    #[error("body does not decode into `{type_name}`: {reason}")]
    Decode {
        /// The handler's payload type.
        type_name: &'static str,
        /// What the decoder said.
        reason: String,
    },
    /// The handler returned an error.
    #[error("{0}")]
    Failed(BoxError),
}
