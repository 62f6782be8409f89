use munggoggo::prelude::*;

#[agent]
#[derive(Default)]
struct Holder<T> {
    value: T,
}

fn main() {}
