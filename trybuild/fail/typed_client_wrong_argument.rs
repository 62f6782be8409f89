use munggoggo::prelude::*;

#[agent]
#[derive(Default)]
struct Calc;

#[agent]
impl Calc {
    #[rpc]
    async fn multiply(&mut self, x: i64, y: i64) -> i64 {
        x * y
    }
}

async fn ask(ctx: &Context) -> munggoggo::Result<i64> {
    Calc::client(ctx).multiply("3", 2).await
}

fn main() {
    let _ = ask;
}
