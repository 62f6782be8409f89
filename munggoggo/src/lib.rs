#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod agent;
pub mod behaviour;
pub mod bus;
pub mod config;
mod context;
mod error;
pub mod fsm;
pub mod future;
mod introspect;
#[cfg(feature = "logging")]
#[cfg_attr(docsrs, doc(cfg(feature = "logging")))]
pub mod logging;
pub mod message;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub mod metrics;
#[cfg(feature = "otel")]
#[cfg_attr(docsrs, doc(cfg(feature = "otel")))]
pub mod otel;
mod peers;
mod protocol;
pub mod pyrpc;
pub mod rpc;
pub mod runtime;
mod stats;
pub mod trace;
pub mod tracecontext;
mod traceparent;
mod wire;

pub use agent::{Agent, AgentDefaults, AgentOptions};
pub use behaviour::{BehaviourStatus, FailurePolicy, Next, State};
pub use config::{Config, ConfigError};
pub use context::Context;
pub use error::{BoxError, Error, ErrorCode, Result};
pub use introspect::{AgentDescription, BehaviourDescription, MethodDescription};
#[cfg(feature = "logging")]
#[cfg_attr(docsrs, doc(cfg(feature = "logging")))]
pub use logging::init_logging;
pub use message::{Envelope, Message, Raw, SmolStr};
pub use peers::{Peer, PeerBehaviour, PeerStatus};
pub use rpc::TraceQuery;
pub use runtime::quiet_caught_panics;
pub use runtime::{AgentHandle, Runtime, RuntimeHandle};
pub use stats::histogram::{quantile as duration_quantile, BUCKETS as DURATION_BUCKETS};
pub use trace::TraceStore;
pub use wire::{WireMode, WIRE_VAR};

#[cfg(feature = "macros")]
#[cfg_attr(docsrs, doc(cfg(feature = "macros")))]
pub use munggoggo_macros::{agent, behaviour, fsm, on_message, rpc, setup, teardown, Message};

/// Everything an agent file needs: `use munggoggo::prelude::*;`.
pub mod prelude {
    #[cfg(feature = "macros")]
    pub use crate::{agent, behaviour, fsm, on_message, rpc, setup, teardown};
    pub use crate::{Context, Envelope, Message, Next, Raw};
}

/// The user guide in `docs/guide/`, so that `cargo test --doc` compiles
/// (and, where no broker is needed, runs) every example in it.
#[cfg(doctest)]
mod guide {
    #[doc = include_str!("../../docs/guide/01-concepts.md")]
    mod concepts {}
    #[doc = include_str!("../../docs/guide/02-attributes.md")]
    mod attributes {}
    #[doc = include_str!("../../docs/guide/03-messaging.md")]
    mod messaging {}
    #[doc = include_str!("../../docs/guide/04-rpc.md")]
    mod rpc {}
    #[doc = include_str!("../../docs/guide/05-peers-and-control.md")]
    mod peers_and_control {}
    #[doc = include_str!("../../docs/guide/06-configuration.md")]
    mod configuration {}
    #[doc = include_str!("../../docs/guide/07-rabbitmq.md")]
    mod rabbitmq {}
    #[doc = include_str!("../../docs/guide/08-testing.md")]
    mod testing {}
    // Chapter 9, operations, is munggoggo-cli's (its launcher and command line).
    #[doc = include_str!("../../docs/guide/10-from-python.md")]
    mod from_python {}
    #[doc = include_str!("../../docs/guide/11-with-python.md")]
    mod with_python {}
    #[cfg(feature = "metrics")]
    #[doc = include_str!("../../docs/guide/12-observability.md")]
    mod observability {}
    #[doc = include_str!("../../docs/guide/13-scaling-out.md")]
    mod scaling_out {}
    #[doc = include_str!("../../docs/guide/14-state-machines.md")]
    mod state_machines {}
}

/// What the macros' generated code uses. Not a public API.
#[doc(hidden)]
pub mod __private;
