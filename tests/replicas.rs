//! Replicated agents on both buses: replicas share their identity's direct
//! messages and `#[rpc]` calls through churn, topic handlers get each
//! publication once per group or once per replica as declared, singleton
//! behaviours run on one replica at a time and move when it stops, and a
//! replicated and a non-replicated agent never share an identity.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{unique, until};
use munggoggo::prelude::*;
use munggoggo::{AgentHandle, AgentOptions, Error, RuntimeHandle, State};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, Message)]
struct Job {
    n: u64,
}

/// A broadcast handled once per group (the default).
#[derive(Debug, Serialize, Deserialize, Message)]
struct Notice {
    n: u64,
}

/// A broadcast every replica handles (`delivery = "each_replica"`).
#[derive(Debug, Serialize, Deserialize, Message)]
struct Flush {
    n: u64,
}

/// What the replicas of one test did.
#[derive(Default)]
struct Log {
    /// Direct jobs: how often each was handled.
    jobs: Mutex<HashMap<u64, u32>>,
    /// Publications on `orders.*` (once per group): how often each was handled.
    orders: Mutex<HashMap<u64, u32>>,
    /// Publications on `prices.*` (each replica): what each replica got.
    prices: Mutex<HashMap<String, HashSet<u64>>>,
    /// `Notice` broadcasts: how often each was handled.
    notices: Mutex<HashMap<u64, u32>>,
    /// `Flush` broadcasts: what each replica got.
    flushes: Mutex<HashMap<String, HashSet<u64>>>,
    /// Replicas inside the singleton behaviour now, and how often two were.
    inside: AtomicUsize,
    overlaps: AtomicUsize,
    /// The replica of each singleton run, in order.
    ticks: Mutex<Vec<String>>,
}

impl Log {
    fn count(map: &Mutex<HashMap<u64, u32>>, n: u64) {
        *map.lock().unwrap().entry(n).or_default() += 1;
    }

    fn distinct(map: &Mutex<HashMap<u64, u32>>) -> usize {
        map.lock().unwrap().len()
    }

    fn total(map: &Mutex<HashMap<u64, u32>>) -> u64 {
        map.lock().unwrap().values().map(|&c| u64::from(c)).sum()
    }

    fn last_tick(&self) -> Option<String> {
        self.ticks.lock().unwrap().last().cloned()
    }
}

#[agent(replicated)]
struct Worker {
    log: Arc<Log>,
}

#[agent]
impl Worker {
    #[on_message]
    async fn job(&mut self, job: Job) {
        Log::count(&self.log.jobs, job.n);
    }

    #[on_message(topic = "orders.*")]
    async fn order(&mut self, job: Job) {
        Log::count(&self.log.orders, job.n);
    }

    #[on_message(topic = "prices.*", delivery = "each_replica")]
    async fn price(&mut self, ctx: &Context, job: Job) {
        let mut prices = self.log.prices.lock().unwrap();
        prices.entry(ctx.identity().to_owned()).or_default().insert(job.n);
    }

    #[on_message]
    async fn notice(&mut self, notice: Notice) {
        Log::count(&self.log.notices, notice.n);
    }

    #[on_message(delivery = "each_replica")]
    async fn flush(&mut self, ctx: &Context, flush: Flush) {
        let mut flushes = self.log.flushes.lock().unwrap();
        flushes
            .entry(ctx.identity().to_owned())
            .or_default()
            .insert(flush.n);
    }

    #[behaviour(periodic = "20ms", initial_delay = "0s", singleton)]
    async fn tick(&mut self, ctx: &Context) {
        if self.log.inside.fetch_add(1, Ordering::SeqCst) > 0 {
            self.log.overlaps.fetch_add(1, Ordering::SeqCst);
        }
        self.log.ticks.lock().unwrap().push(ctx.identity().to_owned());
        tokio::time::sleep(Duration::from_millis(2)).await;
        self.log.inside.fetch_sub(1, Ordering::SeqCst);
    }

    #[rpc]
    async fn whoami(&mut self, ctx: &Context) -> String {
        ctx.identity().to_owned()
    }
}

/// The options of a replica of group `identity`.
fn replica_of(identity: &str) -> AgentOptions {
    let mut options = <Worker as munggoggo::agent::AgentDefaults>::options();
    options.identity = identity.to_owned();
    options
}

