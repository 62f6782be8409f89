//! The bus's metrics, one set per process (a process has its buses, not
//! its agents, in common with the broker): publish-confirm latency,
//! reconnects and time blocked by the broker. They count once any
//! [`Metrics`](crate::metrics::Metrics) exists (it calls [`enable`]), and
//! every registry shows them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use super::histogram::Histogram;

/// The process's bus metrics.
#[derive(Debug, Default)]
pub(crate) struct BusMetrics {
    /// Publish to the broker's confirm.
    pub(crate) confirm: Histogram,
    /// Connections recovered after a loss.
    pub(crate) reconnects: AtomicU64,
    /// Time connections spent blocked by a resource alarm, in nanoseconds,
    /// counted when they are unblocked.
    pub(crate) blocked_nanos: AtomicU64,
    /// Connections blocked now.
    pub(crate) blocked_now: AtomicU64,
}

static BUS: OnceLock<BusMetrics> = OnceLock::new();

/// Switches the bus metrics on (for every bus of the process).
pub(crate) fn enable() -> &'static BusMetrics {
    BUS.get_or_init(BusMetrics::default)
}

/// The bus metrics, once switched on.
pub(crate) fn get() -> Option<&'static BusMetrics> {
    BUS.get()
}

/// The start of a publish, when its confirm is to be timed.
#[inline]
#[cfg_attr(not(feature = "amqp"), allow(dead_code))] // the hooks are in bus/amqp
pub(crate) fn publish_started() -> Option<Instant> {
    BUS.get().map(|_| Instant::now())
}

/// A publish started at `started` was confirmed (or refused) by the broker.
#[inline]
#[cfg_attr(not(feature = "amqp"), allow(dead_code))] // the hooks are in bus/amqp
pub(crate) fn confirmed(started: Option<Instant>) {
    if let (Some(m), Some(started)) = (BUS.get(), started) {
        m.confirm.observe(started.elapsed());
    }
}

/// A lost connection is back.
#[cfg_attr(not(feature = "amqp"), allow(dead_code))] // the hooks are in bus/amqp
pub(crate) fn reconnected() {
    if let Some(m) = BUS.get() {
        m.reconnects.fetch_add(1, Ordering::Relaxed);
    }
}

/// The broker blocked a connection; returns when, for [`unblocked`].
#[cfg_attr(not(feature = "amqp"), allow(dead_code))] // the hooks are in bus/amqp
pub(crate) fn blocked() -> Instant {
    if let Some(m) = BUS.get() {
        m.blocked_now.fetch_add(1, Ordering::Relaxed);
    }
    Instant::now()
}

/// The broker unblocked a connection blocked `since`.
#[cfg_attr(not(feature = "amqp"), allow(dead_code))] // the hooks are in bus/amqp
pub(crate) fn unblocked(since: Instant) {
    if let Some(m) = BUS.get() {
        let nanos = u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX);
        m.blocked_nanos.fetch_add(nanos, Ordering::Relaxed);
        let _ = m
            .blocked_now
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }
}
