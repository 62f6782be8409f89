//! RPC round trips: p50/p99 of sequential calls and calls per second at
//! 1, 10 and 100 concurrent callers, for any request/reply implementation
//! (a [`Caller`]); here munggoggo's `#[rpc]` on the embedded bus beside
//! tokio mpsc + oneshot.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use munggoggo::prelude::*;
use tokio::sync::{mpsc, oneshot};

use crate::figure::{Better, Figure};

pub const SEQUENTIAL: usize = 2_000;
pub const CONCURRENT_CALLS: usize = 4_000;

#[agent]
#[derive(Default)]
pub struct Echo;

#[agent]
impl Echo {
    #[rpc]
    async fn echo(&mut self, x: u64) -> u64 {
        x
    }
}

/// One request/reply implementation under test.
pub trait Caller: Clone + Send + Sync + 'static {
    fn call(&self, x: u64) -> Pin<Box<dyn Future<Output = u64> + Send + '_>>;
}

#[derive(Clone)]
pub struct Munggoggo(pub munggoggo::Context, pub String);

impl Caller for Munggoggo {
    fn call(&self, x: u64) -> Pin<Box<dyn Future<Output = u64> + Send + '_>> {
        Box::pin(async move { self.0.call::<u64>(&self.1, "echo", (x,)).await.expect("call") })
    }
}

type Request = (u64, oneshot::Sender<u64>);

#[derive(Clone)]
pub struct TokioOneshot(mpsc::UnboundedSender<Request>);

impl TokioOneshot {
    pub fn start() -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<Request>();
        tokio::spawn(async move {
            while let Some((x, reply)) = rx.recv().await {
                let _ = reply.send(x);
            }
        });
        TokioOneshot(tx)
    }
}

impl Caller for TokioOneshot {
    fn call(&self, x: u64) -> Pin<Box<dyn Future<Output = u64> + Send + '_>> {
        Box::pin(async move {
            let (tx, rx) = oneshot::channel();
            self.0.send((x, tx)).expect("server");
            rx.await.expect("reply")
        })
    }
}

/// The figures of one run of [`measure`].
pub struct Figures {
    pub p50: Duration,
    pub p99: Duration,
    /// Calls per second at 1, 10 and 100 concurrent callers.
    pub throughput: [f64; 3],
}

pub async fn measure(caller: impl Caller) -> Figures {
    let mut latencies = Vec::with_capacity(SEQUENTIAL);
    for i in 0..SEQUENTIAL as u64 {
        let start = Instant::now();
        assert_eq!(caller.call(i).await, i);
        latencies.push(start.elapsed());
    }
    latencies.sort();
    let mut throughput = [0.0; 3];
    for (slot, callers) in [1usize, 10, 100].into_iter().enumerate() {
        let start = Instant::now();
        let tasks: Vec<_> = (0..callers)
            .map(|c| {
                let caller = caller.clone();
                tokio::spawn(async move {
                    for i in 0..(CONCURRENT_CALLS / callers) as u64 {
                        let x = c as u64 * 1_000_000 + i;
                        assert_eq!(caller.call(x).await, x);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("caller");
        }
        throughput[slot] = CONCURRENT_CALLS as f64 / start.elapsed().as_secs_f64();
    }
    Figures {
        p50: latencies[latencies.len() / 2],
        p99: latencies[latencies.len() * 99 / 100],
        throughput,
    }
}

pub async fn on_munggoggo(url: &str, run: usize) -> Figures {
    let rt = munggoggo::Runtime::from_url(url)
        .expect("URL")
        .start()
        .await
        .expect("bus");
    let server = format!("bench-echo-{}-{run}", std::process::id());
    rt.spawn_as(server.clone(), Echo).await.expect("echo agent");
    let client = rt
        .client(format!("bench-caller-{}-{run}", std::process::id()))
        .await
        .expect("client");
    let figures = measure(Munggoggo(client.handle().context().clone(), server)).await;
    rt.shutdown().await;
    figures
}

/// The figures of one implementation against a baseline's, runs paired.
pub fn figures(bus: &str, ours: &[Figures], baseline_name: &str, baseline: &[Figures]) -> Vec<Figure> {
    let us = |rs: &[Figures], f: fn(&Figures) -> Duration| -> Vec<f64> {
        rs.iter().map(|r| f(r).as_secs_f64() * 1e6).collect()
    };
    let mut figures = vec![
        Figure::new(
            &format!("{bus} rpc p50"),
            "us",
            Better::Lower,
            us(ours, |f| f.p50),
            baseline_name,
            us(baseline, |f| f.p50),
        ),
        Figure::new(
            &format!("{bus} rpc p99"),
            "us",
            Better::Lower,
            us(ours, |f| f.p99),
            baseline_name,
            us(baseline, |f| f.p99),
        ),
    ];
    for (i, callers) in [1, 10, 100].into_iter().enumerate() {
        figures.push(Figure::new(
            &format!("{bus} rpc, {callers} caller(s)"),
            "calls/s",
            Better::Higher,
            ours.iter().map(|f| f.throughput[i]).collect(),
            baseline_name,
            baseline.iter().map(|f| f.throughput[i]).collect(),
        ));
    }
    figures
}

/// `embedded-rpc`.
pub fn embedded(runs: usize) -> Vec<Figure> {
    let rt = crate::tokio();
    let (mut ours, mut raw) = (Vec::new(), Vec::new());
    for run in 0..runs {
        ours.push(rt.block_on(on_munggoggo("memory://", run)));
        raw.push(rt.block_on(async { measure(TokioOneshot::start()).await }));
        println!(
            "run {}: munggoggo p50 {:?} | tokio mpsc + oneshot p50 {:?}",
            run + 1,
            ours[run].p50,
            raw[run].p50
        );
    }
    figures("embedded", &ours, "tokio mpsc + oneshot", &raw)
}

/// `embedded-rpc --profile`: calls from one caller task only (the
/// figure the issue tracks), without the baseline, for a profiler.
pub fn profile_embedded(runs: usize) -> Vec<Figure> {
    const CALLS: u64 = 100_000;
    let rt = crate::tokio();
    for run in 0..runs {
        let rate = rt.block_on(async {
            let rt = munggoggo::Runtime::memory().start().await.expect("bus");
            let server = format!("bench-echo-{}-{run}", std::process::id());
            rt.spawn_as(server.clone(), Echo).await.expect("echo agent");
            let client = rt.client(format!("bench-caller-{run}")).await.expect("client");
            let caller = Munggoggo(client.handle().context().clone(), server);
            let start = Instant::now();
            tokio::spawn(async move {
                for x in 0..CALLS {
                    assert_eq!(caller.call(x).await, x);
                }
            })
            .await
            .expect("caller");
            let rate = CALLS as f64 / start.elapsed().as_secs_f64();
            rt.shutdown().await;
            rate
        });
        println!(
            "run {}: munggoggo {rate:.0} calls/s from 1 caller (profiling: no baseline)",
            run + 1
        );
    }
    Vec::new()
}