async fn start_replica(rt: &RuntimeHandle, identity: &str, log: &Arc<Log>) -> AgentHandle {
    let worker = Worker { log: Arc::clone(log) };
    rt.spawn_with(worker, replica_of(identity))
        .await
        .expect("a replica starts")
}

/// Three replicas of a new group, with the log they share.
async fn group_of_three(rt: &RuntimeHandle) -> (String, Arc<Log>, Vec<AgentHandle>) {
    let identity = unique("worker");
    let log = Arc::new(Log::default());
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(start_replica(rt, &identity, &log).await);
    }
    (identity, log, replicas)
}

/// Waits until each of 3 replicas got all `count` of what goes to every
/// replica (`each`) and the group all `count` of what goes to one
/// (`once`), then checks that none of the latter was handled twice.
async fn delivered(each: &Mutex<HashMap<String, HashSet<u64>>>, once: &Mutex<HashMap<u64, u32>>, count: u64) {
    until(
        "every replica got every one of its own",
        Duration::from_secs(120),
        || {
            let each = each.lock().unwrap();
            each.len() == 3 && each.values().all(|got| got.len() as u64 == count)
        },
    )
    .await;
    until("the group got every one of its", Duration::from_secs(60), || {
        Log::distinct(once) as u64 == count
    })
    .await;
    // Every replica's own queue drained after the shared one filled: a
    // second handling would have arrived by now.
    assert_eq!(Log::total(once), count, "each handled once per group");
}

fn state_of(handle: &AgentHandle, method: &str) -> State {
    handle
        .behaviours()
        .into_iter()
        .find(|b| b.name.ends_with(method))
        .map(|b| b.state)
        .expect("the behaviour exists")
}

/// The replica running the singleton, once exactly one does and the
/// others are in standby.
async fn holder(replicas: &[AgentHandle]) -> AgentHandle {
    let mut found = None;
    until(
        "one replica runs the singleton, the others stand by",
        Duration::from_secs(20),
        || {
            let states: Vec<State> = replicas.iter().map(|r| state_of(r, ".tick")).collect();
            let running = states.iter().filter(|s| **s == State::Running).count();
            let standby = states.iter().filter(|s| **s == State::Standby).count();
            found = replicas
                .iter()
                .find(|r| state_of(r, ".tick") == State::Running)
                .cloned();
            running == 1 && standby == replicas.len() - 1
        },
    )
    .await;
    found.expect("a holder")
}

/// Sends [`JOBS`] numbered jobs to `identity` in a task of their own;
/// the task returns the numbers of those the bus confirmed.
fn produce(client: &Arc<munggoggo::runtime::Client>, identity: &str) -> tokio::task::JoinHandle<Vec<u64>> {
    let client = Arc::clone(client);
    let identity = identity.to_owned();
    tokio::spawn(async move {
        let mut ok = Vec::new();
        for n in 0..JOBS {
            match client.send(&identity, &Job { n }).await {
                Ok(()) => ok.push(n),
                Err(e) => eprintln!("send {n} failed: {e}"),
            }
        }
        ok
    })
}

/// Prints the median and the maximum of the takeovers.
fn print_takeovers(after: &str, mut takeovers: Vec<Duration>) {
    takeovers.sort();
    println!(
        "singleton takeover {after}: median {:?}, max {:?} over {}",
        takeovers[takeovers.len() / 2],
        takeovers[takeovers.len() - 1],
        takeovers.len()
    );
}

const JOBS: u64 = 30_000;
const PUBLICATIONS: u64 = 10_000;
const BROADCASTS: u64 = 1_000;

