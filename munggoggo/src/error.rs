//! The crate's one error type.

use std::time::Duration;

/// A boxed error, the common currency of handler results.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with [`Error`] as its error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the runtime, naming the identity, queue or
/// type involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An agent with this identity is already running (in this process or
    /// elsewhere on the broker).
    #[error("identity `{0}` is already in use by another agent; a second instance of an agent type needs its own identity: `Runtime::agent_as(\"other-id\", ...)` or `RuntimeHandle::spawn_as`")]
    IdentityInUse(String),
    /// A replicated agent and an agent that is not replicated claimed one
    /// identity (in either order): the two kinds never share one.
    #[error("identity `{identity}` is held by {holder}, and {newcomer}; the two kinds never share an identity: declare both replicated (`#[agent(replicated)]`) or give one of them another identity")]
    IdentityKind {
        /// The identity.
        identity: String,
        /// Who holds it: `replicas of a replicated agent` or `an agent that is not replicated`.
        holder: &'static str,
        /// Who asked: `this agent is not replicated` or `this agent is replicated`.
        newcomer: &'static str,
    },
    /// Two agents given to one [`crate::Runtime`] have the same identity;
    /// nothing was started.
    #[error("two agents have the identity `{identity}` ({help}); no agent was started")]
    DuplicateIdentity {
        /// The identity given twice.
        identity: String,
        /// Which agents, and what to write instead.
        help: String,
    },
    /// A direct send to an identity that no queue has.
    #[error("no agent with identity `{0}` is listening")]
    UnknownTarget(String),
    /// A queue reached its maximum length, so the message was refused.
    #[error("queue `{queue}` is full{}", .max_len.map(|n| format!(" ({n} messages)")).unwrap_or_default())]
    QueueFull {
        /// The queue's name.
        queue: String,
        /// Its maximum length, when known (the broker does not say).
        max_len: Option<usize>,
    },
    /// The agent has too many requests of this kind waiting already; try
    /// again later.
    #[error("{0}")]
    Busy(String),
    /// No behaviour of the agent has this name.
    #[error("agent `{agent}` has no behaviour `{behaviour}` (it has: {})", .known.join(", "))]
    UnknownBehaviour {
        /// The agent's identity.
        agent: String,
        /// The name that was asked for.
        behaviour: String,
        /// The behaviours the agent has.
        known: Vec<String>,
    },
    /// A payload could not be encoded into JSON.
    #[error("cannot encode a `{type_name}` message: {source}")]
    Encode {
        /// The message type.
        type_name: String,
        /// What serde said.
        source: serde_json::Error,
    },
    /// The agent has stopped, so it cannot do this any more.
    #[error("agent `{0}` is stopped")]
    AgentStopped(String),
    /// `MUNGGOGGO_URL` or another setting is not usable.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The configuration file cannot be read or parsed.
    #[error("configuration file {}: {reason}", .path.display())]
    ConfigFile {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Agents' configurations are invalid, so no agent was started: one
    /// entry per agent.
    #[error("invalid agent configuration, no agent started: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    BadConfig(Vec<crate::config::ConfigError>),
    /// An agent type of the registry cannot be started by name.
    #[error("agent type `{0}` has no constructor: derive `Default` or add `#[agent(new = path::to::fn)]`")]
    NoConstructor(String),
    /// No agent type of this name is compiled into the binary.
    #[error("no agent type `{name}` is registered (known: {})", .known.join(", "))]
    UnknownAgentType {
        /// The name that was asked for.
        name: String,
        /// The registered agent types.
        known: Vec<String>,
    },
    /// The agent's setup failed, so it did not start.
    #[error("setup of agent `{agent}` failed: {source}")]
    Setup {
        /// The agent's identity.
        agent: String,
        /// The error setup returned.
        source: BoxError,
    },
    /// A call got no reply in time.
    #[error("no reply from `{target}` within {timeout:?}")]
    Timeout {
        /// Who was called.
        target: String,
        /// How long the caller waited.
        timeout: Duration,
    },
    /// The broker did not confirm a message in time (the connection is
    /// down or the broker is overloaded); it may or may not have arrived.
    #[error("no confirm from the broker for a message to `{target}` within {timeout:?}")]
    SendTimeout {
        /// Where the message went: an identity, `admin` or a topic.
        target: String,
        /// How long the sender waited.
        timeout: Duration,
    },
    /// The called agent answered with an error.
    #[error("`{target}` answered with an error: {error}")]
    Remote {
        /// Who was called.
        target: String,
        /// What it said.
        error: String,
        /// What kind of error it is, when the reply says so (a call of an
        /// `#[rpc]` method of a munggoggo for Rust agent); `None` for
        /// system requests and munggoggo 0.4 agents.
        code: Option<ErrorCode>,
    },
    /// A handler called an `#[rpc]` method of its own agent, which would
    /// wait for itself.
    #[error("agent `{0}` cannot call its own `#[rpc]` methods from a handler; call the method directly")]
    SelfCall(String),
    /// A reply could not be understood.
    #[error("malformed reply from `{target}`: {reason}")]
    BadReply {
        /// Who answered.
        target: String,
        /// What was wrong with it.
        reason: String,
    },
    /// A call of a method munggoggo 0.4 agents expose (aio-pika's RPC
    /// pattern) failed before any method ran: no agent exposes it, the
    /// parameters are not named, or a pickle body cannot be read.
    #[error("exposed method `{method}`: {reason}")]
    Exposed {
        /// The method called.
        method: String,
        /// What went wrong.
        reason: String,
    },
    /// The message bus failed.
    #[error("bus error: {reason}{}", cause(.source))]
    Bus {
        /// What failed, naming the queue, agent or message involved.
        reason: String,
        /// The underlying error, such as a `lapin::Error` (its message
        /// ends the reason, so that logs and the CLI show it).
        #[source]
        source: Option<BoxError>,
    },
    /// The connection to the broker was lost (or could not be made).
    #[error("connection lost: {reason}{}", cause(.source))]
    ConnectionLost {
        /// What could not be done, naming the broker or agent.
        reason: String,
        /// The underlying error, such as a `lapin::Error` or an I/O error
        /// (its message ends the reason).
        #[source]
        source: Option<BoxError>,
    },
}

