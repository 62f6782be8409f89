//! [`Shared`]: the state every handler of the dashboard reads.

use std::sync::Arc;

use crate::monitor::Monitor;
use crate::options::DashboardOptions;

/// State shared by the handlers.
pub(crate) struct Shared {
    pub(crate) monitor: Arc<Monitor>,
    pub(crate) options: DashboardOptions,
    pub(crate) bus: String,
    /// The runtime's metrics, served at `/metrics` (feature `metrics`).
    #[cfg(feature = "metrics")]
    pub(crate) metrics: Option<munggoggo::metrics::Metrics>,
}
