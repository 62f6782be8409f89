//! [`DashboardOptions`]: how the dashboard behaves.

use std::time::Duration;

/// The environment variable holding the dashboard's bearer token.
pub const TOKEN_VAR: &str = "MUNGGOGGO_DASHBOARD_TOKEN";

/// How the dashboard behaves.
#[derive(Clone)]
#[non_exhaustive]
pub struct DashboardOptions {
    /// The bearer token every changing endpoint wants; `None`: no token.
    pub token: Option<String>,
    /// Time between two looks at the bus.
    pub refresh: Duration,
    /// How long calls of agents may take.
    pub call_timeout: Duration,
    /// The largest request body taken, in bytes.
    pub body_limit: usize,
}

impl std::fmt::Debug for DashboardOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DashboardOptions")
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("refresh", &self.refresh)
            .field("call_timeout", &self.call_timeout)
            .field("body_limit", &self.body_limit)
            .finish()
    }
}

impl Default for DashboardOptions {
    fn default() -> Self {
        DashboardOptions {
            token: None,
            refresh: Duration::from_secs(1),
            call_timeout: Duration::from_secs(3),
            body_limit: 64 * 1024,
        }
    }
}

impl DashboardOptions {
    /// The defaults, with the token of `MUNGGOGGO_DASHBOARD_TOKEN` if set.
    pub fn from_env() -> Self {
        DashboardOptions {
            token: std::env::var(TOKEN_VAR).ok().filter(|t| !t.is_empty()),
            ..Self::default()
        }
    }

    /// With this bearer token (`None` or empty: none).
    #[must_use]
    pub fn token(mut self, token: Option<String>) -> Self {
        self.token = token.filter(|t| !t.is_empty());
        self
    }

    /// With this time between two looks at the bus.
    #[must_use]
    pub fn refresh(mut self, refresh: Duration) -> Self {
        self.refresh = refresh;
        self
    }

    /// With this timeout for calls of agents.
    #[must_use]
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// With this largest request body, in bytes.
    #[must_use]
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }
}
