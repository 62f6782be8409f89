use munggoggo::prelude::*;

#[agent(identiy = "ticker")]
#[derive(Default)]
struct Ticker;

#[agent]
impl Ticker {
    #[behaviour(oneshot)]
    async fn tick(&mut self) {}
}

fn main() {}
