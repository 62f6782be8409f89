use munggoggo::prelude::*;

#[agent]
#[derive(Default)]
struct Greeter;

#[agent]
impl Greeter {
    #[rpc]
    async fn greet(&mut self, name: &str) -> String {
        format!("hello {name}")
    }
}

fn main() {}
