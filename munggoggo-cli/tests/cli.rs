//! The `munggoggo` binary against agents started here on RabbitMQ: every
//! command in human and `--json` form, the error cases, two CLIs at once.
//!
//! RabbitMQ comes from `MUNGGOGGO_TEST_URL` (default: the local broker), in
//! a vhost of the process's own (`munggoggo-test-support`). Without a broker
//! the tests are skipped with a message, unless `CI` is set: then they fail.

use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use munggoggo::prelude::*;
use munggoggo::{AgentDefaults, AgentHandle, Runtime, RuntimeHandle, State};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;

#[derive(Debug, Serialize, Deserialize, Message)]
struct Job {
    n: u64,
}

/// A test agent: a periodic behaviour, a typed handler, a topic handler and
/// two RPC methods; it reports what it receives.
#[agent(identity = "cli-worker")]
#[derive(Default)]
struct Worker {
    events: Option<mpsc::UnboundedSender<String>>,
}

#[agent]
impl Worker {
    #[behaviour(periodic = "200ms")]
    async fn tick(&mut self) {}

    #[on_message]
    async fn job(&mut self, msg: Envelope<Job>) -> Result<(), String> {
        if msg.n == 13 {
            return Err("job 13 refused".to_owned());
        }
        self.report(format!("job {} from {}", msg.n, msg.sender()));
        Ok(())
    }

    #[on_message(topic = "cli-test.#")]
    async fn news(&mut self, msg: Envelope<Raw>) {
        let body = String::from_utf8_lossy(msg.body().as_bytes()).into_owned();
        self.report(format!("news {body}"));
    }

    #[rpc]
    async fn multiply(&mut self, x: i64, y: i64) -> Result<i64, munggoggo::Error> {
        Ok(x * y)
    }

    #[rpc]
    async fn slow(&mut self) -> Result<(), munggoggo::Error> {
        tokio::time::sleep(Duration::from_secs(3)).await;
        Ok(())
    }
}

impl Worker {
    fn report(&self, event: String) {
        if let Some(events) = &self.events {
            let _ = events.send(event);
        }
    }
}

/// An agent with a behaviour and no `#[rpc]` methods.
#[agent(identity = "cli-kitchen")]
#[derive(Default)]
struct Kitchen;

#[agent]
impl Kitchen {
    #[behaviour(periodic = "1h")]
    async fn clean(&mut self) {}
}

#[derive(Debug, Serialize, Deserialize, Message)]
struct Knock {}

/// An agent with a state machine: a hatch that opens at a knock.
#[agent]
#[derive(Default)]
struct Door {
    knocks: u32,
}

