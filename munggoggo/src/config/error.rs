//! [`ConfigError`]: one problem with an agent's configuration, and the
//! [`Origin`] of the offending value. Apart from the layers, so that
//! [`crate::Error`] can carry configuration errors without importing them.

use std::fmt;
use std::path::PathBuf;

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// A section of the configuration file.
    File {
        /// The file.
        path: PathBuf,
        /// The section (the identity).
        section: String,
    },
    /// An environment variable.
    Env {
        /// The variable's name.
        var: String,
    },
    /// Set in code.
    Code,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, section } => write!(f, "{}, section [{section}]", path.display()),
            Origin::Env { var } => write!(f, "environment variable {var}"),
            Origin::Code => f.write_str("code"),
        }
    }
}

/// One problem with an agent's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfigError {
    /// The agent's identity.
    pub identity: String,
    /// The agent's type.
    pub agent_type: &'static str,
    /// The field, dotted for nested fields (`db.path`); `None` for the whole.
    pub field: Option<String>,
    /// What is wrong and what was expected.
    pub problem: String,
    /// Where the offending value came from (`None` for a missing value).
    pub origin: Option<Box<Origin>>,
    /// The configuration file, when one was given.
    pub file: Option<PathBuf>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "agent `{}` ({})", self.identity, self.agent_type)?;
        if let Some(field) = &self.field {
            write!(f, ", field `{field}`")?;
        }
        write!(f, ": {}", self.problem)?;
        match (&self.origin, &self.file) {
            (Some(origin), _) => write!(f, " (from {origin})"),
            (None, Some(file)) => write!(f, " (config file {})", file.display()),
            (None, None) => write!(f, " (no config file given)"),
        }
    }
}
