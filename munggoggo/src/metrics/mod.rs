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
//! sketch library, `quanta` and a global recorder. Its [`Registry`] also
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

use std::sync::{Arc, Mutex};

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

mod agent;
pub(crate) mod bus;
mod histogram;
mod listener;

pub(crate) use agent::{ran, received, rejected, sent, served, start};
pub(crate) use agent::{AgentMetrics, CallTimer};
pub use agent::{MAX_LABELS, MAX_LABEL_LEN, OTHER};
pub use histogram::quantile;
pub use listener::MetricsListener;
/// The Prometheus client the registry is of, for metrics of your own.
pub use prometheus_client;

use agent::RunKind;

/// The `Content-Type` of [`Metrics::encode`]: Prometheus' text format 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The upper bounds of the duration histograms' buckets, in seconds (the
/// last bucket, `+Inf`, takes the rest).
pub fn bucket_bounds() -> Vec<f64> {
    histogram::BOUNDS_NANOS.iter().map(|&n| n as f64 / 1e9).collect()
}

/// A registry of munggoggo's metrics (and of any you add). Cheap to clone;
/// clones share it. Several runtimes may share one.
#[derive(Clone)]
pub struct Metrics {
    shared: Arc<Shared>,
}

struct Shared {
    agents: Agents,
    registry: Mutex<Registry>,
}

/// The agents' metrics, in the order they first started.
#[derive(Debug, Clone, Default)]
struct Agents(Arc<Mutex<Vec<Arc<AgentMetrics>>>>);

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let agents = self
            .shared
            .agents
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len();
        f.debug_struct("Metrics").field("agents", &agents).finish()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A new registry with munggoggo's metrics. Also switches on the
    /// process's bus metrics (see the module's documentation).
    pub fn new() -> Self {
        bus::enable();
        let agents = Agents::default();
        let mut registry = Registry::default();
        registry.register_collector(Box::new(agents.clone()));
        Metrics {
            shared: Arc::new(Shared {
                agents,
                registry: Mutex::new(registry),
            }),
        }
    }

    /// Adds metrics of your own to the registry, served beside munggoggo's.
    ///
    /// ```
    /// use munggoggo::metrics::{prometheus_client::metrics::counter::Counter, Metrics};
    /// let metrics = Metrics::new();
    /// let orders: Counter = Counter::default();
    /// metrics.register(|registry| registry.register("shop_orders", "Orders taken", orders.clone()));
    /// orders.inc();
    /// assert!(metrics.encode().contains("shop_orders_total 1"));
    /// ```
    pub fn register(&self, f: impl FnOnce(&mut Registry)) {
        f(&mut self.shared.registry.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Every metric in Prometheus' text format ([`CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let mut text = String::new();
        let registry = self.shared.registry.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut text, &registry) {
            tracing::warn!(error = %e, "cannot encode the metrics");
        }
        text
    }

    /// Serves [`Metrics::encode`] at `GET /metrics` on `addr` (port 0:
    /// a free one) until the listener is dropped.
    pub async fn listen(&self, addr: std::net::SocketAddr) -> crate::Result<MetricsListener> {
        MetricsListener::bind(self.clone(), addr).await
    }

    /// The metrics of an agent with this identity: the ones it had before
    /// (a restart, a replica) when it is of the same type.
    pub(crate) fn agent(&self, identity: &str, spec: &'static crate::agent::AgentSpec) -> Arc<AgentMetrics> {
        let mut agents = self.shared.agents.0.lock().unwrap_or_else(|e| e.into_inner());
        match agents.iter().position(|a| a.identity == identity) {
            Some(i) if std::ptr::eq(agents[i].spec, spec) => Arc::clone(&agents[i]),
            found => {
                let fresh = Arc::new(AgentMetrics::new(identity, spec));
                match found {
                    Some(i) => agents[i] = Arc::clone(&fresh),
                    None => agents.push(Arc::clone(&fresh)),
                }
                fresh
            }
        }
    }
}

/// One labelled counter.
fn counter(
    encoder: &mut prometheus_client::encoding::MetricEncoder<'_>,
    labels: &[(&str, &str)],
    n: u64,
) -> std::fmt::Result {
    ConstCounter::new(n).encode(encoder.encode_family(&labels)?)
}

