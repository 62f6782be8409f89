//! A histogram of durations that takes an observation without a lock:
//! fixed buckets of atomic counters and the sum in whole nanoseconds, so
//! that timing every handler run costs a few relaxed atomic adds. Its
//! buckets can also be read back, for the quantiles the dashboard shows.
//! [`crate::metrics`] writes it in Prometheus' format.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The upper bounds of the buckets, in nanoseconds (10 µs to 10 s, in
/// 1-2.5-5 steps); a last bucket takes the rest (`+Inf`).
pub(crate) const BOUNDS_NANOS: [u64; 19] = [
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// How many buckets a duration histogram has: one per bound of
/// `metrics::bucket_bounds()` (10 µs to 10 s, in 1-2.5-5 steps) and one for
/// longer runs. The length of [`BehaviourDescription::durations`].
///
/// [`BehaviourDescription::durations`]: crate::BehaviourDescription::durations
pub const BUCKETS: usize = BOUNDS_NANOS.len() + 1;

/// Durations counted into [`BOUNDS_NANOS`] (not cumulative: each
/// observation goes into one bucket; the exposition adds them up).
#[derive(Debug, Default)]
pub(crate) struct Histogram {
    buckets: [AtomicU64; BUCKETS],
    sum_nanos: AtomicU64,
}

impl Histogram {
    /// Counts one duration.
    pub(crate) fn observe(&self, d: Duration) {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let i = BOUNDS_NANOS
            .iter()
            .position(|&b| nanos <= b)
            .unwrap_or(BOUNDS_NANOS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// The count of each bucket now.
    pub(crate) fn counts(&self) -> [u64; BUCKETS] {
        std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed))
    }

    /// How many durations were counted.
    #[cfg(test)]
    pub(crate) fn count(&self) -> u64 {
        self.counts().iter().sum()
    }

    /// The sum of the durations counted, in nanoseconds.
    pub(crate) fn sum_nanos(&self) -> u64 {
        self.sum_nanos.load(Ordering::Relaxed)
    }
}

/// The `q` quantile (0 to 1) of bucket counts, in seconds, interpolated
/// linearly inside its bucket as Prometheus' `histogram_quantile` does;
/// `None` without observations. A quantile in the `+Inf` bucket is given
/// as the largest finite bound.
pub fn quantile(counts: &[u64], q: f64) -> Option<f64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * total as f64;
    let mut below = 0u64;
    for (i, &n) in counts.iter().enumerate() {
        if n > 0 && (below + n) as f64 >= rank {
            let Some(&upper) = BOUNDS_NANOS.get(i) else {
                return Some(BOUNDS_NANOS[BOUNDS_NANOS.len() - 1] as f64 / 1e9);
            };
            let lower = if i == 0 { 0 } else { BOUNDS_NANOS[i - 1] };
            let within = (rank - below as f64) / n as f64;
            return Some((lower as f64 + (upper - lower) as f64 * within) / 1e9);
        }
        below += n;
    }
    Some(BOUNDS_NANOS[BOUNDS_NANOS.len() - 1] as f64 / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_their_bucket_and_the_quantiles_follow() {
        let h = Histogram::default();
        for _ in 0..99 {
            h.observe(Duration::from_micros(20)); // bucket 25 µs
        }
        h.observe(Duration::from_millis(3)); // bucket 5 ms
        assert_eq!(h.count(), 100);
        let counts = h.counts();
        assert_eq!(counts[1], 99);
        assert_eq!(counts[8], 1);
        let p50 = quantile(&counts, 0.5).unwrap();
        assert!(p50 > 10e-6 && p50 <= 25e-6, "{p50}");
        let p100 = quantile(&counts, 1.0).unwrap();
        assert!(p100 > 2.5e-3 && p100 <= 5e-3, "{p100}");
        assert_eq!(quantile(&[0; BUCKETS], 0.5), None);
    }

    #[test]
    fn a_duration_past_the_last_bound_counts_in_inf() {
        let h = Histogram::default();
        h.observe(Duration::from_secs(60));
        assert_eq!(h.counts()[BUCKETS - 1], 1);
        assert_eq!(quantile(&h.counts(), 0.99), Some(10.0));
    }
}
