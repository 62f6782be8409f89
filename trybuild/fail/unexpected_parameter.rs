use munggoggo::prelude::*;

#[agent]
#[derive(Default)]
struct Ticker;

#[agent]
impl Ticker {
    #[behaviour(periodic = "1s")]
    async fn tick(&mut self, ctx: &Context, step: u32) {
        let _ = (ctx, step);
    }
}

fn main() {}
