//! What went wrong, in words a person can act on, with an exit code.

use std::fmt;

/// The class of a command-line error; it picks the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The command failed: an agent answered with an error, an argument is malformed.
    Failed,
    /// The broker is unreachable or refused the connection.
    Connect,
    /// No such agent, behaviour, method or agent type.
    NotFound,
    /// No reply in time.
    Timeout,
}

impl ErrorKind {
    /// The process exit code: 1 failed, 3 connect, 4 not found, 5 timeout
    /// (2 is clap's usage error).
    pub fn code(self) -> u8 {
        match self {
            ErrorKind::Failed => 1,
            ErrorKind::Connect => 3,
            ErrorKind::NotFound => 4,
            ErrorKind::Timeout => 5,
        }
    }

    /// The name in `--json` error documents.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Failed => "failed",
            ErrorKind::Connect => "connect",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Timeout => "timeout",
        }
    }
}

/// A command-line error: one line of text, its kind, and for "not found"
/// errors the valid choices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    kind: ErrorKind,
    message: String,
    known: Vec<String>,
}

impl CliError {
    /// An error of the given kind.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        CliError {
            kind,
            message: message.into(),
            known: Vec::new(),
        }
    }

    /// A failure (exit code 1).
    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Failed, message)
    }

    /// "`what` not found", listing the valid choices (exit code 4).
    pub fn not_found(message: impl Into<String>, known: Vec<String>) -> Self {
        CliError {
            kind: ErrorKind::NotFound,
            message: message.into(),
            known,
        }
    }

    /// An unknown agent, with the peers that did answer.
    pub fn unknown_agent(agent: &str, known: Vec<String>) -> Self {
        let message = if known.is_empty() {
            format!("unknown agent `{agent}`: no agent answered the peer ping")
        } else {
            format!("unknown agent `{agent}`; known peers: {}", known.join(", "))
        };
        Self::not_found(message, known)
    }

    /// The kind of error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without the valid choices.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The valid choices of a "not found" error.
    pub fn known(&self) -> &[String] {
        &self.known
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

impl From<munggoggo::Error> for CliError {
    fn from(e: munggoggo::Error) -> Self {
        use munggoggo::Error;
        match e {
            Error::Timeout { target, timeout } => CliError::new(
                ErrorKind::Timeout,
                format!(
                    "timeout: `{target}` did not answer within {} (try a longer --timeout)",
                    humantime::format_duration(timeout)
                ),
            ),
            Error::UnknownBehaviour {
                agent,
                behaviour,
                known,
            } => CliError::not_found(
                format!(
                    "agent `{agent}` has no behaviour `{behaviour}`; it has: {}",
                    known.join(", ")
                ),
                known,
            ),
            Error::UnknownTarget(target) => CliError::unknown_agent(&target, Vec::new()),
            Error::UnknownAgentType { name, known } => CliError::not_found(
                format!(
                    "no agent type `{name}` is compiled in; known: {}",
                    known.join(", ")
                ),
                known,
            ),
            Error::ConnectionLost { reason, source } => CliError::new(
                ErrorKind::Connect,
                match source {
                    Some(source) => format!("{reason}: {source}"),
                    None => reason,
                },
            ),
            other => CliError::failed(other.to_string()),
        }
    }
}
