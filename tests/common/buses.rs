//! Runs one test body on both buses.

use munggoggo::{Runtime, RuntimeHandle};

/// The embedded bus.
pub async fn memory() -> RuntimeHandle {
    Runtime::memory().start().await.expect("embedded bus starts")
}

/// RabbitMQ at `MUNGGOGGO_TEST_URL` (default: the local broker). Fails when
/// `CI` is set and no broker answers; elsewhere the test is skipped with a
/// message.
#[cfg(feature = "amqp")]
pub async fn amqp() -> Option<RuntimeHandle> {
    amqp_at(&test_url()).await
}

/// The broker URL of the tests: `MUNGGOGGO_TEST_URL`, or the local broker.
#[cfg(feature = "amqp")]
///
/// Dead letters are off: the tests share the broker's default vhost, whose
/// dead-letter queue they would fill; `munggoggo/tests/dead_letters.rs`
/// checks them in a vhost of its own.
pub fn test_url() -> String {
    let url =
        std::env::var("MUNGGOGGO_TEST_URL").unwrap_or_else(|_| munggoggo::runtime::LOCAL_BROKER.to_owned());
    let joiner = if url.contains('?') { '&' } else { '?' };
    format!("{url}{joiner}dead_letters=false")
}

/// [`amqp`] at another URL.
#[cfg(feature = "amqp")]
pub async fn amqp_at(url: &str) -> Option<RuntimeHandle> {
    let url = url.to_owned();
    match Runtime::from_url(&url).expect("valid URL").start().await {
        Ok(rt) => Some(rt),
        Err(e) if std::env::var_os("CI").is_none() => {
            skip_notice(&url, &e);
            None
        }
        Err(e) => panic!(
            "CI is set but RabbitMQ at {} is unreachable: {e}",
            munggoggo::bus::redact(&url)
        ),
    }
}

/// Says that a broker test is skipped, straight to stderr: libtest
/// captures `eprintln!`, which would show it only with `--nocapture`, and
/// the test would look like a plain pass.
#[cfg(feature = "amqp")]
pub fn skip_notice(url: &str, e: &dyn std::fmt::Display) {
    use std::io::Write;
    let test = std::thread::current()
        .name()
        .unwrap_or("a broker test")
        .to_owned();
    let _ = writeln!(
        std::io::stderr().lock(),
        "SKIPPED {test}: no RabbitMQ broker at {} ({e}); start one or set MUNGGOGGO_TEST_URL (with CI set, this fails)",
        munggoggo::bus::redact(url)
    );
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
