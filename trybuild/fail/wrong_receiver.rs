use munggoggo::prelude::*;

#[agent]
#[derive(Default)]
struct Ticker;

#[agent]
impl Ticker {
    #[behaviour(periodic = "1s")]
    async fn tick(&self) {}
}

fn main() {}
