use munggoggo::prelude::*;

#[fsm]
enum Doorway {
    #[state(initial)]
    Closed,
}

fn main() {}
