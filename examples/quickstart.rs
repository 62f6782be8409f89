//! Two agents on the embedded bus, no broker needed: `pinger` publishes a
//! `Ping` on the topic `ping` every 200 ms, `ponger` subscribes to it and
//! answers each one directly with a `Pong`. After five rounds the pinger
//! prints a summary and everything stops.
//!
//! Run it with `cargo run --example quickstart` (with `--features amqp` and
//! `MUNGGOGGO_URL` set to an `amqp://` URL, the same agents run on RabbitMQ).

use munggoggo::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, Message)]
struct Ping {
    n: u64,
}

#[derive(Debug, Serialize, Deserialize, Message)]
struct Pong {
    n: u64,
}

/// Publishes pings and counts the pongs.
#[agent(identity = "pinger")]
#[derive(Default)]
struct Pinger {
    sent: u64,
    received: u64,
}

#[agent]
impl Pinger {
    #[behaviour(periodic = "200ms")]
    async fn ping(&mut self, ctx: &Context) -> munggoggo::Result<()> {
        self.sent += 1;
        println!("pinger -> topic ping: Ping {{ n: {} }}", self.sent);
        ctx.publish("ping", &Ping { n: self.sent }).await
    }

    #[on_message]
    async fn pong(&mut self, ctx: &Context, msg: Envelope<Pong>) {
        self.received += 1;
        println!("pinger <- {}: Pong {{ n: {} }}", msg.sender(), msg.n);
        if self.received == 5 {
            ctx.stop();
        }
    }

    #[teardown]
    async fn summary(&mut self) {
        println!(
            "pinger: sent {} pings, received {} pongs",
            self.sent, self.received
        );
    }
}

/// Answers every ping on the topic.
#[agent(identity = "ponger")]
#[derive(Default)]
struct Ponger;

#[agent]
impl Ponger {
    #[on_message(topic = "ping")]
    async fn ping(&mut self, ctx: &Context, msg: Envelope<Ping>) -> munggoggo::Result<()> {
        ctx.send(msg.sender(), &Pong { n: msg.n }).await
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Logs to stderr; `RUST_LOG` decides what.
    munggoggo::init_logging();
    let runtime = munggoggo::Runtime::from_env()?
        .agent(Pinger::default())
        .agent(Ponger)
        .start()
        .await?;
    if let Some(pinger) = runtime.agent("pinger") {
        pinger.stopped().await;
    }
    runtime.shutdown().await;
    println!("done");
    Ok(())
}
