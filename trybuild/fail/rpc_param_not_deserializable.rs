use munggoggo::prelude::*;

struct Point {
    x: i64,
}

#[agent]
#[derive(Default)]
struct Plotter;

#[agent]
impl Plotter {
    #[rpc]
    async fn plot(&mut self, point: Point) -> i64 {
        point.x
    }
}

fn main() {}
