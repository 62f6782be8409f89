use munggoggo::prelude::*;

#[agent]
#[derive(Default)]
struct Listener;

#[agent]
impl Listener {
    #[on_message(topic = ["ping.#", "pong.x*"])]
    async fn seen(&mut self, msg: Raw) {
        let _ = msg;
    }
}

fn main() {}
