//! A charging point as a declared state machine (`#[fsm]`) on the
//! embedded bus, no broker needed: `Available -> Reserved -> Charging ->
//! Finished`, reservations, plugs and unplugs arriving as messages, and a
//! reservation that nobody uses going back to `Available` after a timeout
//! (3 s here). A client drives it and reads the machine's state remotely,
//! as the command line's `behaviours` does.
//!
//! Run it with `cargo run --example charging_point`.

use std::time::Duration;

use munggoggo::prelude::*;
use serde::{Deserialize, Serialize};

/// Someone reserves the point.
#[derive(Debug, Serialize, Deserialize, Message)]
struct Reserve {
    by: String,
}

/// The reserving car plugs in.
#[derive(Debug, Serialize, Deserialize, Message)]
struct Plug {}

/// The car unplugs: the session is over.
#[derive(Debug, Serialize, Deserialize, Message)]
struct Unplug {}

/// The charging point: its handlers note what arrived, the machine's
/// state methods decide what it means.
#[agent(identity = "charging-point")]
#[derive(Default)]
struct ChargingPoint {
    /// A reservation that arrived, until `Available` takes it.
    request: Option<String>,
    reserved_by: Option<String>,
    plugged: bool,
    unplugged: bool,
}

/// A charging session: behaviour `charging-point.session`.
#[fsm(agent = ChargingPoint)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Session {
    #[state(initial, to = [Reserved])]
    Available,
    #[state(to = [Charging], timeout("3s" => Available))]
    Reserved,
    #[state(to = [Finished])]
    Charging,
    #[state(final)]
    Finished,
}

#[agent]
impl ChargingPoint {
    #[on_message]
    async fn reserve(&mut self, msg: Reserve) {
        self.request = Some(msg.by);
    }

    #[on_message]
    async fn plug(&mut self, _msg: Plug) {
        self.plugged = true;
    }

    #[on_message]
    async fn unplug(&mut self, _msg: Unplug) {
        self.unplugged = true;
    }

    /// Waits for a reservation.
    async fn available(&mut self, _ctx: &Context) -> AvailableTo {
        match self.request.take() {
            Some(by) => {
                self.reserved_by = Some(by);
                AvailableTo::Reserved
            }
            None => AvailableTo::Stay,
        }
    }

    /// Waits for the car to plug in (or for the timeout).
    async fn reserved(&mut self, _ctx: &Context) -> ReservedTo {
        if std::mem::take(&mut self.plugged) {
            ReservedTo::Charging
        } else {
            ReservedTo::Stay
        }
    }

    /// Charges until the car unplugs.
    async fn charging(&mut self, _ctx: &Context) -> ChargingTo {
        if std::mem::take(&mut self.unplugged) {
            ChargingTo::Finished
        } else {
            ChargingTo::Stay
        }
    }
}

/// Prints the machine's state as the agent reports it to anyone who asks.
async fn show(client: &Context, after: &str) -> munggoggo::Result<()> {
    // Give the agent a moment to handle what was just sent.
    tokio::time::sleep(Duration::from_millis(100)).await;
    for b in client.behaviour_status("charging-point").await? {
        if let Some(machine) = b.machine {
            println!(
                "{after:<28} {}: {:<9} ({} transitions, behaviour {})",
                b.name, machine.state, machine.transitions, b.state
            );
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> munggoggo::Result<()> {
    let rt = munggoggo::Runtime::memory()
        .agent(ChargingPoint::default())
        .start()
        .await?;
    let client = rt.client("driver").await?;
    show(&client, "started").await?;

    client
        .send("charging-point", &Reserve { by: "alice".into() })
        .await?;
    show(&client, "alice reserves").await?;
    println!("(alice never comes: waiting for the 3 s timeout)");
    tokio::time::sleep(Duration::from_millis(3_100)).await;
    show(&client, "3 s later").await?;

    client
        .send("charging-point", &Reserve { by: "bob".into() })
        .await?;
    show(&client, "bob reserves").await?;
    client.send("charging-point", &Plug {}).await?;
    show(&client, "bob plugs in").await?;
    client.send("charging-point", &Unplug {}).await?;
    show(&client, "bob unplugs").await?;

    rt.shutdown().await;
    Ok(())
}
