use munggoggo::prelude::*;

#[agent(prefetch = 0)]
#[derive(Default)]
struct Ticker;

#[agent]
impl Ticker {}

fn main() {}
