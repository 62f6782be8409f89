//! How fast the historian of examples/historian/ stores messages, next to
//! the bus rate measured in the same run: one producer sends typed JSON
//! samples directly to (a) a sink agent that only counts them, (b) a
//! historian that stores each one in SQLite (WAL, batched transactions).
//! The historian's time ends when a `count` query, which waits for every
//! record handed in before it, reports all of them committed.
//!
//! Run it with `cargo bench --bench historian_throughput --features historian`
//! (optional argument: messages per round, default 100000). Uses the
//! embedded bus, or RabbitMQ when `MUNGGOGGO_URL` names one (add the `amqp`
//! feature). Prints the median of 3 rounds.

mod common;
#[allow(dead_code)]
#[path = "../examples/historian/historian.rs"]
mod historian;

use std::time::{Duration, Instant};

use common::{agents_round, median, rate, Producer};
use historian::{Historian, HistorianConfig};

async fn historian_round(rt: &munggoggo::RuntimeHandle, n: u64, tag: &str) -> Duration {
    let dir = tempfile::tempdir().expect("temporary directory");
    let identity = format!("bench-historian-{tag}-{}", std::process::id());
    let config = HistorianConfig {
        database: dir.path().join("bench.db"),
        topics: Vec::new(),
        ..HistorianConfig::default()
    };
    let historian = rt
        .spawn_as(identity.clone(), Historian::new(config))
        .await
        .expect("historian starts");
    let client = rt
        .client(format!("bench-asker-{tag}-{}", std::process::id()))
        .await
        .expect("client starts");
    let start = Instant::now();
    let producer = rt
        .spawn_as(
            format!("bench-producer-h{tag}-{}", std::process::id()),
            Producer {
                to: identity.clone(),
                count: n,
            },
        )
        .await
        .expect("producer starts");
    historian
        .wait_until(|h| h.behaviour("messages").is_some_and(|b| b.runs + b.errors >= n))
        .await
        .expect("historian runs");
    let stored: u64 = client.call(&identity, "count", ()).await.expect("count answers");
    let end = Instant::now();
    assert_eq!(stored, n, "every message stored once");
    producer.shutdown().await;
    client.shutdown().await;
    historian.shutdown().await;
    end - start
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    let url = std::env::var(munggoggo::runtime::URL_VAR).unwrap_or_default();
    let (mut bus, mut stored) = (Vec::new(), Vec::new());
    for round in 0..3 {
        let (b, s) = rt.block_on(async {
            let handle = munggoggo::Runtime::from_url(&url)
                .expect("MUNGGOGGO_URL")
                .start()
                .await
                .expect("runtime");
            let b = agents_round(&handle, n, &format!("b{round}")).await;
            let s = historian_round(&handle, n, &round.to_string()).await;
            handle.shutdown().await;
            (b, s)
        });
        bus.push(rate(n, b));
        stored.push(rate(n, s));
        println!(
            "round {}: bus {:>10.0} msg/s   historian stored {:>10.0} msg/s",
            round + 1,
            bus[round],
            stored[round]
        );
    }
    let (bus, stored) = (median(bus), median(stored));
    let on = if url.is_empty() {
        "embedded bus".to_owned()
    } else {
        munggoggo::bus::redact(&url)
    };
    println!("{on}, {n} messages, median of 3:");
    println!("  bus, agent -> agent      : {bus:>10.0} msg/s");
    println!("  historian, stored in SQL : {stored:>10.0} msg/s");
    println!("  ratio                    : {:.2}", stored / bus);
}
