//! Lock-free counters under the bus (feature `metrics`): the duration
//! [`histogram`] (whose bucket layout and quantiles are public, for the
//! bucket counts agents report in their descriptions) and the
//! process-wide `bus` counters that `bus/amqp`
//! updates. It imports nothing of the crate, so that the bus may use it;
//! [`crate::metrics`] reads it and encodes it for Prometheus.

#[cfg(feature = "metrics")]
pub(crate) mod bus;
// Without `metrics` only the layout and `quantile` are used (by readers
// of the bucket counts other agents report).
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
pub(crate) mod histogram;
