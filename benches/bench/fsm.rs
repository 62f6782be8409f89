//! Transitions per second of a declared state machine (`#[fsm]`) driven by
//! messages on the embedded bus, beside the same logic written by hand in
//! the agent's message handler (no machine: the handler flips a field),
//! rounds interleaved in the same run. Each `Flip` message makes one
//! transition; the round ends when the agent has made them all. On Linux
//! it also reports the process's CPU time per transition of each round
//! (sender, bus and agent together), which a loaded machine disturbs far
//! less than the wall-clock rate.

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

/// The CPU time all threads of this process have run so far (Linux:
/// the sum of `/proc/self/task/*/schedstat`), `None` elsewhere.
fn process_cpu() -> Option<Duration> {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(total))
}

/// Sends `n` flips to `to` from a client, pipelined; the time until the
/// agent reports the last transition, and the CPU time it took.
async fn drive(
    rt: &munggoggo::RuntimeHandle,
    to: &str,
    n: u64,
    finished: oneshot::Receiver<Instant>,
) -> (Duration, Option<Duration>) {
    let client = rt.client(format!("{to}-driver")).await.expect("client");
    let cpu = process_cpu();
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
    let cpu = process_cpu()
        .zip(cpu)
        .map(|(after, before)| after.saturating_sub(before));
    client.shutdown().await;
    (end - start, cpu)
}

/// `fsm`: transitions per second, machine beside hand-written.
pub fn transitions(n: u64, runs: usize) -> Vec<Figure> {
    let rt = crate::tokio();
    let (mut machine, mut by_hand) = (Vec::new(), Vec::new());
    let (mut machine_cpu, mut by_hand_cpu) = (Vec::new(), Vec::new());
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
        let ((m, m_cpu), (h, h_cpu)) = (m, h);
        machine.push(rate(n, m));
        by_hand.push(rate(n, h));
        let per = |cpu: Duration| cpu.as_nanos() as f64 / n as f64;
        let cpu = match (m_cpu, h_cpu) {
            (Some(m), Some(h)) => {
                machine_cpu.push(per(m));
                by_hand_cpu.push(per(h));
                format!(" | CPU per transition {:.0} ns vs {:.0} ns", per(m), per(h))
            }
            _ => String::new(),
        };
        println!(
            "run {}: machine {:>8.0} transitions/s | by hand in the handler {:>8.0}/s{cpu}",
            run + 1,
            machine[run],
            by_hand[run]
        );
    }
    let mut figures = vec![Figure::new(
        "fsm transitions, driven by messages",
        "transitions/s",
        Better::Higher,
        machine,
        "the same flips by hand in the handler",
        by_hand,
    )];
    if !machine_cpu.is_empty() {
        figures.push(Figure::new(
            "fsm CPU per transition, driven by messages",
            "ns",
            Better::Lower,
            machine_cpu,
            "the same flips by hand in the handler",
            by_hand_cpu,
        ));
    }
    figures
}
