//! Agent-to-agent one-way throughput on the embedded bus: typed JSON
//! payloads through the real dispatch path (encode, bus queue, dispatcher,
//! prefetch window, type routing, decode, handler, ack), next to a raw
//! tokio mpsc channel carrying the same payloads as JSON between two tasks,
//! measured in the same run.
//!
//! Run it with `cargo bench --bench embedded_throughput` (optional argument:
//! messages per round, default 200000). Prints the median of 3 rounds.

use std::time::{Duration, Instant};

use munggoggo::prelude::*;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

#[derive(Debug, Clone, Serialize, Deserialize, Message)]
struct Sample {
    seq: u64,
    sensor: String,
    value: f64,
}

fn sample(seq: u64) -> Sample {
    Sample {
        seq,
        sensor: "kitchen.temp".to_owned(),
        value: 21.5,
    }
}

#[agent]
struct Producer {
    to: String,
    count: u64,
}

#[agent]
impl Producer {
    #[behaviour(oneshot)]
    async fn produce(&mut self, ctx: &Context) -> munggoggo::Result<()> {
        for seq in 0..self.count {
            ctx.send(&self.to, &sample(seq)).await?;
        }
        Ok(())
    }
}

#[agent]
struct Sink {
    expect: u64,
    seen: u64,
    done: Option<oneshot::Sender<Instant>>,
}

#[agent]
impl Sink {
    #[on_message]
    async fn sample(&mut self, sample: Sample) {
        self.seen += 1;
        debug_assert!(sample.seq < self.expect);
        if self.seen == self.expect {
            if let Some(done) = self.done.take() {
                let _ = done.send(Instant::now());
            }
        }
    }
}

async fn munggoggo_round(n: u64, round: usize) -> Duration {
    let rt = munggoggo::Runtime::memory().start().await.expect("runtime");
    let (tx, rx) = oneshot::channel();
    let sink = format!("sink-{round}");
    rt.spawn_as(
        sink.clone(),
        Sink {
            expect: n,
            seen: 0,
            done: Some(tx),
        },
    )
    .await
    .expect("sink");
    let start = Instant::now();
    rt.spawn_as(format!("producer-{round}"), Producer { to: sink, count: n })
        .await
        .expect("producer");
    let end = rx.await.expect("sink finished");
    rt.shutdown().await;
    end - start
}

async fn mpsc_round(n: u64) -> Duration {
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let start = Instant::now();
    let consumer = tokio::spawn(async move {
        let mut seen = 0;
        while let Some(body) = rx.recv().await {
            let sample: Sample = serde_json::from_slice(&body).expect("decode");
            debug_assert!(sample.seq < n);
            seen += 1;
            if seen == n {
                break;
            }
        }
        Instant::now()
    });
    for seq in 0..n {
        tx.send(serde_json::to_vec(&sample(seq)).expect("encode"))
            .expect("send");
    }
    consumer.await.expect("consumer") - start
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[xs.len() / 2]
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    let (mut ours, mut raw) = (Vec::new(), Vec::new());
    for round in 0..3 {
        let d = rt.block_on(munggoggo_round(n, round));
        ours.push(n as f64 / d.as_secs_f64());
        let d = rt.block_on(mpsc_round(n));
        raw.push(n as f64 / d.as_secs_f64());
        println!(
            "round {}: munggoggo {:>10.0} msg/s   tokio mpsc + JSON {:>10.0} msg/s",
            round + 1,
            ours[round],
            raw[round]
        );
    }
    let (ours, raw) = (median(ours), median(raw));
    println!("embedded bus, {n} messages, median of 3:");
    println!("  munggoggo agent -> agent : {ours:>10.0} msg/s");
    println!("  tokio mpsc + JSON (floor): {raw:>10.0} msg/s");
    println!("  ratio                    : {:.2}", ours / raw);
}
