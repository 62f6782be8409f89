//! One half of a two-process exchange over RabbitMQ: the agent `ping`
//! publishes a `Ping` on the topic `ping` every second and prints the
//! `Pong`s that come back directly from `pong` (see `examples/pong.rs`).
//!
//! Run each half in its own terminal (RabbitMQ on localhost):
//!
//! ```sh
//! MUNGGOGGO_URL=amqp://guest:guest@127.0.0.1:5672/%2f cargo run --features amqp --example pong
//! MUNGGOGGO_URL=amqp://guest:guest@127.0.0.1:5672/%2f cargo run --features amqp --example ping
//! ```
//!
//! Stop either with Ctrl-C: it deletes its queues and the other keeps
//! running. Without `MUNGGOGGO_URL` it runs alone on the embedded bus.

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

#[agent(identity = "ping")]
#[derive(Default)]
struct Pinger {
    sent: u64,
}

#[agent]
impl Pinger {
    #[behaviour(periodic = "1s", initial_delay = "0s")]
    async fn ping(&mut self, ctx: &Context) -> munggoggo::Result<()> {
        self.sent += 1;
        ctx.publish("ping", &Ping { n: self.sent }).await?;
        println!("ping: sent Ping {}", self.sent);
        Ok(())
    }

    #[on_message]
    async fn pong(&mut self, msg: Envelope<Pong>) {
        println!("ping: Pong {} from {}", msg.n, msg.sender());
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Logs to stderr; `RUST_LOG` decides what.
    munggoggo::init_logging();
    munggoggo::Runtime::from_env()?
        .agent(Pinger::default())
        .run_until_signal()
        .await?;
    Ok(())
}
