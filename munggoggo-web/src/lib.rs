//! The web dashboard of munggoggo: watch and steer the agent network in a
//! browser. Built on the runtime's public API; add it beside `munggoggo`
//! (`munggoggo-web = "0.1"`, feature `metrics` for `/metrics`).
//!
//! [`Dashboard`] joins the bus of a running [`RuntimeHandle`] as an
//! observer with an identity of its own (`munggoggo-dashboard-<pid>-<random>`)
//! and serves, on axum:
//!
//! - `GET /`: one page (HTML, CSS and JS embedded in the binary) with a live
//!   graph of agents, behaviours and topics, a table of states and counters
//!   with start/stop buttons, the recent messages of a selected agent, and a
//!   form to send a message or call a method;
//! - a JSON API under `/api` (peers, start/stop, traces, send, broadcast,
//!   publish, call, shutdown);
//! - `POST /jsonrpc`: JSON-RPC 2.0 calls of `#[rpc]` methods (`agent.method`);
//! - `GET /openapi.json`: the OpenAPI 3 document of the API;
//! - `GET /ws`: a WebSocket pushing peer changes and new messages;
//! - `GET /metrics` (feature `metrics`): the runtime's metrics for
//!   Prometheus (see `munggoggo::metrics`).
//!
//! Safe by default: the command line listens on [`DEFAULT_LISTEN`]
//! (`127.0.0.1`) unless told otherwise; with a token
//! ([`DashboardOptions::token`], `MUNGGOGGO_DASHBOARD_TOKEN`) every endpoint
//! that changes something wants `Authorization: Bearer <token>`; those
//! endpoints also want `Content-Type: application/json`, which a browser
//! does not send across sites without asking; without a token only
//! requests for `localhost` or an IP address are answered, so a page whose
//! host name was rebound to this machine gets nothing. Bad input gets a 4xx
//! with a JSON error body.
//!
//! ```no_run
//! # async fn f() -> munggoggo::Result<()> {
//! let runtime = munggoggo::Runtime::from_env()?
//!     // .agent(Pinger::default())
//!     .start()
//!     .await?;
//! let options = munggoggo_web::DashboardOptions::from_env();
//! munggoggo_web::serve(&runtime, "127.0.0.1:8000".parse().unwrap(), options).await?;
//! # Ok(()) }
//! ```

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use munggoggo::{AgentOptions, Error, Result, RuntimeHandle};

use crate::shared::Shared;

mod api;
mod error;
mod guard;
mod jsonrpc;
#[cfg(feature = "metrics")]
mod metrics;
pub mod model;
mod monitor;
mod observer;
mod openapi;
mod options;
mod page;
mod rates;
mod routes;
mod shared;
mod ws;

pub use model::AgentView;
pub use openapi::ApiDoc;
pub use options::{DashboardOptions, TOKEN_VAR};

/// The address the dashboard listens on unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8000";

/// A dashboard on the bus of a running runtime: its observer agent and the
/// task that keeps its view of the network up to date. Serve its
/// [`Dashboard::router`] with axum, or let [`Dashboard::serve`] do it.
pub struct Dashboard {
    shared: Arc<Shared>,
    monitor: JoinHandle<()>,
}

impl std::fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dashboard")
            .field("identity", &self.identity())
            .field("options", &self.shared.options)
            .finish()
    }
}

impl Dashboard {
    /// Joins the bus of `runtime` as an observer and starts looking at the
    /// network.
    pub async fn start(runtime: &RuntimeHandle, options: DashboardOptions) -> Result<Dashboard> {
        let mut agent_options = AgentOptions::new(monitor::unique_identity());
        agent_options.announce = false;
        agent_options.call_timeout = options.call_timeout;
        agent_options.trace_size = 64;
        agent_options.prefetch = 16;
        let observer = runtime.spawn_with(observer::Observer, agent_options).await?;
        let monitor = Arc::new(monitor::Monitor::new(observer, options.refresh));
        let task = tokio::spawn(Arc::clone(&monitor).run());
        tracing::info!(identity = monitor.observer.identity(), "dashboard joined the bus");
        Ok(Dashboard {
            shared: Arc::new(Shared {
                monitor,
                options,
                bus: runtime.bus().describe(),
                #[cfg(feature = "metrics")]
                metrics: runtime.metrics().cloned(),
            }),
            monitor: task,
        })
    }

    /// The dashboard's identity on the bus.
    pub fn identity(&self) -> &str {
        self.shared.monitor.observer.identity()
    }

    /// The agents as the dashboard sees them now, sorted by name.
    pub fn peers(&self) -> Vec<AgentView> {
        self.shared.monitor.peers()
    }

    /// Waits until `condition` holds for the agents the dashboard sees,
    /// checking again after every change and every look at the bus.
    pub async fn wait_until(&self, mut condition: impl FnMut(&[AgentView]) -> bool) {
        let mut versions = self.shared.monitor.versions();
        loop {
            versions.mark_unchanged();
            if condition(&self.peers()) {
                return;
            }
            if versions.changed().await.is_err() {
                return;
            }
        }
    }

    /// The routes: the page, the API, JSON-RPC, OpenAPI and the WebSocket
    /// (and `/metrics` with the `metrics` feature).
    pub fn router(&self) -> Router {
        let router = routes::router(Arc::clone(&self.shared));
        #[cfg(feature = "metrics")]
        let router = metrics::router(Arc::clone(&self.shared)).merge(router);
        router
    }

    /// Serves the dashboard on `listener` until `shutdown` completes, then
    /// leaves the bus.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let addr = listener.local_addr().ok();
        tracing::info!(address = ?addr, "dashboard listening");
        let served = axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await;
        self.leave().await;
        served.map_err(|e| Error::Config(format!("the dashboard's server failed: {e}")))
    }

    /// Leaves the bus: the observer stops and its queues are deleted.
    pub async fn leave(self) {
        self.monitor.abort();
        self.shared.monitor.observer.shutdown().await;
    }
}

impl Drop for Dashboard {
    /// Stops looking and asks the observer to leave (without waiting).
    fn drop(&mut self) {
        self.monitor.abort();
        self.shared.monitor.observer.stop();
    }
}

/// Serves a dashboard of `runtime`'s bus on `addr` until Ctrl-C or SIGTERM.
pub async fn serve(runtime: &RuntimeHandle, addr: SocketAddr, options: DashboardOptions) -> Result<()> {
    let listener = bind(addr).await?;
    Dashboard::start(runtime, options)
        .await?
        .serve(listener, munggoggo::runtime::shutdown_signal())
        .await
}

/// Binds a listener, with an error that names the address.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| Error::Config(format!("the dashboard cannot listen on {addr}: {e}")))
}
