use munggoggo::prelude::*;

#[derive(Debug)]
struct Failure;

#[agent]
#[derive(Default)]
struct Calculator;

#[agent]
impl Calculator {
    #[rpc]
    async fn divide(&mut self, x: i64, y: i64) -> Result<i64, Failure> {
        x.checked_div(y).ok_or(Failure)
    }
}

fn main() {}
