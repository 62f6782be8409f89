use munggoggo::prelude::*;

#[allow(clippy::upper_case_acronyms)]
#[derive(Message)]
struct PUBSUB;

fn main() {}