/// One labelled gauge.
fn gauge(
    encoder: &mut prometheus_client::encoding::MetricEncoder<'_>,
    labels: &[(&str, &str)],
    n: i64,
) -> std::fmt::Result {
    ConstGauge::new(n).encode(encoder.encode_family(&labels)?)
}

impl prometheus_client::collector::Collector for Agents {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> std::fmt::Result {
        use std::sync::atomic::Ordering::Relaxed;
        let agents: Vec<Arc<AgentMetrics>> = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();

        let mut e = encoder.encode_descriptor(
            "munggoggo_messages_received",
            "User messages that reached the agent, by message type",
            None,
            MetricType::Counter,
        )?;
        for a in &agents {
            for (kind, t) in a.types.snapshot() {
                counter(
                    &mut e,
                    &[("agent", a.identity.as_str()), ("type", kind.as_str())],
                    t.received.load(Relaxed),
                )?;
            }
        }
        let mut e = encoder.encode_descriptor(
            "munggoggo_messages_sent",
            "Messages the agent published (sends, broadcasts, publications, replies), by message type",
            None,
            MetricType::Counter,
        )?;
        for a in &agents {
            for (kind, t) in a.types.snapshot() {
                counter(
                    &mut e,
                    &[("agent", a.identity.as_str()), ("type", kind.as_str())],
                    t.sent.load(Relaxed),
                )?;
            }
        }
        let mut e = encoder.encode_descriptor(
            "munggoggo_messages_rejected",
            "Messages the agent rejected (no handler, bad body, handler failed)",
            None,
            MetricType::Counter,
        )?;
        for a in &agents {
            counter(
                &mut e,
                &[("agent", a.identity.as_str())],
                a.rejected.load(Relaxed),
            )?;
        }
        let mut e = encoder.encode_descriptor(
            "munggoggo_messages_dead_lettered",
            "Rejected messages kept in the dead-letter queue (RabbitMQ)",
            None,
            MetricType::Counter,
        )?;
        for a in &agents {
            counter(
                &mut e,
                &[("agent", a.identity.as_str())],
                a.dead_lettered.load(Relaxed),
            )?;
        }

        for (kind, what) in [(RunKind::Handler, "handler"), (RunKind::Behaviour, "behaviour")] {
            let name = format!("munggoggo_{what}_duration_seconds");
            let help = format!("Time of one {what} run");
            let mut e = encoder.encode_descriptor(&name, &help, None, MetricType::Histogram)?;
            for a in &agents {
                for (method, _, runs) in a.behaviours.iter().filter(|(_, k, _)| *k == kind) {
                    let labels = [("agent", a.identity.as_str()), ("behaviour", *method)];
                    runs.duration.encode(e.encode_family(&labels.as_slice())?)?;
                }
            }
            let name = format!("munggoggo_{what}_errors");
            let help = format!("Failed {what} runs (errors and panics)");
            let mut e = encoder.encode_descriptor(&name, &help, None, MetricType::Counter)?;
            for a in &agents {
                for (method, _, runs) in a.behaviours.iter().filter(|(_, k, _)| *k == kind) {
                    counter(
                        &mut e,
                        &[("agent", a.identity.as_str()), ("behaviour", *method)],
                        runs.errors.load(Relaxed),
                    )?;
                }
            }
        }

