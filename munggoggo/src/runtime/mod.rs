//! The [`Runtime`]: picks the bus, starts agents, stops them gracefully.
//!
//! The rooms of the runtime: the builder here; [`RuntimeHandle`] and
//! [`AgentHandle`] in `handle.rs`; starting one agent in `start.rs`; per
//! agent its state (`core.rs`), its task (`task.rs`, the actor loop), the
//! lanes from the bus it reads (`lanes.rs`), the system requests it answers
//! (`system.rs`), its calls in both directions (`calls.rs`) and the
//! invocation of a handler (`invocation.rs`).

use std::sync::Arc;

use crate::agent::{Agent, AgentOptions};
use crate::bus::memory::MemoryBus;
use crate::bus::Bus;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::future::BoxFuture;

pub(crate) mod calls;
mod client;
pub(crate) mod core;
mod dedup;
pub(crate) mod flag;
mod handle;
pub(crate) mod inbox;
pub(crate) mod invocation;
pub(crate) mod lanes;
mod lease;
pub(crate) mod machine;
#[cfg(feature = "metrics")]
mod metrics;
pub(crate) mod signal;
mod start;
pub(crate) mod system;
pub(crate) mod task;

pub use crate::protocol::{is_tool, DASHBOARD_PREFIX, OBSERVER_PREFIX};
pub use client::{Client, CLIENT_INBOX};
pub use handle::{AgentHandle, RuntimeHandle};
pub use invocation::quiet_caught_panics;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub use metrics::METRICS_VAR;
pub use signal::shutdown_signal;

/// The environment variable that chooses the bus: unset or `memory://` for
/// the embedded bus, `amqp://...` or `amqps://...` for RabbitMQ.
pub const URL_VAR: &str = "MUNGGOGGO_URL";

/// The local broker's URL, the default of tools that look at a live network.
pub const LOCAL_BROKER: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// An agent to start, with the identity it will have.
struct Launch {
    identity: String,
    /// Its replica name when it is replicated and named (`None`: not
    /// replicated, or named at start).
    replica: Option<Option<String>>,
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
    #[cfg(feature = "metrics")]
    metrics: metrics::MetricsOptions,
}

// The builder's metrics options (the rest of the feature is in `metrics.rs`).
#[cfg(feature = "metrics")]
impl Runtime {
    /// Collects metrics of every agent this runtime starts into `metrics`
    /// (see [`crate::metrics`]); serve them with [`Metrics::listen`](crate::metrics::Metrics::listen), the
    /// dashboard's `/metrics`, or [`Runtime::metrics_listener`].
    pub fn metrics(mut self, metrics: crate::metrics::Metrics) -> Self {
        self.metrics.metrics = Some(metrics);
        self
    }

    /// Collects metrics (into a new registry unless [`Runtime::metrics`]
    /// gave one) and serves them at `GET /metrics` on `addr` while the
    /// runtime's handle lives (port 0: a free port, see
    /// [`RuntimeHandle::metrics_addr`]).
    pub fn metrics_listener(mut self, addr: std::net::SocketAddr) -> Self {
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
    /// `MUNGGOGGO_WIRE=0.4` sets [`Runtime::wire_mode`]; with the `metrics`
    /// feature, `MUNGGOGGO_METRICS=127.0.0.1:9464` a metrics listener.
    pub fn from_env() -> Result<Self> {
        let runtime = match std::env::var(URL_VAR) {
            Ok(url) => Self::from_url(&url)?,
            Err(std::env::VarError::NotPresent) => Self::memory(),
            Err(e) => return Err(Error::Config(format!("{URL_VAR}: {e}"))),
        };
        #[cfg(feature = "metrics")]
        let runtime = runtime.metrics_from_env()?;
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
            #[cfg(feature = "metrics")]
            metrics: metrics::MetricsOptions::default(),
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
                replica: options.replicated.then(|| options.replica.clone()),
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
            replica: options.replicated.then(|| options.replica.clone()),
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

    /// Builds the agents that take a configuration, connects to the bus
    /// and starts every agent added so far. A bad configuration, or two
    /// agents with one identity, fail before any agent starts (give the
    /// second one its own with [`Runtime::agent_as`]); when one fails to
    /// start, those already started are stopped again.
    pub async fn start(self) -> Result<RuntimeHandle> {
        let launches = Self::prepare(self.entries, self.config)?;
        check_identities(&launches)?;
        #[cfg(feature = "metrics")]
        let metrics = self.metrics.install().await?;
        let bus: Arc<dyn Bus> = match self.bus {
            BusChoice::Ready(bus) => bus,
            #[cfg(feature = "amqp")]
            BusChoice::Amqp(url) => Arc::new(crate::bus::amqp::AmqpBus::connect(&url).await?),
            #[cfg(not(feature = "amqp"))]
            BusChoice::Amqp(_) => unreachable!("rejected by from_url"),
        };
        let handle = RuntimeHandle::new(bus, self.wire);
        #[cfg(feature = "metrics")]
        handle.install_metrics(metrics);
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
    /// It installs nothing process-wide: call [`crate::init_logging`] (or
    /// set a `tracing` subscriber of your own) first to see the logs.
    pub async fn run_until_signal(self) -> Result<()> {
        self.start().await?.run_until_signal().await;
        Ok(())
    }
}

/// Fails when two agents of the set would have the same identity, naming
/// their types and how to give the second one its own.
fn check_identities(launches: &[Launch]) -> Result<()> {
    for (i, launch) in launches.iter().enumerate() {
        // Replicas share their identity on purpose; two named alike do not.
        let clash = |l: &&Launch| {
            l.identity == launch.identity
                && match (&l.replica, &launch.replica) {
                    (Some(a), Some(b)) => a.is_some() && a == b,
                    _ => true,
                }
        };
        if let Some(first) = launches[..i].iter().find(clash) {
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
