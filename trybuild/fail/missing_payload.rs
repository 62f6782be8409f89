use munggoggo::prelude::*;

#[agent]
#[derive(Default)]
struct Listener;

#[agent]
impl Listener {
    #[on_message(type = "Ping")]
    async fn ping(&mut self, ctx: &Context) {
        let _ = ctx;
    }
}

fn main() {}
