//! The [`Runtime`]: picks the bus, starts agents, stops them gracefully.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use tokio::sync::{mpsc, watch};
use tracing::Instrument;

use crate::agent::{Agent, AgentOptions, BehaviourKind, BoxFuture, Route};
use crate::behaviour::{BehaviourStatus, State};
use crate::bus::memory::MemoryBus;
use crate::bus::{Bus, EndpointOptions};
use crate::config::Config;
use crate::context::{Context, Core};
use crate::error::{Error, Result};
use crate::trace::TraceStore;

mod client;
pub(crate) mod dispatch;
pub(crate) mod invocation;
#[cfg(any(feature = "cli", feature = "web"))]
pub(crate) mod observer;
pub(crate) mod task;

pub use client::{Client, CLIENT_INBOX};

/// The environment variable that chooses the bus: unset or `memory://` for
/// the embedded bus, `amqp://...` or `amqps://...` for RabbitMQ.
pub const URL_VAR: &str = "MUNGGOGGO_URL";

/// Deliveries in flight on an agent's control queue: requests and replies
/// are answered by the dispatcher at once, so this only covers bursts.
const CONTROL_PREFETCH: u16 = 256;

/// The local broker's URL, the default of tools that look at a live network.
pub const LOCAL_BROKER: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// An agent to start, with the identity it will have.
struct Launch {
    identity: String,
    type_name: &'static str,
    start: Box<dyn FnOnce(RuntimeHandle) -> BoxFuture<'static, Result<AgentHandle>> + Send>,
}

/// Builds an agent from the configuration when the runtime starts.
type Prepare = Box<dyn FnOnce(&Config) -> Result<Launch> + Send>;

/// An agent to start: built already, or built from its configuration at start.
enum Entry {
    Ready(Launch),
    Configured { identity: String, prepare: Prepare },
}

enum BusChoice {
    Ready(Arc<dyn Bus>),
    #[cfg_attr(not(feature = "amqp"), allow(dead_code))]
    Amqp(String),
}

/// Builds the set of agents to run and the bus to run them on.
///
/// ```no_run
/// # use munggoggo::Runtime;
/// # async fn f() -> munggoggo::Result<()> {
/// Runtime::from_env()?        // MUNGGOGGO_URL, or the embedded bus
///     // .agent(Pinger::default())
///     .run_until_signal()
///     .await
/// # }
/// ```
pub struct Runtime {
    bus: BusChoice,
    entries: Vec<Entry>,
    config: Config,
    wire: Option<crate::WireMode>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("agents", &self.entries.len())
            .field("config", &self.config.path())
            .finish()
    }
}

impl Runtime {
    /// Picks the bus from `MUNGGOGGO_URL` (unset or `memory://`: the
    /// embedded bus).
    /// `MUNGGOGGO_WIRE=0.4` sets [`Runtime::wire_mode`].
    pub fn from_env() -> Result<Self> {
        let runtime = match std::env::var(URL_VAR) {
            Ok(url) => Self::from_url(&url)?,
            Err(std::env::VarError::NotPresent) => Self::memory(),
            Err(e) => return Err(Error::Config(format!("{URL_VAR}: {e}"))),
        };
        Ok(match std::env::var_os(crate::WIRE_VAR) {
            Some(_) => runtime.wire_mode(crate::WireMode::from_env()?),
            None => runtime,
        })
    }

    /// Sets how every agent this runtime starts writes its user messages:
    /// [`WireMode::Py04`](crate::WireMode::Py04) in a network with
    /// munggoggo 0.4 (Python) agents, the compact default otherwise.
    pub fn wire_mode(mut self, mode: crate::WireMode) -> Self {
        self.wire = Some(mode);
        self
    }

    /// Picks the bus from a URL: `memory://`, `amqp://...` or `amqps://...`.
    pub fn from_url(url: &str) -> Result<Self> {
        let url = url.trim();
        if url.is_empty() || url == "memory://" || url == "memory" {
            return Ok(Self::memory());
        }
        if url.starts_with("amqp://") || url.starts_with("amqps://") {
            #[cfg(feature = "amqp")]
            return Ok(Self::with_bus_choice(BusChoice::Amqp(url.to_owned())));
            #[cfg(not(feature = "amqp"))]
            return Err(Error::Config(format!(
                "{URL_VAR} is a RabbitMQ URL, but munggoggo was built without its `amqp` feature: \
                 add it in Cargo.toml (`munggoggo = {{ version = \"0.1\", features = [\"amqp\"] }}`)"
            )));
        }
        Err(Error::Config(format!(
            "{URL_VAR} must be `memory://`, `amqp://...` or `amqps://...`, not `{}`",
            crate::bus::redact(url)
        )))
    }

