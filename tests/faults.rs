//! Broker faults on a private RabbitMQ node (see `common/node.rs`): a
//! stream of numbered direct messages from one process to a slow agent in
//! another runtime, with a backlog at the consumer, while the broker
//! closes every connection, restarts, or is killed; the consumer stopped
//! and started again; sends during an outage; ten restarts in a row.
//!
//! Each case prints `sent / Ok / received / lost / duplicated / recovery`
//! and asserts that no message the broker confirmed (Ok) is lost. The
//! producer retries a failed send, as a real one would, so every number is
//! Ok'd in the end; a send that timed out may have arrived all the same,
//! which shows as a duplicate (delivery is at least once).

#![cfg(feature = "amqp")]

mod common;

use std::collections::HashSet;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::node::Node;
use munggoggo::prelude::*;
use munggoggo::{AgentDefaults, Runtime, RuntimeHandle};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, Semaphore};

/// Messages per stream.
const TOTAL: u64 = 10_000;
/// Time between two sends: about 2,000 a second, faster than the sink
/// takes them, slow enough that a fault lands mid-stream.
const PACE: Duration = Duration::from_micros(500);
/// Sends in flight at once.
const IN_FLIGHT: usize = 64;
/// How long the consumer may take to receive everything after the stream.
const DRAIN: Duration = Duration::from_secs(180);

#[derive(Debug, Serialize, Deserialize, Message)]
struct Numbered {
    n: u64,
}

#[derive(Default)]
struct Seen {
    numbers: HashSet<u64>,
    duplicates: u64,
    /// When a message last arrived.
    last: Option<Instant>,
    /// Set by a fault's end: the first arrival after it.
    resumed: Option<Option<Instant>>,
}

