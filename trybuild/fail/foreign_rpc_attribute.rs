// Only munggoggo's own attributes are taken: `#[other::rpc]` is not
// `#[rpc]`, so the method stays an ordinary method (and the foreign
// attribute is resolved as usual: here it does not exist).
use munggoggo::prelude::*;

#[agent]
#[derive(Default)]
struct Calc;

#[agent]
impl Calc {
    #[other::rpc]
    async fn multiply(&mut self, x: i64, y: i64) -> i64 {
        x * y
    }
}

fn main() {}