    /// A runtime on a new embedded bus.
    pub fn memory() -> Self {
        Self::with_bus(MemoryBus::new())
    }

    /// A runtime on the given bus.
    pub fn with_bus(bus: impl Bus) -> Self {
        Self::with_bus_choice(BusChoice::Ready(Arc::new(bus)))
    }

    fn with_bus_choice(bus: BusChoice) -> Self {
        Runtime {
            bus,
            entries: Vec::new(),
            config: Config::new(),
            wire: None,
        }
    }

    /// Uses these configuration layers for the agents built from their
    /// configuration ([`configured`](Self::configured), the registry).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Reads the configuration file (TOML or JSON, one table per identity);
    /// see [`crate::config`].
    pub fn config_file(mut self, path: impl AsRef<std::path::Path>) -> Result<Self> {
        self.config = self.config.file(path)?;
        Ok(self)
    }

    /// Sets a field of an agent's configuration in code, the highest layer
    /// (`key` may be dotted: `db.path`).
    pub fn set(
        mut self,
        identity: impl Into<String>,
        key: &str,
        value: impl Into<serde_json::Value>,
    ) -> Self {
        self.config = self.config.set(identity, key, value);
        self
    }

    /// Adds an agent built from its configuration (`#[agent(config = ...)]`)
    /// or its constructor, with its default identity. The configuration is
    /// checked when the runtime starts, for every agent before any starts.
    pub fn configured<A: Agent>(self) -> Self {
        let identity = A::options().identity;
        self.configured_as::<A>(identity)
    }

    /// Adds an agent built from the configuration of `identity`.
    pub fn configured_as<A: Agent>(mut self, identity: impl Into<String>) -> Self {
        let identity = identity.into();
        let id = identity.clone();
        let prepare: Prepare = Box::new(move |config: &Config| {
            let agent = match A::configured(config, &id) {
                Ok(Some(agent)) => agent,
                Ok(None) => return Err(Error::NoConstructor(A::spec().name.to_owned())),
                Err(e) => return Err(Error::BadConfig(vec![e])),
            };
            let mut options = A::options();
            options.identity = id.clone();
            Ok(Launch {
                identity: id,
                type_name: A::spec().name,
                start: Box::new(
                    move |rt: RuntimeHandle| -> BoxFuture<'static, Result<AgentHandle>> {
                        Box::pin(async move { rt.spawn_with(agent, options).await })
                    },
                ),
            })
        });
        self.entries.push(Entry::Configured { identity, prepare });
        self
    }

    /// Adds an agent with its default identity.
    pub fn agent<A: Agent>(self, agent: A) -> Self {
        self.agent_with(agent, A::options())
    }

    /// Adds an agent with the given identity.
    pub fn agent_as<A: Agent>(self, identity: impl Into<String>, agent: A) -> Self {
        let mut options = A::options();
        options.identity = identity.into();
        self.agent_with(agent, options)
    }

    /// Adds an agent with options of its own.
    pub fn agent_with<A: Agent>(mut self, agent: A, options: AgentOptions) -> Self {
        self.entries.push(Entry::Ready(Launch {
            identity: options.identity.clone(),
            type_name: A::spec().name,
            start: Box::new(move |rt: RuntimeHandle| {
                Box::pin(async move { rt.spawn_with(agent, options).await })
            }),
        }));
        self
    }

    /// Builds every agent that is built from its configuration. Collects
    /// every configuration error, so that the user sees all at once.
    fn prepare(entries: Vec<Entry>, mut config: Config) -> Result<Vec<Launch>> {
        config.known = entries
            .iter()
            .filter_map(|e| match e {
                Entry::Configured { identity, .. } => Some(identity.clone()),
                Entry::Ready(_) => None,
            })
            .collect();
        let mut launches = Vec::new();
        let mut bad = Vec::new();
        let mut first_other = None;
        for entry in entries {
            match entry {
                Entry::Ready(launch) => launches.push(launch),
                Entry::Configured { prepare, .. } => match prepare(&config) {
                    Ok(launch) => launches.push(launch),
                    Err(Error::BadConfig(errors)) => bad.extend(errors),
                    Err(other) => {
                        first_other.get_or_insert(other);
                    }
                },
            }
        }
        if !bad.is_empty() {
            return Err(Error::BadConfig(bad));
        }
        match first_other {
            Some(e) => Err(e),
            None => Ok(launches),
        }
    }

    /// Adds an agent type of the registry by name (see [`crate::agent::registered`]).
    pub fn agent_named(self, type_name: &str, identity: Option<String>) -> Result<Self> {
        let registered = crate::agent::registered();
        let Some(registration) = registered.iter().find(|r| r.name() == type_name) else {
            return Err(Error::UnknownAgentType {
                name: type_name.to_owned(),
                known: registered.iter().map(|r| r.name().to_owned()).collect(),
            });
        };
        registration.add_to(self, identity)
    }

    /// Builds the agents that take a configuration, connects to the bus
    /// and starts every agent added so far. A bad configuration, or two
    /// agents with one identity, fail before any agent starts (give the
    /// second one its own with [`Runtime::agent_as`]); when one fails to
    /// start, those already started are stopped again.
    pub async fn start(self) -> Result<RuntimeHandle> {
        let launches = Self::prepare(self.entries, self.config)?;
        check_identities(&launches)?;
        let bus: Arc<dyn Bus> = match self.bus {
            BusChoice::Ready(bus) => bus,
            #[cfg(feature = "amqp")]
            BusChoice::Amqp(url) => Arc::new(crate::bus::amqp::AmqpBus::connect(&url).await?),
            #[cfg(not(feature = "amqp"))]
            BusChoice::Amqp(_) => unreachable!("rejected by from_url"),
        };
        let handle = RuntimeHandle {
            inner: Arc::new(RuntimeInner {
                bus,
                agents: Mutex::new(Vec::new()),
                wire: self.wire,
            }),
        };
        for launch in launches {
            if let Err(e) = (launch.start)(handle.clone()).await {
                handle.shutdown().await;
                return Err(e);
            }
        }
        Ok(handle)
    }

    /// Starts the agents and runs until every one of them has stopped.
    pub async fn run(self) -> Result<()> {
        let handle = self.start().await?;
        handle.wait().await;
        Ok(())
    }

    /// Starts the agents and runs until Ctrl-C or SIGTERM (then stops them
    /// gracefully: running handlers finish, teardown runs) or until every
    /// agent has stopped.
    ///
    /// Installs the default `tracing` subscriber first (see
    /// [`crate::init_logging`]) unless the program has set one.
    pub async fn run_until_signal(self) -> Result<()> {
        #[cfg(feature = "logging")]
        crate::logging::init_logging();
        let handle = self.start().await?;
        tokio::select! {
            () = handle.wait() => {}
            () = shutdown_signal() => {
                tracing::info!("signal received, stopping agents");
                handle.shutdown().await;
            }
        }
        Ok(())
    }
}

