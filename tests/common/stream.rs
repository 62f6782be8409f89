//! A numbered stream through a fault: one client sends numbered direct
//! messages to a slow agent in another runtime, retrying each failed send
//! as a real producer would, while a fault runs on a blocking thread; the
//! stream goes on until the fault is over and a while after. The report
//! prints `sent / Ok / received / lost / duplicated / longest pauses` and
//! asserts that nothing the broker confirmed (Ok) is lost, that no send
//! took longer than its send timeout, and that sends and deliveries were
//! never stopped longer than a bound.
//!
//! Used by `tests/cluster.rs` through `#[path]` (its `Sink` agent would
//! register itself in every test binary that includes `common/`).

use std::collections::HashSet;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use munggoggo::prelude::*;
use munggoggo::runtime::Client;
use munggoggo::{Runtime, RuntimeHandle};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, Semaphore};

/// The message of a stream.
#[derive(Debug, Serialize, Deserialize, Message)]
pub struct Numbered {
    pub n: u64,
}

#[derive(Default)]
struct Seen {
    numbers: HashSet<u64>,
    duplicates: u64,
    /// When a message last arrived.
    last: Option<Instant>,
    /// The longest time between two arrivals.
    longest_gap: Duration,
}

/// What the consumer of one stream received.
#[derive(Clone, Default)]
pub struct Received {
    seen: Arc<Mutex<Seen>>,
    changed: Arc<Notify>,
}

impl Received {
    fn record(&self, n: u64) {
        let mut seen = self.seen.lock().unwrap();
        if !seen.numbers.insert(n) {
            seen.duplicates += 1;
        }
        let now = Instant::now();
        if let Some(last) = seen.last {
            seen.longest_gap = seen.longest_gap.max(now - last);
        }
        seen.last = Some(now);
        drop(seen);
        self.changed.notify_waiters();
    }

    /// Waits until every number in `wanted` arrived, or `within` passed;
    /// returns the numbers still missing.
    pub async fn wait_for(&self, wanted: &HashSet<u64>, within: Duration) -> Vec<u64> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let changed = self.changed.notified();
            let missing: Vec<u64> = {
                let seen = self.seen.lock().unwrap();
                wanted
                    .iter()
                    .filter(|n| !seen.numbers.contains(n))
                    .copied()
                    .collect()
            };
            if missing.is_empty() || tokio::time::Instant::now() >= deadline {
                return missing;
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), changed).await;
        }
    }
}

/// A slow consumer: 1 ms per message, so a backlog builds up whenever
/// deliveries resume after a pause.
#[agent]
pub struct Sink {
    pub received: Received,
}

#[agent]
impl Sink {
    #[on_message]
    async fn numbered(&mut self, msg: Numbered) {
        tokio::time::sleep(Duration::from_millis(1)).await;
        self.received.record(msg.n);
    }
}

/// Starts a runtime at `url` with a sink named `identity`.
pub async fn sink(url: &str, identity: &str, received: &Received) -> RuntimeHandle {
    Runtime::from_url(url)
        .expect("valid URL")
        .agent_as(
            identity,
            Sink {
                received: received.clone(),
            },
        )
        .start()
        .await
        .expect("the sink starts")
}

/// How a stream runs and what it must prove.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Messages sent at least.
    pub total: u64,
    /// Time between two sends.
    pub pace: Duration,
    /// Sends in flight at once.
    pub in_flight: usize,
    /// The fault starts once this many messages are Ok'd.
    pub fault_at: u64,
    /// How long the stream goes on after the fault ended.
    pub tail: Duration,
    /// The senders' send timeout: no send may take longer (plus 2 s for
    /// a loaded machine's scheduling).
    pub send_timeout: Duration,
    /// The longest time sends (from one Ok to the next) and deliveries
    /// (from one arrival to the next) may stop.
    pub bound: Duration,
    /// How long the consumer may take to receive everything after the stream.
    pub drain: Duration,
}

/// The outcome of one stream.
pub struct Report {
    case: String,
    attempts: u64,
    failed: u64,
    ok: HashSet<u64>,
    /// The longest time from one Ok to the next.
    send_gap: Duration,
    /// The longest a send took.
    slowest_send: Duration,
    fault: Duration,
    plan: Plan,
}

impl Report {
    /// Prints the case's line, and asserts that nothing Ok'd is lost and
    /// that sends and deliveries never stopped longer than the plan's bound.
    pub async fn check(self, received: &Received) {
        self.check_with(received, String::new).await;
    }

