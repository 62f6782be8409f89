//! `ping` latency to an agent with a backlog: 10,000 messages wait in its
//! queue while its handler is held, and 500 pings in a row are timed (p50,
//! p99), next to the same pings to an idle agent in the same run. The
//! number of messages still waiting in the queue (sent, minus those the
//! agent holds in memory, minus the one in its handler) is printed before
//! and after the pings, to show the backlog really waited.
//!
//! Run it with `cargo bench --bench backlog_ping` (broker at
//! `MUNGGOGGO_TEST_URL`, default: the local broker). Prints medians of 3
//! rounds.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{median, Producer, Sample};
use munggoggo::prelude::*;
use tokio::sync::Notify;

const BACKLOG: u64 = 10_000;
const PINGS: usize = 500;

/// Holds its handler until released, so its backlog stays queued.
#[agent]
struct Held {
    release: Arc<Notify>,
}

#[agent]
impl Held {
    #[on_message]
    async fn sample(&mut self, _: Sample) {
        self.release.notified().await;
    }
}

#[agent]
#[derive(Default)]
struct Idle;

#[agent]
impl Idle {
    #[on_message]
    async fn sample(&mut self, _: Sample) {}
}

/// p50 and p99 of `PINGS` pings in a row.
async fn pings(client: &munggoggo::runtime::Client, to: &str) -> (Duration, Duration) {
    let mut times = Vec::with_capacity(PINGS);
    for _ in 0..PINGS {
        let start = Instant::now();
        client.ping(to).await.expect("ping");
        times.push(start.elapsed());
    }
    times.sort();
    (times[PINGS / 2], times[PINGS * 99 / 100])
}

/// Messages sent to `agent` that still wait in its queue.
fn waiting(agent: &munggoggo::AgentHandle) -> usize {
    (BACKLOG as usize).saturating_sub(agent.buffered() + 1)
}

struct Round {
    busy: (Duration, Duration),
    idle: (Duration, Duration),
    depth: (usize, usize),
}

async fn round(url: &str, n: usize) -> Round {
    let rt = munggoggo::Runtime::from_url(url)
        .expect("URL")
        .start()
        .await
        .expect("bus reachable");
    let pid = std::process::id();
    let release = Arc::new(Notify::new());
    let held = rt
        .spawn_as(
            format!("bench-held-{n}-{pid}"),
            Held {
                release: Arc::clone(&release),
            },
        )
        .await
        .expect("starts");
    let idle = rt
        .spawn_as(format!("bench-idle-{n}-{pid}"), Idle)
        .await
        .expect("starts");
    let producer = rt
        .spawn_as(
            format!("bench-flood-{n}-{pid}"),
            Producer {
                to: held.identity().to_owned(),
                count: BACKLOG,
            },
        )
        .await
        .expect("starts");
    producer
        .wait_until(|p| p.behaviour("produce").is_some_and(|b| b.runs + b.errors > 0))
        .await
        .expect("flood sent");
    let client = rt
        .client(format!("bench-pinger-{n}-{pid}"))
        .await
        .expect("client");
    let before = waiting(&held);
    let busy = pings(&client, held.identity()).await;
    let after = waiting(&held);
    let idle_times = pings(&client, idle.identity()).await;
    // Let the held agent go so that it stops quickly.
    for agent in [&producer, &idle] {
        agent.shutdown().await;
    }
    held.stop();
    release.notify_one();
    held.stopped().await;
    client.shutdown().await;
    rt.shutdown().await;
    Round {
        busy,
        idle: idle_times,
        depth: (before, after),
    }
}

fn main() {
    let url =
        std::env::var("MUNGGOGGO_TEST_URL").unwrap_or_else(|_| munggoggo::runtime::LOCAL_BROKER.to_owned());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    for (bus, url) in [("embedded", "memory://"), ("RabbitMQ", url.as_str())] {
        let mut rounds = Vec::new();
        for n in 0..3 {
            let r = rt.block_on(round(url, n));
            println!(
                "{bus} round {}: backlog ping p50 {:?} p99 {:?}; idle ping p50 {:?} p99 {:?}; waiting in the queue {} -> {}",
                n + 1,
                r.busy.0,
                r.busy.1,
                r.idle.0,
                r.idle.1,
                r.depth.0,
                r.depth.1
            );
            rounds.push(r);
        }
        let us = |f: &dyn Fn(&Round) -> Duration| {
            median(rounds.iter().map(|r| f(r).as_secs_f64() * 1e6).collect())
        };
        println!("{bus}, {BACKLOG} messages queued, {PINGS} pings, median of 3:");
        println!(
            "  ping to the busy agent : p50 {:>8.0} us  p99 {:>8.0} us",
            us(&|r| r.busy.0),
            us(&|r| r.busy.1)
        );
        println!(
            "  ping to an idle agent  : p50 {:>8.0} us  p99 {:>8.0} us",
            us(&|r| r.idle.0),
            us(&|r| r.idle.1)
        );
    }
}
