use munggoggo::prelude::*;

struct Report {
    lines: Vec<String>,
}

#[agent]
#[derive(Default)]
struct Reporter;

#[agent]
impl Reporter {
    #[rpc]
    async fn report(&mut self) -> Report {
        Report { lines: Vec::new() }
    }
}

fn main() {}