/// `": <source>"`, so that a message stays readable where only it is shown.
fn cause(source: &Option<BoxError>) -> String {
    source.as_ref().map(|e| format!(": {e}")).unwrap_or_default()
}

// Only the RabbitMQ bus makes these errors.
#[cfg_attr(not(feature = "amqp"), allow(dead_code))]
impl Error {
    /// [`Error::IdentityKind`] for `identity`, held by replicas when
    /// `held_by_replicas`, else by an agent that is not replicated.
    pub(crate) fn identity_kind(identity: &str, held_by_replicas: bool) -> Error {
        Error::IdentityKind {
            identity: identity.to_owned(),
            holder: if held_by_replicas {
                "replicas of a replicated agent"
            } else {
                "an agent that is not replicated"
            },
            newcomer: if held_by_replicas {
                "this agent is not replicated"
            } else {
                "this agent is replicated"
            },
        }
    }

    /// [`Error::Bus`] without an underlying error.
    pub(crate) fn bus(reason: impl Into<String>) -> Self {
        Error::Bus {
            reason: reason.into(),
            source: None,
        }
    }

    /// [`Error::ConnectionLost`] without an underlying error.
    pub(crate) fn connection_lost(reason: impl Into<String>) -> Self {
        Error::ConnectionLost {
            reason: reason.into(),
            source: None,
        }
    }
}

/// Why a call of an `#[rpc]` method failed on the callee's side.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The agent has no `#[rpc]` method of this name.
    #[error("unknown method `{method}` (methods: {})", .known.join(", "))]
    UnknownMethod {
        /// The name that was called.
        method: String,
        /// The agent's methods.
        known: Vec<String>,
    },
    /// A parameter is missing or has the wrong type.
    #[error("bad parameters: {0}")]
    BadParams(String),
    /// The method returned an error (or panicked).
    #[error("{0}")]
    Failed(String),
    /// The agent has too many calls waiting already; it was not called.
    #[error("agent `{agent}` is busy: {waiting} calls are waiting already; try again later")]
    Busy {
        /// The callee's identity.
        agent: String,
        /// How many calls wait.
        waiting: usize,
    },
}

impl CallError {
    /// The word for this kind of error in a reply's `code` field.
    pub fn code(&self) -> &'static str {
        match self {
            CallError::UnknownMethod { .. } => ErrorCode::UNKNOWN_METHOD,
            CallError::BadParams(_) => ErrorCode::BAD_PARAMS,
            CallError::Failed(_) => ErrorCode::FAILED,
            CallError::Busy { .. } => ErrorCode::BUSY,
        }
    }
}

/// What kind of error the callee of an `#[rpc]` method answered with
/// ([`Error::Remote`]), read from the `code` field of its reply rather
/// than from its text.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The agent has no method of that name.
    UnknownMethod {
        /// The agent's methods.
        known: Vec<String>,
    },
    /// A parameter is missing or has the wrong type.
    BadParams,
    /// The method returned an error or panicked.
    Failed,
    /// The agent had too many calls waiting; try again later.
    Busy,
}

impl ErrorCode {
    const UNKNOWN_METHOD: &'static str = "unknown_method";
    const BAD_PARAMS: &'static str = "bad_params";
    const FAILED: &'static str = "failed";
    const BUSY: &'static str = "busy";

    /// The word on the wire.
    pub fn word(&self) -> &'static str {
        match self {
            ErrorCode::UnknownMethod { .. } => Self::UNKNOWN_METHOD,
            ErrorCode::BadParams => Self::BAD_PARAMS,
            ErrorCode::Failed => Self::FAILED,
            ErrorCode::Busy => Self::BUSY,
        }
    }

    /// The code of a reply's `code` word (and `known` methods); `None` for
    /// a word this version does not know.
    pub(crate) fn from_word(word: &str, known: Option<Vec<String>>) -> Option<Self> {
        match word {
            Self::UNKNOWN_METHOD => Some(ErrorCode::UnknownMethod {
                known: known.unwrap_or_default(),
            }),
            Self::BAD_PARAMS => Some(ErrorCode::BadParams),
            Self::FAILED => Some(ErrorCode::Failed),
            Self::BUSY => Some(ErrorCode::Busy),
            _ => None,
        }
    }
}

impl From<BoxError> for CallError {
    fn from(e: BoxError) -> Self {
        CallError::Failed(e.to_string())
    }
}
