//! Start-up and scale: process start to first agent ready, idle RSS, the
//! time to start N agents and the memory each costs (RSS delta / N), all
//! beside bare tokio actors (a task with a bounded mpsc inbox and a
//! periodic timer each) doing the same in the same run.
//!
//! Each measurement runs in a child process of its own (this program with
//! the hidden `child` subcommand), so that no run inherits another's heap.
//! The child prints `ready` once its first agent is ready, then
//! `started_us <µs to start all>` and `rss_kb <before> <after>`, the latter
//! read one second after the last start (so that what the starts set off,
//! such as peer discovery, has settled).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use munggoggo::prelude::*;
use tokio::sync::mpsc;

use crate::figure::{Better, Figure};

/// A periodic behaviour and a handler: the shape of a typical agent.
#[agent]
#[derive(Default)]
pub struct Worker {
    ticks: u64,
    seen: u64,
}

#[agent]
impl Worker {
    #[behaviour(periodic = "5s")]
    async fn tick(&mut self) {
        self.ticks += 1;
    }

    #[on_message]
    async fn sample(&mut self, _sample: crate::agents::Sample) {
        self.seen += 1;
    }
}

/// The baseline actor: a task with an inbox and a periodic timer.
fn bare_actor() -> mpsc::Sender<Vec<u8>> {
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(64);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(Duration::from_secs(5));
        let (mut ticked, mut seen) = (0u64, 0u64);
        loop {
            tokio::select! {
                _ = ticks.tick() => ticked += 1,
                msg = rx.recv() => match msg {
                    Some(_) => seen += 1,
                    None => break,
                },
            }
        }
        (ticked, seen)
    });
    tx
}

/// The resident set size of this process in KiB (Linux).
pub(crate) fn rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The hidden `child` subcommand.
pub fn child(baseline: bool, agents: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let mut keep = Vec::new();
        let mut inboxes = Vec::new();
        let runtime = if baseline {
            None
        } else {
            Some(munggoggo::Runtime::memory().start().await.expect("runtime"))
        };
        let before = rss_kb();
        let start = Instant::now();
        for i in 0..agents {
            match &runtime {
                Some(rt) => keep.push(
                    rt.spawn_as(format!("worker-{i}"), Worker::default())
                        .await
                        .expect("starts"),
                ),
                None => inboxes.push(bare_actor()),
            }
            if i == 0 {
                println!("ready");
            }
        }
        println!("started_us {}", start.elapsed().as_micros());
        tokio::time::sleep(Duration::from_secs(1)).await;
        println!("rss_kb {before} {}", rss_kb());
        if let Some(rt) = runtime {
            rt.shutdown().await;
        }
    });
}

/// What one child reported.
struct Child {
    /// From spawning the process to its `ready` line.
    ready: Duration,
    started: Duration,
    rss_before: u64,
    rss_after: u64,
}

fn run_child(baseline: bool, agents: usize) -> Child {
    let exe = std::env::current_exe().expect("this program");
    let mut cmd = Command::new(exe);
    cmd.arg("child").arg(agents.to_string());
    if baseline {
        cmd.arg("--baseline");
    }
    let spawned = Instant::now();
    let mut child = cmd.stdout(Stdio::piped()).spawn().expect("child starts");
    let stdout = child.stdout.take().expect("piped");
    let mut ready = None;
    let mut started = Duration::ZERO;
    let mut rss = (0, 0);
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("child output");
        let mut words = line.split_whitespace();
        match words.next() {
            Some("ready") => ready = Some(spawned.elapsed()),
            Some("started_us") => {
                started = Duration::from_micros(words.next().and_then(|w| w.parse().ok()).unwrap_or(0))
            }
            Some("rss_kb") => {
                let mut n = words.filter_map(|w| w.parse().ok());
                rss = (n.next().unwrap_or(0), n.next().unwrap_or(0));
            }
            _ => {}
        }
    }
    let status = child.wait().expect("child ends");
    assert!(status.success(), "the child failed: {status}");
    Child {
        ready: ready.expect("the child reported ready"),
        started,
        rss_before: rss.0,
        rss_after: rss.1,
    }
}

/// `startup`: process start to first agent ready, and idle RSS.
pub fn startup(runs: usize) -> Vec<Figure> {
    let (mut ours, mut bare) = (Vec::new(), Vec::new());
    for run in 0..runs {
        ours.push(run_child(false, 1));
        bare.push(run_child(true, 1));
        println!(
            "run {}: munggoggo ready after {:?}, RSS {} KiB | bare tokio ready after {:?}, RSS {} KiB",
            run + 1,
            ours[run].ready,
            ours[run].rss_after,
            bare[run].ready,
            bare[run].rss_after
        );
    }
    let ms = |cs: &[Child]| cs.iter().map(|c| c.ready.as_secs_f64() * 1e3).collect();
    let mib = |cs: &[Child]| cs.iter().map(|c| c.rss_after as f64 / 1024.0).collect();
    vec![
        Figure::new(
            "start to first agent ready",
            "ms",
            Better::Lower,
            ms(&ours),
            "bare tokio process",
            ms(&bare),
        ),
        Figure::new(
            "idle RSS, one agent",
            "MiB",
            Better::Lower,
            mib(&ours),
            "bare tokio process",
            mib(&bare),
        ),
    ]
}

/// `memory` and `agents10k`: start `n` agents; time and bytes per agent.
pub fn agents(n: usize, runs: usize) -> Vec<Figure> {
    let (mut ours, mut bare) = (Vec::new(), Vec::new());
    for run in 0..runs {
        ours.push(run_child(false, n));
        bare.push(run_child(true, n));
        println!(
            "run {}: {n} agents started in {:?}, {} B each | {n} bare actors in {:?}, {} B each",
            run + 1,
            ours[run].started,
            per_agent(&ours[run], n),
            bare[run].started,
            per_agent(&bare[run], n)
        );
    }
    let ms = |cs: &[Child]| cs.iter().map(|c| c.started.as_secs_f64() * 1e3).collect();
    let bytes = |cs: &[Child]| cs.iter().map(|c| per_agent(c, n) as f64).collect();
    vec![
        Figure::new(
            &format!("start {n} agents"),
            "ms",
            Better::Lower,
            ms(&ours),
            "bare tokio actors",
            ms(&bare),
        ),
        Figure::new(
            &format!("memory per agent ({n})"),
            "B",
            Better::Lower,
            bytes(&ours),
            "bare tokio actor",
            bytes(&bare),
        ),
    ]
}

fn per_agent(c: &Child, n: usize) -> u64 {
    c.rss_after.saturating_sub(c.rss_before) * 1024 / n.max(1) as u64
}
