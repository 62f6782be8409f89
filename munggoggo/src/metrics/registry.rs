//! The registry: munggoggo's metrics (the agents' and the bus's), encoded
//! for Prometheus at scrape time, beside any metrics of your own.

use std::sync::{Arc, Mutex};

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::agent::{AgentMetrics, RunKind};
use crate::stats::bus;
use crate::stats::histogram::{Histogram, BOUNDS_NANOS};

/// The `Content-Type` of [`Metrics::encode`]: Prometheus' text format 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

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
    /// process's bus metrics (see [`crate::metrics`]).
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

/// A [`Histogram`] as a Prometheus histogram in seconds.
fn histogram(h: &Histogram, mut encoder: MetricEncoder<'_>) -> std::fmt::Result {
    let counts = h.counts();
    let buckets: Vec<(f64, u64)> = counts
        .iter()
        .enumerate()
        .map(|(i, &n)| (BOUNDS_NANOS.get(i).map_or(f64::INFINITY, |&b| b as f64 / 1e9), n))
        .collect();
    let sum = h.sum_nanos() as f64 / 1e9;
    encoder.encode_histogram::<NoLabelSet>(sum, counts.iter().sum(), &buckets, None)
}

/// One labelled counter.
fn counter(encoder: &mut MetricEncoder<'_>, labels: &[(&str, &str)], n: u64) -> std::fmt::Result {
    ConstCounter::new(n).encode(encoder.encode_family(&labels)?)
}

/// One labelled gauge.
fn gauge(encoder: &mut MetricEncoder<'_>, labels: &[(&str, &str)], n: i64) -> std::fmt::Result {
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
                    histogram(&runs.duration, e.encode_family(&labels.as_slice())?)?;
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
                histogram(&runs.duration, e.encode_family(&labels.as_slice())?)?;
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
                histogram(&runs.duration, e.encode_family(&labels.as_slice())?)?;
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
            let n: usize = cores.iter().map(|c| c.buffered()).sum();
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
            let up = cores.iter().filter(|c| c.up()).count();
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
                let n = core.peers();
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
            histogram(&b.confirm, e)?;
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
