//! The [`Agent`] trait that `#[agent]` implements, the agent-level options,
//! the static description of an agent type and the registry of agent types.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::behaviour::Next;
use crate::context::Context;
use crate::error::BoxError;
use crate::message::Received;

/// A boxed, sendable future, as the generated code returns them.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Agent-level options, set with `#[agent(...)]` on the struct and
/// overridable per instance on the runtime builder.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AgentOptions {
    /// The identity an instance gets unless the runtime builder names another.
    pub identity: String,
    /// How many deliveries per consumer may be in flight into the agent's task.
    pub prefetch: u16,
    /// How many more user deliveries the agent reads ahead of its task and
    /// holds unacknowledged, so that system requests behind them in its
    /// identity queue (munggoggo 0.4 peers send them there) are answered
    /// without waiting for the handlers.
    pub readahead: u16,
    /// Maximum length of the agent's queues on the embedded bus; past it a
    /// direct send fails with [`crate::Error::QueueFull`]. `None`: unbounded.
    pub max_queue: Option<usize>,
    /// How many `#[rpc]` calls may wait for the agent's task; a call past it
    /// is answered at once with an error saying the agent is busy.
    pub call_queue: usize,
    /// How many of the agent's messages may wait for the broker's confirm
    /// at once; a send past it waits for a place.
    pub publish_window: usize,
    /// How long a send may wait for a place in the publish window and then
    /// for the broker's confirm before it fails with
    /// [`crate::Error::SendTimeout`] (RabbitMQ; the embedded bus answers at
    /// once).
    pub send_timeout: Duration,
    /// How behaviours that keep failing back off and when they crash.
    pub failure_policy: crate::behaviour::FailurePolicy,
    /// Who may stop or start its behaviours, read its traces or shut it
    /// down (the system requests `ManageBehav`, `ListTraceStore` and
    /// `Shutdown`): identities, or prefixes ending in `*` (`"ops-*"`). `None`,
    /// the default, lets anyone on the bus, as munggoggo 0.4 does. The
    /// sender is the message's `app_id`, which any client on the broker can
    /// set: combine this with RabbitMQ permissions where it matters.
    pub control_from: Option<Vec<String>>,
    /// Entries the agent's trace store keeps.
    pub trace_size: usize,
    /// Bytes of a message body the trace store keeps (the rest is cut; the
    /// entry keeps the true size).
    pub trace_body_limit: usize,
    /// Interval of the keepalive ping to peers (`None`: only at start).
    pub peer_interval: Option<Duration>,
    /// Default timeout of calls made by this agent.
    pub call_timeout: Duration,
    /// Ping the peers at start (0.4 does); clients that only look need not.
    pub announce: bool,
    /// Also serve the agent's `#[rpc]` methods on munggoggo 0.4's method
    /// queues (aio-pika's RPC pattern, RabbitMQ only), so that Python
    /// agents call them; see [`AgentOptions::exposing`].
    pub expose_methods: bool,
    /// How the agent writes its user messages; a runtime's
    /// [`Runtime::wire_mode`](crate::Runtime::wire_mode) sets it for all.
    pub wire: crate::WireMode,
}

impl AgentOptions {
    /// The defaults, with the given identity.
    pub fn new(identity: impl Into<String>) -> Self {
        AgentOptions {
            identity: identity.into(),
            prefetch: DEFAULT_PREFETCH,
            readahead: DEFAULT_READAHEAD,
            max_queue: Some(DEFAULT_MAX_QUEUE),
            call_queue: DEFAULT_CALL_QUEUE,
            publish_window: DEFAULT_PUBLISH_WINDOW,
            send_timeout: Duration::from_secs(10),
            failure_policy: crate::behaviour::FailurePolicy::default(),
            control_from: None,
            trace_size: 1000,
            trace_body_limit: crate::trace::DEFAULT_BODY_LIMIT,
            peer_interval: None,
            call_timeout: Duration::from_secs(3),
            announce: true,
            expose_methods: false,
            wire: crate::WireMode::Compact,
        }
    }

    /// Serves the agent's `#[rpc]` methods on munggoggo 0.4's method queues
    /// too (a queue per method name, shared round-robin with every other
    /// agent, Rust or Python, that exposes the same name):
    ///
    /// ```no_run
    /// # use munggoggo::prelude::*;
    /// # #[agent] #[derive(Default)] struct Calc;
    /// # #[agent] impl Calc { #[rpc] async fn multiply(&mut self, x: i64, y: i64) -> i64 { x * y } }
    /// # use munggoggo::agent::AgentDefaults;
    /// munggoggo::Runtime::from_env()?.agent_with(Calc, Calc::options().exposing());
    /// # Ok::<(), munggoggo::Error>(())
    /// ```
    pub fn exposing(mut self) -> Self {
        self.expose_methods = true;
        self
    }
}

impl AgentOptions {
    /// Whether `sender` may send the agent control requests (see
    /// [`AgentOptions::control_from`]).
    pub fn may_control(&self, sender: &str) -> bool {
        self.control_from.as_ref().is_none_or(|allowed| {
            allowed.iter().any(|a| match a.strip_suffix('*') {
                Some(prefix) => sender.starts_with(prefix),
                None => a == sender,
            })
        })
    }
}

/// Default prefetch window: large enough to keep a consumer busy while the
/// acknowledgements of earlier deliveries travel back, small enough that a
/// slow agent does not hoard its backlog.
pub const DEFAULT_PREFETCH: u16 = 64;

