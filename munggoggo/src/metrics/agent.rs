//! The metrics of one agent identity: counters and histograms that its
//! task, its context and its core update through the hooks below (given
//! the core's [`Slot`]), each a few relaxed atomic adds (a message type
//! also takes a short lock to find its label). The gauges read the running
//! agents through [`Live`], which the runtime's core implements: this
//! module does not know the runtime.
//!
//! Cardinality stays bounded: a series is labelled by agent identity, by
//! the method of a behaviour, handler or `#[rpc]` (known at compile time),
//! and by message type or called method only through [`Capped`], which
//! keeps the types the agent declares a handler for and the first
//! [`MAX_LABELS`] others, then counts the rest as `other`. Senders, targets,
//! correlation ids and routing keys are never labels.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use crate::agent::{AgentSpec, BehaviourKind, HandlerRoute};
use crate::message::SmolStr;
use crate::stats::histogram::Histogram;

/// Where a running agent keeps its metrics: set once, when its runtime
/// has them.
pub(crate) type Slot = OnceLock<Arc<AgentMetrics>>;

/// What the gauges read of a running agent at scrape time.
pub(crate) trait Live: Send + Sync {
    /// User deliveries it holds in memory ahead of its handlers.
    fn buffered(&self) -> usize;
    /// Whether it runs (neither stopped nor crashed).
    fn up(&self) -> bool;
    /// The peers it knows now.
    fn peers(&self) -> usize;
}

/// Message types (or called methods) an agent gets its own label for,
/// beyond those it declares handlers for; the rest are `other`.
pub const MAX_LABELS: usize = 32;

/// The label of the values past [`MAX_LABELS`] (and of longer than
/// [`MAX_LABEL_LEN`] bytes).
pub const OTHER: &str = "other";

/// The longest label value kept as it is.
pub const MAX_LABEL_LEN: usize = 64;

/// Values of one label, capped (see the module's documentation).
#[derive(Debug)]
pub(crate) struct Capped<T> {
    entries: Mutex<Vec<(SmolStr, Arc<T>)>>,
    other: Arc<T>,
}

impl<T: Default> Capped<T> {
    fn new(declared: impl IntoIterator<Item = &'static str>) -> Self {
        let mut entries: Vec<(SmolStr, Arc<T>)> = Vec::new();
        for key in declared {
            if !entries.iter().any(|(k, _)| k == key) {
                entries.push((SmolStr::new_static(key), Arc::default()));
            }
        }
        Capped {
            entries: Mutex::new(entries),
            other: Arc::default(),
        }
    }

    /// Runs `f` on the entry of `key` (made if there is room, else `other`).
    pub(crate) fn with<R>(&self, key: &str, f: impl FnOnce(&T) -> R) -> R {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, t)) = entries.iter().find(|(k, _)| k == key) {
            return f(t);
        }
        if entries.len() < MAX_LABELS && key.len() <= MAX_LABEL_LEN && key != OTHER {
            let t = Arc::<T>::default();
            let r = f(&t);
            entries.push((SmolStr::new(key), t));
            return r;
        }
        drop(entries);
        f(&self.other)
    }

    /// The entries with their label values, `other` last.
    pub(crate) fn snapshot(&self) -> Vec<(SmolStr, Arc<T>)> {
        let mut all = self.entries.lock().unwrap_or_else(|e| e.into_inner()).clone();
        all.push((SmolStr::new_static(OTHER), Arc::clone(&self.other)));
        all
    }
}

/// Counts of one message type.
#[derive(Debug, Default)]
pub(crate) struct TypeCounts {
    pub(crate) received: AtomicU64,
    pub(crate) sent: AtomicU64,
}

/// Runs of one behaviour, handler or `#[rpc]` method.
#[derive(Debug, Default)]
pub(crate) struct Runs {
    pub(crate) duration: Histogram,
    pub(crate) errors: AtomicU64,
}

/// What a behaviour index is, for the metric family its runs go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunKind {
    /// An `#[on_message]` handler.
    Handler,
    /// A `#[behaviour]` (periodic, oneshot, delay, cyclic).
    Behaviour,
}

