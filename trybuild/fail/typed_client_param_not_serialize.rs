use munggoggo::prelude::*;
use serde::Deserialize;

#[derive(Deserialize)]
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

async fn ask(ctx: &Context) -> munggoggo::Result<i64> {
    Plotter::client(ctx).plot(Point { x: 1 }).await
}

fn main() {
    let _ = ask;
}
