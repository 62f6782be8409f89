//! Declared state machines (`#[fsm]`): a charging point driven by
//! messages through every transition, a timeout under tokio's paused
//! clock, stop and start mid-machine, the state read remotely.

mod common;

use std::time::Duration;

use common::{next, unique, Events};
use munggoggo::fsm::Fsm;
use munggoggo::prelude::*;
use munggoggo::{AgentHandle, RuntimeHandle, State};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

#[derive(Debug, Serialize, Deserialize, Message)]
struct Reserve {
    by: String,
}

#[derive(Debug, Serialize, Deserialize, Message)]
struct Cancel {}

#[derive(Debug, Serialize, Deserialize, Message)]
struct Plug {}

#[derive(Debug, Serialize, Deserialize, Message)]
struct Unplug {}

#[agent]
struct ChargingPoint {
    events: Events,
    /// A reservation that arrived, until `Available` takes it.
    request: Option<String>,
    reserved_by: Option<String>,
    cancelled: bool,
    plugged: bool,
    unplugged: bool,
}

impl ChargingPoint {
    fn new(events: Events) -> Self {
        ChargingPoint {
            events,
            request: None,
            reserved_by: None,
            cancelled: false,
            plugged: false,
            unplugged: false,
        }
    }
}

/// A charging session: reserved, then charging, or back to available when
/// the reservation is cancelled or nobody plugs in within 30 s.
#[fsm(agent = ChargingPoint)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Session {
    #[state(initial, to = [Reserved])]
    Available,
    #[state(to = [Charging, Available], timeout("30s" => Available))]
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
        let _ = self.events.send("reserve handled".to_owned());
    }

    #[on_message]
    async fn cancel(&mut self, _msg: Cancel) {
        self.cancelled = true;
        let _ = self.events.send("cancel handled".to_owned());
    }

    #[on_message]
    async fn plug(&mut self, _msg: Plug) {
        self.plugged = true;
        let _ = self.events.send("plug handled".to_owned());
    }

    #[on_message]
    async fn unplug(&mut self, _msg: Unplug) {
        self.unplugged = true;
        let _ = self.events.send("unplug handled".to_owned());
    }

    async fn available(&mut self, _ctx: &Context) -> AvailableTo {
        let _ = self.events.send("in Available".to_owned());
        if let Some(by) = self.request.take() {
            self.reserved_by = Some(by);
            AvailableTo::Reserved
        } else {
            AvailableTo::Stay
        }
    }

    async fn reserved(&mut self, _ctx: &Context) -> anyhow::Result<ReservedTo> {
        let _ = self.events.send("in Reserved".to_owned());
        if std::mem::take(&mut self.cancelled) {
            self.reserved_by = None;
            return Ok(ReservedTo::Available);
        }
        Ok(if std::mem::take(&mut self.plugged) {
            ReservedTo::Charging
        } else {
            ReservedTo::Stay
        })
    }

    async fn charging(&mut self, _ctx: &Context) -> ChargingTo {
        let _ = self.events.send("in Charging".to_owned());
        if std::mem::take(&mut self.unplugged) {
            ChargingTo::Finished
        } else {
            ChargingTo::Stay
        }
    }
}

#[derive(Debug, Serialize, Deserialize, Message)]
struct Coin {}

#[agent]
struct Turnstile {
    events: Events,
    coins: u32,
}

/// A turnstile that begins again locked whenever it is started again.
#[fsm(agent = Turnstile, restart = "initial")]
enum Gate {
    #[state(initial, to = [Unlocked])]
    Locked,
    #[state(to = [Locked], timeout("5s" => Locked))]
    Unlocked,
}

#[agent]
impl Turnstile {
    #[on_message]
    async fn coin(&mut self, _msg: Coin) {
        self.coins += 1;
    }

    async fn locked(&mut self, _ctx: &Context) -> LockedTo {
        let _ = self.events.send("in Locked".to_owned());
        if std::mem::take(&mut self.coins) > 0 {
            LockedTo::Unlocked
        } else {
            LockedTo::Stay
        }
    }