on_both_buses! {
    async fn replicas_share_direct_messages_and_calls_through_graceful_churn(rt) {
        let (identity, log, mut replicas) = group_of_three(&rt).await;
        let names: HashSet<String> = replicas.iter().map(|r| r.identity().to_owned()).collect();
        assert_eq!(names.len(), 3, "each replica has a name of its own: {names:?}");
        assert!(names.iter().all(|n| n.starts_with(&format!("{identity}@"))), "{names:?}");

        let client = Arc::new(rt.client(unique("producer")).await.unwrap());
        let producer = produce(&client, &identity);
        // Replicas stop gracefully and new ones start while the jobs go
        // out; the identity answers calls throughout.
        let mut answered = HashSet::new();
        let mut cycles = 0;
        while !producer.is_finished() || cycles < 3 {
            let leaving = replicas.remove(0);
            leaving.shutdown().await;
            replicas.push(start_replica(&rt, &identity, &log).await);
            for _ in 0..5 {
                let who: String = client.call(&identity, "whoami", ()).await.expect("the group answers calls");
                answered.insert(who);
            }
            cycles += 1;
        }
        let ok = producer.await.unwrap();
        assert_eq!(ok.len() as u64, JOBS, "every send to the group is confirmed while a replica lives");
        until("every confirmed job is handled", Duration::from_secs(120), || Log::distinct(&log.jobs) == ok.len()).await;
        {
        let jobs = log.jobs.lock().unwrap();
        assert!(ok.iter().all(|n| jobs.contains_key(n)), "a confirmed job was not handled");
        let duplicates: u64 = jobs.values().map(|&c| u64::from(c) - 1).sum();
        println!(
            "replicas: {} jobs confirmed, {} handled at least once, {duplicates} duplicates, {cycles} replicas replaced, calls answered by {} replicas",
            ok.len(),
            jobs.len(),
            answered.len()
        );
        }
        for replica in &replicas {
            let job = replica.behaviours().into_iter().find(|b| b.name.ends_with(".job")).unwrap();
            assert_eq!(job.errors, 0, "no job rejected: {:?}", job.last_error);
        }
        assert!(answered.len() > 1, "calls to the identity are shared out: {answered:?}");

        // Each replica stays addressable by its own name: a ping, a call
        // and a direct message reach that replica alone.
        let one = replicas[0].identity().to_owned();
        client.ping(&one).await.expect("a replica answers a ping to its own name");
        let who: String = client.call(&one, "whoami", ()).await.unwrap();
        assert_eq!(who, one);
        client.send(&one, &Job { n: JOBS }).await.unwrap();
        until("the job for one replica is handled", Duration::from_secs(30), || {
            log.jobs.lock().unwrap().contains_key(&JOBS)
        })
        .await;
    }

    async fn topic_handlers_get_publications_once_per_group_or_once_per_replica(rt) {
        let (_, log, replicas) = group_of_three(&rt).await;
        // Topics of this test only: the names are unique per run.
        let client = rt.client(unique("publisher")).await.unwrap();
        for n in 0..PUBLICATIONS {
            client.publish("orders.new", &Job { n }).await.unwrap();
            client.publish("prices.new", &Job { n }).await.unwrap();
        }
        delivered(&log.prices, &log.orders, PUBLICATIONS).await;
        for replica in &replicas {
            replica.shutdown().await;
        }
    }

    async fn broadcasts_are_handled_once_per_group_or_on_every_replica(rt) {
        let (_, log, replicas) = group_of_three(&rt).await;
        let client = rt.client(unique("announcer")).await.unwrap();
        for n in 0..BROADCASTS {
            client.broadcast(&Notice { n }).await.unwrap();
            client.broadcast(&Flush { n }).await.unwrap();
        }
        delivered(&log.flushes, &log.notices, BROADCASTS).await;
        for replica in &replicas {
            let notice = replica.behaviours().into_iter().find(|b| b.name.ends_with(".notice")).unwrap();
            assert_eq!(notice.errors, 0, "{:?}", notice.last_error);
            replica.shutdown().await;
        }
    }

    async fn a_singleton_runs_on_one_replica_at_a_time_and_moves_when_its_holder_stops(rt) {
        let (identity, log, mut replicas) = group_of_three(&rt).await;
        let mut takeovers = Vec::new();
        for _ in 0..5 {
            let held = holder(&replicas).await;
            let before = held.identity().to_owned();
            until("the holder runs the singleton", Duration::from_secs(20), || log.last_tick().as_deref() == Some(before.as_str())).await;
            replicas.retain(|r| r.identity() != before);
            let stopped = tokio::time::Instant::now();
            held.shutdown().await;
            until("another replica runs the singleton", Duration::from_secs(TAKEOVER_BOUND_SECS), || {
                log.last_tick().is_some_and(|t| t != before)
            })
            .await;
            takeovers.push(stopped.elapsed());
            replicas.push(start_replica(&rt, &identity, &log).await);
        }
        // Stopping the singleton on its holder hands it on too; started
        // again there, it waits in standby.
        let held = holder(&replicas).await;
        let before = held.identity().to_owned();
        held.context().stop_behaviour("tick").await.unwrap();
        assert_eq!(state_of(&held, ".tick"), State::Init);
        let seen = log.ticks.lock().unwrap().len();
        until("another replica runs the stopped singleton", Duration::from_secs(TAKEOVER_BOUND_SECS), || {
            log.ticks.lock().unwrap()[seen..].iter().any(|t| *t != before)
        })
        .await;
        held.context().start_behaviour("tick").await.unwrap();
        holder(&replicas).await;
        assert_eq!(state_of(&held, ".tick"), State::Standby, "started again, it waits for the lease");
        print_takeovers("after a graceful stop", takeovers);
        assert_eq!(log.overlaps.load(Ordering::SeqCst), 0, "two replicas ran the singleton at once");
        for replica in &replicas {
            replica.shutdown().await;
        }
    }

    async fn a_replicated_and_a_plain_agent_never_share_an_identity(rt) {
        let identity = unique("worker");
        let log = Arc::new(Log::default());
        let replica = start_replica(&rt, &identity, &log).await;
        let mut plain = replica_of(&identity);
        plain.replicated = false;
        let refused = rt.spawn_with(Worker { log: Arc::clone(&log) }, plain.clone()).await;
        match refused {
            Err(e @ Error::IdentityKind { .. }) => {
                let text = e.to_string();
                assert!(text.contains(&identity) && text.contains("replicas of a replicated agent"), "{text}");
            }
            other => panic!("a plain agent took a replicated identity: {:?}", other.map(|h| h.identity().to_owned())),
        }
        replica.shutdown().await;
        replica.stopped().await;

        let other = unique("plain");
        plain.identity = other.clone();
        let holder = rt.spawn_with(Worker { log: Arc::clone(&log) }, plain).await.unwrap();
        match rt.spawn_with(Worker { log: Arc::clone(&log) }, replica_of(&other)).await {
            Err(e @ Error::IdentityKind { .. }) => {
                assert!(e.to_string().contains("an agent that is not replicated"), "{e}");
            }
            other => panic!("a replica took a plain agent's identity: {:?}", other.map(|h| h.identity().to_owned())),
        }
        // Two plain agents: as before.
        let mut second = replica_of(holder.identity());
        second.replicated = false;
        assert!(matches!(
            rt.spawn_with(Worker { log: Arc::clone(&log) }, second).await,
            Err(Error::IdentityInUse(_))
        ));
        holder.shutdown().await;
    }
}

