//! Every attribute of an `#[agent]` impl block at once, with method names
//! that clash with the `Agent` trait's own (`setup`, `run`, `handle`, ...).

use munggoggo::__private::{Agent, AgentDefaults, BehaviourKind, Duration, HandlerRoute};
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

/// A payload without a `Message` derive: its handler names the type.
#[derive(Debug, Deserialize)]
struct Tick {
    at: u64,
}

#[agent(
    identity = "everything",
    prefetch = 16,
    max_queue = 100,
    trace_size = 50,
    peer_interval = "10s",
    call_timeout = "1m 30s"
)]
#[derive(Default)]
struct Everything {
    seen: u64,
}

#[agent]
impl Everything {
    /// Plain methods are left alone.
    fn bump(&mut self) -> u64 {
        self.seen += 1;
        self.seen
    }

    #[setup]
    async fn setup(&mut self, ctx: &Context) -> anyhow::Result<()> {
        let _ = ctx.identity();
        Ok(())
    }

    #[teardown]
    async fn teardown(&mut self) {}

    #[behaviour(periodic = "1s")]
    async fn run(&mut self, ctx: &Context) -> anyhow::Result<()> {
        ctx.publish("ping.out", &Ping { n: self.bump() }).await?;
        Ok(())
    }

    #[behaviour(periodic = "250ms", initial_delay = "0s")]
    async fn fast(&mut self) {}

    #[behaviour(oneshot)]
    async fn once(&mut self) {}

    #[behaviour(delay = "10s")]
    async fn later(&mut self, _ctx: &Context) {}

    #[behaviour(cyclic)]
    async fn handle(&mut self) -> Next {
        Next::After(std::time::Duration::from_millis(100))
    }

    #[on_message]
    async fn call(&mut self, msg: Envelope<Pong>) {
        self.seen += msg.n;
    }

    #[on_message(type = "Tick")]
    async fn tick(&mut self, tick: Tick) {
        self.seen = tick.at;
    }

    #[on_message(topic = "ping.#")]
    async fn seen(&mut self, ping: Ping) {
        self.seen = ping.n;
    }

    #[on_message(topic = ["a.*.c", "b.#"])]
    async fn many(&mut self, ctx: &Context, raw: Raw) {
        let _ = (ctx, raw.as_bytes());
    }

    #[on_message(fallback)]
    async fn other(&mut self, msg: Envelope<Raw>) {
        let _ = (msg.sender(), msg.message_type());
    }

    #[rpc]
    async fn multiply(&mut self, x: i64, y: i64) -> i64 {
        x * y
    }

    #[rpc]
    async fn count(&mut self) -> u64 {
        self.seen
    }
}

fn main() {
    let spec = Everything::spec();
    assert_eq!(spec.name, "Everything");
    let methods: Vec<&str> = spec.behaviours.iter().map(|b| b.method).collect();
    assert_eq!(
        methods,
        ["run", "fast", "once", "later", "handle", "call", "tick", "seen", "many", "other"]
    );
    assert_eq!(
        spec.behaviours[0].kind,
        BehaviourKind::Periodic {
            period: Duration::from_secs(1),
            initial_delay: None
        }
    );
    assert_eq!(
        spec.behaviours[1].kind,
        BehaviourKind::Periodic {
            period: Duration::from_millis(250),
            initial_delay: Some(Duration::ZERO)
        }
    );
    assert_eq!(spec.behaviours[2].kind, BehaviourKind::Oneshot);
    assert_eq!(
        spec.behaviours[3].kind,
        BehaviourKind::Delay(Duration::from_secs(10))
    );
    assert_eq!(spec.behaviours[4].kind, BehaviourKind::Cyclic);
    assert_eq!(
        spec.behaviours[5].kind,
        BehaviourKind::Handler(HandlerRoute::Type("Pong"))
    );
    assert_eq!(
        spec.behaviours[6].kind,
        BehaviourKind::Handler(HandlerRoute::Type("Tick"))
    );
    assert_eq!(
        spec.behaviours[7].kind,
        BehaviourKind::Handler(HandlerRoute::Topic(&["ping.#"]))
    );
    assert_eq!(
        spec.behaviours[8].kind,
        BehaviourKind::Handler(HandlerRoute::Topic(&["a.*.c", "b.#"]))
    );
    assert_eq!(spec.behaviours[9].kind, BehaviourKind::Handler(HandlerRoute::Fallback));
    let rpcs: Vec<(&str, &[&str])> = spec.rpcs.iter().map(|r| (r.method, r.params)).collect();
    assert_eq!(rpcs, [("multiply", &["x", "y"][..]), ("count", &[][..])]);

    let options = Everything::options();
    assert_eq!(options.identity, "everything");
    assert_eq!(options.prefetch, 16);
    assert_eq!(options.max_queue, Some(100));
    assert_eq!(options.trace_size, 50);
    assert_eq!(options.peer_interval, Some(Duration::from_secs(10)));
    assert_eq!(options.call_timeout, Duration::from_secs(90));
    assert!(Everything::construct().is_some());

    let registered = munggoggo::agent::registered();
    assert!(registered.iter().any(|r| r.name() == "Everything"));
}
