//! `ctx.call` to a munggoggo 0.4 agent beside `ctx.call_exposed` of the
//! same method, rounds interleaved in one run: once the runtime knows the
//! callee for a 0.4 agent, a call takes one round trip to the method its
//! RPC subsystem exposes, as `call_exposed` does.
//!
//! By default the 0.4 agent is a stand-in made with raw lapin (an identity
//! queue that answers pings, as 0.4 does), and the method is exposed by a
//! Rust agent, which 0.4's RPC cannot tell from a Python one: methods are
//! found by name. With `--peer NAME --method M` the calls go to a real 0.4
//! agent running on the broker instead (for example `agent1` of the Python
//! original, whose behaviours expose `example_rpc_method(x, y)`).

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use munggoggo::prelude::*;
use munggoggo::AgentDefaults;
use serde_json::{json, Value};

use crate::figure::{Better, Figure};

/// Calls of each kind per round.
const CALLS: usize = 200;

/// Plays the Python agent's exposed method in the stand-in setup.
#[agent]
#[derive(Default)]
pub struct Exposer;

#[agent]
impl Exposer {
    #[rpc]
    async fn bench_py04_multiply(&mut self, x: i64, y: i64) -> i64 {
        x * y
    }
}

/// Where the calls go.
pub struct Target {
    /// The 0.4 agent's identity; `None`: a stand-in of the run's own.
    pub peer: Option<String>,
    /// The exposed method.
    pub method: String,
}

/// `amqp-py04-call`.
pub fn py04_call(target: Target, runs: usize) -> Vec<Figure> {
    let rt = crate::tokio();
    let (mut call, mut exposed) = (Vec::new(), Vec::new());
    for run in 0..runs {
        let (c, e) = rt.block_on(round(&target, run));
        println!(
            "run {}: ctx.call p50 {:?} | ctx.call_exposed p50 {:?}",
            run + 1,
            c,
            e
        );
        call.push(c.as_secs_f64() * 1e6);
        exposed.push(e.as_secs_f64() * 1e6);
    }
    vec![Figure::new(
        "call to a 0.4 agent p50",
        "us",
        Better::Lower,
        call,
        "ctx.call_exposed",
        exposed,
    )]
}

/// One round: the p50 of `ctx.call` and of `ctx.call_exposed`.
async fn round(target: &Target, run: usize) -> (Duration, Duration) {
    let url = super::url();
    let rt = munggoggo::Runtime::from_url(&url)
        .expect("URL")
        .start()
        .await
        .expect("the broker");
    let pid = std::process::id();
    let (peer, stand_in, exposer) = match &target.peer {
        Some(peer) => (peer.clone(), None, None),
        None => {
            let stand_in = StandIn::start(&url, format!("bench-py04-{pid}-{run}")).await;
            let mut options = Exposer::options().exposing();
            options.identity = format!("bench-py04-exposer-{pid}-{run}");
            let exposer = rt.spawn_with(Exposer, options).await.expect("the exposer starts");
            (stand_in.identity.clone(), Some(stand_in), Some(exposer))
        }
    };
    let client = rt
        .client(format!("bench-py04-caller-{pid}-{run}"))
        .await
        .expect("client");
    let ctx = client.handle().context().clone();
    let method = target.method.as_str();
    let params = |n: usize| json!({"x": n as i64, "y": 7});
    // The first call finds out that the callee is a 0.4 agent.
    let _: Value = ctx.call(&peer, method, params(0)).await.expect("the first call");
    let (mut call, mut exposed) = (Vec::with_capacity(CALLS), Vec::with_capacity(CALLS));
    for n in 1..=CALLS {
        let start = Instant::now();
        let product: Value = ctx.call(&peer, method, params(n)).await.expect("ctx.call");
        call.push(start.elapsed());
        let start = Instant::now();
        let same: Value = ctx
            .call_exposed(method, params(n))
            .await
            .expect("ctx.call_exposed");
        exposed.push(start.elapsed());
        assert_eq!(product, same, "both calls reach the same method");
    }
    drop(client);
    if let Some(exposer) = exposer {
        exposer.shutdown().await;
    }
    if let Some(stand_in) = stand_in {
        stand_in.stop().await;
    }
    rt.shutdown().await;
    (median(call), median(exposed))
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

/// A munggoggo 0.4 agent as the broker sees it, as far as a call needs:
/// an exclusive identity queue whose consumer answers every `Ping` with a
/// `Pong` to its `reply_to` (0.4 has no control queue).
struct StandIn {
    identity: String,
    conn: Connection,
    task: tokio::task::JoinHandle<()>,
}

impl StandIn {
    async fn start(url: &str, identity: String) -> StandIn {
        let conn = Connection::connect(url, ConnectionProperties::default())
            .await
            .expect("the stand-in connects");
        let channel = conn.create_channel().await.expect("channel");
        let exclusive = QueueDeclareOptions {
            exclusive: true,
            ..QueueDeclareOptions::default()
        };
        channel
            .queue_declare(identity.as_str().into(), exclusive, FieldTable::default())
            .await
            .expect("the identity queue");
        let mut deliveries = channel
            .basic_consume(
                identity.as_str().into(),
                identity.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("consume");
        let me = identity.clone();
        let task = tokio::spawn(async move {
            while let Some(Ok(delivery)) = deliveries.next().await {
                let _ = delivery.acker.ack(BasicAckOptions::default()).await;
                let body: Value = serde_json::from_slice(&delivery.data).unwrap_or_default();
                if body.get("c_type").and_then(Value::as_str) == Some("Ping") {
                    pong(&channel, &me, &delivery.properties).await;
                }
            }
        });
        StandIn { identity, conn, task }
    }

    async fn stop(self) {
        self.task.abort();
        let _ = self.conn.close(200, "bench done".into()).await;
    }
}

/// Answers a ping as 0.4 does: an RPC reply with the request's
/// correlation id, to its `reply_to`.
async fn pong(channel: &Channel, me: &str, request: &BasicProperties) {
    let (Some(reply_to), Some(correlation_id)) = (request.reply_to(), request.correlation_id()) else {
        return;
    };
    let properties = BasicProperties::default()
        .with_type("RPC".into())
        .with_app_id(me.into())
        .with_correlation_id(correlation_id.clone())
        .with_content_type("application/json".into())
        .with_headers(FieldTable::default());
    let body = br#"{"c_type": "Pong", "c_data": "{\"pong\": \"pong\"}", "request_type": 2}"#;
    let _ = channel
        .basic_publish(
            "".into(),
            reply_to.as_str().into(),
            BasicPublishOptions::default(),
            body,
            properties,
        )
        .await;
}
