use munggoggo::prelude::*;

#[agent]
#[derive(Default)]
struct Door;

#[fsm(agent = Door)]
enum Doorway {
    #[state(initial, to = [Open])]
    Closed,
    #[state(to = [Closed, Broken])]
    Open,
    #[state(final)]
    Broken,
}

#[agent]
impl Door {
    async fn closed(&mut self, _ctx: &Context) -> ClosedTo {
        ClosedTo::Broken
    }

    async fn open(&mut self, _ctx: &Context) -> OpenTo {
        OpenTo::Closed
    }
}

fn main() {}
