use munggoggo::prelude::*;

#[agent(crate = "my-reexport::munggoggo")]
#[derive(Default)]
struct Ticker;

#[agent]
impl Ticker {
    #[behaviour(oneshot)]
    async fn tick(&mut self) {}
}

fn main() {}
