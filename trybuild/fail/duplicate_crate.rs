use munggoggo::prelude::*;

#[agent]
#[derive(Default)]
struct Door;

#[fsm(crate = "munggoggo", agent = Door, crate = "munggoggo")]
enum Doorway {
    #[state(initial)]
    Closed,
}

#[agent]
impl Door {
    async fn closed(&mut self, _ctx: &Context) -> ClosedTo {
        ClosedTo::Stay
    }
}

fn main() {}
