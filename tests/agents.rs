//! The agent test suite, run on the embedded bus and on RabbitMQ.

mod common;

use common::{eventually, next, unique, Events};
use munggoggo::prelude::*;
use munggoggo::{Error, State};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

#[derive(Debug, Serialize, Deserialize, Message)]
struct Greeting {
    text: String,
}

/// Broadcast by one test; on a shared broker it reaches the agents of
/// every test running at the same time.
#[derive(Debug, Serialize, Deserialize, Message)]
struct Shout {
    to: String,
}

#[derive(Debug, Serialize, Deserialize, Message)]
#[message(type = "custom.count")]
struct Count {
    n: u64,
}

/// The next event of this test's agents, past the topic publications of
/// other tests: on a shared broker every `Router` gets what every test
/// running at the same time publishes, so only those of `publishers`
/// count (as `topic <key> <body>`).
async fn next_own(rx: &mut mpsc::UnboundedReceiver<String>, publishers: &[&str]) -> String {
    loop {
        let event = next(rx).await;
        match event.strip_prefix("topic ").and_then(|e| e.rsplit_once(" from ")) {
            Some((_, from)) if !publishers.contains(&from) => continue,
            Some((publication, _)) => return format!("topic {publication}"),
            None => return event,
        }
    }
}

/// Routes by type, inferred type, topic and fallback.
#[agent]
struct Router {
    events: Events,
}

#[agent]
impl Router {
    #[on_message]
    async fn greeting(&mut self, msg: Envelope<Greeting>) {
        let _ = self
            .events
            .send(format!("greeting {} from {}", msg.text, msg.sender()));
    }

    #[on_message]
    async fn count(&mut self, count: Count) {
        let _ = self.events.send(format!("count {}", count.n));
    }

    #[on_message]
    async fn shout(&mut self, ctx: &Context, shout: Shout) {
        if shout.to == ctx.identity() {
            let _ = self.events.send("shout".to_owned());
        }
    }

    #[on_message(type = "CUSTOM")]
    async fn custom(&mut self, body: serde_json::Value) {
        let _ = self.events.send(format!("custom {body}"));
    }

    #[on_message(topic = "sensor.*.temp")]
    async fn temperature(&mut self, msg: Envelope<Raw>) {
        let text = msg.as_str().unwrap_or("?").to_owned();
        let _ = self.events.send(format!(
            "topic {} {text} from {}",
            msg.routing_key(),
            msg.sender()
        ));
    }

    #[on_message(fallback)]
    async fn other(&mut self, msg: Envelope<Raw>) {
        let _ = self.events.send(format!("fallback {}", msg.message_type()));
    }
}

/// Fails in every way a handler can.
#[agent]
struct Fragile {
    events: Events,
}

#[agent]
impl Fragile {
    #[on_message]
    async fn greeting(&mut self, greeting: Greeting) -> anyhow::Result<()> {
        match greeting.text.as_str() {
            "fail" => anyhow::bail!("refused to greet"),
            "panic" => panic!("greeting exploded"),
            text => {
                let _ = self.events.send(format!("ok {text}"));
                Ok(())
            }
        }
    }
}

/// Bounces hop counters back and forth with a peer as fast as it can.
#[agent(prefetch = 1)]
struct Bouncer {
    peer: String,
    /// Messages to send when it starts.
    burst: u64,
    /// Hops after which a message ends here.
    hops: u64,
    /// Messages expected to end here.
    expect: u64,
    ended: u64,
    events: Events,
}

#[agent]
impl Bouncer {
    #[behaviour(oneshot)]
    async fn serve(&mut self, ctx: &Context) -> munggoggo::Result<()> {
        for _ in 0..self.burst {
            ctx.send(&self.peer, &Count { n: 0 }).await?;
        }
        Ok(())
    }

    #[on_message]
    async fn bounce(&mut self, ctx: &Context, count: Count) -> munggoggo::Result<()> {
        if count.n + 1 < self.hops {
            ctx.send(&self.peer, &Count { n: count.n + 1 }).await?;
        } else {
            self.ended += 1;
            if self.ended == self.expect {
                let _ = self.events.send("done".to_owned());
            }
        }
        Ok(())
    }
}

/// Counts its lifecycle.
/// Handles `Shout` only (for its own broadcasts).
#[agent]
struct Shouter {
    events: Events,
}

#[agent]
impl Shouter {
    #[on_message]
    async fn shout(&mut self, ctx: &Context, shout: Shout) {
        if shout.to == ctx.identity() {
            let _ = self.events.send(format!("shout to {}", shout.to));
        }
    }
}

