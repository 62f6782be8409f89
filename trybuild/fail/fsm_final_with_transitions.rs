use munggoggo::prelude::*;

#[agent]
#[derive(Default)]
struct Door;

#[fsm(agent = Door)]
enum Doorway {
    #[state(initial, to = [Broken])]
    Closed,
    #[state(final, to = [Closed])]
    Broken,
}

#[agent]
impl Door {
    async fn closed(&mut self, _ctx: &Context) -> ClosedTo {
        ClosedTo::Broken
    }
}

fn main() {}
