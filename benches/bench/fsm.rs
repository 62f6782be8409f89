//! Transitions per second of a declared state machine (`#[fsm]`) driven by
//! messages on the embedded bus, beside the same logic written by hand in
//! the agent's message handler (no machine: the handler flips a field),
//! rounds interleaved in the same run. Each `Flip` message makes one
//! transition; the round ends when the agent has made them all.

use std::time::{Duration, Instant};

use munggoggo::prelude::*;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::figure::{rate, Better, Figure};

/// One flip of the switch.
#[derive(Debug, Serialize, Deserialize, Message)]
pub struct Flip {}

/// A switch whose state a machine keeps.
#[agent]
pub struct Switch {
    pending: u64,
    done: u64,
    expect: u64,
    finished: Option<oneshot::Sender<Instant>>,
}

/// The switch's machine: every flip takes it to the other state.
#[fsm(agent = Switch)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    #[state(initial, to = [On])]
    Off,
    #[state(to = [Off])]
    On,
}

impl Switch {
    /// Takes one pending flip; whether there was one.
    fn flipped(&mut self) -> bool {
        if self.pending == 0 {
            return false;
        }
        self.pending -= 1;
        self.done += 1;
        if self.done == self.expect {
            if let Some(finished) = self.finished.take() {
                let _ = finished.send(Instant::now());
            }
        }
        true
    }
}

#[agent]
impl Switch {
    #[on_message]
    async fn flip(&mut self, _flip: Flip) {
        self.pending += 1;
    }

    async fn off(&mut self, _ctx: &Context) -> OffTo {
        if self.flipped() {
            OffTo::On
        } else {
            OffTo::Stay
        }
    }

    async fn on(&mut self, _ctx: &Context) -> OnTo {
        if self.flipped() {
            OnTo::Off
        } else {
            OnTo::Stay
        }
    }
}

/// The same switch by hand: the handler flips a field.
#[agent]
pub struct HandSwitch {
    on: bool,
    done: u64,
    expect: u64,
    finished: Option<oneshot::Sender<Instant>>,
}

#[agent]
impl HandSwitch {
    #[on_message]
    async fn flip(&mut self, _flip: Flip) {
        self.on = !self.on;
        self.done += 1;
        if self.done == self.expect {
            if let Some(finished) = self.finished.take() {
                let _ = finished.send(Instant::now());
            }
        }
    }
}

/// Sends `n` flips to `to` from a client, pipelined; the time until the
/// agent reports the last transition.
async fn drive(
    rt: &munggoggo::RuntimeHandle,
    to: &str,
    n: u64,
    finished: oneshot::Receiver<Instant>,
) -> Duration {
    let client = rt.client(format!("{to}-driver")).await.expect("client");
    let start = Instant::now();
    client
        .pipelined(async {
            for _ in 0..n {
                client.send(to, &Flip {}).await?;
            }
            Ok(())
        })
        .await
        .expect("flips sent");
    let end = finished.await.expect("every transition made");
    client.shutdown().await;
    end - start
}

/// `fsm`: transitions per second, machine beside hand-written.
pub fn transitions(n: u64, runs: usize) -> Vec<Figure> {
    let rt = crate::tokio();
    let (mut machine, mut by_hand) = (Vec::new(), Vec::new());
    for run in 0..runs {
        let (m, h) = rt.block_on(async {
            let handle = munggoggo::Runtime::memory().start().await.expect("embedded bus");
            let (tx, rx) = oneshot::channel();
            let switch = format!("bench-switch-{run}");
            let agent = Switch {
                pending: 0,
                done: 0,
                expect: n,
                finished: Some(tx),
            };
            handle
                .spawn_as(switch.clone(), agent)
                .await
                .expect("switch starts");
            let m = drive(&handle, &switch, n, rx).await;
            let (tx, rx) = oneshot::channel();
            let hand = format!("bench-hand-switch-{run}");
            let agent = HandSwitch {
                on: false,
                done: 0,
                expect: n,
                finished: Some(tx),
            };
            handle.spawn_as(hand.clone(), agent).await.expect("switch starts");
            let h = drive(&handle, &hand, n, rx).await;
            handle.shutdown().await;
            (m, h)
        });
        machine.push(rate(n, m));
        by_hand.push(rate(n, h));
        println!(
            "run {}: machine {:>8.0} transitions/s | by hand in the handler {:>8.0}/s",
            run + 1,
            machine[run],
            by_hand[run]
        );
    }
    vec![Figure::new(
        "fsm transitions, driven by messages",
        "transitions/s",
        Better::Higher,
        machine,
        "the same flips by hand in the handler",
        by_hand,
    )]
}