#[agent]
struct Lifecycle {
    events: Events,
    fail_setup: bool,
}

#[agent]
impl Lifecycle {
    #[setup]
    async fn setup(&mut self, ctx: &Context) -> anyhow::Result<()> {
        anyhow::ensure!(!self.fail_setup, "no database");
        let _ = self.events.send(format!("setup {}", ctx.identity()));
        Ok(())
    }

    #[teardown]
    async fn teardown(&mut self) {
        let _ = self.events.send("teardown".to_owned());
    }

    #[on_message(type = "CUSTOM")]
    async fn custom(&mut self, ctx: &Context, msg: Envelope<Raw>) {
        if msg.as_str() == Some("stop") {
            ctx.stop();
        }
    }
}

on_both_buses! {
    async fn messages_go_to_the_handler_of_their_type(rt) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let router = rt.spawn_as(unique("router"), Router { events: tx }).await.unwrap();
        let client = rt.client(unique("client")).await.unwrap();
        let to = router.identity();

        client.send(to, &Greeting { text: "hi".into() }).await.unwrap();
        assert_eq!(next_own(&mut rx, &[]).await, format!("greeting hi from {}", client.identity()));
        client.send(to, &Count { n: 7 }).await.unwrap();
        assert_eq!(next_own(&mut rx, &[]).await, "count 7");
        client.send_raw(to, "CUSTOM", r#"{"a":1}"#).await.unwrap();
        assert_eq!(next_own(&mut rx, &[]).await, r#"custom {"a":1}"#);
        client.send_raw(to, "Nobody", "x").await.unwrap();
        assert_eq!(next_own(&mut rx, &[]).await, "fallback Nobody");
        // A munggoggo 0.4 envelope: its c_type decides, whatever the AMQP type.
        let body = r#"{"c_type": "Greeting", "c_data": "{\"text\": \"old\"}"}"#;
        client.send_raw(to, "CUSTOM", body).await.unwrap();
        assert_eq!(next_own(&mut rx, &[]).await, format!("greeting old from {}", client.identity()));
        // Broadcasts reach the type handlers too.
        client.broadcast(&Shout { to: to.to_owned() }).await.unwrap();
        assert_eq!(next_own(&mut rx, &[]).await, "shout");
        client.shutdown().await;
    }

    async fn topic_handlers_get_matching_publications(rt) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let _router = rt.spawn_as(unique("router"), Router { events: tx }).await.unwrap();
        let client = rt.client(unique("client")).await.unwrap();

        client.publish_raw("sensor.kitchen.humidity", "40").await.unwrap();
        client.publish_raw("sensor.kitchen.temp", "21").await.unwrap();
        assert_eq!(next_own(&mut rx, &[client.identity()]).await, "topic sensor.kitchen.temp 21");
        // Whatever the type, a topic delivery goes to its subscription.
        client.publish("sensor.hall.temp", &Greeting { text: "x".into() }).await.unwrap();
        assert_eq!(next_own(&mut rx, &[client.identity()]).await, r#"topic sensor.hall.temp {"text":"x"}"#);
        client.shutdown().await;
    }

    async fn a_stopped_handler_rejects_and_restarts(rt) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let router = rt.spawn_as(unique("router"), Router { events: tx }).await.unwrap();
        let client = rt.client(unique("client")).await.unwrap();
        let to = router.identity();
        let ctx = router.context();

        ctx.stop_behaviour("count").await.unwrap();
        assert_eq!(router.behaviour("count").unwrap().state, State::Init);
        client.send(to, &Count { n: 1 }).await.unwrap();
        eventually("rejection traced", || {
            router.traces().filter(None, None, Some("rejected")).iter().any(|e| {
                e.record.reason.as_deref() == Some("handler stopped")
            })
        })
        .await;
        // It did not go to the fallback either.
        client.send_raw(to, "Nobody", "x").await.unwrap();
        assert_eq!(next_own(&mut rx, &[]).await, "fallback Nobody");

        assert!(ctx.start_behaviour("count").await.unwrap());
        assert!(!ctx.start_behaviour("count").await.unwrap(), "already running");
        client.send(to, &Count { n: 2 }).await.unwrap();
        assert_eq!(next_own(&mut rx, &[]).await, "count 2");

        // Stopping a topic handler unsubscribes it: stop and start return
        // once that is done, so what is published in between goes nowhere
        // and the next delivery is the one published after the start.
        let publisher = rt.client(unique("pub")).await.unwrap();
        ctx.stop_behaviour("temperature").await.unwrap();
        assert_eq!(router.behaviour("temperature").unwrap().state, State::Init);
        publisher.publish_raw("sensor.a.temp", "1").await.unwrap();
        assert!(ctx.start_behaviour("temperature").await.unwrap());
        publisher.publish_raw("sensor.b.temp", "2").await.unwrap();
        assert_eq!(next_own(&mut rx, &[publisher.identity()]).await, "topic sensor.b.temp 2");

        let err = ctx.stop_behaviour("nope").await.unwrap_err();
        assert!(err.to_string().contains("nope") && err.to_string().contains(".count"), "{err}");
        client.shutdown().await;
        publisher.shutdown().await;
    }

    async fn racing_starts_subscribe_once(rt) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let router = rt.spawn_as(unique("router"), Router { events: tx }).await.unwrap();
        let ctx = router.context();
        ctx.stop_behaviour("temperature").await.unwrap();
        let (a, b) = tokio::join!(ctx.start_behaviour("temperature"), ctx.start_behaviour("temperature"));
        let started = [a.unwrap(), b.unwrap()];
        assert_eq!(started.iter().filter(|s| **s).count(), 1, "one of them starts it: {started:?}");
        // One subscription: stopping it once leaves none, so what is published
        // next arrives only after the next start.
        ctx.stop_behaviour("temperature").await.unwrap();
        let publisher = rt.client(unique("pub")).await.unwrap();
        publisher.publish_raw("sensor.a.temp", "1").await.unwrap();
        assert!(ctx.start_behaviour("temperature").await.unwrap());
        publisher.publish_raw("sensor.b.temp", "2").await.unwrap();
        assert_eq!(next_own(&mut rx, &[publisher.identity()]).await, "topic sensor.b.temp 2");
        publisher.shutdown().await;
    }

    async fn runtime_binding_keys_follow_the_macros_rules(rt) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let router = rt.spawn_as(unique("router"), Router { events: tx }).await.unwrap();
        let ctx = router.context();
        // What `#[on_message(topic = ...)]` refuses at compile time.
        for bad in ["", "sensor.b*", "#x.temp"] {
            let err = ctx.set_topics("temperature", &[bad]).unwrap_err();
            assert!(matches!(err, Error::Config(_)), "{bad:?}: {err}");
        }
        // Empty words match as RabbitMQ matches them.
        ctx.set_topics("temperature", &["sensor..temp"]).unwrap();
        ctx.stop_behaviour("temperature").await.unwrap();
        assert!(ctx.start_behaviour("temperature").await.unwrap());
        let publisher = rt.client(unique("pub")).await.unwrap();
        publisher.publish_raw("sensor..temp", "3").await.unwrap();
        assert_eq!(next_own(&mut rx, &[publisher.identity()]).await, "topic sensor..temp 3");
        publisher.shutdown().await;
    }

    async fn a_stopped_agent_starts_and_stops_no_behaviour(rt) {
        let (tx, _rx) = mpsc::unbounded_channel();
        let router = rt.spawn_as(unique("router"), Router { events: tx }).await.unwrap();
        let ctx = router.context().clone();
        router.shutdown().await;
        for err in [
            ctx.start_behaviour("count").await.unwrap_err(),
            ctx.stop_behaviour("count").await.unwrap_err(),
            ctx.start_behaviour("temperature").await.unwrap_err(),
        ] {
            assert!(matches!(&err, Error::AgentStopped(id) if id == router.identity()), "{err}");
        }
    }

    async fn bad_input_is_logged_traced_counted_and_survived(rt) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let fragile = rt.spawn_as(unique("fragile"), Fragile { events: tx }).await.unwrap();
        let client = rt.client(unique("client")).await.unwrap();
        let to = fragile.identity();
        let errors = || fragile.behaviour("greeting").unwrap().errors;

        // A body that does not decode into the payload type.
        client.send_raw(to, "Greeting", "not json").await.unwrap();
        eventually("decode error counted", || errors() == 1).await;
        let status = fragile.behaviour("greeting").unwrap();
        assert!(status.last_error.as_deref().unwrap().contains("does not decode"), "{status:?}");
        // A type no handler takes, and no fallback.
        client.send_raw(to, "Unknown", "{}").await.unwrap();
        // A handler error, and a handler panic.
        client.send(to, &Greeting { text: "fail".into() }).await.unwrap();
        eventually("handler error counted", || errors() == 2).await;
        assert!(fragile.behaviour("greeting").unwrap().last_error.unwrap().contains("refused to greet"));
        client.send(to, &Greeting { text: "panic".into() }).await.unwrap();
        eventually("panic counted", || errors() == 3).await;
        assert!(fragile.behaviour("greeting").unwrap().last_error.unwrap().contains("greeting exploded"));

        // The agent still answers.
        client.send(to, &Greeting { text: "still here".into() }).await.unwrap();
        assert_eq!(next(&mut rx).await, "ok still here");
        assert_eq!(fragile.state(), State::Running);

        let rejected = fragile.traces().filter(None, Some(client.identity()), Some("rejected"));
        let reasons: Vec<String> = rejected.iter().filter_map(|e| e.record.reason.clone()).collect();
        assert_eq!(reasons.len(), 4, "{reasons:?}");
        assert!(reasons[0].contains("does not decode"), "{reasons:?}");
        assert_eq!(reasons[1], "no handler");
        assert!(reasons[2].contains("refused to greet"), "{reasons:?}");
        assert!(reasons[3].contains("panicked"), "{reasons:?}");
        assert!(rejected.iter().all(|e| e.record.properties.app_id.as_deref() == Some(client.identity())));
        client.shutdown().await;
    }

    async fn a_second_agent_with_an_identity_in_use_fails(rt) {
        let (tx, _rx) = mpsc::unbounded_channel();
        let id = unique("dup");
        let _first = rt.spawn_as(id.clone(), Router { events: tx.clone() }).await.unwrap();
        let err = rt.spawn_as(id.clone(), Router { events: tx }).await.unwrap_err();
        assert!(matches!(&err, Error::IdentityInUse(taken) if *taken == id), "{err:?}");
        assert!(err.to_string().contains(&id));
        assert!(err.to_string().contains("agent_as"), "{err}");
    }

    async fn agents_flooding_each_other_do_not_deadlock(rt) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (a, b) = (unique("bounce-a"), unique("bounce-b"));
        let bouncer = |peer: &str, burst, expect| Bouncer {
            peer: peer.to_owned(), burst, hops: 21, expect, ended: 0, events: tx.clone(),
        };
        // a sends a burst of 200 messages; each bounces 20 times and ends at b.
        rt.spawn_as(b.clone(), bouncer(&a, 0, 200)).await.unwrap();
        rt.spawn_as(a.clone(), bouncer(&b, 200, 0)).await.unwrap();
        assert_eq!(next(&mut rx).await, "done");
    }

    async fn setup_and_teardown_run_and_stop_deletes_the_queues(rt) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let id = unique("life");
        let failing = rt.spawn_as(id.clone(), Lifecycle { events: tx.clone(), fail_setup: true }).await;
        assert!(matches!(failing, Err(Error::Setup { ref agent, .. }) if *agent == id), "{failing:?}");
        // The identity is free again.
        let agent = rt.spawn_as(id.clone(), Lifecycle { events: tx, fail_setup: false }).await.unwrap();
        assert_eq!(next(&mut rx).await, format!("setup {id}"));
        let client = rt.client(unique("client")).await.unwrap();
        client.send_raw(&id, "CUSTOM", "stop").await.unwrap();
        agent.stopped().await;
        assert_eq!(next(&mut rx).await, "teardown");
        assert_eq!(agent.state(), State::Shutdown);
        let err = client.send_raw(&id, "CUSTOM", "hello?").await.unwrap_err();
        assert!(matches!(&err, Error::UnknownTarget(t) if *t == id), "{err:?}");
        client.shutdown().await;
    }

    async fn an_agents_own_broadcast_without_a_handler_is_not_rejected(rt) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let id = unique("shouter");
        let agent = rt.spawn_as(id.clone(), Shouter { events: tx }).await.unwrap();
        // Greeting has no handler here; the Shout after it (same fanout
        // queue, so in order) has one.
        agent.context().broadcast(&Greeting { text: "hi".into() }).await.unwrap();
        agent.context().broadcast(&Shout { to: id.clone() }).await.unwrap();
        assert_eq!(next(&mut rx).await, format!("shout to {id}"));
        let incoming = agent.traces().filter(None, Some(&id), Some("incoming"));
        assert!(incoming.iter().any(|e| e.record.properties.kind.as_deref() == Some("Greeting")), "still traced");
        // (Broadcasts of tests running beside this one may be rejected.)
        let rejected = agent.traces().filter(None, Some(&id), Some("rejected"));
        assert!(rejected.is_empty(), "{rejected:?}");
    }

    async fn traces_record_what_went_in_and_out(rt) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let router = rt.spawn_as(unique("router"), Router { events: tx }).await.unwrap();
        let client = rt.client(unique("client")).await.unwrap();
        client.send(router.identity(), &Count { n: 1 }).await.unwrap();
        assert_eq!(next_own(&mut rx, &[]).await, "count 1");
        // (Besides answers to the peers' keepalive pings.)
        let sent: Vec<_> = client.traces().sent(None).into_iter()
            .filter(|e| e.record.properties.kind.as_deref() != Some("CONTROL"))
            .collect();
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert_eq!(sent[0].record.target, router.identity());
        assert_eq!(sent[0].record.properties.kind.as_deref(), Some("custom.count"));
        let received: Vec<_> = router.traces().filter(None, Some(client.identity()), Some("incoming"))
            .into_iter()
            .filter(|e| e.record.properties.kind.as_deref() != Some("CONTROL"))
            .collect();
        assert_eq!(received.len(), 1, "{received:?}");
        assert_eq!(received[0].record.properties.kind.as_deref(), Some("custom.count"));
        let handled = router.traces().filter(None, None, Some(&format!("{}.count", router.identity())));
        assert_eq!(handled.len(), 1);
        assert_eq!(handled[0].record.properties.app_id.as_deref(), Some(client.identity()));
        client.shutdown().await;
    }
}

