//! Scale-out on RabbitMQ: a replicated agent whose handler does about
//! 200 µs of CPU work per message, run as 1, 2 and 4 replica processes,
//! beside the ideal: N times one replica's throughput, capped by the
//! cores present.
//!
//! Each run starts the replica processes (this program's hidden
//! `scale-out-child` subcommand), stops them (`SIGSTOP`), queues the jobs
//! for their group from this process, lets them go (`SIGCONT`) and times
//! them until their reports add up to every job. Each replica reports how
//! many jobs it handled every 20 ms, so a figure is late by 20 ms at most.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use munggoggo::agent::AgentDefaults;
use munggoggo::prelude::*;
use serde::{Deserialize, Serialize};

use crate::figure::{median, rate, Better, Figure};

/// The replica counts measured.
const REPLICAS: [usize; 3] = [1, 2, 4];

#[derive(Debug, Serialize, Deserialize, Message)]
struct Job {
    n: u64,
}

#[derive(Debug, Serialize, Deserialize, Message)]
struct Handled {
    replica: String,
    total: u64,
}

/// A replica: burns `work` of CPU per job and reports its total.
#[agent(replicated)]
struct Burner {
    work: Duration,
    collector: String,
    total: u64,
    reported: u64,
}

#[agent]
impl Burner {
    #[on_message]
    async fn job(&mut self, _job: Job) {
        let start = Instant::now();
        while start.elapsed() < self.work {
            std::hint::spin_loop();
        }
        self.total += 1;
    }

    #[behaviour(periodic = "20ms")]
    async fn report(&mut self, ctx: &Context) -> munggoggo::Result<()> {
        if self.total == self.reported {
            return Ok(());
        }
        self.reported = self.total;
        let handled = Handled {
            replica: ctx.identity().to_owned(),
            total: self.total,
        };
        ctx.send(&self.collector, &handled).await
    }
}

/// Hears the replicas' totals.
#[agent]
struct Collector {
    totals: Arc<Mutex<HashMap<String, u64>>>,
}

#[agent]
impl Collector {
    #[on_message]
    async fn handled(&mut self, handled: Handled) {
        self.totals.lock().unwrap().insert(handled.replica, handled.total);
    }
}

/// The child process: one replica of `identity`, reporting to `collector`.
pub fn child(identity: String, collector: String, work_us: u64) {
    let rt = crate::tokio();
    rt.block_on(async {
        let runtime = munggoggo::Runtime::from_url(&super::url())
            .expect("URL")
            .start()
            .await
            .expect("broker reachable");
        let mut options = Burner::options();
        options.identity = identity;
        let burner = Burner {
            work: Duration::from_micros(work_us),
            collector,
            total: 0,
            reported: 0,
        };
        let handle = runtime.spawn_with(burner, options).await.expect("replica starts");
        println!("ready");
        handle.stopped().await;
    });
}

fn signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill {signal} {}", child.id());
}

/// One run with `replicas` processes: jobs per second.
async fn round(replicas: usize, jobs: u64, work_us: u64, run: &str) -> f64 {
    let runtime = munggoggo::Runtime::from_url(&super::url())
        .expect("URL")
        .start()
        .await
        .expect("broker reachable");
    let identity = format!("bench-scale-{}-{run}", std::process::id());
    let collector = format!("{identity}-collector");
    let totals = Arc::new(Mutex::new(HashMap::new()));
    let mut options = Collector::options();
    options.identity = collector.clone();
    runtime
        .spawn_with(
            Collector {
                totals: Arc::clone(&totals),
            },
            options,
        )
        .await
        .expect("collector starts");
    let exe = std::env::current_exe().expect("this program");
    let mut children: Vec<Child> = (0..replicas)
        .map(|_| {
            let mut child = Command::new(&exe)
                .args(["scale-out-child", &identity, &collector, &work_us.to_string()])
                .stdout(Stdio::piped())
                .spawn()
                .expect("a replica process");
            let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
            while let Some(Ok(line)) = lines.next() {
                if line == "ready" {
                    break;
                }
            }
            child
        })
        .collect();
    for child in &children {
        signal(child, "-STOP");
    }
    let client = runtime
        .client(format!("{identity}-producer"))
        .await
        .expect("client");
    for n in 0..jobs {
        client.send(&identity, &Job { n }).await.expect("queued");
    }
    let start = Instant::now();
    for child in &children {
        signal(child, "-CONT");
    }
    loop {
        let done: u64 = totals.lock().unwrap().values().sum();
        if done >= jobs {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = start.elapsed();
    for child in &mut children {
        let _ = child.kill();
        let _ = child.wait();
    }
    runtime.shutdown().await;
    rate(jobs, elapsed)
}

/// `scale-out`: 1, 2 and 4 replica processes beside the ideal.
pub fn scale_out(jobs: u64, work_us: u64, runs: usize) -> Vec<Figure> {
    let rt = crate::tokio();
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let mut measured: HashMap<usize, Vec<f64>> = HashMap::new();
    for run in 0..runs {
        for replicas in REPLICAS {
            let rate = rt.block_on(round(replicas, jobs, work_us, &format!("{run}-{replicas}")));
            println!("run {}: {replicas} replica(s) {rate:>6.0} jobs/s", run + 1);
            measured.entry(replicas).or_default().push(rate);
        }
    }
    let one = median(measured[&1].clone());
    REPLICAS
        .iter()
        .map(|&replicas| {
            let ideal = one * replicas.min(cores) as f64;
            let ours = measured.remove(&replicas).unwrap_or_default();
            let n = ours.len();
            Figure::new(
                &format!("amqp scale-out, {replicas} replica process(es), {work_us} µs per job"),
                "jobs/s",
                Better::Higher,
                ours,
                &format!(
                    "ideal: {} x one replica (capped at {cores} cores)",
                    replicas.min(cores)
                ),
                vec![ideal; n],
            )
        })
        .collect()
}
