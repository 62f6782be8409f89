//! Request/reply: `#[rpc]` methods and the system requests, on both buses.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{eventually, next, unique, Events};
use munggoggo::prelude::*;
use munggoggo::{Error, ErrorCode, State, TraceQuery};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, Barrier, Notify};

#[derive(Debug, Serialize, Deserialize, Message)]
struct Hold;

#[derive(Debug, Serialize, Deserialize, Message)]
struct CallPeer {
    peer: String,
    /// The call's timeout in milliseconds.
    timeout_ms: u64,
}

#[derive(Debug, Deserialize, Serialize, PartialEq)]
struct Stats {
    calls: u64,
}

#[agent]
struct Calc {
    calls: u64,
    release: Arc<Notify>,
    events: Events,
    /// `call_peer` waits here first, so that two agents calling each other
    /// both have their task busy before either call arrives (once).
    gate: Option<Arc<Barrier>>,
}

#[agent]
impl Calc {
    #[rpc]
    async fn multiply(&mut self, x: i64, y: i64) -> i64 {
        self.calls += 1;
        x * y
    }

    #[rpc]
    async fn divide(&mut self, x: i64, y: i64) -> anyhow::Result<i64> {
        self.calls += 1;
        anyhow::ensure!(y != 0, "division by zero");
        Ok(x / y)
    }

    #[rpc]
    async fn stats(&mut self) -> Stats {
        Stats { calls: self.calls }
    }

    #[rpc]
    async fn slow(&mut self, ms: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        ms
    }

    #[behaviour(periodic = "1h")]
    async fn idle(&mut self) {}

    /// Holds the agent's task until released.
    #[on_message]
    async fn hold(&mut self, _: Hold) {
        let _ = self.events.send("holding".to_owned());
        self.release.notified().await;
        let _ = self.events.send("released".to_owned());
    }

    /// Calls a peer's `#[rpc]` from a handler.
    #[on_message]
    async fn call_peer(&mut self, ctx: &Context, msg: CallPeer) {
        if let Some(gate) = self.gate.take() {
            gate.wait().await;
        }
        let outcome = match ctx
            .call_with_timeout::<i64>(
                &msg.peer,
                "multiply",
                (2, 21),
                Duration::from_millis(msg.timeout_ms),
            )
            .await
        {
            Ok(v) => format!("result {v}"),
            Err(Error::Timeout { .. }) => "timeout".to_owned(),
            Err(e) => format!("error {e}"),
        };
        let _ = self.events.send(outcome);
    }
}

fn calc(events: Events) -> Calc {
    Calc {
        calls: 0,
        release: Arc::new(Notify::new()),
        events,
        gate: None,
    }
}

/// A `Calc` whose task is busy in its `hold` handler, a client, what
/// releases the handler and the agent's events.
async fn held(
    rt: &munggoggo::RuntimeHandle,
    prefix: &str,
) -> (
    munggoggo::AgentHandle,
    munggoggo::runtime::Client,
    Arc<Notify>,
    mpsc::UnboundedReceiver<String>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let calc = calc(tx);
    let release = Arc::clone(&calc.release);
    let agent = rt.spawn_as(unique(prefix), calc).await.unwrap();
    let client = rt.client(unique("caller")).await.unwrap();
    client.send(agent.identity(), &Hold).await.unwrap();
    assert_eq!(next(&mut rx).await, "holding");
    (agent, client, release, rx)
}

