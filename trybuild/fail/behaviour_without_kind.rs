use munggoggo::prelude::*;

#[agent]
#[derive(Default)]
struct Ticker;

#[agent]
impl Ticker {
    #[behaviour]
    async fn tick(&mut self) {}
}

fn main() {}
