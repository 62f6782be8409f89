//! `crate = ...` on every macro: the runtime through a re-export, as a
//! string literal (as tokio's and serde's `crate` take it) and as a bare
//! path, and the impl block's attributes by their path under it.
//! (`trybuild/renamed` runs the same where `::munggoggo` names nothing.)

mod my_reexport {
    pub use munggoggo;
}

use my_reexport::munggoggo::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Message)]
#[message(crate = "my_reexport::munggoggo")]
struct Ping {
    n: u64,
}

#[derive(Serialize, Deserialize, Message)]
#[message(type = "Pong", crate = my_reexport::munggoggo, envelope)]
struct Reply {
    n: u64,
}

#[agent(crate = "my_reexport::munggoggo", identity = "pinger", call_timeout = "2s")]
#[derive(Default)]
struct Pinger {
    seen: u64,
}

#[fsm(crate = "crate::my_reexport::munggoggo", agent = Pinger)]
enum Mood {
    #[state(initial, to = [Busy], timeout("1s" => Busy))]
    Idle,
    #[state(final)]
    Busy,
}

#[agent(crate = "my_reexport::munggoggo")]
impl Pinger {
    #[setup]
    async fn setup(&mut self, _ctx: &Context) {}

    #[behaviour(periodic = "1s", initial_delay = "0s")]
    async fn ping(&mut self, ctx: &Context) -> anyhow::Result<()> {
        ctx.publish("ping", &Ping { n: self.seen }).await?;
        Ok(())
    }

    #[on_message]
    async fn pong(&mut self, msg: Envelope<Reply>) {
        self.seen = msg.n;
    }

    #[my_reexport::munggoggo::on_message(topic = "ping.#")]
    async fn topic(&mut self, _msg: Ping) {}

    #[my_reexport::munggoggo::prelude::rpc]
    async fn seen(&mut self) -> u64 {
        self.seen
    }

    async fn idle(&mut self, _ctx: &Context) -> IdleTo {
        IdleTo::Stay
    }
}

/// The typed client, through the re-export too.
fn second(ctx: &Context) -> PingerClient<'_> {
    Pinger::client_for(ctx, "p2")
}

fn main() {
    use my_reexport::munggoggo::AgentDefaults;
    assert_eq!(Ping::TYPE, "Ping");
    assert_eq!(Reply::TYPE, "Pong");
    assert_eq!(Pinger::options().identity, "pinger");
    let _ = second;
}
