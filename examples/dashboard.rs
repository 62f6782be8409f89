//! The web dashboard over a few agents on the embedded bus: a pinger and a
//! ponger on the topic `ping`, and a calculator with an `#[rpc]` method.
//! Open <http://127.0.0.1:8000/> to watch them, stop and start their
//! behaviours, send messages and call `calculator.multiply`.
//!
//! Run it with `cargo run --example dashboard --features web` (Ctrl-C to
//! stop). `MUNGGOGGO_DASHBOARD_TOKEN=secret` makes every change want
//! `Authorization: Bearer secret`; `MUNGGOGGO_URL=amqp://...` runs the same
//! agents and dashboard on RabbitMQ.

use munggoggo::prelude::*;
use munggoggo_web::DashboardOptions;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, Message)]
struct Ping {
    n: u64,
}

#[derive(Debug, Serialize, Deserialize, Message)]
struct Pong {
    n: u64,
}

/// Publishes a ping every second.
#[agent(identity = "pinger")]
#[derive(Default)]
struct Pinger {
    sent: u64,
}

#[agent]
impl Pinger {
    #[behaviour(periodic = "1s")]
    async fn ping(&mut self, ctx: &Context) -> munggoggo::Result<()> {
        self.sent += 1;
        ctx.publish("ping", &Ping { n: self.sent }).await
    }

    #[on_message]
    async fn pong(&mut self, _pong: Pong) {}
}

/// Answers every ping on the topic.
#[agent(identity = "ponger")]
#[derive(Default)]
struct Ponger;

#[agent]
impl Ponger {
    #[on_message(topic = "ping")]
    async fn ping(&mut self, ctx: &Context, ping: Envelope<Ping>) -> munggoggo::Result<()> {
        ctx.send(ping.sender(), &Pong { n: ping.n }).await
    }
}

/// Multiplies on request.
#[agent(identity = "calculator")]
#[derive(Default)]
struct Calculator;

#[agent]
impl Calculator {
    #[rpc]
    async fn multiply(&mut self, x: i64, y: i64) -> munggoggo::Result<i64> {
        Ok(x * y)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let runtime = munggoggo::Runtime::from_env()?
        .agent(Pinger::default())
        .agent(Ponger)
        .agent(Calculator)
        .start()
        .await?;
    println!("dashboard on http://127.0.0.1:8000/ (Ctrl-C to stop)");
    munggoggo_web::serve(&runtime, "127.0.0.1:8000".parse()?, DashboardOptions::from_env()).await?;
    runtime.shutdown().await;
    Ok(())
}
