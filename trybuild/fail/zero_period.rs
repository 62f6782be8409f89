use munggoggo::prelude::*;

#[agent]
#[derive(Default)]
struct Ticker;

#[agent]
impl Ticker {
    #[behaviour(periodic = "0s")]
    async fn tick(&mut self) {}
}

fn main() {}
