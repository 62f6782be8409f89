use munggoggo::prelude::*;

#[agent]
#[derive(Default)]
struct Ticker;

#[agent]
impl Ticker {
    #[behaviour(period = "1s")]
    async fn tick(&mut self) {}
}

fn main() {}