    async fn unlocked(&mut self, _ctx: &Context) -> UnlockedTo {
        let _ = self.events.send("in Unlocked".to_owned());
        UnlockedTo::Stay
    }
}

#[derive(Debug, Serialize, Deserialize, Message)]
struct Flip {}

#[agent]
#[derive(Default)]
struct Switch {
    flips: u32,
}

/// Flips with every message.
#[fsm(agent = Switch)]
enum Light {
    #[state(initial, to = [On])]
    Off,
    #[state(to = [Off])]
    On,
}

#[agent]
impl Switch {
    #[on_message]
    async fn flip(&mut self, _msg: Flip) {
        self.flips += 1;
    }

    async fn off(&mut self, _ctx: &Context) -> OffTo {
        if std::mem::take(&mut self.flips) == 1 {
            OffTo::On
        } else {
            OffTo::Stay
        }
    }

    async fn on(&mut self, _ctx: &Context) -> OnTo {
        if std::mem::take(&mut self.flips) == 1 {
            OnTo::Off
        } else {
            OnTo::Stay
        }
    }
}

/// Reads events until `want` comes (within 10 s).
async fn wait_for(rx: &mut mpsc::UnboundedReceiver<String>, want: &str) {
    wait_within(rx, want, Duration::from_secs(10)).await;
}

/// Reads events until `want` comes, within `within`.
async fn wait_within(rx: &mut mpsc::UnboundedReceiver<String>, want: &str, within: Duration) {
    let reading = async { while rx.recv().await.expect("event channel open") != want {} };
    tokio::time::timeout(within, reading)
        .await
        .unwrap_or_else(|_| panic!("no event {want:?} within {within:?}"));
}

async fn spawn(rt: &RuntimeHandle) -> (AgentHandle, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let agent = rt
        .spawn_as(unique("charging-point"), ChargingPoint::new(tx))
        .await
        .expect("the charging point starts");
    (agent, rx)
}

/// The transitions traced by the machine `session`, oldest first.
fn transitions(agent: &AgentHandle) -> Vec<String> {
    traced(agent, "session")
}

/// The transitions traced by machine `machine`, oldest first.
fn traced(agent: &AgentHandle, machine: &str) -> Vec<String> {
    let category = format!("{}.{machine}", agent.identity());
    agent
        .traces()
        .filter(None, None, Some(&category))
        .iter()
        .filter_map(|e| e.record.reason.clone())
        .collect()
}