/// Shut until someone knocks; open for an hour at most.
#[fsm(agent = Door)]
enum Hatch {
    #[state(initial, to = [Open])]
    Shut,
    #[state(to = [Shut], timeout("1h" => Shut))]
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

/// The test broker, in this process's own vhost, without dead letters
/// (`dead_letters.rs` checks them in a vhost of its own).
fn url() -> String {
    let url = munggoggo_test_support::broker_url().expect("the test vhost was made when the test started");
    let joiner = if url.contains('?') { '&' } else { '?' };
    format!("{url}{joiner}dead_letters=false")
}

/// A runtime on RabbitMQ, or `None` (skipped) when no broker answers outside CI.
async fn broker() -> Option<RuntimeHandle> {
    munggoggo_test_support::broker_url_or_skip()?;
    let url = url();
    match Runtime::from_url(&url).expect("valid URL").start().await {
        Ok(rt) => Some(rt),
        Err(e) => {
            munggoggo_test_support::skip(format_args!(
                "no RabbitMQ broker at {} ({e}); start one or set MUNGGOGGO_TEST_URL",
                munggoggo::bus::redact(&url)
            ));
            None
        }
    }
}

fn unique(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}

/// A worker with a unique identity on `rt`, and its events.
async fn worker(rt: &RuntimeHandle) -> (AgentHandle, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    // A large trace store: other tests on the broker may flood the fanout.
    let mut options = Worker::options();
    options.identity = unique("cli-worker");
    options.trace_size = 20_000;
    let agent = rt
        .spawn_with(Worker { events: Some(tx) }, options)
        .await
        .expect("worker starts");
    (agent, rx)
}

/// The next event that starts with `prefix`; others are skipped (topic
/// publishes of tests running beside this one reach every worker).
async fn expect(rx: &mut mpsc::UnboundedReceiver<String>, prefix: &str) -> String {
    let wait = async {
        loop {
            let event = rx.recv().await.expect("event channel closed");
            if event.starts_with(prefix) {
                return event;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .unwrap_or_else(|_| panic!("no event `{prefix}...` within 10 s"))
}

/// Waits until the agent has traced an incoming message of this type.
async fn traced(agent: &AgentHandle, kind: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !agent
        .traces()
        .filter(None, None, Some("incoming"))
        .iter()
        .any(|e| e.record.properties.kind.as_deref() == Some(kind))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no incoming `{kind}` traced"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The binary's result.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "exit code; stderr: {}\nstdout: {}",
            self.stderr, self.stdout
        );
        &self.stdout
    }

    fn json(&self) -> Value {
        serde_json::from_str(self.ok()).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }

    /// Asserts a failure with this exit code and one line on stderr; returns it.
    fn fails(&self, code: i32) -> &str {
        assert_eq!(
            self.code, code,
            "exit code; stderr: {}\nstdout: {}",
            self.stderr, self.stdout
        );
        assert_eq!(
            self.stderr.lines().count(),
            1,
            "one line on stderr: {:?}",
            self.stderr
        );
        assert!(self.stderr.starts_with("error: "), "{:?}", self.stderr);
        &self.stderr
    }
}

fn command(url: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_munggoggo"));
    cmd.arg("--url")
        .arg(url)
        .args(args)
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1");
    cmd
}

fn finished(output: Output) -> Run {
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs the binary on the test broker (without blocking the runtime).
async fn cli(args: &[&str]) -> Run {
    cli_at(&url(), args).await
}

async fn cli_at(url: &str, args: &[&str]) -> Run {
    let mut cmd = command(url, args);
    tokio::task::spawn_blocking(move || finished(cmd.output().expect("the binary runs")))
        .await
        .expect("the binary's thread")
}

macro_rules! on_broker {
    ($(async fn $name:ident($rt:ident) $body:block)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some($rt) = broker().await else { return };
                $body
                $rt.shutdown().await;
            }
        )*
    };
}

on_broker! {
    async fn peers_lists_agents_with_their_behaviours(rt) {
        let (agent, _events) = worker(&rt).await;
        let id = agent.identity();

        let human = cli(&["peers"]).await;
        let line = human.ok().lines().find(|l| l.starts_with(&format!("{id} "))).unwrap_or_else(|| panic!("{id} in {}", human.stdout));
        assert!(line.contains("running") && line.contains("tick (running)") && line.contains("job (running)"), "{line}");
        assert!(human.stdout.starts_with("AGENT"), "{}", human.stdout);
        assert!(!human.stdout.contains("munggoggo-cli-"), "CLIs are not listed: {}", human.stdout);

        let json = cli(&["--json", "peers"]).await.json();
        let peers = json["peers"].as_array().expect("peers array");
        let me = peers.iter().find(|p| p["name"] == id).expect("the worker is a peer");
        assert_eq!(me["state"], "running");
        let behaviours = me["behaviours"].as_array().expect("behaviours");
        let names: Vec<&str> = behaviours.iter().map(|b| b["name"].as_str().unwrap()).collect();
        assert_eq!(names, [format!("{id}.tick"), format!("{id}.job"), format!("{id}.news")]);
        assert!(behaviours.iter().all(|b| b["state"] == "running"));
        assert!(peers.iter().all(|p| !p["name"].as_str().unwrap().starts_with("munggoggo-cli-")));
    }

    async fn behaviours_lists_names_states_runs_and_errors(rt) {
        let (agent, _events) = worker(&rt).await;
        let id = agent.identity();
        agent.context().stop_behaviour("news").await.expect("news stops");
        let client = rt.client(unique("cli-client")).await.expect("client");
        client.send(id, &Job { n: 1 }).await.expect("sent");
        client.send(id, &Job { n: 13 }).await.expect("sent");
        agent
            .wait_until(|a| a.behaviour("job").is_some_and(|b| b.runs == 1 && b.errors == 1))
            .await
            .expect("the jobs are handled");

        let human = cli(&["behaviours", id]).await;
        let out = human.ok();
        let header: Vec<&str> = out.lines().next().unwrap_or_default().split_whitespace().collect();
        assert_eq!(header, ["BEHAVIOUR", "STATE", "RUNS", "ERRORS", "LAST", "ERROR"], "{out}");
        let job = out.lines().find(|l| l.starts_with(&format!("{id}.job "))).unwrap_or_else(|| panic!("{out}"));
        let cells: Vec<&str> = job.split_whitespace().collect();
        assert_eq!(cells[1..4], ["running", "1", "1"], "{job}");
        assert!(job.ends_with("job 13 refused"), "{job}");
        // Stopped by a user: `stopped`, not munggoggo 0.4's `init` (which the JSON keeps).
        assert!(out.lines().any(|l| l.starts_with(&format!("{id}.news ")) && l.contains(" stopped ") && l.ends_with(" -")), "{out}");
        assert!(!out.contains(" init "), "{out}");

        let json = cli(&["behaviours", id, "--json"]).await.json();
        assert_eq!(json["agent"], id);
        assert_eq!(json["state"], "running");
        let behaviours = json["behaviours"].as_array().expect("behaviours");
        let names: Vec<&str> = behaviours.iter().map(|b| b["name"].as_str().unwrap()).collect();
        assert_eq!(names, [format!("{id}.tick"), format!("{id}.job"), format!("{id}.news")]);
        assert_eq!(
            behaviours[1],
            serde_json::json!({ "name": format!("{id}.job"), "state": "running", "runs": 1, "errors": 1, "last_error": format!("{id}.job: handler failed: job 13 refused") })
        );
        assert_eq!(
            behaviours[2],
            serde_json::json!({ "name": format!("{id}.news"), "state": "init", "runs": 0, "errors": 0, "last_error": null })
        );
        client.shutdown().await;
    }

    async fn stop_and_start_a_behaviour(rt) {
        let (agent, _events) = worker(&rt).await;
        let id = agent.identity();

        let out = cli(&["stop", id, "tick"]).await;
        assert_eq!(out.ok().trim(), format!("{id}.tick stopped"));
        assert_eq!(agent.behaviour("tick").unwrap().state, State::Init);
        // Shown as stopped wherever a person reads it.
        let out = cli(&["behaviours", id]).await;
        let tick = out.ok().lines().find(|l| l.starts_with(&format!("{id}.tick "))).unwrap_or_else(|| panic!("{}", out.stdout)).to_owned();
        assert_eq!(tick.split_whitespace().nth(1), Some("stopped"), "{tick}");
        let out = cli(&["peers"]).await;
        let line = out.ok().lines().find(|l| l.starts_with(&format!("{id} "))).unwrap_or_else(|| panic!("{}", out.stdout)).to_owned();
        assert!(line.contains("tick (stopped)") && line.contains("job (running)"), "{line}");
        let dot = cli(&["graph"]).await;
        assert!(dot.ok().contains("label=\"tick\\nstopped\""), "{}", dot.stdout);
        let json = cli(&["--json", "behaviours", id]).await.json();
        assert_eq!(json["behaviours"][0]["state"], "init", "the JSON keeps the agent's word");
        let out = cli(&["start", id, "tick"]).await;
        assert_eq!(out.ok().trim(), format!("{id}.tick started"));
        assert_eq!(agent.behaviour("tick").unwrap().state, State::Running);
        let out = cli(&["start", id, "tick"]).await;
        assert_eq!(out.ok().trim(), format!("{id}.tick is already running"));

        // JSON keeps munggoggo 0.4's result text.
        let json = cli(&["--json", "stop", id, "tick"]).await.json();
        assert_eq!(json["agent"], id);
        assert_eq!(json["behaviour"], format!("{id}.tick"));
        assert_eq!(json["command"], "stop");
        assert_eq!(json["result"], format!("{id}.tick stopped: init"));
        let json = cli(&["--json", "start", id, &format!("{id}.job")]).await.json();
        assert_eq!(json["result"], format!("{id}.job already running."));
        let json = cli(&["--json", "start", id, "tick"]).await.json();
        assert_eq!(json["result"], format!("{id}.tick started."));
    }

    async fn unknown_behaviour_lists_the_valid_ones(rt) {
        let (agent, _events) = worker(&rt).await;
        let id = agent.identity();
        let run = cli(&["stop", id, "nope"]).await;
        let line = run.fails(4);
        assert!(line.contains(&format!("agent `{id}` has no behaviour `nope`")), "{line}");
        assert!(line.contains("tick, job, news"), "{line}");

        let run = cli(&["--json", "start", id, "nope"]).await;
        run.fails(4);
        let json: Value = serde_json::from_str(&run.stdout).expect("a JSON error document");
        assert_eq!(json["error"]["kind"], "not_found");
        assert_eq!(json["error"]["known"], serde_json::json!(["tick", "job", "news"]));
    }

    async fn traces_with_filters(rt) {
        let (agent, mut events) = worker(&rt).await;
        let id = agent.identity();
        for n in 1..=3 {
            cli(&["send", id, "Job", &format!("{{\"n\": {n}}}")]).await.ok();
            expect(&mut events, &format!("job {n} from munggoggo-cli-")).await;
        }

        let json = cli(&["--json", "traces", id, "--category", "incoming"]).await.json();
        // Other tests may broadcast to every agent: count the jobs sent to this one.
        assert_eq!(json["agent"], id);
        let traces = json["traces"].as_array().expect("traces");
        assert_eq!(json["count"].as_u64(), Some(traces.len() as u64));
        let jobs: Vec<&Value> = traces.iter().filter(|t| t["record"]["type"] == "Job" && t["record"]["routing_key"] == id).collect();
        assert_eq!(jobs.len(), 3, "{traces:?}");
        for (i, t) in jobs.iter().enumerate() {
            assert_eq!(t["category"], "incoming");
            assert!(t["time"].as_f64().unwrap() > 1.0e9);
            assert_eq!(t["record"]["body"], format!("{{\"n\": {}}}", i + 1));
            assert_eq!(t["record"]["routing_key"], id);
            assert!(t["record"]["app_id"].as_str().unwrap().starts_with("munggoggo-cli-"));
        }

        let json = cli(&["--json", "traces", id, "--limit", "2", "--category", &format!("{id}.job")]).await.json();
        let traces = json["traces"].as_array().expect("traces");
        assert_eq!(traces.len(), 2);
        assert_eq!(traces[0]["record"]["body"], "{\"n\": 2}", "oldest first");
        assert_eq!(traces[1]["record"]["body"], "{\"n\": 3}");

        let category = format!("{id}.job");
        let json = cli(&["--json", "traces", id, "--sender", "nobody"]).await.json();
        assert_eq!(json["count"], 0);

        // A sender matches by substring (CLI identities are random), before the limit.
        // (Other tests' CLIs broadcast to every agent: look at the jobs.)
        let json = cli(&["--json", "traces", id, "--sender", "munggoggo-cli", "--category", &category]).await.json();
        let bodies: Vec<&str> = json["traces"].as_array().expect("traces").iter().map(|t| t["record"]["body"].as_str().unwrap()).collect();
        assert_eq!(bodies, ["{\"n\": 1}", "{\"n\": 2}", "{\"n\": 3}"]);
        let json = cli(&["--json", "traces", id, "-s", "cli-", "-l", "2", "-c", &category]).await.json();
        let bodies: Vec<&str> = json["traces"].as_array().expect("traces").iter().map(|t| t["record"]["body"].as_str().unwrap()).collect();
        assert_eq!(bodies, ["{\"n\": 2}", "{\"n\": 3}"]);

        // The CLI's own requests and the replies (pings, listings) are not traced.
        let json = cli(&["--json", "traces", id]).await.json();
        let cli_system: Vec<&Value> = json["traces"].as_array().expect("traces").iter().filter(|t| {
            let r = &t["record"];
            let peer = [&r["app_id"], &r["target"]].iter().any(|v| v.as_str().is_some_and(|s| s.starts_with("munggoggo-cli-")));
            peer && (r["type"] == "CONTROL" || r["type"] == "RPC")
        }).collect();
        assert!(cli_system.is_empty(), "{cli_system:?}");

        let human = cli(&["traces", id, "-c", &category, "-l", "50"]).await;
        let out = human.ok();
        assert!(out.starts_with("TIME (UTC)"), "{out}");
        assert!(
            out.lines().any(|l| l.contains(&category) && l.contains("Job") && l.contains("{\"n\": 3}")),
            "{out}"
        );
        assert!(out.trim_end().ends_with("entries"), "{out}");
    }

    async fn trace_reasons_are_shown_in_full(rt) {
        let (agent, _events) = worker(&rt).await;
        let id = agent.identity();
        let body = r#"{"n": "not a number, in a body long enough to be shortened in the table"}"#;
        cli(&["send", id, "Job", body]).await.ok();
        agent
            .wait_until(|a| a.behaviour("job").is_some_and(|b| b.errors == 1))
            .await
            .expect("the job is rejected");
        let reason = agent.behaviour("job").and_then(|b| b.last_error).expect("a reason");
        assert!(reason.len() > 72, "{reason}");
        let out = cli(&["traces", id, "-c", "rejected"]).await;
        let line = out.ok().lines().find(|l| l.contains("rejected")).unwrap_or_else(|| panic!("{}", out.stdout)).to_owned();
        assert!(line.ends_with(&format!("[{reason}]")), "{line}");
        assert!(line.contains('…'), "the body is shortened: {line}");
    }

    async fn send_in_the_0_4_wire_mode_wraps_the_body_in_an_envelope(rt) {
        let client = rt.client(unique("wire04")).await.unwrap();
        let mut cmd = command(&url(), &["send", client.identity(), "DemoData", r#"{"message": "hi"}"#]);
        cmd.env("MUNGGOGGO_WIRE", "0.4");
        let run = tokio::task::spawn_blocking(move || finished(cmd.output().expect("the binary runs"))).await.unwrap();
        run.ok();
        let got = demo_data(&client).await;
        let envelope: Value = serde_json::from_slice(&got.body).expect("a JSON envelope");
        assert_eq!(envelope["c_type"], "DemoData", "{envelope}");
        assert_eq!(envelope["c_data"], r#"{"message": "hi"}"#, "{envelope}");
        assert_eq!(got.message_type(), "DemoData");
        // An envelope given as the body goes as it is.
        let given = r#"{"c_type": "DemoData", "c_data": "{}"}"#;
        let mut cmd = command(&url(), &["send", client.identity(), "DemoData", given]);
        cmd.env("MUNGGOGGO_WIRE", "0.4");
        tokio::task::spawn_blocking(move || finished(cmd.output().expect("the binary runs"))).await.unwrap().ok();
        let got = demo_data(&client).await;
        assert_eq!(&got.body[..], given.as_bytes());
        client.shutdown().await;
    }

    async fn send_broadcast_and_publish(rt) {
        let (agent, mut events) = worker(&rt).await;
        let id = agent.identity();

        let out = cli(&["send", id, "Job", "{\"n\": 7}"]).await;
        assert_eq!(out.ok().trim(), format!("sent Job to {id} (8 bytes)"));
        expect(&mut events, "job 7 from munggoggo-cli-").await;
        let json = cli(&["--json", "send", id, "Job", "{\"n\": 8}"]).await.json();
        assert_eq!(json["sent"], "send");
        assert_eq!(json["to"], id);
        assert_eq!(json["type"], "Job");
        assert_eq!(json["bytes"], 8);
        expect(&mut events, "job 8 from munggoggo-cli-").await;

        // A type no worker handles, so that the workers of other tests are not disturbed.
        let kind = unique("Announcement");
        let out = cli(&["broadcast", &kind, "{}"]).await;
        assert_eq!(out.ok().trim(), format!("sent {kind} to every agent (2 bytes)"));
        traced(&agent, &kind).await;
        let kind = unique("Announcement");
        let json = cli(&["--json", "broadcast", &kind, "{}"]).await.json();
        assert_eq!(json["sent"], "broadcast");
        assert_eq!(json["to"], Value::Null);
        assert_eq!(json["type"], kind.as_str());
        traced(&agent, &kind).await;

        let topic = format!("cli-test.{id}");
        let out = cli(&["publish", &topic, "\"hello\""]).await;
        assert_eq!(out.ok().trim(), format!("sent PUBSUB on topic {topic} (7 bytes)"));
        expect(&mut events, "news \"hello\"").await;
        let json = cli(&["--json", "publish", &topic, "{\"x\": 1}", "--type", "News"]).await.json();
        assert_eq!(json["sent"], "publish");
        assert_eq!(json["topic"], topic);
        assert_eq!(json["type"], "News");
        expect(&mut events, "news {\"x\": 1}").await;
    }

    async fn send_to_an_unknown_agent_lists_the_peers(rt) {
        let (agent, _events) = worker(&rt).await;
        let run = cli(&["send", "nobody-here", "Job", "{}"]).await;
        let line = run.fails(4);
        assert!(line.contains("unknown agent `nobody-here`; known peers: "), "{line}");
        assert!(line.contains(agent.identity()), "{line}");
    }

    async fn call_an_rpc_method(rt) {
        let (agent, _events) = worker(&rt).await;
        let id = agent.identity();
        assert_eq!(cli(&["call", id, "multiply", "[6, 7]"]).await.ok().trim(), "42");
        let json = cli(&["--json", "call", id, "multiply", "{\"x\": 3, \"y\": 5}"]).await.json();
        assert_eq!(json["agent"], id);
        assert_eq!(json["method"], "multiply");
        assert_eq!(json["params"], serde_json::json!({ "x": 3, "y": 5 }));
        assert_eq!(json["result"], 15);

        let run = cli(&["call", id, "divide", "[6, 7]"]).await;
        let line = run.fails(4);
        assert!(line.contains(&format!("agent `{id}` has no method `divide`; it has: multiply, slow")), "{line}");

        let run = cli(&["call", id, "multiply", "[6,"]).await;
        assert!(run.fails(1).contains("PARAMS_JSON is not JSON"), "{}", run.stderr);

        let run = cli(&["call", id, "multiply", "[6]"]).await;
        let line = run.fails(1);
        assert!(line.contains("missing parameter `y` (#2)"), "{line}");
        assert!(line.contains("`multiply(x, y)` takes 2 parameters, given [6]"), "{line}");
        assert!(!line.contains("null"), "{line}");
    }

    async fn a_call_with_more_parameters_than_declared_is_refused(rt) {
        let (agent, _events) = worker(&rt).await;
        let id = agent.identity();
        // Refused with the method's parameters and what was given; the
        // agent would drop what it does not take.
        let run = cli(&["call", id, "multiply", "[6, 7, 8]"]).await;
        let line = run.fails(1);
        assert!(line.contains(&format!("`multiply(x, y)` of agent `{id}` takes 2 parameters, not 3; given [6,7,8]")), "{line}");
        let run = cli(&["call", id, "slow", "[1]"]).await;
        let line = run.fails(1);
        assert!(line.contains(&format!("`slow()` of agent `{id}` takes no parameters, not 1; given [1]")), "{line}");
        let run = cli(&["call", id, "multiply", "{\"x\": 1, \"y\": 2, \"z\": 3}"]).await;
        let line = run.fails(1);
        assert!(line.contains(&format!("`multiply(x, y)` of agent `{id}` has no parameter `z`; given {{\"x\":1,\"y\":2,\"z\":3}}")), "{line}");
        let run = cli(&["--json", "call", id, "slow", "[1]"]).await;
        run.fails(1);
        let json: Value = serde_json::from_str(&run.stdout).expect("a JSON error document");
        assert_eq!(json["error"]["kind"], "failed");
    }

    async fn call_an_agent_without_methods(rt) {
        let mut options = Kitchen::options();
        options.identity = unique("cli-kitchen");
        let kitchen = rt.spawn_with(Kitchen, options).await.expect("the kitchen starts");
        let id = kitchen.identity();
        let run = cli(&["call", id, "nothing"]).await;
        let line = run.fails(4);
        assert!(line.trim_end().ends_with(&format!("agent `{id}` has no method `nothing`: {id} exposes no methods")), "{line}");
        let run = cli(&["--json", "call", id, "nothing"]).await;
        run.fails(4);
        let json: Value = serde_json::from_str(&run.stdout).expect("a JSON error document");
        assert_eq!(json["error"]["kind"], "not_found");
        assert_eq!(json["error"]["known"], serde_json::json!([]));
    }

    async fn a_call_that_takes_too_long_times_out(rt) {
        let (agent, _events) = worker(&rt).await;
        let run = cli(&["--timeout", "800ms", "call", agent.identity(), "slow"]).await;
        let line = run.fails(5);
        assert!(line.contains(&format!("`{}` did not answer within 800ms", agent.identity())), "{line}");
    }

    async fn shutdown_stops_the_agent(rt) {
        let (first, _e1) = worker(&rt).await;
        let out = cli(&["shutdown", first.identity()]).await;
        assert_eq!(out.ok().trim(), format!("Shutdown of {} initiated.", first.identity()));
        tokio::time::timeout(Duration::from_secs(10), first.stopped()).await.expect("the agent stops");

        let (second, _e2) = worker(&rt).await;
        let json = cli(&["--json", "shutdown", second.identity()]).await.json();
        assert_eq!(json["agent"], second.identity());
        assert_eq!(json["result"], format!("Shutdown of {} initiated.", second.identity()));
        tokio::time::timeout(Duration::from_secs(10), second.stopped()).await.expect("the agent stops");
    }

    async fn graph_is_graphviz(rt) {
        let (agent, _events) = worker(&rt).await;
        let id = agent.identity();
        let human = cli(&["graph"]).await;
        let dot = human.ok();
        assert!(dot.starts_with("digraph munggoggo {"), "{dot}");
        assert!(dot.trim_end().ends_with('}'), "{dot}");
        assert!(dot.contains(&format!("\"{id}\" [shape=box")), "{dot}");
        assert!(dot.contains(&format!("\"{id}\" -> \"{id}.tick\";")), "{dot}");
        assert!(dot.contains("label=\"tick\\nrunning\""), "{dot}");

        let json = cli(&["--json", "graph"]).await.json();
        assert!(json["dot"].as_str().unwrap().contains(&format!("\"{id}\" -> \"{id}.news\";")));
        assert!(json["peers"].as_array().unwrap().iter().any(|p| p["name"] == id));
    }

    async fn a_state_machine_s_state_in_behaviours_and_graph(rt) {
        let door = rt.spawn_as(unique("cli-door"), Door::default()).await.expect("the door starts");
        let id = door.identity();
        let client = rt.client(unique("cli-knocker")).await.expect("client");
        client.send(id, &Knock {}).await.expect("sent");
        door.wait_until(|d| d.behaviour("hatch").and_then(|b| b.machine).is_some_and(|m| m.state == "Open"))
            .await
            .expect("the hatch opens");
        let machine = door.behaviour("hatch").unwrap().machine.unwrap();
        let since = humantime::format_rfc3339_seconds(machine.entered()).to_string();

        // `behaviours`: the current state beside the name, and under the
        // table since when and how many transitions.
        let human = cli(&["behaviours", id]).await;
        let out = human.ok();
        let row = out.lines().find(|l| l.starts_with(&format!("{id}.hatch "))).unwrap_or_else(|| panic!("{out}"));
        assert!(row.starts_with(&format!("{id}.hatch [Open] ")) && row.contains(" running "), "{row}");
        assert!(out.lines().any(|l| l == format!("{id}.hatch: in Open since {since}, 1 transition")), "{out}");
        let json = cli(&["--json", "behaviours", id]).await.json();
        let hatch = json["behaviours"].as_array().unwrap().iter().find(|b| b["name"] == format!("{id}.hatch")).expect("the machine");
        assert_eq!(hatch["machine"]["state"], "Open");
        assert_eq!(hatch["machine"]["transitions"], 1);
        assert_eq!(hatch["machine"]["entered_ms"], machine.entered_ms);

        // `graph`: the machine's states beside its behaviour, the current
        // one highlighted, its timeout dashed.
        let human = cli(&["graph"]).await;
        let dot = human.ok();
        assert!(dot.contains(&format!("subgraph \"cluster_{id}.hatch\" {{")), "{dot}");
        assert!(dot.contains(&format!("\"{id}.hatch/Open\" [shape=box, style=\"rounded,filled\", fillcolor=\"#ffd966\", label=\"Open\", penwidth=3")), "{dot}");
        assert!(dot.contains(&format!("\"{id}.hatch/Shut\" [shape=box, style=\"rounded,filled\", fillcolor=\"#ffffff\", label=\"Shut\"];")), "{dot}");
        assert!(dot.contains(&format!("\"{id}.hatch/Shut\" -> \"{id}.hatch/Open\";")), "{dot}");
        assert!(dot.contains(&format!("\"{id}.hatch/Open\" -> \"{id}.hatch/Shut\" [style=dashed, label=\"after 1h\"];")), "{dot}");
        assert!(dot.contains(&format!("\"{id}.hatch\" -> \"{id}.hatch/Shut\" [style=dotted, label=\"initial\"];")), "{dot}");
        let json = cli(&["--json", "graph"]).await.json();
        assert_eq!(json["machines"][format!("{id}.hatch")]["current"]["state"], "Open", "{json}");
        assert_eq!(json["machines"][format!("{id}.hatch")]["name"], "Hatch", "{json}");
        door.shutdown().await;
    }

    async fn unknown_agent_lists_the_known_peers(rt) {
        let (agent, _events) = worker(&rt).await;
        for args in [
            &["behaviours", "no-such-agent"][..],
            &["start", "no-such-agent", "tick"],
            &["traces", "no-such-agent"],
            &["call", "no-such-agent", "multiply"],
            &["shutdown", "no-such-agent"],
        ] {
            let run = cli(args).await;
            let line = run.fails(4);
            assert!(line.contains("unknown agent `no-such-agent`; known peers: "), "{line}");
            assert!(line.contains(agent.identity()), "{line}");
        }
        let run = cli(&["--json", "behaviours", "no-such-agent"]).await;
        run.fails(4);
        let json: Value = serde_json::from_str(&run.stdout).expect("a JSON error document");
        assert_eq!(json["error"]["kind"], "not_found");
        assert!(json["error"]["known"].as_array().unwrap().iter().any(|p| p == agent.identity()));
    }

    async fn watch_follows_peers_and_traces(rt) {
        let (agent, _events) = worker(&rt).await;
        let id = agent.identity().to_owned();
        let sender = {
            let ctx = agent.context().clone();
            let id = id.clone();
            tokio::spawn(async move {
                for n in 0..60 {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    let _ = ctx.send_raw(&id, "Job", format!("{{\"n\": {n}}}")).await;
                }
            })
        };
        let human = cli(&["watch", "--interval", "300ms", "--for", "5s"]).await;
        let out = human.ok();
        assert!(out.lines().any(|l| l.starts_with(&format!("+ {id} joined running"))), "{out}");
        assert!(out.lines().any(|l| l.starts_with(&format!("{id} ")) && l.contains("Job") && l.contains("incoming")), "{out}");
        assert!(!out.contains("ListTraceStore"), "the CLI's own requests are left out: {out}");

        let json = cli(&["--json", "watch", "--interval", "300ms", "--for", "5s"]).await;
        let events: Vec<Value> = json
            .ok()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("JSON line ({e}): {l}")))
            .collect();
        assert!(events.iter().any(|e| e["event"] == "joined" && e["peer"]["name"] == id.as_str()), "{events:?}");
        let trace = events
            .iter()
            .find(|e| e["event"] == "trace" && e["agent"] == id.as_str() && e["record"]["type"] == "Job")
            .unwrap_or_else(|| panic!("a trace event: {events:?}"));
        assert!(trace["time"].as_f64().is_some());
        assert!(trace["category"].is_string());
        sender.abort();
    }

    async fn watch_stops_on_ctrl_c(rt) {
        let (_agent, _events) = worker(&rt).await;
        let mut child = command(&url(), &["watch", "--interval", "200ms"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the binary runs");
        let stdout = child.stdout.take().expect("piped stdout");
        let run = tokio::task::spawn_blocking(move || {
            use std::io::Read;
            // Interrupted once it has reported a peer: watching, with its
            // Ctrl-C handler in place (polled before the first look ends).
            let (mut reader, mut seen) = read_until(stdout, "joined");
            let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill runs");
            assert!(status.success());
            reader.read_to_string(&mut seen).expect("reads stdout");
            let mut run = finished(child.wait_with_output().expect("waits"));
            run.stdout = seen;
            run
        })
        .await
        .unwrap();
        assert!(run.ok().contains("joined"), "{}", run.stdout);
    }

    async fn two_clis_at_the_same_time(rt) {
        let (agent, _events) = worker(&rt).await;
        let id = agent.identity();
        let peers = ["--json", "peers"];
        let call = ["--json", "call", id, "multiply", "[2, 21]"];
        let behaviours = ["--json", "behaviours", id];
        let (a, b, c) = tokio::join!(cli(&peers), cli(&call), cli(&behaviours));
        assert!(a.json()["peers"].as_array().unwrap().iter().any(|p| p["name"] == id));
        assert_eq!(b.json()["result"], 42);
        assert_eq!(c.json()["agent"], id);
    }
}

#[tokio::test]
async fn unreachable_broker_names_the_url_without_its_password() {
    let run = cli_at("amqp://guest:secret@127.0.0.1:1/%2f", &["peers"]).await;
    let line = run.fails(3);
    assert!(line.contains("amqp://guest:***@127.0.0.1:1/%2f"), "{line}");
    assert!(!line.contains("secret"), "{line}");

    let run = cli_at(
        "amqp://guest:secret@127.0.0.1:1/%2f",
        &["--json", "behaviours", "x"],
    )
    .await;
    run.fails(3);
    assert!(!run.stdout.contains("secret"));
    let json: Value = serde_json::from_str(&run.stdout).expect("a JSON error document");
    assert_eq!(json["error"]["kind"], "connect");
}

/// Reads a child's stdout until what it printed contains `text` (or it
/// ended): the reader, for the rest, and what was read.
fn read_until(
    stdout: std::process::ChildStdout,
    text: &str,
) -> (std::io::BufReader<std::process::ChildStdout>, String) {
    use std::io::BufRead;
    let mut reader = std::io::BufReader::new(stdout);
    let mut seen = String::new();
    while !seen.contains(text) {
        if reader.read_line(&mut seen).expect("reads stdout") == 0 {
            break;
        }
    }
    (reader, seen)
}

#[tokio::test]
async fn watch_says_when_there_is_no_agent() {
    // The embedded bus: this CLI is alone on it. Stopped once it has said
    // so (or after 20 s, when it never does).
    let mut child = command(
        "memory://",
        &[
            "watch",
            "--interval",
            "100ms",
            "--timeout",
            "400ms",
            "--for",
            "20s",
        ],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::null())
    .spawn()
    .expect("the binary runs");
    let stdout = child.stdout.take().expect("piped stdout");
    let seen = tokio::task::spawn_blocking(move || {
        let (mut reader, seen) = read_until(stdout, "no agents");
        let _ = child.kill();
        let _ = child.wait();
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut reader, &mut rest);
        seen + &rest
    })
    .await
    .unwrap();
    let lines: Vec<&str> = seen.lines().collect();
    assert_eq!(
        lines,
        [
            "watching the agents; Ctrl-C to stop",
            "no agents answered; waiting for agents to join"
        ],
        "one line says so"
    );
    let run = cli_at(
        "memory://",
        &[
            "--json",
            "watch",
            "--interval",
            "100ms",
            "--timeout",
            "400ms",
            "--for",
            "1s",
        ],
    )
    .await;
    assert_eq!(run.ok(), "", "JSON lines are events only");
}

#[tokio::test]
async fn bad_arguments_are_usage_errors() {
    let run = cli(&["call"]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    let run = cli(&["--timeout", "soon", "peers"]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("`soon` is not a duration"), "{}", run.stderr);
}

/// The queues of vhost `vhost` whose names start with `prefix`.
fn queues_in(vhost: &str, prefix: &str) -> Vec<String> {
    let out = Command::new("rabbitmqctl")
        .args(["list_queues", "-q", "-p", vhost, "name", "--no-table-headers"])
        .output()
        .expect("rabbitmqctl runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|name| name.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

/// The command line never comes back under its identity: its queues are
/// auto-delete and go when it ends, whether it ends normally (with late
/// replies landing in them: agents that answer its discovery ping slowly)
/// or is killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_line_runs_leave_no_queue_behind() {
    // A vhost of the test's own: it checks every queue in it.
    let vhost = match munggoggo_test_support::Vhost::create("cli-queues") {
        Ok(vhost) => vhost,
        Err(why) => return munggoggo_test_support::skip(why),
    };
    let url = vhost.url().to_owned();
    // Many agents, so that replies keep coming after a short discovery.
    let mut runtime = Runtime::from_url(&url).unwrap();
    for n in 0..50 {
        let mut options = Worker::options();
        options.identity = format!("cli-queues-{n}");
        runtime = runtime.agent_with(Worker { events: None }, options);
    }
    let rt = runtime.start().await.expect("the agents start");
    // 100 runs, 20 at a time.
    for wave in 0..5 {
        let runs: Vec<_> = (wave * 20..(wave + 1) * 20)
            .map(|n| {
                let args: Vec<String> = match n % 3 {
                    0 => vec!["--timeout".into(), "20ms".into(), "peers".into()],
                    1 => vec![
                        "send".into(),
                        "cli-queues-1".into(),
                        "Job".into(),
                        "{\"n\": 1}".into(),
                    ],
                    _ => vec!["--json".into(), "peers".into()],
                };
                let url = url.clone();
                tokio::task::spawn_blocking(move || {
                    let args: Vec<&str> = args.iter().map(String::as_str).collect();
                    finished(command(&url, &args).output().expect("the binary runs"))
                })
            })
            .collect();
        for run in runs {
            let run = run.await.unwrap();
            assert!(run.code == 0 || !run.stderr.is_empty(), "{}", run.stdout);
        }
    }
    // A command line killed while it waits.
    let mut watching = command(&url, &["watch"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the binary runs");
    until(|| !queues_in(vhost.name(), "munggoggo-cli-").is_empty()).await;
    watching.kill().expect("kill -9");
    watching.wait().unwrap();
    until(|| queues_in(vhost.name(), "munggoggo-cli-").is_empty()).await;
    rt.shutdown().await;
}

/// Waits (at most 30 s) until `condition` holds.
async fn until(mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "not within 30 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The next `DemoData` the client receives within 10 s: broadcasts of the
/// tests running beside it (on the same vhost) reach the client too.
async fn demo_data(client: &munggoggo::runtime::Client) -> std::sync::Arc<munggoggo::message::Received> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let got = client.recv_timeout(left).await.expect("the message arrives");
        if got.message_type() == "DemoData" {
            return got;
        }
    }
}
