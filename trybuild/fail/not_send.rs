use std::rc::Rc;

use munggoggo::prelude::*;

#[agent]
#[derive(Default)]
struct Ticker;

#[agent]
impl Ticker {
    #[behaviour(cyclic)]
    async fn tick(&mut self) {
        let local = Rc::new(1);
        tokio::task::yield_now().await;
        let _ = local;
    }
}

fn main() {}