/// A group and its singleton on a private node whose connections are all
/// closed, then which restarts (durable mode): after each fault exactly one
/// replica runs the singleton again (never two at once), and the jobs sent
/// to the group reach it, once each.
#[cfg(feature = "amqp")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_and_its_singleton_come_back_after_broker_faults() {
    let Some(node) = common::node::Node::start_or_skip("replicas-faults", None) else {
        return;
    };
    let url = format!("{}?durable=true", node.url());
    let rt = munggoggo::Runtime::from_url(&url).unwrap().start().await.unwrap();
    let (identity, log, replicas) = group_of_three(&rt).await;
    holder(&replicas).await;
    let client = rt.client(unique("producer")).await.unwrap();
    for (round, fault) in ["close_all_connections", "stop+start"].into_iter().enumerate() {
        match fault {
            "close_all_connections" => node.close_all_connections(),
            _ => {
                node.stop();
                node.start_again();
            }
        }
        let ticks = log.ticks.lock().unwrap().len();
        holder(&replicas).await;
        until("the singleton runs again", Duration::from_secs(30), || {
            log.ticks.lock().unwrap().len() > ticks + 5
        })
        .await;
        let jobs = (round as u64 * 1_000)..(round as u64 * 1_000 + 300);
        for n in jobs.clone() {
            // A send may time out while the group's queues come back.
            while client.send(&identity, &Job { n }).await.is_err() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        until("the group handled every job", Duration::from_secs(60), || {
            let handled = log.jobs.lock().unwrap();
            jobs.clone().all(|n| handled.contains_key(&n))
        })
        .await;
        eprintln!("replicas after {fault}: one singleton holder again, 300 jobs handled");
    }
    assert_eq!(
        log.overlaps.load(Ordering::SeqCst),
        0,
        "two replicas ran the singleton at once"
    );
    client.shutdown().await;
    rt.shutdown().await;
}

