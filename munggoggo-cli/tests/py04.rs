//! Opt-in: Rust agents with the real munggoggo 0.4 (Python) agents and its
//! `ctrl.py` on one broker. Set `MUNGGOGGO_PY04_RUN` to the `run` script of
//! a munggoggo 0.4 checkout (for example `../shared/py04/run`); without it
//! the test is skipped, in CI too (users who clone the project have no 0.4).
//!
//! It checks: `ctrl.py list-peers` and `list-behaviour` see a Rust agent; a
//! 0.4 agent receives a Rust direct, topic and fanout message and decodes
//! it with `SerializableObject`; a 0.4 agent calls a Rust `#[rpc]` method
//! through its RPC subsystem; the `munggoggo` CLI calls 0.4's
//! `example_rpc_method`; `ctrl.py` drives a Rust state machine, shows its
//! state and stops and starts it. Run it with `--nocapture` to see every step.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use munggoggo::prelude::*;
use munggoggo::{AgentDefaults, WireMode};
use serde::{Deserialize, Serialize};
use serde_json::Value;

mod py_common;
use py_common::{broker_at, script, unique, Script, STEP};

#[derive(Debug, Serialize, Deserialize, Message)]
struct DemoData {
    message: String,
    date: Option<f64>,
}

#[agent(identity = "rust-peer")]
#[derive(Default)]
struct RustPeer;

#[agent]
impl RustPeer {
    #[behaviour(periodic = "1s")]
    async fn tick(&mut self) {}

    #[on_message]
    async fn demo(&mut self, _msg: DemoData) {}

    #[rpc]
    async fn rust_py04_multiply(&mut self, x: i64, y: i64) -> i64 {
        x * y
    }
}

/// 0.4's `run` script and a runtime in 0.4 wire mode on the local
/// broker's default vhost, or `None` (the test is skipped) unless
/// `MUNGGOGGO_PY04_RUN` is set: opt-in, skipped in CI too, since users who
/// clone the project have no 0.4. 0.4's agents and `ctrl.py` only know the
/// default vhost of the local broker (its settings.py), so the opt-in
/// tests run there.
async fn opted_in() -> Option<(PathBuf, munggoggo::RuntimeHandle)> {
    let Some(run) = std::env::var_os("MUNGGOGGO_PY04_RUN").map(PathBuf::from) else {
        munggoggo_test_support::skip_opt_in("MUNGGOGGO_PY04_RUN", "munggoggo 0.4's `run` script");
        return None;
    };
    let url = munggoggo_test_support::given_url();
    let rt = broker_at(&url, WireMode::Py04).await?;
    Some((run, rt))
}

fn step(what: &str) {
    let _ = writeln!(std::io::stderr().lock(), "py04: {what}");
}

/// Runs a 0.4 script to its end and returns its stdout.
fn run04(run: &PathBuf, args: &[&str]) -> String {
    let out = Command::new(run).args(args).output().expect("py04 run starts");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    step(&format!("$ run {} -> {}\n{stdout}", args.join(" "), out.status));
    stdout
}