/// The metrics of one agent identity.
#[derive(Debug)]
pub(crate) struct AgentMetrics {
    pub(crate) identity: SmolStr,
    pub(crate) spec: &'static AgentSpec,
    /// By behaviour index: its method, kind and runs.
    pub(crate) behaviours: Box<[(&'static str, RunKind, Runs)]>,
    /// By `#[rpc]` index: time from taking the call to the answer.
    pub(crate) services: Box<[(&'static str, Runs)]>,
    /// By message type.
    pub(crate) types: Capped<TypeCounts>,
    /// Calls this agent made, by method: time to the reply.
    pub(crate) calls: Capped<Runs>,
    pub(crate) rejected: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
    /// The running agents with this identity (replicas, or one after a
    /// restart), for the gauges read at scrape time.
    pub(crate) cores: Mutex<Vec<Weak<dyn Live>>>,
}

impl AgentMetrics {
    pub(crate) fn new(identity: &str, spec: &'static AgentSpec) -> Self {
        let declared = spec.behaviours.iter().filter_map(|b| match b.kind {
            BehaviourKind::Handler(HandlerRoute::Type(t)) => Some(t),
            _ => None,
        });
        AgentMetrics {
            identity: identity.into(),
            spec,
            behaviours: spec
                .behaviours
                .iter()
                .map(|b| {
                    let kind = match b.kind {
                        BehaviourKind::Handler(_) => RunKind::Handler,
                        _ => RunKind::Behaviour,
                    };
                    (b.method, kind, Runs::default())
                })
                .collect(),
            services: spec.rpcs.iter().map(|r| (r.method, Runs::default())).collect(),
            types: Capped::new(declared),
            calls: Capped::new(std::iter::empty()),
            rejected: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            cores: Mutex::new(Vec::new()),
        }
    }

    /// Notes a running agent with this identity.
    pub(crate) fn watch<C: Live + 'static>(&self, core: &Arc<C>) {
        let mut cores = self.cores.lock().unwrap_or_else(|e| e.into_inner());
        cores.retain(|c| c.strong_count() > 0);
        let core: Weak<C> = Arc::downgrade(core);
        cores.push(core);
    }

    /// The running agents with this identity.
    pub(crate) fn live(&self) -> Vec<Arc<dyn Live>> {
        let cores = self.cores.lock().unwrap_or_else(|e| e.into_inner());
        cores.iter().filter_map(Weak::upgrade).collect()
    }
}

// The hooks, called from the runtime where the feature is on with the
// agent core's `Slot`. Each does nothing for an agent whose runtime has no
// metrics.

/// A user message reached the agent's task.
#[inline]
pub(crate) fn received(slot: &Slot, kind: &str) {
    if let Some(m) = slot.get() {
        m.types.with(kind, |t| t.received.fetch_add(1, Ordering::Relaxed));
    }
}

/// The agent published a message of this type.
#[inline]
pub(crate) fn sent(slot: &Slot, kind: Option<&str>) {
    if let Some(m) = slot.get() {
        m.types
            .with(kind.unwrap_or(OTHER), |t| t.sent.fetch_add(1, Ordering::Relaxed));
    }
}

/// The agent rejected a message; `kept` when it went to the dead letters.
#[inline]
pub(crate) fn rejected(slot: &Slot, kept: bool) {
    if let Some(m) = slot.get() {
        m.rejected.fetch_add(1, Ordering::Relaxed);
        if kept {
            m.dead_lettered.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The start of a timed run: `None` without metrics, so that an agent
/// without them does not read the clock.
#[inline]
pub(crate) fn start(slot: &Slot) -> Option<Instant> {
    slot.get().map(|_| Instant::now())
}

/// Behaviour or handler `i` ran from `started`; `ok` unless it failed.
#[inline]
pub(crate) fn ran(slot: &Slot, i: usize, started: Option<Instant>, ok: bool) {
    if let (Some(m), Some(started)) = (slot.get(), started) {
        if let Some((_, _, runs)) = m.behaviours.get(i) {
            record(runs, started.elapsed(), ok);
        }
    }
}

/// `#[rpc]` method `i` was served from `started`; `ok` unless it failed.
#[inline]
pub(crate) fn served(slot: &Slot, i: usize, started: Option<Instant>, ok: bool) {
    if let (Some(m), Some(started)) = (slot.get(), started) {
        if let Some((_, runs)) = m.services.get(i) {
            record(runs, started.elapsed(), ok);
        }
    }
}

fn record(runs: &Runs, d: Duration, ok: bool) {
    runs.duration.observe(d);
    if !ok {
        runs.errors.fetch_add(1, Ordering::Relaxed);
    }
}

/// Times a call the agent makes, from its start until dropped (whatever
/// the outcome; a failed call also counts as an error unless
/// [`CallTimer::succeeded`] was called).
#[derive(Debug)]
#[must_use]
pub(crate) struct CallTimer {
    metrics: Option<(Arc<AgentMetrics>, SmolStr, Instant)>,
    ok: bool,
}

impl CallTimer {
    /// Starts timing a call of `method`.
    pub(crate) fn start(slot: &Slot, method: &str) -> Self {
        CallTimer {
            metrics: slot
                .get()
                .map(|m| (Arc::clone(m), SmolStr::new(method), Instant::now())),
            ok: false,
        }
    }

    /// The call got a good answer.
    pub(crate) fn succeeded(&mut self) {
        self.ok = true;
    }
}

impl Drop for CallTimer {
    fn drop(&mut self) {
        if let Some((m, method, started)) = self.metrics.take() {
            let d = started.elapsed();
            m.calls.with(&method, |runs| record(runs, d, self.ok));
        }
    }
}
