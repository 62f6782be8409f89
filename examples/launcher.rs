//! A binary with two agent types and one line of `main`: the launcher of
//! `munggoggo-cli` (`munggoggo_cli::main()`) gives it `list`, `run [AGENT...] [--identity ID...]`
//! and every command of the `munggoggo` CLI (`peers`, `call`, ...).
//!
//! ```text
//! cargo run --features cli --example launcher -- list
//! cargo run --features cli --example launcher -- run                  # both agents, embedded bus
//! MUNGGOGGO_URL=amqp://guest:guest@127.0.0.1:5672/%2f \
//!   cargo run --features cli --example launcher -- run Heartbeat Calculator --identity beat-1
//! cargo run --features cli --example launcher -- call calculator multiply '[6, 7]'   # from a second terminal
//! ```
//!
//! `run` uses the embedded bus unless `--url` or `MUNGGOGGO_URL` names a
//! RabbitMQ broker; the inspection commands need RabbitMQ.

use munggoggo::prelude::*;
use serde::{Deserialize, Serialize};

/// A beat, published on the topic `heartbeat.<identity>`.
#[derive(Debug, Serialize, Deserialize, Message)]
struct Beat {
    n: u64,
}

/// Publishes a beat every second and counts the beats it hears.
#[agent(identity = "heartbeat")]
#[derive(Default)]
struct Heartbeat {
    sent: u64,
    heard: u64,
}

#[agent]
impl Heartbeat {
    #[behaviour(periodic = "1s")]
    async fn beat(&mut self, ctx: &Context) -> munggoggo::Result<()> {
        self.sent += 1;
        let topic = format!("heartbeat.{}", ctx.identity());
        ctx.publish(&topic, &Beat { n: self.sent }).await
    }

    #[on_message(topic = "heartbeat.#")]
    async fn listen(&mut self, beat: Beat) {
        self.heard += 1;
        tracing::debug!(n = beat.n, heard = self.heard, "beat");
    }

    /// How many beats this agent sent and heard.
    #[rpc]
    async fn stats(&mut self) -> Result<(u64, u64), munggoggo::Error> {
        Ok((self.sent, self.heard))
    }
}

/// Sets a calculator's call count back to zero.
#[derive(Debug, Serialize, Deserialize, Message)]
struct Reset {}

/// Multiplies numbers on request.
#[agent(identity = "calculator")]
#[derive(Default)]
struct Calculator {
    calls: u64,
}

#[agent]
impl Calculator {
    /// `x * y`.
    #[rpc]
    async fn multiply(&mut self, x: i64, y: i64) -> Result<i64, munggoggo::Error> {
        self.calls += 1;
        Ok(x * y)
    }

    #[on_message]
    async fn reset(&mut self, _: Reset) {
        self.calls = 0;
    }

    #[on_message(fallback)]
    async fn other(&mut self, msg: Envelope<Raw>) {
        tracing::info!(sender = msg.sender(), "unexpected message");
    }
}

fn main() {
    munggoggo_cli::main()
}
