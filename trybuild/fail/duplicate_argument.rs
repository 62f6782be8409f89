use munggoggo::prelude::*;

#[agent(identity = "ticker", prefetch = 8, identity = "other")]
#[derive(Default)]
struct Ticker;

#[agent]
impl Ticker {
    #[behaviour(oneshot)]
    async fn tick(&mut self) {}
}

fn main() {}
