//! Agents and rounds shared by the figures: a producer, a forwarder and
//! a sink of typed JSON samples.

use std::time::{Duration, Instant};

use munggoggo::prelude::*;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

/// The small JSON payload every benchmark sends.
#[derive(Debug, Clone, Serialize, Deserialize, Message)]
pub struct Sample {
    pub seq: u64,
    pub sensor: String,
    pub value: f64,
}

/// Sample number `seq`.
pub fn sample(seq: u64) -> Sample {
    Sample {
        seq,
        sensor: "kitchen.temp".to_owned(),
        value: 21.5,
    }
}

/// Sends `count` samples to `to`, one after the other, when it starts.
#[agent]
pub struct Producer {
    pub to: String,
    pub count: u64,
}

#[agent]
impl Producer {
    #[behaviour(oneshot)]
    async fn produce(&mut self, ctx: &Context) -> munggoggo::Result<()> {
        for seq in 0..self.count {
            ctx.send(&self.to, &sample(seq)).await?;
        }
        Ok(())
    }
}

/// Forwards every sample to `to`, one by one, from its handler.
#[agent]
pub struct Forwarder {
    pub to: String,
}

#[agent]
impl Forwarder {
    #[on_message]
    async fn sample(&mut self, ctx: &Context, sample: Sample) -> munggoggo::Result<()> {
        ctx.send(&self.to, &sample).await
    }
}

/// Counts samples and reports the time when the last one arrived.
#[agent]
pub struct Sink {
    pub expect: u64,
    pub seen: u64,
    pub done: Option<oneshot::Sender<Instant>>,
}

#[agent]
impl Sink {
    #[on_message]
    async fn sample(&mut self, sample: Sample) {
        self.seen += 1;
        debug_assert!(sample.seq < self.expect);
        if self.seen == self.expect {
            if let Some(done) = self.done.take() {
                let _ = done.send(Instant::now());
            }
        }
    }
}

/// Starts a [`Sink`] named `name` that expects `n` samples; the receiver
/// gets the time the last one arrived.
async fn start_sink(rt: &munggoggo::RuntimeHandle, name: &str, n: u64) -> oneshot::Receiver<Instant> {
    let (tx, rx) = oneshot::channel();
    rt.spawn_with(
        Sink {
            expect: n,
            seen: 0,
            done: Some(tx),
        },
        unbounded(name),
    )
    .await
    .expect("sink starts");
    rx
}

/// One round of agent-to-agent throughput on the runtime's bus.
pub async fn agents_round(rt: &munggoggo::RuntimeHandle, n: u64, tag: &str) -> Duration {
    let sink = format!("bench-sink-{tag}-{}", std::process::id());
    let rx = start_sink(rt, &sink, n).await;
    let start = Instant::now();
    let producer = rt
        .spawn_as(
            format!("bench-producer-{tag}-{}", std::process::id()),
            Producer {
                to: sink.clone(),
                count: n,
            },
        )
        .await
        .expect("producer starts");
    let end = rx.await.expect("sink finished");
    producer.shutdown().await;
    if let Some(sink) = rt.agent(&sink) {
        sink.shutdown().await;
    }
    end - start
}

/// One round of throughput from a [`munggoggo::runtime::Client`]'s loop
/// of sends in [`Context::pipelined`] (outside a handler each send would
/// wait for its own confirm).
#[cfg_attr(not(feature = "amqp"), allow(dead_code))]
pub async fn client_round(rt: &munggoggo::RuntimeHandle, n: u64, tag: &str) -> Duration {
    let pid = std::process::id();
    let sink = format!("bench-csink-{tag}-{pid}");
    let rx = start_sink(rt, &sink, n).await;
    let client = rt
        .client(format!("bench-client-{tag}-{pid}"))
        .await
        .expect("client starts");
    let start = Instant::now();
    client
        .pipelined(async {
            for seq in 0..n {
                client.send(&sink, &sample(seq)).await?;
            }
            Ok(())
        })
        .await
        .expect("every sample confirmed");
    let end = rx.await.expect("sink finished");
    client.shutdown().await;
    if let Some(sink) = rt.agent(&sink) {
        sink.shutdown().await;
    }
    end - start
}

/// One round of forwarding throughput (a RabbitMQ figure): a producer sends `n` samples to a
/// forwarder, whose handler sends each on to a sink; timed to the sink's
/// last.
#[cfg_attr(not(feature = "amqp"), allow(dead_code))]
pub async fn forward_round(rt: &munggoggo::RuntimeHandle, n: u64, tag: &str) -> Duration {
    let pid = std::process::id();
    let sink = format!("bench-fsink-{tag}-{pid}");
    let forwarder = format!("bench-forwarder-{tag}-{pid}");
    let rx = start_sink(rt, &sink, n).await;
    rt.spawn_with(Forwarder { to: sink.clone() }, unbounded(&forwarder))
        .await
        .expect("forwarder starts");
    let start = Instant::now();
    let producer = rt
        .spawn_as(
            format!("bench-fproducer-{tag}-{pid}"),
            Producer {
                to: forwarder.clone(),
                count: n,
            },
        )
        .await
        .expect("producer starts");
    let end = rx.await.expect("sink finished");
    producer.shutdown().await;
    for id in [&forwarder, &sink] {
        if let Some(agent) = rt.agent(id) {
            agent.shutdown().await;
        }
    }
    end - start
}

/// Options with the given identity and no maximum queue length: a round
/// sends more than the default maximum at once, as the unbounded channel of
/// the baselines may.
pub fn unbounded(identity: &str) -> munggoggo::AgentOptions {
    let mut options = munggoggo::AgentOptions::new(identity);
    options.max_queue = None;
    options
}