/// What the consumers of one case received.
#[derive(Clone, Default)]
struct Received {
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
        seen.last = Some(now);
        if let Some(None) = seen.resumed {
            seen.resumed = Some(Some(now));
        }
        drop(seen);
        self.changed.notify_waiters();
    }

    /// Marks a fault's end: [`Report::check`] says how long the consumer
    /// took to receive again.
    fn fault_ended(&self) {
        self.seen.lock().unwrap().resumed = Some(None);
    }

    /// Waits until every number in `wanted` arrived, or `DRAIN` passed;
    /// returns the numbers still missing.
    async fn wait_for(&self, wanted: &HashSet<u64>) -> Vec<u64> {
        let deadline = tokio::time::Instant::now() + DRAIN;
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

/// A slow consumer: 1 ms per message, so a backlog builds up.
#[agent]
struct Sink {
    received: Received,
}

#[agent]
impl Sink {
    #[on_message]
    async fn numbered(&mut self, msg: Numbered) {
        tokio::time::sleep(Duration::from_millis(1)).await;
        self.received.record(msg.n);
    }
}

/// Starts a runtime at `url` with the sink `identity`.
async fn sink(url: &str, identity: &str, received: &Received) -> RuntimeHandle {
    sink_with(url, identity, received, 0).await
}

/// [`sink`], dropping messages whose id is one of the last `dedup` seen.
async fn sink_with(url: &str, identity: &str, received: &Received, dedup: usize) -> RuntimeHandle {
    let mut options = Sink::options().dedup(dedup);
    options.identity = identity.to_owned();
    Runtime::from_url(url)
        .expect("valid URL")
        .agent_with(
            Sink {
                received: received.clone(),
            },
            options,
        )
        .start()
        .await
        .expect("the sink starts")
}

/// The outcome of one case.
struct Report {
    case: &'static str,
    /// Messages the case may lose: those in the broker's (transient)
    /// queues when it restarted, as the broker counted them.
    may_lose: u64,
    /// Whether the consumer drops duplicates by message id (then none may
    /// reach it).
    dedup: bool,
    attempts: u64,
    ok: HashSet<u64>,
    /// From the fault's start to the first Ok after a failed send.
    recovery: Option<Duration>,
    fault_end: Option<Instant>,
}

impl Report {
    /// Prints the case's line and asserts that nothing Ok'd is lost.
    async fn check(self, received: &Received) {
        let missing = received.wait_for(&self.ok).await;
        let (got, duplicates, resumed) = {
            let seen = received.seen.lock().unwrap();
            (seen.numbers.len(), seen.duplicates, seen.resumed.flatten())
        };
        let seconds = |d: Option<Duration>| d.map_or("-".to_owned(), |d| format!("{:.1} s", d.as_secs_f64()));
        let line = format!(
            "fault case {:<38} sent {:>6}  Ok {:>6}  received {:>6}  lost {:>4}{}  duplicated {:>4}  \
             recovery: sends {}, deliveries {}",
            self.case,
            self.attempts,
            self.ok.len(),
            got,
            missing.len(),
            if self.may_lose > 0 {
                format!(" (of {} queued at the restart)", self.may_lose)
            } else {
                String::new()
            },
            duplicates,
            seconds(self.recovery),
            seconds(
                self.fault_end
                    .zip(resumed)
                    .map(|(end, at)| at.saturating_duration_since(end))
            ),
        );
        let _ = writeln!(std::io::stderr().lock(), "{line}");
        assert!(
            !self.dedup || duplicates == 0,
            "{line}: duplicates reached a consumer that drops them by message id"
        );
        assert!(
            missing.len() as u64 <= self.may_lose,
            "{line}: Ok'd but never received: {:?}",
            &missing[..missing.len().min(20)]
        );
    }
}

/// Streams `TOTAL` numbered messages from `client` to `target`, IN_FLIGHT
/// at once, retrying each failed send. When `fault_at` messages are Ok'd,
/// runs `fault` (on a blocking thread; the stream goes on meanwhile).
/// Recovery: from the fault's end to the first Ok after it.
async fn stream(
    case: &'static str,
    client: Arc<munggoggo::runtime::Client>,
    target: &str,
    received: &Received,
    fault_at: u64,
    fault: impl FnOnce() + Send + 'static,
) -> Report {
    struct Shared {
        ok: HashSet<u64>,
        attempts: u64,
        fault_start: Option<Instant>,
        fault_end: Option<Instant>,
        failed: bool,
        recovered: Option<Instant>,
    }
    let shared = Arc::new(Mutex::new(Shared {
        ok: HashSet::new(),
        attempts: 0,
        fault_start: None,
        fault_end: None,
        failed: false,
        recovered: None,
    }));
    let mut pace = tokio::time::interval(PACE);
    let mut fault = Some(fault);
    let mut faulting: Option<tokio::task::JoinHandle<()>> = None;
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut tasks = tokio::task::JoinSet::new();
    let deadline = Instant::now() + Duration::from_secs(600);
    for n in 0..TOTAL {
        pace.tick().await;
        let permit = Arc::clone(&slots).acquire_owned().await.unwrap();
        if faulting.is_none() && shared.lock().unwrap().ok.len() as u64 >= fault_at {
            let fault = fault.take().unwrap();
            let (shared, received) = (Arc::clone(&shared), received.clone());
            shared.lock().unwrap().fault_start = Some(Instant::now());
            faulting = Some(tokio::task::spawn_blocking(move || {
                fault();
                shared.lock().unwrap().fault_end = Some(Instant::now());
                received.fault_ended();
            }));
        }
        let (client, shared, target) = (Arc::clone(&client), Arc::clone(&shared), target.to_owned());
        tasks.spawn(async move {
            let _permit = permit;
            loop {
                shared.lock().unwrap().attempts += 1;
                let sent =
                    tokio::time::timeout(Duration::from_secs(60), client.send(&target, &Numbered { n }))
                        .await;
                match sent {
                    Ok(Ok(())) => {
                        let mut s = shared.lock().unwrap();
                        s.ok.insert(n);
                        if s.failed && s.recovered.is_none() {
                            s.recovered = Some(Instant::now());
                        }
                        return;
                    }
                    Ok(Err(_)) => {
                        {
                            let mut s = shared.lock().unwrap();
                            s.failed |= s.fault_start.is_some();
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await
                    }
                    Err(_) => panic!("a send hung for 60 s (its send timeout is 10 s)"),
                }
                assert!(Instant::now() < deadline, "message {n} was never Ok'd");
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a send task failed");
    }
    if let Some(faulting) = faulting {
        faulting.await.expect("the fault ran");
    }
    let shared = Arc::try_unwrap(shared).ok().unwrap().into_inner().unwrap();
    Report {
        case,
        may_lose: 0,
        dedup: false,
        attempts: shared.attempts,
        ok: shared.ok,
        recovery: match (shared.fault_start, shared.recovered) {
            (Some(start), Some(at)) => Some(at.saturating_duration_since(start)),
            _ => None,
        },
        fault_end: shared.fault_end,
    }
}

/// A private node (see [`Node::start_or_skip`]), with the SDK's own log
/// lines (connection lost and recovered, rebuilt channels) shown with a
/// failing case.
fn node(tag: &str) -> Option<Node> {
    node_with(tag, "")
}

/// [`node`] with more lines for its `rabbitmq.conf`.
fn node_with(tag: &str, conf_lines: &str) -> Option<Node> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn,munggoggo=info"))
        .with_test_writer()
        .try_init();
    Node::start_or_skip_with(tag, None, conf_lines)
}

/// Sends `n` to `target` again and again (each send bounded by its own
/// timeout) until the broker confirms one; fails past `limit` after `since`.
async fn send_until_confirmed(
    client: &munggoggo::runtime::Client,
    target: &str,
    n: u64,
    since: Instant,
    limit: Duration,
) {
    loop {
        let sent = tokio::time::timeout(Duration::from_secs(30), client.send(target, &Numbered { n }))
            .await
            .expect("a send never hangs past its timeout");
        if sent.is_ok() {
            return;
        }
        assert!(
            since.elapsed() < limit,
            "message {n}: no send got through: {sent:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `close_all_connections` during a stream, then a graceful stop and
/// restart of the consumer with a backlog: queues are no longer exclusive,
/// so what they hold waits for the consumer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_closed_and_consumer_restarted_lose_nothing() {
    let Some(node) = node("faults-conn") else { return };
    let node = Arc::new(node);
    let url = node.url();

    let received = Received::default();
    let consumer = sink(&url, "fault-sink", &received).await;
    let producer = Runtime::from_url(&url).unwrap().start().await.unwrap();
    let client = Arc::new(producer.client("fault-producer").await.unwrap());
    let cut = Arc::clone(&node);
    stream(
        "close_all_connections",
        Arc::clone(&client),
        "fault-sink",
        &received,
        TOTAL / 4,
        move || cut.close_all_connections(),
    )
    .await
    .check(&received)
    .await;

    consumer.shutdown().await;

    // A graceful stop of the consumer with a backlog, and a new one with
    // the same identity.
    let received = Received::default();
    let slot = Arc::new(Mutex::new(Some(sink(&url, "fault-sink-2", &received).await)));
    let (runtime, swap, url2, again) = (
        tokio::runtime::Handle::current(),
        Arc::clone(&slot),
        url.clone(),
        received.clone(),
    );
    stream(
        "consumer stop+start",
        Arc::clone(&client),
        "fault-sink-2",
        &received,
        TOTAL / 4,
        move || {
            runtime.block_on(async move {
                let old = swap.lock().unwrap().take().unwrap();
                old.shutdown().await;
                let new = sink(&url2, "fault-sink-2", &again).await;
                *swap.lock().unwrap() = Some(new);
            })
        },
    )
    .await
    .check(&received)
    .await;
    let again = slot.lock().unwrap().take().unwrap();
    again.shutdown().await;
    client.shutdown().await;
    producer.shutdown().await;
    assert!(
        node.queues().iter().all(|(name, _)| !name.starts_with("fault-")),
        "queues left behind: {:?}",
        node.queues()
    );
}

/// A broker restart and a `kill -9` of the broker during a stream, in
/// durable mode (durable queues, persistent messages): what the broker
/// confirmed is on disk and reaches the consumer after the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_and_kill_in_durable_mode_lose_nothing() {
    let Some(node) = node("faults-durable") else {
        return;
    };
    let node = Arc::new(node);
    let url = format!("{}?durable=true", node.url());

    let received = [Received::default(), Received::default()];
    let consumer = Runtime::from_url(&url)
        .unwrap()
        .agent_as(
            "durable-sink-a",
            Sink {
                received: received[0].clone(),
            },
        )
        .agent_as(
            "durable-sink-b",
            Sink {
                received: received[1].clone(),
            },
        )
        .start()
        .await
        .expect("the sinks start");
    let producer = Runtime::from_url(&url).unwrap().start().await.unwrap();
    let client = Arc::new(producer.client("durable-producer").await.unwrap());

    let restart = Arc::clone(&node);
    stream(
        "broker stop+start (durable)",
        Arc::clone(&client),
        "durable-sink-a",
        &received[0],
        TOTAL / 4,
        move || {
            restart.stop();
            restart.start_again();
        },
    )
    .await
    .check(&received[0])
    .await;

    let kill = Arc::clone(&node);
    stream(
        "broker kill -9 (durable)",
        Arc::clone(&client),
        "durable-sink-b",
        &received[1],
        TOTAL / 4,
        move || {
            kill.kill();
            kill.start_again();
        },
    )
    .await
    .check(&received[1])
    .await;

    tokio::time::timeout(Duration::from_secs(60), async {
        client.shutdown().await;
        producer.shutdown().await;
        consumer.shutdown().await;
    })
    .await
    .expect("the runtimes stop after the faults");
}

/// A send while the broker is down fails within its send timeout (10 s by
/// default) instead of hanging; then ten broker restarts in a row, each
/// followed by a message that must get through: no hang, no lost consumer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_fail_during_an_outage_and_ten_restarts_do_not_hang() {
    let Some(node) = node("faults-restarts") else {
        return;
    };
    let url = format!("{}?durable=true", node.url());
    let received = Received::default();
    let consumer = sink(&url, "restart-sink", &received).await;
    let producer = Runtime::from_url(&url).unwrap().start().await.unwrap();
    let client = producer.client("restart-producer").await.unwrap();
    client
        .send("restart-sink", &Numbered { n: 0 })
        .await
        .expect("a send before the outage");

    node.stop();
    let started = Instant::now();
    let during = tokio::time::timeout(
        Duration::from_secs(30),
        client.send("restart-sink", &Numbered { n: 1 }),
    )
    .await
    .expect("a send during the outage returns within its timeout");
    let error = during.expect_err("a send while the broker is down fails");
    let _ = writeln!(
        std::io::stderr().lock(),
        "fault case send during outage           failed after {:.1} s: {error}",
        started.elapsed().as_secs_f64()
    );
    assert!(
        matches!(
            error,
            munggoggo::Error::ConnectionLost { .. } | munggoggo::Error::SendTimeout { .. }
        ),
        "{error:?}"
    );
    node.start_again();

    let mut wanted = HashSet::from([0]);
    let mut recoveries = Vec::new();
    for round in 1..=10u64 {
        if round > 1 {
            node.stop();
            node.start_again();
        }
        let restarted = Instant::now();
        // Recovery counts from the broker's readiness, as its own tool
        // reports it, to the first send it confirms.
        let awaited = node.ctl(&["await_startup"]);
        assert!(
            awaited.status.success(),
            "round {round}: rabbitmqctl await_startup failed"
        );
        let ready = Instant::now();
        send_until_confirmed(
            &client,
            "restart-sink",
            round,
            restarted,
            Duration::from_secs(180),
        )
        .await;
        let sent = ready.elapsed();
        recoveries.push(sent);
        wanted.insert(round);
        let missing = received.wait_for(&wanted).await;
        assert!(
            missing.is_empty(),
            "round {round}: Ok'd but not received: {missing:?}"
        );
        let _ = writeln!(
            std::io::stderr().lock(),
            "fault case restart {round:>2}/10                  traffic again after {:.1} s; from broker ready: confirmed send {:.2} s, delivered {:.2} s",
            restarted.elapsed().as_secs_f64(),
            sent.as_secs_f64(),
            ready.elapsed().as_secs_f64()
        );
    }
    recoveries.sort();
    let _ = writeln!(
        std::io::stderr().lock(),
        "fault case ten restarts                 from broker ready to the first confirmed send: median {:.2} s, max {:.2} s",
        recoveries[recoveries.len() / 2].as_secs_f64(),
        recoveries[recoveries.len() - 1].as_secs_f64()
    );

    tokio::time::timeout(Duration::from_secs(60), async {
        client.shutdown().await;
        producer.shutdown().await;
        consumer.shutdown().await;
    })
    .await
    .expect("the runtimes stop after ten restarts");
}

/// What a source behaviour sent, as it saw it.
#[derive(Default)]
struct Sent {
    /// The numbers whose `ctx.send` returned Ok.
    ok: HashSet<u64>,
    attempts: u64,
}

/// A producer that is an agent: one run of its cyclic behaviour streams
/// every number to `target` without `flush`, as a behaviour feeding a
/// pipeline does (a send that fails is tried again). While `hold` is set,
/// it flushes, says it is `quiet`, and waits.
#[agent]
struct Source {
    target: String,
    total: u64,
    sent: Arc<Mutex<Sent>>,
    hold: tokio::sync::watch::Receiver<bool>,
    quiet: Arc<tokio::sync::watch::Sender<bool>>,
}

#[agent]
impl Source {
    #[behaviour(cyclic)]
    async fn stream(&mut self, ctx: &Context) -> Next {
        let mut n = 0;
        while n < self.total {
            if *self.hold.borrow() {
                // Every earlier send confirmed: what the broker holds now
                // is all there is.
                let _ = ctx.flush().await;
                self.quiet.send_replace(true);
                let _ = self.hold.wait_for(|held| !held).await;
                continue;
            }
            self.sent.lock().unwrap().attempts += 1;
            match ctx.send(&self.target, &Numbered { n }).await {
                Ok(()) => {
                    self.sent.lock().unwrap().ok.insert(n);
                    n += 1;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
            tokio::time::sleep(PACE).await;
        }
        Next::Stop
    }
}

/// Messages per stream from a behaviour.
const FROM_BEHAVIOUR: u64 = 5_000;

/// The hold switch of a [`Source`], for a fault that needs the producer
/// quiet for a moment (to count what the broker's queues hold).
struct Hold {
    hold: tokio::sync::watch::Sender<bool>,
    quiet: tokio::sync::watch::Receiver<bool>,
    runtime: tokio::runtime::Handle,
}

impl Hold {
    /// Holds the source once everything it sent is confirmed.
    fn pause(&mut self) {
        self.hold.send_replace(true);
        let quiet = &mut self.quiet;
        self.runtime
            .block_on(async { quiet.wait_for(|quiet| *quiet).await.map(|_| ()) })
            .expect("the source holds");
    }

    fn resume(&self) {
        self.hold.send_replace(false);
    }
}

/// Streams `FROM_BEHAVIOUR` numbers from a [`Source`] at `url` to a sink
/// `target` there; when `fault_at` are Ok'd, runs `fault` (on a blocking
/// thread), which returns how many messages it may lose.
async fn stream_from_behaviour(
    case: &'static str,
    url: &str,
    target: &str,
    dedup: usize,
    fault_at: u64,
    fault: impl FnOnce(&mut Hold) -> u64 + Send + 'static,
) {
    let received = Received::default();
    let consumer = sink_with(url, target, &received, dedup).await;
    let sent = Arc::new(Mutex::new(Sent::default()));
    let (hold, held) = tokio::sync::watch::channel(false);
    let (quiet, quieted) = tokio::sync::watch::channel(false);
    let producer = Runtime::from_url(url)
        .unwrap()
        .agent_as(
            format!("{target}-source"),
            Source {
                target: target.to_owned(),
                total: FROM_BEHAVIOUR,
                sent: Arc::clone(&sent),
                hold: held,
                quiet: Arc::new(quiet),
            },
        )
        .start()
        .await
        .expect("the source starts");
    let ok = |sent: &Mutex<Sent>| sent.lock().unwrap().ok.len() as u64;
    common::until("the stream is under way", Duration::from_secs(120), || {
        ok(&sent) >= fault_at
    })
    .await;
    let mut hold = Hold {
        hold,
        quiet: quieted,
        runtime: tokio::runtime::Handle::current(),
    };
    let ended = received.clone();
    let (may_lose, fault_end) = tokio::task::spawn_blocking(move || {
        let may_lose = fault(&mut hold);
        hold.resume();
        ended.fault_ended();
        (may_lose, Instant::now())
    })
    .await
    .expect("the fault ran");
    common::until("every number is Ok'd", Duration::from_secs(300), || {
        ok(&sent) == FROM_BEHAVIOUR
    })
    .await;
    let (attempts, ok) = {
        let sent = sent.lock().unwrap();
        (sent.attempts, sent.ok.clone())
    };
    Report {
        case,
        may_lose,
        dedup: dedup > 0,
        attempts,
        ok,
        recovery: None,
        fault_end: Some(fault_end),
    }
    .check(&received)
    .await;
    tokio::time::timeout(Duration::from_secs(60), async {
        producer.shutdown().await;
        consumer.shutdown().await;
    })
    .await
    .expect("the runtimes stop after the fault");
}

/// A behaviour's sends, which return once the message is in the publish
/// window, through every fault: the outbox publishes what the broker did
/// not confirm again on the next connection. Transient mode loses at most
/// what the broker's queues held when it restarted (counted by the broker
/// with the producer held still); durable mode loses nothing. The durable restart
/// case's consumer drops duplicates by message id, and none reach it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_behaviour_sending_without_flush_loses_nothing_through_faults() {
    let Some(node) = node("faults-outbox") else {
        return;
    };
    let node = Arc::new(node);
    let transient = node.url();
    let durable = format!("{}?durable=true", node.url());
    let at = FROM_BEHAVIOUR / 5;

    let cut = Arc::clone(&node);
    stream_from_behaviour(
        "behaviour, close_all_connections",
        &transient,
        "outbox-sink-a",
        0,
        at,
        move |_| {
            cut.close_all_connections();
            0
        },
    )
    .await;

    let restart = Arc::clone(&node);
    stream_from_behaviour(
        "behaviour, broker stop+start",
        &transient,
        "outbox-sink-b",
        0,
        at,
        move |hold| {
            hold.pause();
            let queued = restart
                .queues()
                .into_iter()
                .find(|(name, _)| name == "outbox-sink-b")
                .map_or(0, |(_, messages)| messages);
            restart.stop();
            // Sent during the outage: into the outbox.
            hold.resume();
            restart.start_again();
            queued
        },
    )
    .await;

    let restart = Arc::clone(&node);
    stream_from_behaviour(
        "behaviour, restart (durable, dedup)",
        &durable,
        "outbox-sink-c",
        FROM_BEHAVIOUR as usize,
        at,
        move |_| {
            restart.stop();
            restart.start_again();
            0
        },
    )
    .await;

    let kill = Arc::clone(&node);
    stream_from_behaviour(
        "behaviour, kill -9 (durable)",
        &durable,
        "outbox-sink-d",
        0,
        at,
        move |_| {
            kill.kill();
            kill.start_again();
            0
        },
    )
    .await;
}

/// A URL of two nodes (a private one first, then the test broker, with a
/// vhost of the same name on both): when the node the runtime is on stops,
/// its connections move to the other node, its agent's queues are declared
/// there, and messages flow again while the first node is still down.
/// (Two brokers, not a cluster: what was queued on the stopped node stays
/// there; the cluster suite covers queues that survive a node.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_of_two_nodes_moves_to_the_other_when_one_stops() {
    let Some(node) = node("faults-nodes") else {
        return;
    };
    let Some(shared) = munggoggo_test_support::broker_url_or_skip() else {
        return;
    };
    let (root, rest) = shared.rsplit_once('/').expect("a URL with a vhost");
    let vhost = rest.split('?').next().unwrap_or(rest);
    let shared_address = root.rsplit_once('@').map_or(root, |(_, address)| address);
    for args in [
        vec!["add_vhost", vhost],
        vec!["set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
    ] {
        let out = node.ctl(&args);
        assert!(out.status.success(), "rabbitmqctl {args:?}: {out:?}");
    }
    let private_address = node
        .url()
        .split_once('@')
        .map(|(_, rest)| rest[..rest.find(['/', '?']).unwrap_or(rest.len())].to_owned())
        .expect("the node's address");
    let url = format!("amqp://guest:guest@{private_address},{shared_address}/{vhost}?dead_letters=false");

    let received = Received::default();
    let consumer = sink(&url, "nodes-sink", &received).await;
    let client = consumer.client("nodes-producer").await.unwrap();
    client
        .send("nodes-sink", &Numbered { n: 0 })
        .await
        .expect("a send through the first node");
    assert!(
        received.wait_for(&HashSet::from([0])).await.is_empty(),
        "the first message arrives"
    );

    node.stop();
    let stopped = Instant::now();
    send_until_confirmed(&client, "nodes-sink", 1, stopped, Duration::from_secs(120)).await;
    let missing = received.wait_for(&HashSet::from([0, 1])).await;
    assert!(missing.is_empty(), "Ok'd on the second node but not received");
    let _ = writeln!(
        std::io::stderr().lock(),
        "fault case node stopped (two nodes)     traffic on the other node after {:.2} s",
        stopped.elapsed().as_secs_f64()
    );
    tokio::time::timeout(Duration::from_secs(60), consumer.shutdown())
        .await
        .expect("the runtime stops");
}

/// Agents stopping together on a connection near its channel limit (a
/// private node with `channel_max = 64`; each agent holds two channels on
/// the consuming connection and needs one more to delete its queues): every
/// queue of theirs goes. Deleting takes one channel per agent, waits for a
/// refused one, and goes on with the next queue rather than giving up the
/// agent's remaining queues.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_stopping_together_at_the_channel_limit_leave_no_queue() {
    let Some(node) = node_with("faults-channels", "channel_max = 64\n") else {
        return;
    };
    let rt = Runtime::from_url(&node.url()).unwrap().start().await.unwrap();
    let received = Received::default();
    for n in 0..28 {
        rt.spawn_as(
            format!("crowd-{n}"),
            Sink {
                received: received.clone(),
            },
        )
        .await
        .unwrap_or_else(|e| panic!("agent {n} starts: {e}"));
    }
    let before: Vec<String> = node
        .queues()
        .into_iter()
        .map(|(name, _)| name)
        .filter(|name| name.starts_with("crowd-"))
        .collect();
    assert_eq!(before.len(), 28 * 3, "three queues an agent: {before:?}");
    tokio::time::timeout(Duration::from_secs(120), rt.shutdown())
        .await
        .expect("the agents stop");
    let left: Vec<(String, u64)> = node
        .queues()
        .into_iter()
        .filter(|(name, _)| name.starts_with("crowd-"))
        .collect();
    let _ = writeln!(
        std::io::stderr().lock(),
        "fault case 28 agents stop at channel_max 64  queues before {}, left {}",
        before.len(),
        left.len()
    );
    assert!(left.is_empty(), "queues left behind: {left:?}");
}
