use munggoggo::prelude::*;

#[agent]
#[derive(Default)]
struct Ticker;

#[agent]
impl Ticker {
    #[behaviour(periodic = "1s")]
    fn tick(&mut self) {}
}

fn main() {}
