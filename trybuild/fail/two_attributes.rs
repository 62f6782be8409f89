use munggoggo::prelude::*;

#[agent]
#[derive(Default)]
struct Ticker;

#[agent]
impl Ticker {
    #[behaviour(oneshot)]
    #[rpc]
    async fn tick(&mut self) {}
}

fn main() {}
