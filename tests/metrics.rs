//! Metrics (feature `metrics`) scraped by a real Prometheus server: the
//! test starts Debian's `prometheus` on a free loopback port with a config
//! it writes to a temporary directory, lets it scrape a running agent
//! network (through the runtime's own listener on RabbitMQ, through the
//! dashboard's `/metrics` on the embedded bus), and asks its query API for
//! the exact counts after a known number of messages, calls and failures.
//!
//! Needs the `prometheus` binary (`apt-get install prometheus`); the
//! RabbitMQ case also a broker (see test-support).

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use munggoggo::metrics::Metrics;
use munggoggo::prelude::*;
use munggoggo::{Runtime, RuntimeHandle};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, Serialize, Deserialize, Message)]
struct Tick {
    n: u64,
}

#[derive(Debug, Serialize, Deserialize, Message)]
struct Reading {
    v: u64,
}

#[derive(Debug, Serialize, Deserialize, Message)]
struct Bad {
    n: u64,
}

#[agent]
#[derive(Default)]
struct Counter;

#[agent]
impl Counter {
    #[on_message]
    async fn tick(&mut self, _tick: Tick) {}

    #[on_message(topic = "metrics.readings")]
    async fn reading(&mut self, _reading: Reading) {}

    #[on_message]
    async fn bad(&mut self, bad: Bad) -> anyhow::Result<()> {
        anyhow::bail!("bad {} refused on purpose", bad.n)
    }

    #[rpc]
    async fn double(&mut self, x: i64) -> i64 {
        2 * x
    }
}

const TICKS: u64 = 20;
const READINGS: u64 = 7;
const BADS: u64 = 2;
const MYSTERIES: u64 = 4;
const CALLS: i64 = 3;

/// Sends the known traffic from a client to `counter`.
async fn traffic(rt: &RuntimeHandle, client: &str, counter: &str) {
    let client = rt.client(client).await.unwrap();
    for n in 0..TICKS {
        client.send(counter, &Tick { n }).await.unwrap();
    }
    for v in 0..READINGS {
        client.publish("metrics.readings", &Reading { v }).await.unwrap();
    }
    for n in 0..BADS {
        client.send(counter, &Bad { n }).await.unwrap();
    }
    for _ in 0..MYSTERIES {
        client.send_raw(counter, "Mystery", "{}").await.unwrap();
    }
    for x in 0..CALLS {
        let doubled: i64 = client.call(counter, "double", [x]).await.unwrap();
        assert_eq!(doubled, 2 * x);
    }
}

