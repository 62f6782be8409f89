use munggoggo::prelude::*;
use serde::Deserialize;

#[derive(Deserialize, Message)]
struct Ping {
    n: u64,
}

#[agent]
#[derive(Default)]
struct Listener;

#[agent]
impl Listener {
    #[on_message]
    async fn ping(&mut self, ping: Ping, ctx: &Context) {
        let _ = (ctx, ping.n);
    }
}

fn main() {}