/// Two agents of one type without `agent_as`: the error says so, and no
/// agent started (the first one's setup did not run).
#[tokio::test]
async fn a_second_instance_without_its_own_identity_fails_before_any_setup() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let lifecycle = || Lifecycle {
        events: tx.clone(),
        fail_setup: false,
    };
    let err = munggoggo::Runtime::memory()
        .agent(lifecycle())
        .agent(lifecycle())
        .start()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::DuplicateIdentity { identity, .. } if identity == "lifecycle"),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("agent_as(\"lifecycle-2\""), "{text}");
    assert!(text.contains("no agent was started"), "{text}");
    drop(tx);
    assert_eq!(rx.recv().await, None, "no setup ran");

    // With its own identity the second one starts.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let rt = munggoggo::Runtime::memory()
        .agent(Lifecycle {
            events: tx.clone(),
            fail_setup: false,
        })
        .agent_as(
            "lifecycle-2",
            Lifecycle {
                events: tx,
                fail_setup: false,
            },
        )
        .start()
        .await
        .unwrap();
    assert_eq!(next(&mut rx).await, "setup lifecycle");
    assert_eq!(next(&mut rx).await, "setup lifecycle-2");
    rt.shutdown().await;
}

/// A broker that cannot be reached is `ConnectionLost`, with the I/O error
/// as its source; the message still names the cause.
#[cfg(feature = "amqp")]
#[tokio::test]
async fn an_unreachable_broker_is_connection_lost_with_its_source() {
    let err = munggoggo::Runtime::from_url("amqp://guest:guest@127.0.0.1:1/%2f")
        .unwrap()
        .start()
        .await
        .unwrap_err();
    let munggoggo::Error::ConnectionLost {
        source: Some(source), ..
    } = &err
    else {
        panic!("a lost connection with a source: {err:?}");
    };
    assert!(source.downcast_ref::<std::io::Error>().is_some(), "{source:?}");
    assert!(std::error::Error::source(&err).is_some());
    assert!(err.to_string().ends_with(&source.to_string()), "{err}");
}

