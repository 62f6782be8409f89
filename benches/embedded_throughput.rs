//! Agent-to-agent one-way throughput on the embedded bus: typed JSON
//! payloads through the real dispatch path (encode, bus queue, dispatcher,
//! prefetch window, type routing, decode, handler, ack), next to a raw
//! tokio mpsc channel carrying the same payloads as JSON between two tasks,
//! measured in the same run.
//!
//! Run it with `cargo bench --bench embedded_throughput` (optional argument:
//! messages per round, default 200000). Prints the median of 3 rounds.

mod common;

use std::time::{Duration, Instant};

use common::{agents_round, median, rate, sample, Sample};
use tokio::sync::mpsc;

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
        let d = rt.block_on(async {
            let handle = munggoggo::Runtime::memory().start().await.expect("runtime");
            agents_round(&handle, n, &round.to_string()).await
        });
        ours.push(rate(n, d));
        raw.push(rate(n, rt.block_on(mpsc_round(n))));
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
