//! How fast the historian (crate munggoggo-historian) stores messages, beside
//! the bus rate measured in the same run: one producer sends typed JSON
//! samples directly to (a) a sink agent that only counts them, (b) a
//! historian that stores each one in SQLite (WAL, batched transactions).
//! The historian's time ends when a `count` query, which waits for every
//! record handed in before it, reports all of them committed. Uses the
//! embedded bus, or RabbitMQ when `MUNGGOGGO_URL` names one.

use std::time::{Duration, Instant};

use munggoggo_historian::{Historian, HistorianConfig};

use crate::agents::{agents_round, Producer};
use crate::figure::{rate, Better, Figure};

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

/// `historian`.
pub fn run(n: u64, runs: usize) -> Vec<Figure> {
    let rt = crate::tokio();
    let url = std::env::var(munggoggo::runtime::URL_VAR).unwrap_or_default();
    let (mut bus, mut stored) = (Vec::new(), Vec::new());
    for run in 0..runs {
        let (b, s) = rt.block_on(async {
            let handle = munggoggo::Runtime::from_url(&url)
                .expect("MUNGGOGGO_URL")
                .start()
                .await
                .expect("runtime");
            let b = agents_round(&handle, n, &format!("b{run}")).await;
            let s = historian_round(&handle, n, &run.to_string()).await;
            handle.shutdown().await;
            (b, s)
        });
        bus.push(rate(n, b));
        stored.push(rate(n, s));
        println!(
            "run {}: bus {:>10.0} msg/s   historian stored {:>10.0} msg/s",
            run + 1,
            bus[run],
            stored[run]
        );
    }
    vec![Figure::new(
        "historian, stored in SQLite",
        "msg/s",
        Better::Higher,
        stored,
        "the bus, agent to agent",
        bus,
    )]
}
