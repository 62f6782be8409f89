//! The runtime's side of the `metrics` feature: the builder's options, the
//! registry a started runtime hands its agents, and its listener.

use std::net::SocketAddr;
use std::sync::Arc;

use super::{Runtime, RuntimeHandle};
use crate::error::{Error, Result};
use crate::metrics::{Metrics, MetricsListener};

/// The environment variable that starts a metrics listener on its address
/// (`127.0.0.1:9464`), read by [`Runtime::from_env`] and the launcher's `run`.
pub const METRICS_VAR: &str = "MUNGGOGGO_METRICS";

/// What the builder was told about metrics.
#[derive(Debug, Default)]
pub(super) struct MetricsOptions {
    metrics: Option<Metrics>,
    listen: Option<SocketAddr>,
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
pub(super) fn attach(core: &Arc<super::core::Core>, spec: &'static crate::agent::AgentSpec) {
    let metrics = STARTING.try_with(|m| m.as_ref().map(|m| m.agent(&core.identity, spec)));
    if let Ok(Some(agent)) = metrics {
        agent.watch(core);
        let _ = core.metrics.set(agent);
    }
}

impl Runtime {
    /// Collects metrics of every agent this runtime starts into `metrics`
    /// (see [`crate::metrics`]); serve them with [`Metrics::listen`], the
    /// dashboard's `/metrics`, or [`Runtime::metrics_listener`].
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.metrics.metrics = Some(metrics);
        self
    }

    /// Collects metrics (into a new registry unless [`Runtime::metrics`]
    /// gave one) and serves them at `GET /metrics` on `addr` while the
    /// runtime's handle lives (port 0: a free port, see
    /// [`RuntimeHandle::metrics_addr`]).
    pub fn metrics_listener(mut self, addr: SocketAddr) -> Self {
        self.metrics.listen = Some(addr);
        self
    }

    /// [`Runtime::metrics_listener`] on the address of `MUNGGOGGO_METRICS`,
    /// when it is set.
    pub fn metrics_from_env(self) -> Result<Self> {
        match std::env::var(METRICS_VAR) {
            Ok(addr) if !addr.trim().is_empty() => {
                let addr = addr.trim().parse().map_err(|e| {
                    Error::Config(format!(
                        "{METRICS_VAR} must be an address such as 127.0.0.1:9464, not `{addr}`: {e}"
                    ))
                })?;
                Ok(self.metrics_listener(addr))
            }
            _ => Ok(self),
        }
    }
}

impl RuntimeHandle {
    /// The registry its agents' metrics go to, when it has one.
    pub fn metrics(&self) -> Option<&Metrics> {
        self.installed_metrics().metrics.as_ref()
    }

    /// The address of its metrics listener, when it has one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.installed_metrics()
            .listener
            .as_ref()
            .map(MetricsListener::local_addr)
    }
}
