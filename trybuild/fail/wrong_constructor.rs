use munggoggo::prelude::*;

struct Other;

fn build() -> Other {
    Other
}

#[agent(new = build)]
struct Server;

#[agent]
impl Server {}

fn main() {}