/// Fails when two agents of the set would have the same identity, naming
/// their types and how to give the second one its own.
fn check_identities(launches: &[Launch]) -> Result<()> {
    for (i, launch) in launches.iter().enumerate() {
        if let Some(first) = launches[..i].iter().find(|l| l.identity == launch.identity) {
            let help = if first.type_name == launch.type_name {
                format!(
                    "two `{}` agents: start the second with `.agent_as(\"{}-2\", ...)`",
                    launch.type_name, launch.identity
                )
            } else {
                format!(
                    "`{}` and `{}`: give one of them another with `.agent_as(\"...\", ...)`",
                    first.type_name, launch.type_name
                )
            };
            return Err(Error::DuplicateIdentity {
                identity: launch.identity.clone(),
                help,
            });
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

struct RuntimeInner {
    bus: Arc<dyn Bus>,
    agents: Mutex<Vec<AgentHandle>>,
    /// The wire mode every agent gets, when the builder set one.
    wire: Option<crate::WireMode>,
}

/// A started runtime: start more agents, find them, stop them all.
#[derive(Clone)]
pub struct RuntimeHandle {
    inner: Arc<RuntimeInner>,
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
        let handle = start_agent(Arc::clone(&self.inner.bus), agent, options).await?;
        let mut agents = self.inner.agents.lock().unwrap_or_else(|e| e.into_inner());
        agents.retain(|a| a.state() != State::Shutdown);
        agents.push(handle.clone());
        Ok(handle)
    }

    /// Joins the bus as a client without handlers: it can send, and it
    /// receives what is sent to its identity (see [`Client::recv`]).
    pub async fn client(&self, identity: impl Into<String>) -> Result<Client> {
        Client::start(self, identity.into()).await
    }

    /// The agents started by this runtime that are still running.
    pub fn agents(&self) -> Vec<AgentHandle> {
        let agents = self.inner.agents.lock().unwrap_or_else(|e| e.into_inner());
        agents
            .iter()
            .filter(|a| a.state() != State::Shutdown)
            .cloned()
            .collect()
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

    /// Stops every agent gracefully and waits for them.
    pub async fn shutdown(&self) {
        let agents = self.agents();
        for agent in &agents {
            agent.stop();
        }
        for agent in &agents {
            agent.stopped().await;
        }
    }
}

/// A handle on one running agent.
#[derive(Clone)]
pub struct AgentHandle {
    ctx: Context,
    done: watch::Receiver<bool>,
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

    /// The agent's state.
    pub fn state(&self) -> State {
        self.ctx.state()
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
        let mut done = self.done.clone();
        let _ = done.wait_for(|done| *done).await;
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
    /// Fails with [`Error::AgentStopped`] when the agent stops first.
    pub async fn wait_until(&self, mut condition: impl FnMut(&AgentHandle) -> bool) -> Result<()> {
        loop {
            let activity = self.ctx.core.activity.notified();
            tokio::pin!(activity);
            activity.as_mut().enable();
            if condition(self) {
                return Ok(());
            }
            if self.state() == State::Shutdown {
                return Err(Error::AgentStopped(self.identity().to_owned()));
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

/// Opens the agent's endpoint, runs its setup, subscribes its topic
/// handlers and spawns its dispatcher and task.
pub(crate) async fn start_agent<A: Agent>(
    bus: Arc<dyn Bus>,
    mut agent: A,
    options: AgentOptions,
) -> Result<AgentHandle> {
    invocation::install_panic_hook();
    let identity = options.identity.clone();
    let prefetch = options.prefetch.max(1);
    let endpoint_options = EndpointOptions {
        // The broker may deliver the window plus the read-ahead; the
        // dispatcher holds the read-ahead (see `dispatch`).
        prefetch: prefetch.saturating_add(options.readahead),
        control_prefetch: CONTROL_PREFETCH,
        max_queue: options.max_queue,
        publish_window: options.publish_window.max(1),
        send_timeout: options.send_timeout,
    };
    let opened = bus.open(&identity, &endpoint_options).await?;
    let (control_tx, control_rx) = mpsc::channel(crate::context::CONTROL_QUEUE);
    let (calls_tx, calls_rx) = mpsc::channel(options.call_queue.max(1));
    let core = Arc::new(Core::new(
        &identity,
        options,
        A::spec(),
        opened.endpoint,
        control_tx,
        calls_tx,
    ));
    let mut consumers = opened.mailbox;
    let ctx = Context {
        core: Arc::clone(&core),
    };
    let span = tracing::info_span!("agent", agent = %identity);

    let setup = AssertUnwindSafe(agent.setup(&ctx))
        .catch_unwind()
        .instrument(span.clone())
        .await;
    let setup = match setup {
        Ok(result) => result,
        Err(panic) => Err(format!("setup panicked: {}", task::panic_message(&*panic)).into()),
    };
    if let Err(source) = setup {
        let _ = core.endpoint.close().await;
        return Err(Error::Setup {
            agent: identity,
            source,
        });
    }
    for (i, b) in core.behaviours.iter().enumerate() {
        if let BehaviourKind::Handler(Route::Topic(_)) = b.spec.kind {
            let keys = core.binding_keys(i);
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            match core.endpoint.subscribe(&core.subscription_queue(i), &keys).await {
                Ok(consumer) => consumers.push(consumer),
                Err(e) => {
                    let _ = core.endpoint.close().await;
                    return Err(e);
                }
            }
        }
    }

    for b in &core.behaviours {
        b.state.set(State::Running);
    }
    core.state.set(State::Running);
    let (window_tx, window_rx) = mpsc::channel(usize::from(prefetch));
    let (subscriptions_tx, subscriptions_rx) = mpsc::unbounded_channel();
    let (done_tx, done_rx) = watch::channel(false);
    let lanes = dispatch::Lanes {
        control: opened.control,
        users: consumers,
        added: subscriptions_rx,
        window: window_tx,
    };
    tokio::spawn(dispatch::run(Arc::clone(&core), lanes).instrument(span.clone()));
    let task = task::Task {
        agent,
        ctx: ctx.clone(),
        mailbox: window_rx,
        control: control_rx,
        calls: calls_rx,
        shutdown: core.shutdown.subscribe(),
        invocation: Arc::default(),
        subscriptions: subscriptions_tx,
        done: done_tx,
    };
    tokio::spawn(task.run().instrument(span.clone()));
    if let Err(e) = crate::pyrpc::serve(&bus, &core).instrument(span.clone()).await {
        core.request_shutdown();
        return Err(e);
    }
    if core.options.announce || core.options.peer_interval.is_some() {
        let peer_interval = core.options.peer_interval;
        ctx.spawn(crate::peers::keepalive(ctx.clone(), peer_interval).instrument(span));
    }
    tracing::info!(agent = %identity, "agent started");
    Ok(AgentHandle { ctx, done: done_rx })
}
