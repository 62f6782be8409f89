use munggoggo::prelude::*;

#[agent]
#[derive(Default)]
struct Listener;

#[agent]
impl Listener {
    #[on_message(fallback)]
    async fn any<T: serde::de::DeserializeOwned + Send + 'static>(&mut self, msg: T) {
        let _ = msg;
    }
}

fn main() {}
