use munggoggo::prelude::*;

#[agent]
#[derive(Default)]
struct Ticker;

#[agent]
impl Ticker {
    #[behaviour(periodic = "1s", oneshot)]
    async fn tick(&mut self) {}
}

fn main() {}
