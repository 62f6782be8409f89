//! The bus a cost benchmark (`*-one-way-metrics`, `*-one-way-tracing`)
//! runs on.

/// Which bus a cost benchmark runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnBus {
    /// The embedded bus.
    Embedded,
    /// The broker at `MUNGGOGGO_TEST_URL` (the local one by default).
    #[cfg(feature = "amqp")]
    Amqp,
}

impl OnBus {
    /// A runtime builder on this bus.
    pub fn runtime(self) -> munggoggo::Runtime {
        match self {
            OnBus::Embedded => munggoggo::Runtime::memory(),
            #[cfg(feature = "amqp")]
            OnBus::Amqp => munggoggo::Runtime::from_url(&crate::amqp::url()).expect("URL"),
        }
    }

    /// `embedded` or `amqp`, for the figures' names.
    pub fn word(self) -> &'static str {
        match self {
            OnBus::Embedded => "embedded",
            #[cfg(feature = "amqp")]
            OnBus::Amqp => "amqp",
        }
    }
}
