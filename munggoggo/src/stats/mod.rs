//! Lock-free counters under the bus (feature `metrics`): the duration
//! [`histogram`] and the process-wide [`bus`] counters that `bus/amqp`
//! updates. It imports nothing of the crate, so that the bus may use it;
//! [`crate::metrics`] reads it and encodes it for Prometheus.

pub(crate) mod bus;
pub(crate) mod histogram;
