use munggoggo::prelude::*;

#[agent]
#[derive(Default)]
struct Listener;

#[agent]
impl Listener {
    #[on_message(fallback)]
    async fn first(&mut self, msg: Raw) {
        let _ = msg;
    }

    #[on_message(fallback)]
    async fn second(&mut self, msg: Raw) {
        let _ = msg;
    }
}

fn main() {}
