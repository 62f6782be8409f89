//! What the tests with Python peers share: the broker URL, unique names,
//! skipping (or failing in CI) without a prerequisite, running a script.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use munggoggo::{Runtime, RuntimeHandle, WireMode};
use tokio::sync::mpsc;

/// How long a script may take for one step; only a bound for a hung peer.
pub const STEP: Duration = Duration::from_secs(60);

/// The broker URL of the tests: a vhost of this process's own (see
/// `munggoggo-test-support`), made by the first [`broker_in`].
pub fn url() -> String {
    munggoggo_test_support::broker_url().expect("the test vhost was made when the test started")
}

pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Skips (outside CI) or fails (in CI) for a missing prerequisite.
pub fn missing(what: &str) -> Option<std::convert::Infallible> {
    munggoggo_test_support::skip(what);
    None
}

/// The venv's Python, with aio-pika importable.
pub fn python() -> Option<PathBuf> {
    let venv = std::env::var_os("MUNGGOGGO_PY_VENV")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/munggoggo/py-venv")))?;
    let python = venv.join("bin/python");
    let ok = Command::new(&python)
        .args(["-c", "import aio_pika, dataclasses_json"])
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(python);
    }
    missing(&format!(
        "no Python venv with aio-pika at {} (`.ci/run` builds it; or set MUNGGOGGO_PY_VENV)",
        venv.display()
    ))
    .map(|never| match never {})
}

pub async fn broker() -> Option<RuntimeHandle> {
    broker_in(WireMode::Compact).await
}

pub async fn broker_in(wire: WireMode) -> Option<RuntimeHandle> {
    let url = munggoggo_test_support::broker_url_or_skip()?;
    broker_at(&url, wire).await
}

/// [`broker_in`] at another URL.
pub async fn broker_at(url: &str, wire: WireMode) -> Option<RuntimeHandle> {
    match Runtime::from_url(url)
        .expect("valid URL")
        .wire_mode(wire)
        .start()
        .await
    {
        Ok(rt) => Some(rt),
        Err(e) => missing(&format!(
            "no RabbitMQ broker at {}: {e}",
            munggoggo::bus::redact(url)
        ))
        .map(|never| match never {}),
    }
}

pub fn script(name: &str) -> String {
    format!("{}/../tests/py/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A running script: its stdout lines arrive on a channel.
pub struct Script {
    pub child: Child,
    lines: mpsc::UnboundedReceiver<String>,
}

impl Script {
    pub fn start(program: &Path, args: &[&str]) -> Script {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Script { child, lines }
    }

    pub async fn line(&mut self) -> String {
        match tokio::time::timeout(STEP, self.lines.recv()).await {
            Ok(Some(line)) => line,
            Ok(None) => panic!("the script ended early: {:?}", self.child.wait()),
            Err(_) => panic!("no output from the script within {STEP:?}"),
        }
    }

    /// Closes its stdin and waits for it to exit successfully.
    pub async fn finish(mut self) -> Vec<String> {
        drop(self.child.stdin.take());
        let mut rest = Vec::new();
        while let Ok(Some(line)) = tokio::time::timeout(STEP, self.lines.recv()).await {
            rest.push(line);
        }
        let status = tokio::task::spawn_blocking(move || self.child.wait())
            .await
            .expect("wait")
            .expect("python exits");
        assert!(status.success(), "script failed ({status}); output: {rest:?}");
        rest
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