on_both_buses! {
    async fn driven_by_messages_through_every_transition(rt) {
        let (agent, mut rx) = spawn(&rt).await;
        let id = agent.identity().to_owned();
        let client = rt.client(unique("driver")).await.unwrap();
        wait_for(&mut rx, "in Available").await;

        client.send(&id, &Reserve { by: "alice".into() }).await.unwrap();
        wait_for(&mut rx, "in Reserved").await;
        client.send(&id, &Cancel {}).await.unwrap();
        wait_for(&mut rx, "in Available").await;
        client.send(&id, &Reserve { by: "bob".into() }).await.unwrap();
        wait_for(&mut rx, "in Reserved").await;
        client.send(&id, &Plug {}).await.unwrap();
        wait_for(&mut rx, "in Charging").await;
        client.send(&id, &Unplug {}).await.unwrap();
        wait_for(&mut rx, "unplug handled").await;

        // Read remotely, through the behaviours status request.
        let mut remote = None;
        common::eventually("the machine reaches Finished", || {
            remote = agent.behaviour("session");
            remote.as_ref().is_some_and(|b| b.state == State::Shutdown)
        })
        .await;
        let status = client.behaviour_status(&id).await.unwrap();
        let session = status.iter().find(|b| b.name == format!("{id}.session")).expect("the machine is listed");
        let machine = session.machine.as_ref().expect("a machine reports its state");
        assert_eq!(machine.state, "Finished");
        assert_eq!(machine.state_as::<Session>(), Some(Session::Finished));
        assert_eq!(machine.transitions, 5);
        assert_eq!(session.state, State::Shutdown, "a final state finishes the machine");
        assert_eq!(session.errors, 0);
        assert!(status.iter().filter(|b| b.name != session.name).all(|b| b.machine.is_none()));
        assert_eq!(
            transitions(&agent),
            [
                "Available -> Reserved",
                "Reserved -> Available",
                "Available -> Reserved",
                "Reserved -> Charging",
                "Charging -> Finished",
            ]
        );
        assert_eq!(Session::Reserved.name(), "Reserved");

        // The description carries the machine's states and where it is.
        let description = client.describe_agent(&id).await.unwrap();
        let described = description.behaviours.iter().find(|b| b.name == session.name).unwrap();
        let drawn = described.machine.as_ref().expect("a machine describes its states");
        assert_eq!(drawn.name, "Session");
        assert_eq!((drawn.initial.as_str(), drawn.restart.as_str()), ("Available", "resume"));
        assert_eq!(
            serde_json::to_value(&drawn.states).unwrap(),
            serde_json::json!([
                { "name": "Available", "to": ["Reserved"], "timeout": null, "final": false },
                { "name": "Reserved", "to": ["Charging", "Available"], "timeout": [30_000, "Available"], "final": false },
                { "name": "Charging", "to": ["Finished"], "timeout": null, "final": false },
                { "name": "Finished", "to": [], "timeout": null, "final": true },
            ])
        );
        assert_eq!(&drawn.current, machine);

        // ListBehav, 0.4's request: the state follows the machine's name,
        // as text ctrl.py prints; a Rust caller gets the names alone.
        let names = client.list_behaviours(&id).await.unwrap();
        assert!(names.contains(&session.name), "{names:?}");
        let since = humantime::format_rfc3339_seconds(machine.entered());
        let shown = format!("{} (state machine: in Finished since {since}, 5 transitions)", session.name);
        let replied = agent
            .traces()
            .filter(None, None, Some("outgoing"))
            .iter()
            .any(|e| String::from_utf8_lossy(&e.record.body).contains(&shown));
        assert!(replied, "the ListBehav reply shows {shown:?}");

        // Started again, a finished machine begins in its initial state.
        client.manage_behaviour(&id, "session", "start").await.unwrap();
        wait_for(&mut rx, "in Available").await;
        let machine = agent.behaviour("session").unwrap().machine.unwrap();
        assert_eq!((machine.state.as_str(), machine.transitions), ("Available", 6));
        assert_eq!(transitions(&agent).last().map(String::as_str), Some("Finished -> Available (started again)"));
    }

    async fn each_message_is_looked_at_before_the_next(rt) {
        // A burst of messages: the machine looks after each one, before the
        // agent takes the next, so every flip is a transition of its own
        // (a state that saw two flips at once would stay).
        let agent = rt.spawn_as(unique("switch"), Switch::default()).await.unwrap();
        let id = agent.identity().to_owned();
        let client = rt.client(unique("flipper")).await.unwrap();
        client
            .pipelined(async {
                for _ in 0..1_000 {
                    client.send(&id, &Flip {}).await?;
                }
                munggoggo::Result::Ok(())
            })
            .await
            .unwrap();
        common::eventually("1,000 transitions", || {
            agent.behaviour("light").and_then(|b| b.machine).is_some_and(|m| m.transitions >= 1_000)
        })
        .await;
        let machine = agent.behaviour("light").unwrap().machine.unwrap();
        assert_eq!((machine.state.as_str(), machine.transitions), ("Off", 1_000));
    }

    async fn stopped_mid_machine_resumes_where_it_was(rt) {
        let (agent, mut rx) = spawn(&rt).await;
        let id = agent.identity().to_owned();
        let client = rt.client(unique("driver")).await.unwrap();
        wait_for(&mut rx, "in Available").await;
        client.send(&id, &Reserve { by: "carol".into() }).await.unwrap();
        wait_for(&mut rx, "in Reserved").await;

        let stopped = client.manage_behaviour(&id, "session", "stop").await.unwrap();
        assert!(stopped.contains("stopped"), "{stopped}");
        // Handlers run as always; the stopped machine does not look.
        client.send(&id, &Plug {}).await.unwrap();
        wait_for(&mut rx, "plug handled").await;
        let status = agent.behaviour("session").unwrap();
        assert_eq!(status.state, State::Init);
        assert_eq!(status.machine.as_ref().unwrap().state, "Reserved");

        client.manage_behaviour(&id, "session", "start").await.unwrap();
        assert_eq!(next(&mut rx).await, "in Reserved", "it resumes in its state");
        assert_eq!(next(&mut rx).await, "in Charging");
        let machine = agent.behaviour("session").unwrap().machine.unwrap();
        assert_eq!((machine.state.as_str(), machine.transitions), ("Charging", 2));
    }
}

