use munggoggo::prelude::*;
use serde::Deserialize;

#[derive(Deserialize)]
struct Ping {
    n: u64,
}

#[agent]
#[derive(Default)]
struct Listener;

#[agent]
impl Listener {
    #[on_message]
    async fn ping(&mut self, ping: Ping) {
        let _ = ping.n;
    }
}

fn main() {}