/// The documented bound of a singleton's takeover after its holder stops
/// gracefully or its process dies (see the guide's "Scaling out").
const TAKEOVER_BOUND_SECS: u64 = 10;

/// Replicas in processes of their own on RabbitMQ, killed with `kill -9`:
/// the test binary runs itself as a replica (`processes::replica`, which
/// does nothing unless [`CHILD`] is set), and a collector agent in this
/// process hears from every replica what it did.
#[cfg(feature = "amqp")]
mod processes {
    use std::io::{BufRead, BufReader};
    use std::process::{Child, Command, Stdio};

    use super::*;

    /// Set in a replica process: `<identity> <collector>`.
    const CHILD: &str = "MUNGGOGGO_REPLICA_CHILD";

    /// What a replica process prints before its name once it runs.
    const NAMED: &str = "replica-name=";

    #[derive(Debug, Serialize, Deserialize, Message)]
    struct Tick {
        replica: String,
    }

    #[derive(Debug, Serialize, Deserialize, Message)]
    struct Handled {
        n: u64,
    }

    /// A replica in a process of its own: reports each job it handles and
    /// each run of its singleton to the collector.
    #[agent(replicated)]
    struct Remote {
        collector: String,
    }

    #[agent]
    impl Remote {
        #[on_message]
        async fn job(&mut self, ctx: &Context, job: Job) -> munggoggo::Result<()> {
            ctx.send(&self.collector, &Handled { n: job.n }).await
        }

        #[behaviour(periodic = "20ms", initial_delay = "0s", singleton)]
        async fn tick(&mut self, ctx: &Context) -> munggoggo::Result<()> {
            let tick = Tick {
                replica: ctx.identity().to_owned(),
            };
            ctx.send(&self.collector, &tick).await
        }

        #[rpc]
        async fn whoami(&mut self, ctx: &Context) -> String {
            ctx.identity().to_owned()
        }
    }

    /// What the replicas reported.
    #[derive(Default)]
    struct Heard {
        ticks: Mutex<Vec<String>>,
        handled: Mutex<HashMap<u64, u32>>,
    }

    #[agent]
    struct Collector {
        heard: Arc<Heard>,
    }

    #[agent]
    impl Collector {
        #[on_message]
        async fn tick(&mut self, tick: Tick) {
            self.heard.ticks.lock().unwrap().push(tick.replica);
        }

        #[on_message]
        async fn handled(&mut self, handled: Handled) {
            Log::count(&self.heard.handled, handled.n);
        }
    }

