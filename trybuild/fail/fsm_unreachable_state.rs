use munggoggo::prelude::*;

#[agent]
#[derive(Default)]
struct Door;

#[fsm(agent = Door)]
enum Doorway {
    #[state(initial, to = [Open])]
    Closed,
    #[state(to = [Closed])]
    Open,
    #[state(to = [Closed])]
    Ajar,
    #[state(final)]
    Broken,
}

#[agent]
impl Door {
    async fn closed(&mut self, _ctx: &Context) -> ClosedTo {
        ClosedTo::Open
    }

    async fn open(&mut self, _ctx: &Context) -> OpenTo {
        OpenTo::Closed
    }

    async fn ajar(&mut self, _ctx: &Context) -> AjarTo {
        AjarTo::Closed
    }
}

fn main() {}
