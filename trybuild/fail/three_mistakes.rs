// Three mistakes in one agent: each is reported, in one compile.
use munggoggo::prelude::*;

#[agent]
#[derive(Default)]
struct Sloppy;

#[agent]
impl Sloppy {
    #[behaviour(periodic = "5x")]
    async fn tick(&mut self) {}

    #[on_message(topic = ["a.b*", "c.#d"])]
    async fn seen(&mut self, msg: Raw) {
        let _ = msg;
    }

    #[rpc]
    fn answer(&mut self) -> i64 {
        42
    }
}

fn main() {}
