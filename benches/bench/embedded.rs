//! Embedded-bus throughput: agent to agent, and a topic publication to N
//! subscribers, each beside tokio channels carrying the same JSON.

use std::sync::Arc;
use std::time::{Duration, Instant};

use munggoggo::prelude::*;
use tokio::sync::{broadcast, mpsc, Notify};

use crate::agents::{agents_round, sample, Sample};
use crate::figure::{rate, Better, Figure};

/// Two tasks and an unbounded mpsc channel carrying the samples as JSON.
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

/// One round of [`one_way`] on a runtime of its own.
async fn one_way_round(n: u64, run: usize) -> Duration {
    let handle = munggoggo::Runtime::memory().start().await.expect("runtime");
    let d = agents_round(&handle, n, &run.to_string()).await;
    handle.shutdown().await;
    d
}

/// `embedded-one-way`: typed JSON samples through the whole path (encode,
/// queue, dispatcher, window, type routing, decode, handler, ack).
pub fn one_way(n: u64, runs: usize) -> Vec<Figure> {
    let rt = crate::tokio();
    let (mut ours, mut raw) = (Vec::new(), Vec::new());
    for run in 0..runs {
        ours.push(rate(n, rt.block_on(one_way_round(n, run))));
        raw.push(rate(n, rt.block_on(mpsc_round(n))));
        println!(
            "run {}: munggoggo {:>10.0} msg/s   tokio mpsc + JSON {:>10.0} msg/s",
            run + 1,
            ours[run],
            raw[run]
        );
    }
    vec![Figure::new(
        "embedded one-way",
        "msg/s",
        Better::Higher,
        ours,
        "tokio mpsc + JSON",
        raw,
    )]
}

/// `embedded-one-way --profile`: the rounds of [`one_way`] without the
/// baseline, for a profiler; the cost of one message is the difference of
/// two runs with different counts (`valgrind --tool=callgrind` counts
/// instructions, which the machine's noise does not change).
pub fn profile_one_way(n: u64, runs: usize) -> Vec<Figure> {
    let rt = crate::tokio();
    for run in 0..runs {
        let d = rt.block_on(one_way_round(n, run));
        println!(
            "run {}: munggoggo {:>10.0} msg/s (profiling: no baseline)",
            run + 1,
            rate(n, d)
        );
    }
    Vec::new()
}

/// Counts what its topic handler gets; notifies when all arrived.
#[agent]
struct Subscriber {
    expect: u64,
    seen: u64,
    done: Arc<Notify>,
    left: Arc<std::sync::atomic::AtomicUsize>,
}

#[agent]
impl Subscriber {
    #[on_message(topic = "bench.fanout")]
    async fn sample(&mut self, _sample: Sample) {
        self.seen += 1;
        if self.seen == self.expect && self.left.fetch_sub(1, std::sync::atomic::Ordering::AcqRel) == 1 {
            self.done.notify_one();
        }
    }
}

async fn fanout_round(subscribers: usize, n: u64, run: usize) -> Duration {
    let rt = munggoggo::Runtime::memory().start().await.expect("runtime");
    let done = Arc::new(Notify::new());
    let left = Arc::new(std::sync::atomic::AtomicUsize::new(subscribers));
    for i in 0..subscribers {
        let mut options = crate::agents::unbounded(&format!("bench-sub-{run}-{i}"));
        options.announce = false;
        let subscriber = Subscriber {
            expect: n,
            seen: 0,
            done: Arc::clone(&done),
            left: Arc::clone(&left),
        };
        rt.spawn_with(subscriber, options).await.expect("subscriber");
    }
    let publisher = rt.client(format!("bench-pub-{run}")).await.expect("client");
    let start = Instant::now();
    for seq in 0..n {
        publisher
            .publish("bench.fanout", &sample(seq))
            .await
            .expect("publish");
    }
    done.notified().await;
    let d = start.elapsed();
    rt.shutdown().await;
    d
}

/// The baseline: one task encodes each sample once and sends the bytes on
/// a tokio broadcast channel; each of N tasks decodes every one.
async fn broadcast_round(subscribers: usize, n: u64) -> Duration {
    let (tx, _) = broadcast::channel::<Arc<[u8]>>(n as usize);
    let tasks: Vec<_> = (0..subscribers)
        .map(|_| {
            let mut rx = tx.subscribe();
            tokio::spawn(async move {
                for _ in 0..n {
                    let body = rx.recv().await.expect("no lag: the channel holds all");
                    let _: Sample = serde_json::from_slice(&body).expect("decode");
                }
            })
        })
        .collect();
    let start = Instant::now();
    for seq in 0..n {
        let body: Arc<[u8]> = serde_json::to_vec(&sample(seq)).expect("encode").into();
        tx.send(body).expect("receivers");
    }
    for task in tasks {
        task.await.expect("receiver");
    }
    start.elapsed()
}

/// `fanout`: deliveries per second of a publication to N topic handlers.
pub fn fanout(subscribers: usize, n: u64, runs: usize) -> Vec<Figure> {
    let rt = crate::tokio();
    let deliveries = n * subscribers as u64;
    let (mut ours, mut raw) = (Vec::new(), Vec::new());
    for run in 0..runs {
        ours.push(rate(deliveries, rt.block_on(fanout_round(subscribers, n, run))));
        raw.push(rate(deliveries, rt.block_on(broadcast_round(subscribers, n))));
        println!(
            "run {}: munggoggo {:>10.0} deliveries/s   tokio broadcast + JSON {:>10.0} deliveries/s",
            run + 1,
            ours[run],
            raw[run]
        );
    }
    vec![Figure::new(
        &format!("fan-out to {subscribers} subscribers"),
        "deliv/s",
        Better::Higher,
        ours,
        "tokio broadcast + JSON",
        raw,
    )]
}

/// `fanout --profile`: the rounds of [`fanout`] without the baseline, for
/// a profiler.
pub fn profile_fanout(subscribers: usize, n: u64, runs: usize) -> Vec<Figure> {
    let rt = crate::tokio();
    let deliveries = n * subscribers as u64;
    for run in 0..runs {
        let d = rt.block_on(fanout_round(subscribers, n, run));
        println!(
            "run {}: munggoggo {:>10.0} deliveries/s (profiling: no baseline)",
            run + 1,
            rate(deliveries, d)
        );
    }
    Vec::new()
}
