//! Every form of an `#[fsm]` declaration: timeouts, final states,
//! `restart = "initial"`, methods returning `Result`, a state that only
//! stays, a state named like a keyword, a public machine, the attribute
//! by its full path.

use munggoggo::fsm::Fsm;
use munggoggo::prelude::*;

#[agent]
#[derive(Default)]
struct Lift {
    floor: u8,
}

/// The lift's doors.
#[fsm(agent = Lift)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Doors {
    #[state(initial, to = [Opening, Loop])]
    Closed,
    #[state(to = [Open], timeout("2s" => Open))]
    Opening,
    #[state(to = [Closed, Broken], timeout("1m 30s" => Closed))]
    Open,
    #[state(to = [Closed])]
    Loop,
    #[state(final)]
    Broken,
}

/// A machine that begins again in its initial state when started again.
#[munggoggo::fsm(agent = Lift, restart = "initial")]
enum Motor {
    #[state(initial, to = [Running])]
    Idle,
    /// Only ever stays.
    Running,
}

#[agent]
impl Lift {
    #[rpc]
    async fn call(&mut self, floor: u8) {
        self.floor = floor;
    }

    async fn closed(&mut self, _ctx: &Context) -> ClosedTo {
        match self.floor {
            0 => ClosedTo::Stay,
            13 => ClosedTo::Loop,
            _ => ClosedTo::Opening,
        }
    }

    async fn opening(&mut self, _ctx: &Context) -> anyhow::Result<OpeningTo> {
        Ok(OpeningTo::Open)
    }

    async fn open(&mut self, ctx: &Context) -> Result<OpenTo, munggoggo::Error> {
        let _ = ctx.identity();
        Ok(if self.floor > 100 { OpenTo::Broken } else { OpenTo::Closed })
    }

    async fn r#loop(&mut self, _ctx: &Context) -> LoopTo {
        LoopTo::Closed
    }

    async fn idle(&mut self, _ctx: &Context) -> IdleTo {
        IdleTo::Running
    }

    async fn running(&mut self, _ctx: &Context) -> RunningTo {
        RunningTo::Stay
    }
}

fn main() {
    assert_eq!(Doors::Open.name(), "Open");
    assert_eq!(Doors::from_name("Loop"), Some(Doors::Loop));
    assert_eq!(Doors::from_name("Attic"), None);
    assert!(matches!(Motor::from_name("Idle"), Some(Motor::Idle)));
    assert_eq!(Motor::Running.name(), "Running");
}
