use munggoggo::prelude::*;
use serde::Deserialize;

#[derive(Deserialize, Message)]
struct Ping {
    n: u64,
}

struct Listener;

impl Listener {
    #[on_message]
    async fn ping(&mut self, ping: Ping) {
        let _ = ping.n;
    }
}

fn main() {}