    /// Runs as a replica when [`CHILD`] is set (else does nothing): prints
    /// its name after [`NAMED`] once it runs, then serves until killed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replica() {
        let Ok(child) = std::env::var(CHILD) else { return };
        let (identity, collector) = child.split_once(' ').expect("identity and collector");
        let url = munggoggo_test_support::given_url();
        let rt = munggoggo::Runtime::from_url(&url).unwrap().start().await.unwrap();
        let mut options = <Remote as munggoggo::agent::AgentDefaults>::options();
        options.identity = identity.to_owned();
        let remote = Remote {
            collector: collector.to_owned(),
        };
        let handle = rt.spawn_with(remote, options).await.unwrap();
        println!("{NAMED}{}", handle.identity());
        handle.stopped().await;
    }

    /// A replica process of group `identity`, and its replica name.
    struct Process {
        child: Child,
        name: String,
    }

    impl Process {
        fn start(identity: &str, collector: &str) -> Process {
            let mut child = Command::new(std::env::current_exe().unwrap())
                .args(["processes::replica", "--exact", "--nocapture", "--test-threads=1"])
                .env(CHILD, format!("{identity} {collector}"))
                .env("MUNGGOGGO_TEST_URL", common::buses::test_url())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("the test binary runs as a replica");
            let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
            let name = loop {
                match lines.next() {
                    Some(Ok(line)) => {
                        // After libtest's own words on the same line.
                        if let Some((_, name)) = line.split_once(NAMED) {
                            break name.to_owned();
                        }
                    }
                    _ => panic!("the replica process ended before it ran"),
                }
            };
            Process { child, name }
        }

        fn kill(mut self) {
            self.child.kill().unwrap();
            self.child.wait().unwrap();
        }
    }

    impl Drop for Process {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    async fn collector(rt: &RuntimeHandle) -> (String, Arc<Heard>) {
        let heard = Arc::new(Heard::default());
        let name = unique("collector");
        let mut options = <Collector as munggoggo::agent::AgentDefaults>::options();
        options.identity = name.clone();
        rt.spawn_with(
            Collector {
                heard: Arc::clone(&heard),
            },
            options,
        )
        .await
        .unwrap();
        (name, heard)
    }

    /// A runtime with a collector, and a group of three replica processes
    /// reporting to it.
    async fn remote_group() -> Option<(RuntimeHandle, String, String, Arc<Heard>, Vec<Process>)> {
        let rt = common::buses::amqp().await?;
        let identity = unique("remote");
        let (collector, heard) = collector(&rt).await;
        let processes = (0..3).map(|_| Process::start(&identity, &collector)).collect();
        Some((rt, identity, collector, heard, processes))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_singleton_moves_within_its_bound_when_its_holder_is_killed() {
        let Some((rt, identity, collector, heard, mut processes)) = remote_group().await else {
            return;
        };
        let mut takeovers = Vec::new();
        for round in 0..10 {
            // The holder is whoever ticked last, once ticks come in.
            let mut last = None;
            until(
                "a replica runs the singleton",
                Duration::from_secs(TAKEOVER_BOUND_SECS),
                || {
                    last = heard.ticks.lock().unwrap().last().cloned();
                    last.is_some()
                },
            )
            .await;
            let holder = last.unwrap();
            let at = processes
                .iter()
                .position(|p| p.name == holder)
                .unwrap_or_else(|| {
                    panic!("round {round}: `{holder}` ticks but is not a live replica process")
                });
            let seen = heard.ticks.lock().unwrap().len();
            let killed = tokio::time::Instant::now();
            processes.remove(at).kill();
            until(
                "another replica runs the singleton",
                Duration::from_secs(TAKEOVER_BOUND_SECS),
                || heard.ticks.lock().unwrap()[seen..].iter().any(|t| *t != holder),
            )
            .await;
            takeovers.push(killed.elapsed());
            // Steady state: from the new holder's first tick on, it alone
            // ticks (looked at over its next ten runs).
            until(
                "ten runs of the new holder",
                Duration::from_secs(TAKEOVER_BOUND_SECS),
                || {
                    heard.ticks.lock().unwrap()[seen..]
                        .iter()
                        .filter(|t| **t != holder)
                        .count()
                        >= 10
                },
            )
            .await;
            let ticks = heard.ticks.lock().unwrap();
            let after: Vec<&String> = ticks[seen..].iter().skip_while(|t| **t == holder).collect();
            let runners: HashSet<&&String> = after.iter().collect();
            assert_eq!(
                runners.len(),
                1,
                "round {round}: two replicas ran the singleton: {runners:?}"
            );
            drop(ticks);
            processes.push(Process::start(&identity, &collector));
        }
        print_takeovers("after kill -9 of its holder", takeovers);
        rt.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn confirmed_jobs_survive_kill_9_of_replicas() {
        let Some((rt, identity, collector, heard, mut processes)) = remote_group().await else {
            return;
        };
        let client = Arc::new(rt.client(unique("producer")).await.unwrap());
        let producer = produce(&client, &identity);
        let mut kills = 0;
        let mut answered = 0;
        while !producer.is_finished() || kills < 3 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            processes.remove(0).kill();
            kills += 1;
            processes.push(Process::start(&identity, &collector));
            let who: String = client
                .call(&identity, "whoami", ())
                .await
                .expect("the group answers calls");
            assert!(
                processes.iter().any(|p| p.name == who),
                "`{who}` answered but is not live"
            );
            answered += 1;
        }
        let ok = producer.await.unwrap();
        until("every confirmed job is handled", Duration::from_secs(120), || {
            let handled = heard.handled.lock().unwrap();
            ok.iter().all(|n| handled.contains_key(n))
        })
        .await;
        let duplicates: u64 = heard
            .handled
            .lock()
            .unwrap()
            .values()
            .map(|&c| u64::from(c) - 1)
            .sum();
        println!(
            "replicas under kill -9: {} of {JOBS} jobs confirmed, all handled, {duplicates} duplicates, {kills} replicas killed, {answered} calls answered",
            ok.len()
        );
        assert!(
            ok.len() as u64 == JOBS,
            "every send to the group is confirmed while a replica lives"
        );
        rt.shutdown().await;
    }
}
