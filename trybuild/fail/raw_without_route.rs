use munggoggo::prelude::*;

#[agent]
#[derive(Default)]
struct Listener;

#[agent]
impl Listener {
    #[on_message]
    async fn bytes(&mut self, raw: Raw) {
        let _ = raw.as_bytes();
    }
}

fn main() {}
