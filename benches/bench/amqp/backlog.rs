//! `ping` latency to an agent with a backlog: 10,000 messages wait in its
//! queue while its handler is held, and 500 pings in a row are timed (p50,
//! p99), beside the same pings to an idle agent in the same run, on the
//! embedded bus and on RabbitMQ.

use std::sync::Arc;
use std::time::{Duration, Instant};

use munggoggo::prelude::*;
use tokio::sync::Notify;

use crate::agents::{Producer, Sample};
use crate::figure::{Better, Figure};

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

/// `backlog-ping`.
pub fn backlog_ping(runs: usize) -> Vec<Figure> {
    let url = super::url();
    let rt = crate::tokio();
    let mut figures = Vec::new();
    for (bus, url) in [("embedded", "memory://"), ("amqp", url.as_str())] {
        let mut rounds = Vec::new();
        for n in 0..runs {
            let r = rt.block_on(round(url, n));
            println!(
                "{bus} run {}: backlog ping p50 {:?} p99 {:?}; idle ping p50 {:?} p99 {:?}; waiting in the queue {} -> {}",
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
        let us = |f: fn(&Round) -> Duration| rounds.iter().map(|r| f(r).as_secs_f64() * 1e6).collect();
        figures.push(Figure::new(
            &format!("{bus} ping, {BACKLOG} queued, p50"),
            "us",
            Better::Lower,
            us(|r| r.busy.0),
            "ping to an idle agent",
            us(|r| r.idle.0),
        ));
        figures.push(Figure::new(
            &format!("{bus} ping, {BACKLOG} queued, p99"),
            "us",
            Better::Lower,
            us(|r| r.busy.1),
            "ping to an idle agent",
            us(|r| r.idle.1),
        ));
    }
    figures
}
