//! Metrics for Prometheus (feature `metrics`): what each agent receives,
//! sends and rejects, how long its handlers, behaviours and calls take,
//! and how the bus keeps up. Switch them on per runtime with
//! [`Runtime::metrics`](crate::Runtime::metrics) (a registry you keep) or
//! [`Runtime::metrics_listener`](crate::Runtime::metrics_listener) (also a
//! small `/metrics` listener of its own); the dashboard serves its
//! runtime's at `/metrics` too. A runtime without them reads no clock and
//! counts nothing.
//!
//! Built on `prometheus-client`, the Prometheus project's own Rust client,
//! rather than the `metrics` facade with `metrics-exporter-prometheus`:
//! its dependencies are four small crates (`dtoa`, `itoa`, `parking_lot`
//! and a derive), where the exporter brings an HTTP stack (hyper), a
//! sketch library, `quanta` and a global recorder. Its
//! [`Registry`](prometheus_client::registry::Registry) also
//! takes metrics of your own, served beside munggoggo's
//! ([`Metrics::register`]).
//!
//! The series, each labelled with `agent` (its identity):
//!
//! | name | type | more labels |
//! |---|---|---|
//! | `munggoggo_messages_received_total` | counter | `type` |
//! | `munggoggo_messages_sent_total` | counter | `type` |
//! | `munggoggo_messages_rejected_total` | counter | |
//! | `munggoggo_messages_dead_lettered_total` | counter | |
//! | `munggoggo_handler_duration_seconds` | histogram | `behaviour` |
//! | `munggoggo_handler_errors_total` | counter | `behaviour` |
//! | `munggoggo_behaviour_duration_seconds` | histogram | `behaviour` |
//! | `munggoggo_behaviour_errors_total` | counter | `behaviour` |
//! | `munggoggo_rpc_service_duration_seconds` | histogram | `method` |
//! | `munggoggo_rpc_service_errors_total` | counter | `method` |
//! | `munggoggo_rpc_call_duration_seconds` | histogram | `method` |
//! | `munggoggo_rpc_call_errors_total` | counter | `method` |
//! | `munggoggo_readahead_messages` | gauge | |
//! | `munggoggo_agent_up` | gauge | |
//! | `munggoggo_peers` | gauge | |
//!
//! and, once per process, without labels: `munggoggo_publish_confirm_duration_seconds`
//! (histogram, RabbitMQ), `munggoggo_reconnects_total`,
//! `munggoggo_blocked_seconds_total` and `munggoggo_connections_blocked`.
//!
//! Cardinality is bounded: `behaviour` and `method` of the agent's own
//! are names in its code; a message `type` and a called `method` get a
//! label of their own only for the types the agent has handlers for and
//! the first [`MAX_LABELS`] others (no longer than [`MAX_LABEL_LEN`]
//! bytes), the rest count as [`OTHER`]. Senders, targets, routing keys and
//! correlation ids are never labels.

mod agent;
mod listener;
mod registry;

pub use crate::stats::histogram::quantile;
pub(crate) use agent::{ran, received, rejected, sent, served, start};
pub(crate) use agent::{CallTimer, Live, Slot};
pub use agent::{MAX_LABELS, MAX_LABEL_LEN, OTHER};
pub use listener::MetricsListener;
/// The Prometheus client the registry is of, for metrics of your own.
pub use prometheus_client;
pub use registry::{Metrics, CONTENT_TYPE};

/// The upper bounds of the duration histograms' buckets, in seconds (the
/// last bucket, `+Inf`, takes the rest).
pub fn bucket_bounds() -> Vec<f64> {
    crate::stats::histogram::BOUNDS_NANOS
        .iter()
        .map(|&n| n as f64 / 1e9)
        .collect()
}
