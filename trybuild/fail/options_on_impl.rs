use munggoggo::prelude::*;

#[agent]
#[derive(Default)]
struct Ticker;

#[agent(identity = "ticker")]
impl Ticker {
    #[behaviour(oneshot)]
    async fn tick(&mut self) {}
}

fn main() {}
