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
    async fn first(&mut self, ping: Ping) {
        let _ = ping.n;
    }

    #[on_message]
    async fn second(&mut self, ping: Envelope<Ping>) {
        let _ = ping.n;
    }
}

fn main() {}
