//! [`AgentOptions`]: the agent-level options of `#[agent(...)]` on the
//! struct, overridable per instance, and their defaults.

use std::time::Duration;

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
    /// Whether any number of instances, in this process or others, may
    /// run with this identity as replicas of one group (`#[agent(replicated)]`
    /// or [`AgentOptions::replicated`]); see the guide's "Scaling out".
    pub replicated: bool,
    /// The name of this replica, for control (ping, behaviours, traces,
    /// shutdown); `None`: `<identity>@<random suffix>`. Only for a
    /// replicated agent.
    pub replica: Option<String>,
    /// How many recent message ids the agent remembers to drop a message
    /// it is delivered a second time (a send published again after a broker
    /// fault, a delivery whose acknowledgement was lost); `0`, the default,
    /// remembers none. See [`AgentOptions::dedup`].
    pub dedup: usize,
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
            replicated: false,
            replica: None,
            dedup: 0,
        }
    }

    /// Makes the agent replicated: instances started with this identity,
    /// in this process or in others, share it as replicas of one group. A
    /// direct message or an `#[rpc]` call to the identity goes to one live
    /// replica (competing consumers on one queue); each replica stays
    /// addressable on its own for control by its replica name
    /// (`<identity>@<suffix>`, see [`AgentOptions::replica_named`]); topic
    /// handlers get each publication once per group unless they say
    /// `delivery = "each_replica"`; `#[behaviour(singleton)]` behaviours
    /// run on one replica at a time. An agent that is not replicated keeps
    /// its identity to itself ([`crate::Error::IdentityInUse`]), and the
    /// two kinds never share an identity.
    ///
    /// ```no_run
    /// # use munggoggo::prelude::*;
    /// # #[agent] #[derive(Default)] struct Worker;
    /// # #[agent] impl Worker {}
    /// # use munggoggo::agent::AgentDefaults;
    /// let runtime = munggoggo::Runtime::from_env()?
    ///     .agent_with(Worker, Worker::options().replicated())
    ///     .agent_with(Worker, Worker::options().replicated());
    /// # Ok::<(), munggoggo::Error>(())
    /// ```
    pub fn replicated(mut self) -> Self {
        self.replicated = true;
        self
    }

    /// Drops messages whose message id is one of the last `ids` the agent
    /// handled (`#[agent(dedup = 10000)]`). Delivery on RabbitMQ is at least
    /// once: a send the broker did not confirm before a fault is published
    /// again, and a delivery whose acknowledgement was lost comes again, so
    /// a handler that must not see a message twice turns this on (or is
    /// idempotent). A dropped duplicate is acknowledged, logged at debug
    /// level and kept in the trace store with its reason. The ids are kept
    /// in memory: a restarted agent starts with none.
    ///
    /// ```
    /// # use munggoggo::prelude::*;
    /// # #[agent] #[derive(Default)] struct Ledger;
    /// # #[agent] impl Ledger {}
    /// # use munggoggo::agent::AgentDefaults;
    /// let options = Ledger::options().dedup(10_000);
    /// assert_eq!(options.dedup, 10_000);
    /// ```
    pub fn dedup(mut self, ids: usize) -> Self {
        self.dedup = ids;
        self
    }

    /// Makes the agent replicated (see [`AgentOptions::replicated`]) and
    /// names this replica (`worker@eu-1`); replica names must differ.
    pub fn replica_named(mut self, name: impl Into<String>) -> Self {
        self.replicated = true;
        self.replica = Some(name.into());
        self
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
