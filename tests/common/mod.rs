//! Shared helpers of the integration tests.
#![allow(dead_code)]

pub mod buses;
#[cfg(feature = "amqp")]
pub mod node;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;

/// A unique name for this test run, so tests can run in parallel and on a
/// shared broker.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}

/// Events that test agents report.
pub type Events = mpsc::UnboundedSender<String>;

/// Receives the next event within a generous timeout.
pub async fn next(rx: &mut mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("no event within 10 s")
        .expect("event channel closed")
}

/// Asserts that no event arrives within `wait`.
pub async fn quiet(rx: &mut mpsc::UnboundedReceiver<String>, wait: Duration) {
    if let Ok(Some(event)) = tokio::time::timeout(wait, rx.recv()).await {
        panic!("unexpected event {event:?}");
    }
}

/// Polls `condition` until it holds (10 s at most).
pub async fn eventually(what: &str, condition: impl FnMut() -> bool) {
    until(what, Duration::from_secs(10), condition).await;
}

/// Polls `condition` until it holds, within `within`.
pub async fn until(what: &str, within: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
