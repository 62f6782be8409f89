//! The runtime's side of the `metrics` feature: the builder's options, the
//! registry a started runtime hands its agents, and its listener. (The
//! builder's and the handle's methods are in `mod.rs` and `handle.rs`, with
//! their types; this file imports neither.)

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::core::Core;
use crate::behaviour::State;
use crate::error::Result;
use crate::metrics::{Live, Metrics, MetricsListener};

/// The environment variable that starts a metrics listener on its address
/// (`127.0.0.1:9464`), read by [`Runtime::from_env`](crate::Runtime::from_env) and the launcher's `run`.
pub const METRICS_VAR: &str = "MUNGGOGGO_METRICS";

/// What the builder was told about metrics.
#[derive(Debug, Default)]
pub(super) struct MetricsOptions {
    pub(super) metrics: Option<Metrics>,
    pub(super) listen: Option<SocketAddr>,
}

/// A started runtime's metrics and its listener, if any.
#[derive(Debug, Default)]
pub(super) struct Installed {
    pub(super) metrics: Option<Metrics>,
    pub(super) listener: Option<MetricsListener>,
}

tokio::task_local! {
    /// The registry of the runtime starting an agent (see `start.rs`).
    static STARTING: Option<Metrics>;
}

impl MetricsOptions {
    /// Starts the listener, if asked for, and gives what the handle keeps.
    pub(super) async fn install(self) -> Result<Installed> {
        let metrics = match (self.metrics, self.listen) {
            (Some(m), _) => Some(m),
            (None, Some(_)) => Some(Metrics::new()),
            (None, None) => None,
        };
        let listener = match (&metrics, self.listen) {
            (Some(m), Some(addr)) => Some(m.listen(addr).await?),
            _ => None,
        };
        Ok(Installed { metrics, listener })
    }
}

/// Runs an agent's start with its runtime's registry at hand.
pub(super) async fn starting<T>(metrics: Option<Metrics>, start: impl std::future::Future<Output = T>) -> T {
    STARTING.scope(metrics, start).await
}

/// Gives a new agent's core its metrics, when its runtime has them.
pub(super) fn attach(core: &Arc<Core>, spec: &'static crate::agent::AgentSpec) {
    let metrics = STARTING.try_with(|m| m.as_ref().map(|m| m.agent(&core.identity, spec)));
    if let Ok(Some(agent)) = metrics {
        agent.watch(core);
        let _ = core.metrics.set(agent);
    }
}

/// What the gauges of [`crate::metrics`] read of a running agent.
impl Live for Core {
    fn buffered(&self) -> usize {
        self.buffered.load(Ordering::Relaxed)
    }

    fn up(&self) -> bool {
        !matches!(self.state.get(), State::Shutdown | State::Crashed)
    }

    fn peers(&self) -> usize {
        self.peers.peers(crate::peers::DEFAULT_PEER_TTL).len()
    }
}
