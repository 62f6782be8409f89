use munggoggo::prelude::*;

#[agent]
#[derive(Default)]
struct Door;

#[fsm(agent = Door)]
enum Doorway {
    #[state(initial, to = [Open, Locked])]
    Closed,
    #[state(to = [Closed], timeout("10s" => Shut))]
    Open,
}

#[agent]
impl Door {
    async fn closed(&mut self, _ctx: &Context) -> ClosedTo {
        ClosedTo::Open
    }

    async fn open(&mut self, _ctx: &Context) -> OpenTo {
        OpenTo::Stay
    }
}

fn main() {}
