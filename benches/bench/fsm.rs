//! Transitions per second of a declared state machine (`#[fsm]`) driven by
//! messages on the embedded bus, beside the same logic written by hand in
//! a cyclic behaviour (the handler counts the flip, the behaviour makes it:
//! a machine's work split as the machine splits it) and, the strongest
//! baseline, in the message handler itself (no behaviour step at all),
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

/// Counts transitions and says when the last one of a round was made.
pub struct Tally {
    done: u64,
    expect: u64,
    finished: Option<oneshot::Sender<Instant>>,
}

impl Tally {
    fn new(expect: u64, finished: oneshot::Sender<Instant>) -> Self {
        Tally {
            done: 0,
            expect,
            finished: Some(finished),
        }
    }

    /// One transition made.
    fn count(&mut self) {
        self.done += 1;
        if self.done == self.expect {
            if let Some(finished) = self.finished.take() {
                let _ = finished.send(Instant::now());
            }
        }
    }
}

/// A switch whose state a machine keeps.
#[agent]
pub struct Switch {
    pending: u64,
    tally: Tally,
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
        self.tally.count();
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
    tally: Tally,
}

#[agent]
impl HandSwitch {
    #[on_message]
    async fn flip(&mut self, _flip: Flip) {
        self.on = !self.on;
        self.tally.count();
    }
}

/// The same switch by hand in a cyclic behaviour: the handler notes the
/// flip, the behaviour makes it, and looks again a millisecond later when
/// there is none.
#[agent]
pub struct CyclicSwitch {
    on: bool,
    pending: u64,
    tally: Tally,
}

#[agent]
impl CyclicSwitch {
    #[on_message]
    async fn flip(&mut self, _flip: Flip) {
        self.pending += 1;
    }

    #[behaviour(cyclic)]
    async fn switch(&mut self) -> Next {
        if self.pending == 0 {
            return Next::After(Duration::from_millis(1));
        }
        self.pending -= 1;
        self.on = !self.on;
        self.tally.count();
        Next::Continue
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

/// Starts `agent` as `name` and drives it with `n` flips.
async fn round<A: munggoggo::Agent>(
    rt: &munggoggo::RuntimeHandle,
    name: String,
    agent: A,
    n: u64,
    finished: oneshot::Receiver<Instant>,
) -> (Duration, Option<Duration>) {
    let handle = rt.spawn_as(name.clone(), agent).await.expect("switch starts");
    let measured = drive(rt, &name, n, finished).await;
    handle.shutdown().await;
    measured
}

/// `fsm`: transitions per second, the machine beside by hand.
pub fn transitions(n: u64, runs: usize) -> Vec<Figure> {
    let rt = crate::tokio();
    // Rates and CPU per transition: the machine, by hand in a cyclic
    // behaviour, by hand in the handler.
    let mut rates: [Vec<f64>; 3] = Default::default();
    let mut cpus: [Vec<f64>; 3] = Default::default();
    for run in 0..runs {
        let measured = rt.block_on(async {
            let handle = munggoggo::Runtime::memory().start().await.expect("embedded bus");
            let (tx, rx) = oneshot::channel();
            let machine = Switch {
                pending: 0,
                tally: Tally::new(n, tx),
            };
            let m = round(&handle, format!("bench-switch-{run}"), machine, n, rx).await;
            let (tx, rx) = oneshot::channel();
            let cyclic = CyclicSwitch {
                on: false,
                pending: 0,
                tally: Tally::new(n, tx),
            };
            let c = round(&handle, format!("bench-cyclic-switch-{run}"), cyclic, n, rx).await;
            let (tx, rx) = oneshot::channel();
            let hand = HandSwitch {
                on: false,
                tally: Tally::new(n, tx),
            };
            let h = round(&handle, format!("bench-hand-switch-{run}"), hand, n, rx).await;
            handle.shutdown().await;
            [m, c, h]
        });
        let per = |cpu: Duration| cpu.as_nanos() as f64 / n as f64;
        for (i, (d, cpu)) in measured.into_iter().enumerate() {
            rates[i].push(rate(n, d));
            if let Some(cpu) = cpu {
                cpus[i].push(per(cpu));
            }
        }
        let cpu = if cpus.iter().all(|c| c.len() == run + 1) {
            format!(
                " | CPU per transition {:.0} / {:.0} / {:.0} ns",
                cpus[0][run], cpus[1][run], cpus[2][run]
            )
        } else {
            String::new()
        };
        println!(
            "run {}: transitions/s machine {:>8.0} | by hand in a cyclic behaviour {:>8.0} | in the handler {:>8.0}{cpu}",
            run + 1,
            rates[0][run],
            rates[1][run],
            rates[2][run]
        );
    }
    let [machine, cyclic, handler] = rates;
    let mut figures = vec![
        Figure::new(
            "fsm transitions, driven by messages",
            "transitions/s",
            Better::Higher,
            machine.clone(),
            "the same logic by hand in a cyclic behaviour",
            cyclic,
        ),
        Figure::new(
            "fsm transitions, driven by messages (vs no behaviour step)",
            "transitions/s",
            Better::Higher,
            machine,
            "the same flips by hand in the handler",
            handler,
        ),
    ];
    let [machine_cpu, cyclic_cpu, handler_cpu] = cpus;
    if machine_cpu.len() == runs && cyclic_cpu.len() == runs && handler_cpu.len() == runs {
        figures.push(Figure::new(
            "fsm CPU per transition, driven by messages",
            "ns",
            Better::Lower,
            machine_cpu.clone(),
            "the same logic by hand in a cyclic behaviour",
            cyclic_cpu,
        ));
        figures.push(Figure::new(
            "fsm CPU per transition (vs no behaviour step)",
            "ns",
            Better::Lower,
            machine_cpu,
            "the same flips by hand in the handler",
            handler_cpu,
        ));
    }
    figures
}
