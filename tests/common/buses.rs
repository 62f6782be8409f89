//! Runs one test body on both buses.

use munggoggo::{Runtime, RuntimeHandle};

/// The embedded bus.
pub async fn memory() -> RuntimeHandle {
    Runtime::memory().start().await.expect("embedded bus starts")
}

/// RabbitMQ, in this test process's own vhost (see
/// [`munggoggo_test_support::broker_url`]). Fails when `CI` is set and no
/// broker answers; elsewhere the test is skipped with a message.
#[cfg(feature = "amqp")]
pub async fn amqp() -> Option<RuntimeHandle> {
    amqp_at(&without_dead_letters(
        munggoggo_test_support::broker_url_or_skip()?
    ))
    .await
}

/// The URL of this process's own vhost on the test broker, for a test that
/// [`amqp`] let run (and so made the vhost).
///
/// Dead letters are off: `munggoggo-cli/tests/dead_letters.rs` checks them in
/// a vhost of its own, where no other test's rejected messages land.
#[cfg(feature = "amqp")]
pub fn test_url() -> String {
    let url = munggoggo_test_support::broker_url().expect("the test vhost was made when the test started");
    without_dead_letters(url)
}

#[cfg(feature = "amqp")]
fn without_dead_letters(url: String) -> String {
    let joiner = if url.contains('?') { '&' } else { '?' };
    format!("{url}{joiner}dead_letters=false")
}

/// [`amqp`] at another URL.
#[cfg(feature = "amqp")]
pub async fn amqp_at(url: &str) -> Option<RuntimeHandle> {
    match Runtime::from_url(url).expect("valid URL").start().await {
        Ok(rt) => Some(rt),
        Err(e) => {
            munggoggo_test_support::skip(format_args!(
                "no RabbitMQ broker at {} ({e}); start one or set MUNGGOGGO_TEST_URL",
                munggoggo::bus::redact(url)
            ));
            None
        }
    }
}

/// Generates `memory::name` and `amqp::name` from one test body taking a
/// started `RuntimeHandle`.
#[macro_export]
macro_rules! on_both_buses {
    ($(async fn $name:ident($rt:ident) $body:block)*) => {
        mod memory {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let $rt = $crate::common::buses::memory().await;
                    $body
                    $rt.shutdown().await;
                }
            )*
        }
        #[cfg(feature = "amqp")]
        mod amqp {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some($rt) = $crate::common::buses::amqp().await else { return };
                    $body
                    $rt.shutdown().await;
                }
            )*
        }
    };
}