/// Default read-ahead of user deliveries beyond the prefetch window.
pub const DEFAULT_READAHEAD: u16 = 192;

/// Default maximum length of an embedded-bus queue.
pub const DEFAULT_MAX_QUEUE: usize = 100_000;

/// Default number of `#[rpc]` calls that may wait for an agent's task.
pub const DEFAULT_CALL_QUEUE: usize = 1024;

/// Default number of messages an agent may have waiting for their confirm.
pub const DEFAULT_PUBLISH_WINDOW: usize = 256;

/// The agent-level options of an agent type: implemented by `#[agent]` on
/// the struct.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no agent options",
    label = "add `#[agent]` to the struct `{Self}` as well as to its impl block"
)]
pub trait AgentDefaults: Sized {
    /// The options given on the struct (identity defaults to the type name in kebab-case).
    fn options() -> AgentOptions;
    /// Builds an instance for the registry (`Default` or `#[agent(new = ...)]`;
    /// with `#[agent(config = ...)]`, from the configuration's defaults).
    fn construct() -> Option<Self>;
    /// Whether the registry can build one: `Default`, or `new = ...` (with
    /// `config = ...`, from the configuration), without building it.
    fn has_constructor() -> bool {
        true
    }

    /// Builds the instance `identity` from its configuration through every
    /// layer of `config` (agents with `#[agent(config = ...)]`); others are
    /// built by [`construct`](Self::construct). `Ok(None)`: no constructor.
    fn configured(
        config: &crate::config::Config,
        identity: &str,
    ) -> Result<Option<Self>, crate::config::ConfigError> {
        let _ = (config, identity);
        Ok(Self::construct())
    }

    /// The name of the configuration type, for agents with `#[agent(config = ...)]`.
    fn config_type() -> Option<&'static str> {
        None
    }
}

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
    Handler(Route),
}

/// Which messages a handler takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Route {
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
    /// Behaviours and handlers, indexed as [`Agent::run`] and [`Agent::handle`] expect.
    pub behaviours: &'static [BehaviourSpec],
    /// `#[rpc]` methods, indexed as [`Agent::call`] expects.
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

/// An agent: implemented by `#[agent]` on the impl block; not written by hand.
pub trait Agent: AgentDefaults + Send + 'static {
    /// The static description of this agent type.
    fn spec() -> &'static AgentSpec;

    /// The `#[setup]` method.
    fn setup<'a>(&'a mut self, ctx: &'a Context) -> BoxFuture<'a, Result<(), BoxError>>;

    /// The `#[teardown]` method.
    fn teardown<'a>(&'a mut self, ctx: &'a Context) -> BoxFuture<'a, Result<(), BoxError>>;

    /// Runs one step of the behaviour at `index` of [`AgentSpec::behaviours`].
    fn run<'a>(&'a mut self, ctx: &'a Context, index: usize) -> BoxFuture<'a, Result<Next, BoxError>>;

    /// Hands a message to the handler at `index` of [`AgentSpec::behaviours`].
    fn handle<'a>(
        &'a mut self,
        ctx: &'a Context,
        index: usize,
        msg: &'a std::sync::Arc<Received>,
    ) -> BoxFuture<'a, Result<(), HandlerError>>;

    /// Calls the `#[rpc]` method at `index` of [`AgentSpec::rpcs`] with JSON parameters.
    fn call<'a>(
        &'a mut self,
        ctx: &'a Context,
        index: usize,
        params: serde_json::Value,
    ) -> BoxFuture<'a, Result<serde_json::Value, crate::rpc::CallError>>;
}

/// An agent type compiled into the binary, registered by `#[agent]`.
#[derive(Debug, Clone, Copy)]
pub struct Registration {
    /// The agent type's description.
    pub spec: fn() -> &'static AgentSpec,
    /// Its options.
    pub options: fn() -> AgentOptions,
    constructor: fn() -> bool,
    launch: fn(crate::runtime::Runtime, Option<String>) -> crate::runtime::Runtime,
}

impl Registration {
    /// The registration of `A`.
    pub const fn of<A: Agent>() -> Self {
        Registration {
            spec: A::spec,
            options: A::options,
            constructor: A::has_constructor,
            launch: launch::<A>,
        }
    }

    /// The agent type's name.
    pub fn name(&self) -> &'static str {
        (self.spec)().name
    }

    /// Whether the registry can build one (`Default` or `#[agent(new = ...)]`).
    pub fn has_constructor(&self) -> bool {
        (self.constructor)()
    }

    /// Adds an instance to the runtime, built by its constructor from its
    /// configuration when the runtime starts (see [`Runtime::configured`](crate::Runtime::configured)).
    pub fn add_to(
        &self,
        runtime: crate::runtime::Runtime,
        identity: Option<String>,
    ) -> Result<crate::runtime::Runtime, crate::Error> {
        Ok((self.launch)(runtime, identity))
    }
}

fn launch<A: Agent>(runtime: crate::runtime::Runtime, identity: Option<String>) -> crate::runtime::Runtime {
    match identity {
        Some(id) => runtime.configured_as::<A>(id),
        None => runtime.configured::<A>(),
    }
}

inventory::collect!(Registration);

/// Every agent type compiled into this binary, sorted by name.
pub fn registered() -> Vec<Registration> {
    let mut all: Vec<Registration> = inventory::iter::<Registration>.into_iter().copied().collect();
    all.sort_by_key(|r| r.name());
    all
}
