// An agent type has exactly one `#[agent]` impl block.
use munggoggo::prelude::*;

#[agent]
#[derive(Default)]
struct Split;

#[agent]
impl Split {
    #[behaviour(oneshot)]
    async fn hello(&mut self) {}
}

#[agent]
impl Split {
    #[behaviour(oneshot)]
    async fn bye(&mut self) {}
}

fn main() {}
