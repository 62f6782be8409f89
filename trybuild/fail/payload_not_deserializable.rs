use munggoggo::prelude::*;

#[derive(Message)]
struct Ping {
    n: u64,
}

#[agent]
#[derive(Default)]
struct Listener;

#[agent]
impl Listener {
    #[on_message]
    async fn ping(&mut self, ping: Envelope<Ping>) {
        let _ = ping.n;
    }
}

fn main() {}
