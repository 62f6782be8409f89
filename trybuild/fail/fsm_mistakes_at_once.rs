//! Every mistake of a machine is reported in one compile.
use munggoggo::prelude::*;

#[agent]
#[derive(Default)]
struct Door;

#[fsm(agent = Door, restart = "later")]
enum Doorway {
    #[state(initial, to = [Open, Opne])]
    Closed,
    #[state(initial, to = [Closed], timeout("10 parsecs" => Closed))]
    Open,
    #[state(to = [Closed], colour = "red")]
    Ajar,
    Jammed(u8),
}

#[agent]
impl Door {}

fn main() {}
