//! An alias of `Result` is a `Result` to `#[rpc]`: its error must be
//! `Display`, as with `Result` spelled out (the shape is proven by the
//! type, not by its name).

use munggoggo::prelude::*;

#[derive(Debug)]
struct Failure;

type Res<T> = Result<T, Failure>;

#[agent]
#[derive(Default)]
struct Calculator;

#[agent]
impl Calculator {
    #[rpc]
    async fn divide(&mut self, x: i64, y: i64) -> Res<i64> {
        x.checked_div(y).ok_or(Failure)
    }
}

fn main() {}
