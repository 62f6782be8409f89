use munggoggo::prelude::*;

#[agent(replicated = "yes")]
#[derive(Default)]
struct Worker;

#[agent]
impl Worker {}

fn main() {}
