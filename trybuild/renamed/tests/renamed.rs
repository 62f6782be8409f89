//! Every macro with `crate = ...`, through a re-export (a string literal,
//! as tokio's and serde's `crate` take it) and through the renamed
//! dependency (a bare path); the agent then runs on the embedded bus:
//! setup, a oneshot behaviour, a handler, `#[rpc]` methods through the
//! typed client and a state machine.

use std::time::Duration;

use munggoggo_renamed::facade::runtime::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, Message)]
#[message(crate = "munggoggo_renamed::facade::runtime")]
struct Bump {
    by: u64,
}

/// `type` and `crate` in one attribute, the path bare.
#[derive(Debug, Serialize, Deserialize, Message)]
#[message(type = "Reset", crate = mg)]
struct Zero {}

#[agent(
    crate = "munggoggo_renamed::facade::runtime",
    identity = "counter",
    peer_interval = "1s"
)]
#[derive(Default)]
struct Counter {
    total: u64,
    set_up: bool,
    ran_once: bool,
    lit: bool,
}

#[fsm(agent = Counter, crate = mg)]
enum Light {
    #[state(initial, to = [On], timeout("10s" => On))]
    Off,
    #[state(final)]
    On,
}

#[agent(crate = "munggoggo_renamed::facade::runtime")]
impl Counter {
    #[setup]
    async fn setup(&mut self, _ctx: &Context) {
        self.set_up = true;
    }

    #[behaviour(oneshot)]
    async fn once(&mut self) {
        self.ran_once = true;
    }

    #[on_message]
    async fn bump(&mut self, msg: Bump) {
        self.total += msg.by;
    }

    // The attribute by its path under the re-export.
    #[munggoggo_renamed::facade::runtime::on_message]
    async fn zero(&mut self, _msg: Envelope<Zero>) {
        self.total = 0;
    }

    #[rpc]
    async fn total(&mut self) -> u64 {
        self.total
    }

    #[munggoggo_renamed::facade::runtime::prelude::rpc]
    async fn flags(&mut self) -> (bool, bool, bool) {
        (self.set_up, self.ran_once, self.lit)
    }

    async fn off(&mut self, _ctx: &Context) -> OffTo {
        if self.total >= 3 {
            self.lit = true;
            OffTo::On
        } else {
            OffTo::Stay
        }
    }
}

#[tokio::test]
async fn the_macros_work_through_a_renamed_crate() -> mg::Result<()> {
    assert_eq!(<Bump as mg::Message>::TYPE, "Bump");
    assert_eq!(<Zero as mg::Message>::TYPE, "Reset");
    let options = <Counter as mg::AgentDefaults>::options();
    assert_eq!(options.identity, "counter");

    let rt = mg::Runtime::memory().agent(Counter::default()).start().await?;
    let client = rt.client("tester").await?;
    client.send("counter", &Bump { by: 1 }).await?;
    client.send("counter", &Bump { by: 2 }).await?;
    let counter = Counter::client(&client);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while counter.total().await? != 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the handler never counted to 3"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The machine goes on once the handler counted to 3.
    while counter.flags().await? != (true, true, true) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "setup, the behaviour or the machine never ran"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    client.send("counter", &Zero {}).await?;
    while counter.total().await? != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the Reset handler never ran"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    rt.shutdown().await;
    Ok(())
}
