//! The other half of `examples/ping.rs`: the agent `pong` subscribes to the
//! topic `ping` and answers every `Ping` directly to its sender.
//!
//! Run each half in its own terminal (RabbitMQ on localhost):
//!
//! ```sh
//! MUNGGOGGO_URL=amqp://guest:guest@127.0.0.1:5672/%2f cargo run --features amqp --example pong
//! MUNGGOGGO_URL=amqp://guest:guest@127.0.0.1:5672/%2f cargo run --features amqp --example ping
//! ```
//!
//! Stop either with Ctrl-C: it deletes its queues and the other keeps
//! running (a pong for a pinger that left fails, is logged and counted).

use munggoggo::prelude::*;
use serde::{Deserialize, Serialize};

/// The question, published on the topic `ping`.
#[derive(Debug, Serialize, Deserialize, Message)]
pub struct Ping {
    n: u64,
}

/// The answer, sent directly to the pinger.
#[derive(Debug, Serialize, Deserialize, Message)]
pub struct Pong {
    n: u64,
}

#[agent(identity = "pong")]
#[derive(Default)]
struct Ponger;

#[agent]
impl Ponger {
    #[on_message(topic = "ping")]
    async fn ping(&mut self, ctx: &Context, msg: Envelope<Ping>) -> munggoggo::Result<()> {
        println!("pong: Ping {} from {}", msg.n, msg.sender());
        ctx.send(msg.sender(), &Pong { n: msg.n }).await
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Logs to stderr; `RUST_LOG` decides what.
    munggoggo::init_logging();
    munggoggo::Runtime::from_env()?
        .agent(Ponger)
        .run_until_signal()
        .await?;
    Ok(())
}
