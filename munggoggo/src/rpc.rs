//! Calls of `#[rpc]` methods.

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
}

impl From<crate::BoxError> for CallError {
    fn from(e: crate::BoxError) -> Self {
        CallError::Failed(e.to_string())
    }
}