/// The series and values Prometheus must end up with.
fn expected(counter: &str, client: &str, dead_letters: bool) -> Vec<(String, f64)> {
    let c = |q: &str| q.replace("$C", counter).replace("$S", client);
    let mut all = vec![
        (
            c(r#"munggoggo_messages_received_total{agent="$C",type="Tick"}"#),
            TICKS as f64,
        ),
        (
            c(r#"munggoggo_messages_received_total{agent="$C",type="Reading"}"#),
            READINGS as f64,
        ),
        (
            c(r#"munggoggo_messages_received_total{agent="$C",type="Bad"}"#),
            BADS as f64,
        ),
        (
            c(r#"munggoggo_messages_received_total{agent="$C",type="Mystery"}"#),
            MYSTERIES as f64,
        ),
        (
            c(r#"munggoggo_messages_sent_total{agent="$S",type="Tick"}"#),
            TICKS as f64,
        ),
        (
            c(r#"munggoggo_messages_sent_total{agent="$S",type="Reading"}"#),
            READINGS as f64,
        ),
        (
            c(r#"munggoggo_messages_rejected_total{agent="$C"}"#),
            (BADS + MYSTERIES) as f64,
        ),
        (
            c(r#"munggoggo_messages_dead_lettered_total{agent="$C"}"#),
            if dead_letters {
                (BADS + MYSTERIES) as f64
            } else {
                0.0
            },
        ),
        (
            c(r#"munggoggo_handler_duration_seconds_count{agent="$C",behaviour="tick"}"#),
            TICKS as f64,
        ),
        (
            c(r#"munggoggo_handler_duration_seconds_count{agent="$C",behaviour="reading"}"#),
            READINGS as f64,
        ),
        (
            c(r#"munggoggo_handler_duration_seconds_count{agent="$C",behaviour="bad"}"#),
            BADS as f64,
        ),
        (
            c(r#"munggoggo_handler_errors_total{agent="$C",behaviour="bad"}"#),
            BADS as f64,
        ),
        (
            c(r#"munggoggo_handler_errors_total{agent="$C",behaviour="tick"}"#),
            0.0,
        ),
        (
            c(r#"munggoggo_rpc_service_duration_seconds_count{agent="$C",method="double"}"#),
            CALLS as f64,
        ),
        (
            c(r#"munggoggo_rpc_call_duration_seconds_count{agent="$S",method="double"}"#),
            CALLS as f64,
        ),
        (
            c(r#"munggoggo_rpc_call_errors_total{agent="$S",method="double"}"#),
            0.0,
        ),
        (c(r#"munggoggo_agent_up{agent="$C"}"#), 1.0),
        // Histograms are not empty: every run is in some bucket.
        (
            c(r#"munggoggo_handler_duration_seconds_bucket{agent="$C",behaviour="tick",le="+Inf"}"#),
            TICKS as f64,
        ),
        (
            c(r#"count(munggoggo_handler_duration_seconds_bucket{agent="$C",behaviour="tick"})"#),
            munggoggo::metrics::bucket_bounds().len() as f64 + 1.0,
        ),
    ];
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

/// Debian's Prometheus server on a free loopback port, scraping `target`
/// every second; killed when dropped.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target: SocketAddr) -> Option<Prometheus> {
        let Some(binary) = prometheus_binary() else {
            munggoggo_test_support::skip("no `prometheus` binary (apt-get install prometheus)");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
                 scrape_configs:\n  - job_name: munggoggo\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let addr = free_port();
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("log")).unwrap(),
            ))
            .spawn()
            .unwrap();
        Some(Prometheus {
            child,
            addr,
            _dir: dir,
        })
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("log")).unwrap_or_default()
    }

    /// The value of an instant query that yields one sample, if it does.
    async fn value(&self, query: &str) -> Option<f64> {
        let body = http_get(self.addr, &format!("/api/v1/query?query={}", encode(query))).await?;
        let reply: serde_json::Value = serde_json::from_str(&body).ok()?;
        let result = reply["data"]["result"].as_array()?;
        match result.as_slice() {
            [one] => one["value"][1].as_str()?.parse().ok(),
            _ => None,
        }
    }

    /// Waits (90 s at most: Prometheus starts, then scrapes every second)
    /// until every query has its value; fails with those that do not.
    async fn expect(&self, expected: &[(String, f64)]) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let mut wrong = Vec::new();
            for (query, want) in expected {
                let got = self.value(query).await;
                if got != Some(*want) {
                    wrong.push(format!("{query}: want {want}, got {got:?}"));
                }
            }
            if wrong.is_empty() {
                return;
            }
            if Instant::now() > deadline {
                let targets = http_get(self.addr, "/api/v1/targets").await;
                panic!(
                    "Prometheus does not have the expected values:\n{}\n--- its targets: {targets:?}\n--- its log:\n{}",
                    wrong.join("\n"),
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn prometheus_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("prometheus"))
        .find(|p| p.is_file())
}

fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// Percent-encodes a query parameter.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A plain HTTP/1.0 GET; the body of a 200 answer.
async fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    (head.split_whitespace().nth(1) == Some("200")).then(|| body.to_owned())
}

#[cfg(feature = "amqp")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_exact_counts_from_the_runtimes_listener_on_rabbitmq() {
    let Some(url) = munggoggo_test_support::broker_url_or_skip() else {
        return;
    };
    let counter = common::unique("counter");
    let client = common::unique("sender");
    let rt = Runtime::from_url(&url)
        .unwrap()
        .metrics_listener("127.0.0.1:0".parse().unwrap())
        .agent_as(&counter, Counter)
        .start()
        .await
        .unwrap();
    let target = rt.metrics_addr().expect("a listener");
    let own = http_get(target, "/metrics").await.expect("the listener answers");
    assert!(
        own.contains("# TYPE munggoggo_messages_received_total counter"),
        "{own}"
    );
    let Some(prometheus) = Prometheus::start(target) else {
        return;
    };
    traffic(&rt, &client, &counter).await;
    let mut expected = expected(&counter, &client, true);
    // The bus's own: every publish above was confirmed, and timed.
    expected.push((
        "munggoggo_publish_confirm_duration_seconds_count > bool 30".to_owned(),
        1.0,
    ));
    prometheus.expect(&expected).await;
    rt.shutdown().await;
}

#[cfg(feature = "web")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_exact_counts_from_the_dashboard_on_the_embedded_bus() {
    let counter = common::unique("counter");
    let client = common::unique("sender");
    let metrics = Metrics::new();
    let rt = Runtime::memory()
        .metrics(metrics.clone())
        .agent_as(&counter, Counter)
        .start()
        .await
        .unwrap();
    let dashboard = munggoggo_web::Dashboard::start(&rt, munggoggo_web::DashboardOptions::default())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(dashboard.serve(listener, async {
        let _ = stopped.await;
    }));
    let Some(prometheus) = Prometheus::start(target) else {
        return;
    };
    traffic(&rt, &client, &counter).await;
    prometheus.expect(&expected(&counter, &client, false)).await;
    assert!(metrics.encode().contains("munggoggo_messages_received_total"));
    let _ = stop.send(());
    served.await.unwrap().unwrap();
    rt.shutdown().await;
}