        let mut e = encoder.encode_descriptor(
            "munggoggo_rpc_service_duration_seconds",
            "Time from taking an #[rpc] call to its answer, on the callee's side",
            None,
            MetricType::Histogram,
        )?;
        for a in &agents {
            for (method, runs) in a.services.iter() {
                let labels = [("agent", a.identity.as_str()), ("method", *method)];
                runs.duration.encode(e.encode_family(&labels.as_slice())?)?;
            }
        }
        let mut e = encoder.encode_descriptor(
            "munggoggo_rpc_service_errors",
            "#[rpc] calls answered with an error, on the callee's side",
            None,
            MetricType::Counter,
        )?;
        for a in &agents {
            for (method, runs) in a.services.iter() {
                counter(
                    &mut e,
                    &[("agent", a.identity.as_str()), ("method", *method)],
                    runs.errors.load(Relaxed),
                )?;
            }
        }
        let calls: Vec<_> = agents.iter().map(|a| (a, a.calls.snapshot())).collect();
        let mut e = encoder.encode_descriptor(
            "munggoggo_rpc_call_duration_seconds",
            "Time from making a call to its reply, on the caller's side",
            None,
            MetricType::Histogram,
        )?;
        for (a, methods) in &calls {
            for (method, runs) in methods {
                let labels = [("agent", a.identity.as_str()), ("method", method.as_str())];
                runs.duration.encode(e.encode_family(&labels.as_slice())?)?;
            }
        }
        let mut e = encoder.encode_descriptor(
            "munggoggo_rpc_call_errors",
            "Calls that failed (error answer, timeout, no such agent), on the caller's side",
            None,
            MetricType::Counter,
        )?;
        for (a, methods) in &calls {
            for (method, runs) in methods {
                counter(
                    &mut e,
                    &[("agent", a.identity.as_str()), ("method", method.as_str())],
                    runs.errors.load(Relaxed),
                )?;
            }
        }

        let live: Vec<_> = agents.iter().map(|a| (a, a.live())).collect();
        let mut e = encoder.encode_descriptor(
            "munggoggo_readahead_messages",
            "User deliveries the agent holds in memory ahead of its handlers",
            None,
            MetricType::Gauge,
        )?;
        for (a, cores) in &live {
            let n: usize = cores.iter().map(|c| c.buffered.load(Relaxed)).sum();
            gauge(
                &mut e,
                &[("agent", a.identity.as_str())],
                i64::try_from(n).unwrap_or(i64::MAX),
            )?;
        }
        let mut e = encoder.encode_descriptor(
            "munggoggo_agent_up",
            "Running instances of the agent in this process (0: stopped or crashed)",
            None,
            MetricType::Gauge,
        )?;
        for (a, cores) in &live {
            let up = cores
                .iter()
                .filter(|c| !matches!(c.state.get(), crate::State::Shutdown | crate::State::Crashed))
                .count();
            gauge(
                &mut e,
                &[("agent", a.identity.as_str())],
                i64::try_from(up).unwrap_or(i64::MAX),
            )?;
        }
        let mut e = encoder.encode_descriptor(
            "munggoggo_peers",
            "Peers the agent knows: its runtime's agents and the remote agents heard from",
            None,
            MetricType::Gauge,
        )?;
        for (a, cores) in &live {
            if let Some(core) = cores.first() {
                let n = core.peers.peers(crate::peers::DEFAULT_PEER_TTL).len();
                gauge(
                    &mut e,
                    &[("agent", a.identity.as_str())],
                    i64::try_from(n).unwrap_or(i64::MAX),
                )?;
            }
        }

        if let Some(b) = bus::get() {
            let e = encoder.encode_descriptor(
                "munggoggo_publish_confirm_duration_seconds",
                "Time from a publish to the broker's confirm (RabbitMQ)",
                None,
                MetricType::Histogram,
            )?;
            b.confirm.encode(e)?;
            let e = encoder.encode_descriptor(
                "munggoggo_reconnects",
                "Connections to the broker recovered after a loss",
                None,
                MetricType::Counter,
            )?;
            ConstCounter::new(b.reconnects.load(Relaxed)).encode(e)?;
            let e = encoder.encode_descriptor(
                "munggoggo_blocked_seconds",
                "Time connections were blocked by a broker resource alarm (counted when unblocked)",
                None,
                MetricType::Counter,
            )?;
            ConstCounter::new(b.blocked_nanos.load(Relaxed) as f64 / 1e9).encode(e)?;
            let e = encoder.encode_descriptor(
                "munggoggo_connections_blocked",
                "Connections blocked by the broker now",
                None,
                MetricType::Gauge,
            )?;
            ConstGauge::new(i64::try_from(b.blocked_now.load(Relaxed)).unwrap_or(i64::MAX)).encode(e)?;
        }
        Ok(())
    }
}