fn cli(args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_munggoggo"))
        .args(["--url", &munggoggo_test_support::given_url()])
        .args(args)
        .output()
        .expect("the CLI runs");
    step(&format!(
        "$ munggoggo {} -> {}\n{}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ));
    out
}

/// The next event line of a 0.4 agent script with this `event`, skipping
/// its log lines.
async fn event(script: &mut Script, event: &str) -> Value {
    loop {
        let line = script.line().await;
        if let Ok(value) = serde_json::from_str::<Value>(&line) {
            if value["event"] == event {
                step(&format!("0.4 agent: {line}"));
                return value;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_0_4_agents_and_rust_agents_on_one_broker() {
    let Some((run, rt)) = opted_in().await else {
        return;
    };
    let rust_id = unique("rust-peer");
    let mut options = RustPeer::options().exposing();
    options.identity = rust_id.clone();
    options.peer_interval = Some(Duration::from_secs(1));
    let peer = rt.spawn_with(RustPeer, options).await.unwrap();

    // A 0.4 agent receives a Rust direct, topic and fanout message.
    let py_id = unique("py04-agent");
    let topic = unique("py04.topic").replace('_', ".");
    let mut agent = Script::start(&run, &[&script("py04_agent.py"), &py_id, &topic]);
    event(&mut agent, "ready").await;
    let ctx = peer.context();
    let demo = |text: &str| DemoData {
        message: text.to_owned(),
        date: Some(1_546_300_800.0),
    };
    ctx.send(&py_id, &demo("direct")).await.unwrap();
    ctx.publish(&topic, &demo("topic")).await.unwrap();
    ctx.broadcast(&demo("fanout")).await.unwrap();
    let mut received = Vec::new();
    while received.len() < 3 {
        let got = event(&mut agent, "received").await;
        if got["c_type"] == "DemoData" {
            received.push(got["message"].as_str().unwrap_or_default().to_owned());
        }
    }
    received.sort();
    assert_eq!(received, ["direct", "fanout", "topic"]);

    // A 0.4 agent calls a Rust #[rpc] method through its RPC subsystem.
    writeln!(agent.child.stdin.as_mut().unwrap(), "call rust_py04_multiply").unwrap();
    assert_eq!(event(&mut agent, "result").await["result"], 42);
    let error = event(&mut agent, "error").await;
    let error = error["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("RuntimeError") && error.contains("`y`"),
        "{error}"
    );

    // ctrl.py sees the Rust agent.
    let peers = run04(&run, &["ctrl.py", "list-peers"]);
    assert!(peers.lines().any(|l| l.trim() == rust_id), "{peers}");
    let behaviours = run04(&run, &["ctrl.py", "list-behaviour", &rust_id]);
    assert!(behaviours.contains(&format!("{rust_id}.tick")), "{behaviours}");

    // The CLI calls 0.4's example_rpc_method on 0.4's demo agent `agent`.
    let mut demo_agent = Script::start(&run, &["munggoggo/agent.py"]);
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let out = cli(&["--json", "peers"]);
        if String::from_utf8_lossy(&out.stdout).contains("\"agent\"") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "0.4's agent never answered"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let out = cli(&["call", "agent", "example_rpc_method", r#"{"x": 6, "y": 7}"#]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42");
    // Rust-only requests fail at once for a 0.4 agent; the CLI falls back.
    let out = cli(&["behaviours", "agent"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("agent.Behaviour"));
    let out = cli(&["call", "agent", "example_rpc_method", "[6, 7]"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("named parameters"));

    // Leave nothing behind: 0.4 deletes its topic queues when it stops,
    // never its method queues (quirk Q9), and its Worker does not exit
    // after a Shutdown request (Q7).
    agent.finish().await;
    assert!(cli(&["shutdown", "agent"]).status.success());
    let _ = demo_agent.child.kill();
    peer.shutdown().await;
    rt.shutdown().await;
    delete_unused(&["example_rpc_method", "agent.Behaviour.pubsub_queue"]).await;
}

/// Deletes queues that no consumer uses and that hold no message.
async fn delete_unused(queues: &[&str]) {
    use lapin::options::QueueDeleteOptions;
    let url = munggoggo_test_support::given_url();
    let conn = lapin::Connection::connect(&url, lapin::ConnectionProperties::default())
        .await
        .expect("broker");
    for queue in queues {
        let channel = conn.create_channel().await.expect("channel");
        let unused = QueueDeleteOptions {
            if_unused: true,
            if_empty: true,
            ..QueueDeleteOptions::default()
        };
        let deleted = channel.queue_delete((*queue).into(), unused).await;
        step(&format!("delete queue {queue}: {deleted:?}"));
    }
    let _ = conn.close(200, "OK".into()).await;
}

#[derive(Debug, Serialize, Deserialize, Message)]
struct ReplicaJob {
    n: u64,
}

/// A replicated agent for [`real_0_4_sees_replicas_and_reaches_one`].
#[agent(replicated)]
struct Replica {
    handled: std::sync::Arc<std::sync::Mutex<Vec<(String, u64)>>>,
}

#[agent]
impl Replica {
    #[behaviour(periodic = "1s", singleton)]
    async fn tick(&mut self) {}

    #[on_message]
    async fn job(&mut self, ctx: &Context, job: ReplicaJob) {
        self.handled
            .lock()
            .unwrap()
            .push((ctx.identity().to_owned(), job.n));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_0_4_sees_replicas_and_reaches_one() {
    let Some((run, rt)) = opted_in().await else {
        return;
    };
    let group = unique("rust-replica");
    let handled = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let mut options = Replica::options();
        options.identity = group.clone();
        options.peer_interval = Some(Duration::from_secs(1));
        let replica = Replica {
            handled: std::sync::Arc::clone(&handled),
        };
        replicas.push(rt.spawn_with(replica, options).await.unwrap());
    }
    // ctrl.py lists each replica under its own name and lists its behaviours.
    let peers = run04(&run, &["ctrl.py", "list-peers"]);
    for replica in &replicas {
        assert!(peers.lines().any(|l| l.trim() == replica.identity()), "{peers}");
    }
    let one = replicas[0].identity().to_owned();
    let behaviours = run04(&run, &["ctrl.py", "list-behaviour", &one]);
    assert!(behaviours.contains(&format!("{one}.tick")), "{behaviours}");
    // A 0.4 direct message to the group's identity reaches one replica.
    run04(
        &run,
        &["ctrl.py", "send-message", r#"{"n": 7}"#, "ReplicaJob", &group],
    );
    let deadline = tokio::time::Instant::now() + STEP;
    while handled.lock().unwrap().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no replica got 0.4's message"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = handled.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "exactly one replica handles it: {got:?}");
    assert_eq!(got[0].1, 7);
    for replica in &replicas {
        replica.shutdown().await;
    }
    rt.shutdown().await;
}

#[derive(Debug, Serialize, Deserialize, Message)]
struct Knock {}

/// A Rust agent with a state machine, for [`ctrl_py_shows_a_state_machine_s_state`].
#[agent]
#[derive(Default)]
struct Door {
    knocks: u32,
}

/// Shut until someone knocks.
#[fsm(agent = Door)]
enum Hatch {
    #[state(initial, to = [Open])]
    Shut,
    #[state(to = [Shut])]
    Open,
}

#[agent]
impl Door {
    #[on_message]
    async fn knock(&mut self, _msg: Knock) {
        self.knocks += 1;
    }

    async fn shut(&mut self, _ctx: &Context) -> ShutTo {
        if std::mem::take(&mut self.knocks) > 0 {
            ShutTo::Open
        } else {
            ShutTo::Stay
        }
    }

    async fn open(&mut self, _ctx: &Context) -> OpenTo {
        OpenTo::Stay
    }
}

/// `ctrl.py` knocks (a 0.4 direct message), lists the machine with its
/// state (ListBehav's text), stops it and starts it again: it resumes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_py_shows_a_state_machine_s_state() {
    let Some((run, rt)) = opted_in().await else {
        return;
    };
    let id = unique("rust-door");
    let mut options = Door::options();
    options.identity = id.clone();
    options.peer_interval = Some(Duration::from_secs(1));
    let door = rt.spawn_with(Door::default(), options).await.unwrap();
    let hatch = format!("{id}.hatch");

    let listed = run04(&run, &["ctrl.py", "list-behaviour", &id]);
    assert!(
        listed.contains(&format!("{hatch} (state machine: in Shut since "))
            && listed.contains(", 0 transitions)"),
        "{listed}"
    );
    run04(&run, &["ctrl.py", "send-message", "{}", "Knock", &id]);
    door.wait_until(|d| {
        d.behaviour("hatch")
            .and_then(|b| b.machine)
            .is_some_and(|m| m.state == "Open")
    })
    .await
    .unwrap();
    let machine = door.behaviour("hatch").and_then(|b| b.machine).unwrap();
    let since = humantime::format_rfc3339_seconds(machine.entered());
    let shown = format!("{hatch} (state machine: in Open since {since}, 1 transition)");
    let listed = run04(&run, &["ctrl.py", "list-behaviour", &id]);
    assert!(listed.lines().any(|l| l.trim() == shown), "{shown:?} in {listed}");

    let stopped = run04(&run, &["ctrl.py", "call", "stop", &id, "hatch"]);
    assert!(stopped.contains(&format!("{hatch} stopped: init")), "{stopped}");
    let started = run04(&run, &["ctrl.py", "call", "start", &id, "hatch"]);
    assert!(started.contains(&format!("{hatch} started.")), "{started}");
    let listed = run04(&run, &["ctrl.py", "list-behaviour", &id]);
    assert!(
        listed.contains(&format!("{hatch} (state machine: in Open since "))
            && listed.contains(", 1 transition)"),
        "a restart resumes in Open: {listed}"
    );
    door.shutdown().await;
    rt.shutdown().await;
    // ctrl.py's RPC subsystem leaves its method queue (quirk Q9).
    delete_unused(&["example_rpc_method"]).await;
}
