use munggoggo::prelude::*;

#[agent]
#[derive(Default)]
struct Ticker;

#[agent]
impl Ticker {
    #[behaviour(delay = "1s", initial_delay = "0s")]
    async fn tick(&mut self) {}
}

fn main() {}
