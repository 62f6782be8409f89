//! [`RuntimeHandle`] (a started runtime) and [`AgentHandle`] (one running
//! agent).

use std::sync::{Arc, Mutex};

use crate::agent::{Agent, AgentOptions};
use crate::behaviour::{BehaviourStatus, State};
use crate::bus::Bus;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::trace::TraceStore;

struct RuntimeInner {
    bus: Arc<dyn Bus>,
    agents: Mutex<Vec<AgentHandle>>,
    /// The wire mode every agent gets, when the builder set one.
    wire: Option<crate::WireMode>,
    /// Its agents know each other without messages (see [`crate::peers`]).
    neighbourhood: Arc<crate::peers::Neighbourhood<super::core::Core>>,
    /// Its metrics registry and listener (see `metrics.rs`).
    #[cfg(feature = "metrics")]
    metrics: std::sync::OnceLock<super::metrics::Installed>,
}

/// A started runtime: start more agents, find them, stop them all.
#[derive(Clone)]
pub struct RuntimeHandle {
    inner: Arc<RuntimeInner>,
}

// The handle's metrics (the rest of the feature is in `metrics.rs`).
#[cfg(feature = "metrics")]
impl RuntimeHandle {
    /// The registry its agents' metrics go to, when it has one.
    pub fn metrics(&self) -> Option<&crate::metrics::Metrics> {
        self.installed_metrics().metrics.as_ref()
    }

    /// The address of its metrics listener, when it has one.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.installed_metrics()
            .listener
            .as_ref()
            .map(crate::metrics::MetricsListener::local_addr)
    }
}

impl std::fmt::Debug for RuntimeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeHandle")
            .field("bus", &self.inner.bus.describe())
            .field("agents", &self.agents().len())
            .finish()
    }
}