#[tokio::test(start_paused = true)]
async fn a_reservation_times_out_back_to_available() {
    let rt = common::buses::memory().await;
    let (agent, mut rx) = spawn(&rt).await;
    let id = agent.identity().to_owned();
    let client = rt.client("driver").await.unwrap();
    wait_for(&mut rx, "in Available").await;
    client.send(&id, &Reserve { by: "dave".into() }).await.unwrap();
    wait_for(&mut rx, "in Reserved").await;
    let reserved = tokio::time::Instant::now();

    // Each message the agent handles makes the state look again; the
    // timeout counts from when the state was entered.
    tokio::time::sleep(Duration::from_secs(20)).await;
    client.send(&id, &Cancel {}).await.unwrap();
    wait_for(&mut rx, "in Available").await;
    assert_eq!(
        transitions(&agent).last().map(String::as_str),
        Some("Reserved -> Available")
    );

    client.send(&id, &Reserve { by: "erin".into() }).await.unwrap();
    wait_for(&mut rx, "in Reserved").await;
    let entered = tokio::time::Instant::now();
    assert!(entered - reserved < Duration::from_secs(21));
    // Nobody plugs in: the clock runs on to the timeout, and no sooner.
    wait_within(&mut rx, "in Available", Duration::from_secs(60)).await;
    let waited = entered.elapsed();
    assert!(
        (Duration::from_secs(30)..Duration::from_millis(30_100)).contains(&waited),
        "timed out after {waited:?}"
    );
    assert_eq!(
        transitions(&agent).last().map(String::as_str),
        Some("Reserved -> Available (timeout after 30s)")
    );
    let machine = agent.behaviour("session").unwrap().machine.unwrap();
    assert_eq!((machine.state.as_str(), machine.transitions), ("Available", 4));
    rt.shutdown().await;
}

#[tokio::test]
async fn restart_initial_begins_again_and_the_machine_is_described() {
    let rt = common::buses::memory().await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let agent = rt
        .spawn_as("turnstile", Turnstile { events: tx, coins: 0 })
        .await
        .unwrap();
    let client = rt.client("rider").await.unwrap();
    wait_for(&mut rx, "in Locked").await;
    client.send("turnstile", &Coin {}).await.unwrap();
    wait_for(&mut rx, "in Unlocked").await;

    agent.context().stop_behaviour("gate").await.unwrap();
    assert!(agent.context().start_behaviour("gate").await.unwrap());
    assert_eq!(
        next(&mut rx).await,
        "in Locked",
        "restart = \"initial\" begins again"
    );
    assert_eq!(
        traced(&agent, "gate"),
        ["Locked -> Unlocked", "Unlocked -> Locked (started again)"]
    );

    let description = client.describe_agent("turnstile").await.unwrap();
    let gate = description
        .behaviours
        .iter()
        .find(|b| b.name == "turnstile.gate")
        .unwrap();
    assert_eq!(gate.kind, "fsm");
    assert_eq!(
        gate.detail,
        "state machine Locked -> Unlocked, Unlocked -> Locked (after 5s: Locked)"
    );
    rt.shutdown().await;
}