    /// [`Report::check`], with what `diagnose` tells (the broker's view of
    /// the queues, say) in the message of a failure to receive everything.
    pub async fn check_with(self, received: &Received, diagnose: impl FnOnce() -> String) {
        let missing = received.wait_for(&self.ok, self.plan.drain).await;
        let diagnosis = if missing.is_empty() {
            String::new()
        } else {
            diagnose()
        };
        let (got, duplicates, delivery_gap) = {
            let seen = received.seen.lock().unwrap();
            (seen.numbers.len(), seen.duplicates, seen.longest_gap)
        };
        let line = format!(
            "cluster case {:<34} sent {:>6}  failed {:>5}  Ok {:>6}  received {:>6}  lost {:>3}  duplicated {:>4}  \
             fault {:>5.1} s  longest pause: sends {:.1} s, deliveries {:.1} s (bound {} s)  slowest send {:.1} s",
            self.case,
            self.attempts,
            self.failed,
            self.ok.len(),
            got,
            missing.len(),
            duplicates,
            self.fault.as_secs_f64(),
            self.send_gap.as_secs_f64(),
            delivery_gap.as_secs_f64(),
            self.plan.bound.as_secs(),
            self.slowest_send.as_secs_f64(),
        );
        let _ = writeln!(std::io::stderr().lock(), "{line}");
        assert!(
            missing.is_empty(),
            "{line}: Ok'd but never received: {:?}\n{diagnosis}",
            &missing[..missing.len().min(20)]
        );
        assert!(
            self.send_gap <= self.plan.bound && delivery_gap <= self.plan.bound,
            "{line}: traffic stopped for longer than {:?}",
            self.plan.bound
        );
    }
}

/// Streams numbered messages from `client` to `target` as `plan` says,
/// running `fault` on a blocking thread once `plan.fault_at` are Ok'd;
/// sends go on until `plan.total` are sent and the fault has been over
/// for `plan.tail`.
pub async fn stream(
    case: impl Into<String>,
    client: Arc<Client>,
    target: &str,
    plan: Plan,
    fault: impl FnOnce() + Send + 'static,
) -> Report {
    #[derive(Default)]
    struct Shared {
        ok: HashSet<u64>,
        attempts: u64,
        failed: u64,
        last_ok: Option<Instant>,
        send_gap: Duration,
        slowest_send: Duration,
    }
    let shared = Arc::new(Mutex::new(Shared::default()));
    let fault_window: Arc<Mutex<(Option<Instant>, Option<Instant>)>> = Arc::default();
    let mut pace = tokio::time::interval(plan.pace);
    let mut fault = Some(fault);
    let slots = Arc::new(Semaphore::new(plan.in_flight));
    let mut tasks = tokio::task::JoinSet::new();
    let mut faulting: Option<tokio::task::JoinHandle<()>> = None;
    let hang = plan.send_timeout + Duration::from_secs(2);
    let began = Instant::now();
    let mut n = 0;
    loop {
        let over = fault_window.lock().unwrap().1;
        if n >= plan.total && over.is_some_and(|end| end.elapsed() >= plan.tail) {
            break;
        }
        assert!(
            began.elapsed() < Duration::from_secs(600),
            "the stream did not end within 10 minutes ({} Ok'd)",
            shared.lock().unwrap().ok.len()
        );
        pace.tick().await;
        let permit = Arc::clone(&slots).acquire_owned().await.unwrap();
        if fault.is_some() && shared.lock().unwrap().ok.len() as u64 >= plan.fault_at {
            let fault = fault.take().unwrap();
            let window = Arc::clone(&fault_window);
            window.lock().unwrap().0 = Some(Instant::now());
            faulting = Some(tokio::task::spawn_blocking(move || {
                fault();
                window.lock().unwrap().1 = Some(Instant::now());
            }));
        }
        if faulting.as_ref().is_some_and(|f| f.is_finished()) {
            // A fault that panicked fails the case now.
            faulting.take().unwrap().await.expect("the fault ran");
        }
        let (client, shared, target) = (Arc::clone(&client), Arc::clone(&shared), target.to_owned());
        tasks.spawn(async move {
            let _permit = permit;
            loop {
                shared.lock().unwrap().attempts += 1;
                let started = Instant::now();
                let sent = tokio::time::timeout(hang, client.send(&target, &Numbered { n })).await;
                let took = started.elapsed();
                {
                    let mut s = shared.lock().unwrap();
                    s.slowest_send = s.slowest_send.max(took);
                    match sent {
                        Ok(Ok(())) => {
                            s.ok.insert(n);
                            let now = Instant::now();
                            if let Some(last) = s.last_ok {
                                s.send_gap = s.send_gap.max(now - last);
                            }
                            s.last_ok = Some(now);
                            return;
                        }
                        Ok(Err(_)) => s.failed += 1,
                        Err(_) => {
                            panic!("message {n}: a send hung for {hang:?} (its send timeout is shorter)")
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        n += 1;
        // Reap finished sends, so that a panicked one fails the case now.
        while let Some(done) = tasks.try_join_next() {
            done.expect("a send task failed");
        }
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a send task failed");
    }
    if let Some(faulting) = faulting {
        faulting.await.expect("the fault ran");
    }
    let shared = Arc::try_unwrap(shared).ok().unwrap().into_inner().unwrap();
    let (start, end) = *fault_window.lock().unwrap();
    Report {
        case: case.into(),
        attempts: shared.attempts,
        failed: shared.failed,
        ok: shared.ok,
        send_gap: shared.send_gap,
        slowest_send: shared.slowest_send,
        fault: end.zip(start).map_or(Duration::ZERO, |(end, start)| end - start),
        plan,
    }
}