on_both_buses! {
    async fn the_typed_client_calls_with_checked_types(rt) {
        let (tx, _rx) = mpsc::unbounded_channel();
        let agent = rt.spawn_as(unique("calc"), calc(tx)).await.unwrap();
        let client = rt.client(unique("caller")).await.unwrap();
        // `Calc::client` would call the default identity `calc`; a second
        // instance is called by its own.
        let calc = Calc::client_for(&client, agent.identity());
        assert_eq!(calc.multiply(6, 7).await.unwrap(), 42);
        assert_eq!(calc.divide(9, 3).await.unwrap(), 3);
        let err = calc.divide(1, 0).await.unwrap_err();
        assert!(matches!(&err, Error::Remote { error, .. } if error.contains("division by zero")), "{err:?}");
        assert_eq!(calc.stats().await.unwrap(), Stats { calls: 3 });
        // From an agent's context too.
        let from_agent = Calc::client_for(client.handle(), agent.identity());
        assert_eq!(from_agent.slow(5).await.unwrap(), 5);
        let nobody = Calc::client_for(&*client, unique("nobody"));
        assert!(matches!(nobody.multiply(1, 2).await, Err(Error::UnknownTarget(_))));
        client.shutdown().await;
    }

    async fn a_call_is_traced_by_caller_and_callee(rt) {
        let (tx, _rx) = mpsc::unbounded_channel();
        let agent = rt.spawn_as(unique("calc"), calc(tx)).await.unwrap();
        let client = rt.client(unique("caller")).await.unwrap();
        assert_eq!(client.call::<i64>(agent.identity(), "multiply", (6, 7)).await.unwrap(), 42);
        // The RPC entries of one store in one category: (peer, body).
        let calls = |traces: &munggoggo::TraceStore, category: &str| -> Vec<(String, String)> {
            traces
                .filter(None, None, Some(category))
                .iter()
                .filter(|e| e.record.properties.kind.as_deref() == Some("RPC"))
                .map(|e| {
                    let peer = if e.record.outgoing {
                        e.record.target.to_string()
                    } else {
                        e.record.sender().to_owned()
                    };
                    (peer, String::from_utf8_lossy(&e.record.body).into_owned())
                })
                .collect()
        };
        let control = munggoggo::bus::control_queue;
        let (caller, callee) = (client.identity(), agent.identity());
        let request = calls(agent.traces(), "incoming");
        assert!(
            matches!(&request[..], [(from, body)] if from == caller && body.contains("RpcCall") && body.contains("multiply")),
            "{request:?}"
        );
        assert_eq!(calls(client.handle().traces(), "outgoing"), [(control(callee), request[0].1.clone())]);
        let reply = calls(agent.traces(), "outgoing");
        assert!(
            matches!(&reply[..], [(to, body)] if *to == control(caller) && body.contains("42")),
            "{reply:?}"
        );
        assert_eq!(calls(client.handle().traces(), "incoming"), [(callee.to_owned(), reply[0].1.clone())]);
        // Request and reply share their correlation id on both sides.
        let ids: Vec<_> = [agent.traces(), client.handle().traces()]
            .iter()
            .flat_map(|t| t.filter(None, None, None))
            .filter(|e| e.record.properties.kind.as_deref() == Some("RPC"))
            .map(|e| e.record.properties.correlation_id.clone().expect("a correlation id"))
            .collect();
        assert!(ids.len() == 4 && ids.iter().all(|id| *id == ids[0]), "{ids:?}");
        client.shutdown().await;
    }

    async fn a_missing_parameter_is_named(rt) {
        let (tx, _rx) = mpsc::unbounded_channel();
        let agent = rt.spawn_as(unique("calc"), calc(tx)).await.unwrap();
        let client = rt.client(unique("caller")).await.unwrap();
        let err = client.call::<i64>(agent.identity(), "multiply", [6]).await.unwrap_err();
        assert!(
            matches!(&err, Error::Remote { error, .. } if error.contains("missing parameter `y` (#2)")),
            "{err}"
        );
        client.shutdown().await;
    }

    async fn rpc_methods_are_callable_by_name(rt) {
        let (tx, _rx) = mpsc::unbounded_channel();
        let agent = rt.spawn_as(unique("calc"), calc(tx)).await.unwrap();
        let client = rt.client(unique("caller")).await.unwrap();
        let to = agent.identity();

        assert_eq!(client.call::<i64>(to, "multiply", (3, 2)).await.unwrap(), 6);
        assert_eq!(client.call::<i64>(to, "multiply", serde_json::json!({"x": 4, "y": 5})).await.unwrap(), 20);
        assert_eq!(client.call::<Stats>(to, "stats", ()).await.unwrap(), Stats { calls: 2 });

        let err = client.call::<i64>(to, "divide", (1, 0)).await.unwrap_err();
        assert!(matches!(&err, Error::Remote { error, .. } if error.contains("division by zero")), "{err}");
        assert!(matches!(&err, Error::Remote { code: Some(ErrorCode::Failed), .. }), "{err:?}");
        let err = client.call::<i64>(to, "power", (1, 0)).await.unwrap_err();
        let text = err.to_string();
        assert!(text.contains("power") && text.contains("multiply") && text.contains("divide"), "{text}");
        // The kind of error comes in the reply's `code`, not only in its text.
        let Error::Remote { code: Some(ErrorCode::UnknownMethod { known }), .. } = &err else {
            panic!("an unknown method has its code: {err:?}");
        };
        assert!(known.iter().any(|m| m == "multiply") && known.iter().any(|m| m == "divide"), "{known:?}");
        let err = client.call::<i64>(to, "multiply", (3, "two")).await.unwrap_err();
        assert!(err.to_string().contains("`y`"), "{err}");
        assert!(matches!(&err, Error::Remote { code: Some(ErrorCode::BadParams), .. }), "{err:?}");
        let err = client.call::<String>(to, "multiply", (3, 2)).await.unwrap_err();
        assert!(matches!(err, Error::BadReply { .. }), "{err}");
        client.shutdown().await;
    }

    async fn calls_fail_fast_or_time_out(rt) {
        let (tx, _rx) = mpsc::unbounded_channel();
        let agent = rt.spawn_as(unique("calc"), calc(tx)).await.unwrap();
        let client = rt.client(unique("caller")).await.unwrap();

        // Not a timeout: the send itself fails.
        let missing = unique("nobody");
        let err = client.call::<i64>(&missing, "multiply", (1, 2)).await.unwrap_err();
        assert!(matches!(&err, Error::UnknownTarget(t) if *t == missing), "{err}");

        let err = client
            .call_with_timeout::<u64>(agent.identity(), "slow", (2_000,), Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err}");
        // The late reply is dropped, not delivered to the next call: the
        // agent runs one call at a time, so the reply of 2000 comes before
        // the reply of this call, to a caller that no longer waits for it.
        assert_eq!(client.call::<u64>(agent.identity(), "slow", (1,)).await.unwrap(), 1);

        // The caller stops while its call waits.
        let ctx = client.handle().context().clone();
        let target = agent.identity().to_owned();
        let waiting = tokio::spawn(async move { ctx.call::<u64>(&target, "slow", (1_000,)).await });
        eventually("the call waits", || client.pending_calls() == 1).await;
        client.shutdown().await;
        let err = waiting.await.unwrap().unwrap_err();
        assert!(matches!(&err, Error::AgentStopped(id) if id == client.identity()), "{err}");

        // A caller that gives up leaves no pending call behind.
        let caller = rt.client(unique("caller")).await.unwrap();
        let target = agent.identity().to_owned();
        let dropped = {
            let caller = caller.handle().context().clone();
            tokio::spawn(async move { caller.call::<u64>(&target, "slow", (1_000,)).await })
        };
        eventually("the call waits", || caller.pending_calls() == 1).await;
        dropped.abort();
        let _ = dropped.await;
        assert_eq!(caller.pending_calls(), 0, "a dropped call future leaves no entry");
        caller.shutdown().await;
    }

    async fn a_call_waiting_for_an_agent_that_stops_fails_at_once(rt) {
        // The agent's task is busy in a handler; a call waits behind it.
        let (agent, client, release, _rx) = held(&rt, "calc").await;
        let ctx = client.handle().context().clone();
        let target = agent.identity().to_owned();
        let waiting = tokio::spawn(async move {
            ctx.call_with_timeout::<i64>(&target, "multiply", (6, 7), Duration::from_secs(30)).await
        });
        // The callee holds the call: on the embedded bus it is handed over
        // as the caller lists it pending; over RabbitMQ once the callee
        // traced the request.
        let in_process = rt.bus().describe().starts_with("memory");
        eventually("the callee holds the call", || {
            client.pending_calls() == 1
                && (in_process
                    || agent.traces().all(None).iter().any(|e| {
                        !e.record.outgoing && String::from_utf8_lossy(&e.record.body).contains("multiply")
                    }))
        })
        .await;
        agent.stop();
        release.notify_one();
        let err = tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .expect("answered long before its own timeout")
            .unwrap()
            .unwrap_err();
        assert!(
            matches!(&err, Error::Remote { code: Some(ErrorCode::Failed), error, .. } if error.contains("stopped")),
            "{err:?}"
        );
        assert_eq!(client.pending_calls(), 0);
        client.shutdown().await;
    }

    async fn control_requests_can_be_restricted(rt) {
        let (tx, _rx) = mpsc::unbounded_channel();
        let mut options = munggoggo::AgentOptions::new(unique("guarded"));
        options.control_from = Some(vec!["ops-*".to_owned()]);
        let agent = rt.spawn_with(calc(tx), options).await.unwrap();
        let to = agent.identity();
        let intruder = rt.client(unique("intruder")).await.unwrap();
        for err in [
            intruder.shutdown_agent(to).await.unwrap_err(),
            intruder.list_traces(to, &TraceQuery::default()).await.unwrap_err(),
            intruder.manage_behaviour(to, "idle", "stop").await.unwrap_err(),
        ] {
            assert!(matches!(&err, Error::Remote { error, .. } if error.contains("may not")), "{err}");
        }
        assert_eq!(agent.state(), State::Running);
        assert_eq!(agent.behaviour("idle").unwrap().state, State::Running);
        // Pings and behaviour lists stay open to all; the operator may act.
        intruder.ping(to).await.unwrap();
        assert!(!intruder.list_behaviours(to).await.unwrap().is_empty());
        let ops = rt.client(unique("ops")).await.unwrap();
        assert!(ops.list_traces(to, &TraceQuery::default()).await.is_ok());
        assert!(ops.manage_behaviour(to, "idle", "stop").await.unwrap().contains("stopped"));
        intruder.shutdown().await;
        ops.shutdown().await;
    }

    async fn system_requests_are_answered_as_0_4_does(rt) {
        let (tx, _rx) = mpsc::unbounded_channel();
        let agent = rt.spawn_as(unique("calc"), calc(tx)).await.unwrap();
        let client = rt.client(unique("caller")).await.unwrap();
        let to = agent.identity();

        client.ping(to).await.unwrap();
        let behaviours = client.list_behaviours(to).await.unwrap();
        assert_eq!(behaviours, ["idle", "hold", "call_peer"].map(|m| format!("{to}.{m}")));

        assert_eq!(client.manage_behaviour(to, "idle", "stop").await.unwrap(), format!("{to}.idle stopped: init"));
        assert_eq!(agent.behaviour("idle").unwrap().state, State::Init);
        assert_eq!(client.manage_behaviour(to, "idle", "start").await.unwrap(), format!("{to}.idle started."));
        assert_eq!(client.manage_behaviour(to, &format!("{to}.idle"), "start").await.unwrap(), format!("{to}.idle already running."));
        assert_eq!(client.manage_behaviour(to, "idle", "bogus").await.unwrap(), "Unknown command bogus.");
        assert_eq!(client.manage_behaviour(to, "dle", "stop").await.unwrap(), "No behaviour dle");

        let query = TraceQuery { limit: Some(2), sender: Some(client.identity().to_owned()), category: Some("incoming".into()) };
        let traces = client.list_traces(to, &query).await.unwrap();
        assert_eq!(traces.len(), 2, "{traces:?}");
        let record = &traces[1][1];
        assert_eq!(record["app_id"], client.identity());
        assert_eq!(record["type"], "RPC");
        assert_eq!(traces[1][2], "incoming");
        // Oldest first: the last ManageBehav, then this very request.
        assert!(traces[0][1]["body"].as_str().unwrap().contains("ManageBehav"), "{traces:?}");
        assert!(record["body"].as_str().unwrap().contains("ListTraceStore"), "{record}");

        // A listing of outgoing entries does not carry the previous listings.
        let outgoing = TraceQuery { category: Some("outgoing".into()), ..TraceQuery::default() };
        let size = |traces: Vec<serde_json::Value>| serde_json::to_string(&traces).unwrap().len();
        let first = size(client.list_traces(to, &outgoing).await.unwrap());
        let second = size(client.list_traces(to, &outgoing).await.unwrap());
        let third = size(client.list_traces(to, &outgoing).await.unwrap());
        assert!(third - second < 2_000 && second - first < 2_000, "{first} {second} {third}");

        let answer = client.shutdown_agent(to).await.unwrap();
        assert_eq!(answer, format!("Shutdown of {to} initiated."));
        tokio::time::timeout(Duration::from_secs(10), agent.stopped()).await.expect("agent stops");
        client.shutdown().await;
    }

    async fn a_busy_agent_still_answers_system_requests(rt) {
        let (agent, client, release, mut rx) = held(&rt, "busy").await;
        client.ping(agent.identity()).await.unwrap();
        assert_eq!(client.list_behaviours(agent.identity()).await.unwrap().len(), 3);
        // A call of an #[rpc] waits for the agent's task.
        let err = client
            .call_with_timeout::<i64>(agent.identity(), "multiply", (1, 1), Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err}");
        release.notify_one();
        assert_eq!(next(&mut rx).await, "released");
        client.shutdown().await;
    }

    async fn agents_calling_each_other_end_in_a_timeout(rt) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (a, b) = (unique("calc-a"), unique("calc-b"));
        // Both handlers run (each agent's task busy) before either calls.
        let gate = Arc::new(Barrier::new(2));
        let gated = |tx| Calc { gate: Some(Arc::clone(&gate)), ..calc(tx) };
        rt.spawn_as(a.clone(), gated(tx.clone())).await.unwrap();
        rt.spawn_as(b.clone(), gated(tx)).await.unwrap();
        let client = rt.client(unique("caller")).await.unwrap();
        // Each handler calls the other agent, whose task is busy calling
        // back: the cycle ends in the shorter timeout, after which that
        // agent's task is free and answers the other call.
        let (short, long) = (300, 30_000);
        client.send(&a, &CallPeer { peer: b.clone(), timeout_ms: short }).await.unwrap();
        client.send(&b, &CallPeer { peer: a.clone(), timeout_ms: long }).await.unwrap();
        let outcomes = [next(&mut rx).await, next(&mut rx).await];
        assert_eq!(outcomes, ["timeout", "result 42"]);
        // A handler calling its own agent fails at once.
        client.send(&a, &CallPeer { peer: a.clone(), timeout_ms: short }).await.unwrap();
        let outcome = next(&mut rx).await;
        assert!(outcome.starts_with("error") && outcome.contains("own"), "{outcome}");
        client.shutdown().await;
    }

    async fn peers_see_each_other(rt) {
        let (tx, _rx) = mpsc::unbounded_channel();
        let a = rt.spawn_as(unique("peer-a"), calc(tx.clone())).await.unwrap();
        let b = rt.spawn_as(unique("peer-b"), calc(tx)).await.unwrap();
        b.context().ping_peers().await.unwrap();
        eventually("a and b in b's peer table", || {
            let peers = b.context().peers();
            peers.iter().any(|p| p.status.name == a.identity()) && peers.iter().any(|p| p.status.name == b.identity())
        })
        .await;
        let peers = b.context().peers();
        let a_status = &peers.iter().find(|p| p.status.name == a.identity()).unwrap().status;
        assert_eq!(a_status.state, "running");
        assert_eq!(a_status.behaviours.len(), 3);
        assert_eq!(a_status.behaviours[0].name, format!("{}.idle", a.identity()));
        assert_eq!(a_status.behaviours[0].state, "running");
    }
}
