//! Lock-free counters under the bus (feature `metrics`): the duration
//! [`histogram`] (whose quantiles the dashboard also reads) and the
//! process-wide `bus` counters that `bus/amqp`
//! updates. It imports nothing of the crate, so that the bus may use it;
//! [`crate::metrics`] reads it and encodes it for Prometheus.

#[cfg(feature = "metrics")]
pub(crate) mod bus;
// The dashboard (feature `web`) reads bucket counts that agents report.
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
pub(crate) mod histogram;