/// Without a broker (and without `CI`), a broker test prints its skip
/// where `cargo test` shows it, not only with `--nocapture`.
#[cfg(feature = "amqp")]
#[test]
fn a_skipped_broker_test_says_so_in_the_test_output() {
    let test = "amqp::messages_go_to_the_handler_of_their_type";
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("skips.tsv");
    let output = std::process::Command::new(std::env::current_exe().expect("the test binary"))
        .args([test, "--exact"])
        // A vhost of the user's own: used as given, no `rabbitmqctl`.
        .env("MUNGGOGGO_TEST_URL", "amqp://guest:secret@127.0.0.1:1/nowhere")
        .env(munggoggo_test_support::SKIP_LOG, &log)
        .env_remove("CI")
        .output()
        .expect("the test binary runs");
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{out}");
    assert!(out.contains("1 passed"), "{out}");
    let notice = format!("SKIPPED {test}: no RabbitMQ broker at amqp://guest:***@127.0.0.1:1/nowhere");
    assert!(out.contains(&notice), "{out}");
    // `cargo xtask test` counts it from the log.
    let logged = std::fs::read_to_string(&log).expect("the skip is logged");
    assert!(
        logged.starts_with(&format!(
            "agents\t{test}\tno RabbitMQ broker at amqp://guest:***@127.0.0.1:1/nowhere"
        )),
        "{logged}"
    );
    assert_eq!(logged.lines().count(), 1, "{logged}");
}
