use munggoggo::prelude::*;

#[agent]
#[derive(Default)]
struct Ticker;

#[agent]
impl Ticker {
    #[behaviour(periodic = "5x")]
    async fn tick(&mut self) {}
}

fn main() {}
