// A `crate` path that names nothing: rustc reports it at the literal.
use munggoggo::prelude::*;

#[agent]
#[derive(Default)]
struct Ticker;

#[agent(crate = "nowhere::munggoggo")]
impl Ticker {
    #[behaviour(oneshot)]
    async fn tick(&mut self) {}
}

fn main() {}