impl RuntimeHandle {
    pub(super) fn new(bus: Arc<dyn Bus>, wire: Option<crate::WireMode>) -> Self {
        RuntimeHandle {
            inner: Arc::new(RuntimeInner {
                bus,
                agents: Mutex::new(Vec::new()),
                wire,
                neighbourhood: Arc::default(),
                #[cfg(feature = "metrics")]
                metrics: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Its metrics registry and listener, set once when it starts.
    #[cfg(feature = "metrics")]
    fn installed_metrics(&self) -> &super::metrics::Installed {
        self.inner.metrics.get_or_init(Default::default)
    }

    /// Keeps the metrics registry and listener of a runtime that starts.
    #[cfg(feature = "metrics")]
    pub(super) fn install_metrics(&self, installed: super::metrics::Installed) {
        let _ = self.inner.metrics.set(installed);
    }

    /// The bus the agents run on.
    pub fn bus(&self) -> &Arc<dyn Bus> {
        &self.inner.bus
    }

    /// Starts an agent with its default identity.
    pub async fn spawn<A: Agent>(&self, agent: A) -> Result<AgentHandle> {
        self.spawn_with(agent, A::options()).await
    }

    /// Starts an agent with the given identity.
    pub async fn spawn_as<A: Agent>(&self, identity: impl Into<String>, agent: A) -> Result<AgentHandle> {
        let mut options = A::options();
        options.identity = identity.into();
        self.spawn_with(agent, options).await
    }

    /// Starts an agent with options of its own.
    pub async fn spawn_with<A: Agent>(&self, agent: A, mut options: AgentOptions) -> Result<AgentHandle> {
        if let Some(wire) = self.inner.wire {
            options.wire = wire;
        }
        let start = super::start::start_agent(
            Arc::clone(&self.inner.bus),
            Arc::clone(&self.inner.neighbourhood),
            agent,
            options,
        );
        #[cfg(feature = "metrics")]
        let start = super::metrics::starting(self.metrics().cloned(), start);
        let ctx = start.await?;
        let handle = AgentHandle { ctx };
        let mut agents = self.inner.agents.lock().unwrap_or_else(|e| e.into_inner());
        agents.retain(AgentHandle::is_up);
        agents.push(handle.clone());
        Ok(handle)
    }

    /// The agents started by this runtime that are still running.
    pub fn agents(&self) -> Vec<AgentHandle> {
        let agents = self.inner.agents.lock().unwrap_or_else(|e| e.into_inner());
        agents.iter().filter(|a| a.is_up()).cloned().collect()
    }

    /// The running agent with this identity.
    pub fn agent(&self, identity: &str) -> Option<AgentHandle> {
        self.agents().into_iter().find(|a| a.identity() == identity)
    }

    /// Waits until every agent has stopped.
    pub async fn wait(&self) {
        for agent in self.agents() {
            agent.stopped().await;
        }
    }

    /// Stops every agent gracefully, waits for them, and closes the bus's
    /// connections: a runtime that was shut down starts no more agents
    /// (start a new one instead).
    pub async fn shutdown(&self) {
        let agents = self.agents();
        for agent in &agents {
            agent.stop();
        }
        for agent in &agents {
            agent.stopped().await;
        }
        if let Err(e) = self.inner.bus.close().await {
            tracing::debug!(error = %e, "closing the bus's connections failed");
        }
    }

    /// Runs until Ctrl-C or SIGTERM (then stops the agents gracefully:
    /// running handlers finish, teardown runs) or until every agent has
    /// stopped. [`crate::Runtime::run_until_signal`] starts and does this.
    pub async fn run_until_signal(&self) {
        tokio::select! {
            () = self.wait() => {}
            () = super::signal::shutdown_signal() => {
                tracing::info!("signal received, stopping agents");
                self.shutdown().await;
            }
        }
    }
}

/// A handle on one running agent.
#[derive(Clone)]
pub struct AgentHandle {
    ctx: Context,
}

impl std::fmt::Debug for AgentHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentHandle")
            .field("identity", &self.identity())
            .field("state", &self.state())
            .finish()
    }
}

impl AgentHandle {
    /// The agent's identity.
    pub fn identity(&self) -> &str {
        self.ctx.identity()
    }

    /// The agent's context: send as the agent, control its behaviours.
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// The agent's state: `crashed` when its task ended by a panic outside
    /// its handlers (logged as an error; the agent is stopped).
    pub fn state(&self) -> State {
        self.ctx.state()
    }

    /// Whether the agent has not stopped (nor crashed).
    fn is_up(&self) -> bool {
        !matches!(self.state(), State::Shutdown | State::Crashed)
    }

    /// The status of every behaviour and handler.
    pub fn behaviours(&self) -> Vec<BehaviourStatus> {
        self.ctx.behaviours()
    }

    /// The status of one behaviour, by full or method name.
    pub fn behaviour(&self, name: &str) -> Option<BehaviourStatus> {
        self.ctx.behaviour(name)
    }

    /// The agent's trace store.
    pub fn traces(&self) -> &TraceStore {
        self.ctx.traces()
    }

    /// How many user deliveries the agent holds in memory, read ahead of
    /// its task or waiting in its prefetch window: at most
    /// `prefetch + readahead` (see [`AgentOptions`]); the rest waits in
    /// its queue.
    pub fn buffered(&self) -> usize {
        self.ctx.core.buffered.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Asks the agent to stop (see [`Context::stop`]).
    pub fn stop(&self) {
        self.ctx.stop();
    }

    /// Waits until the agent has stopped.
    pub async fn stopped(&self) {
        self.ctx.core.done.wait().await;
    }

    /// Why the agent stopped, when it stopped for a reason of the bus's:
    /// [`Error::IdentityInUse`] when another connection took its identity
    /// while it was reconnecting (its state is then `crashed`).
    pub fn failure(&self) -> Option<Error> {
        self.ctx
            .core
            .identity_lost
            .load(std::sync::atomic::Ordering::SeqCst)
            .then(|| Error::IdentityInUse(self.identity().to_owned()))
    }

    /// Waits until `condition` holds, checking it again whenever the agent
    /// has handled a message, run a behaviour step or answered a system
    /// request: no sleeps, so it works under tokio's paused clock too.
    ///
    /// ```no_run
    /// # async fn f(agent: munggoggo::AgentHandle) -> munggoggo::Result<()> {
    /// agent.wait_until(|a| a.behaviour("pong").is_some_and(|b| b.runs >= 3)).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// Fails with [`Error::AgentStopped`] when the agent stops (or crashes)
    /// first, or with [`AgentHandle::failure`]'s error when it has one.
    pub async fn wait_until(&self, mut condition: impl FnMut(&AgentHandle) -> bool) -> Result<()> {
        let _watching = self.ctx.core.activity.watch();
        loop {
            let activity = self.ctx.core.activity.notified();
            tokio::pin!(activity);
            activity.as_mut().enable();
            if condition(self) {
                return Ok(());
            }
            if !self.is_up() {
                return Err(self
                    .failure()
                    .unwrap_or_else(|| Error::AgentStopped(self.identity().to_owned())));
            }
            activity.await;
        }
    }

    /// Stops the agent and waits for it.
    pub async fn shutdown(&self) {
        self.stop();
        self.stopped().await;
    }
}

impl crate::rpc::Caller for AgentHandle {
    fn context(&self) -> &Context {
        AgentHandle::context(self)
    }
}
