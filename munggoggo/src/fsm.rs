//! Declared state machines: an enum marked `#[fsm(agent = ...)]` runs as
//! one behaviour of its agent (see the guide's chapter 14). This module
//! holds what the generated code describes a machine with ([`FsmSpec`],
//! [`StateSpec`]), what its status reports ([`MachineStatus`]) and the
//! live state the agent's task keeps; the runtime runs it
//! (`runtime/machine.rs`).

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// A state enum of a declared machine (implemented by `#[fsm]`).
pub trait Fsm: Sized {
    /// The state's name, as the status reports it.
    fn name(&self) -> &'static str;
    /// The state named `name`.
    fn from_name(name: &str) -> Option<Self>;
}

/// What `start` does with a machine that was stopped mid-way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Restart {
    /// Carry on in the state it was in (the default); its timeout counts
    /// again from the start. A machine that reached a final state begins
    /// again in the initial state.
    Resume,
    /// Begin again in the initial state (`#[fsm(restart = "initial")]`).
    Initial,
}

/// One state of a machine.
#[derive(Debug)]
pub struct StateSpec {
    /// The variant's name.
    pub name: &'static str,
    /// The states it may go to (indices into [`FsmSpec::states`]).
    pub to: &'static [usize],
    /// After this long in the state, go to that state.
    pub timeout: Option<(Duration, usize)>,
    /// A final state: reaching it finishes the machine.
    pub is_final: bool,
}

/// A machine, as `#[fsm]` describes it.
#[derive(Debug)]
pub struct FsmSpec {
    /// The enum's name.
    pub name: &'static str,
    /// Its states, in declaration order.
    pub states: &'static [StateSpec],
    /// The initial state.
    pub initial: usize,
    /// What `start` does after a stop.
    pub restart: Restart,
}

impl PartialEq for FsmSpec {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Eq for FsmSpec {}

impl FsmSpec {
    /// `state machine Available -> Reserved, Reserved -> Charging | Available
    /// (after 30s: Available), Charging -> Finished`: the states that are
    /// not final, where each may go.
    pub(crate) fn text(&self) -> String {
        let states: Vec<String> = self
            .states
            .iter()
            .filter(|s| !s.is_final)
            .map(|s| {
                let to: Vec<&str> = s.to.iter().map(|&t| self.states[t].name).collect();
                let mut text = if to.is_empty() {
                    s.name.to_owned()
                } else {
                    format!("{} -> {}", s.name, to.join(" | "))
                };
                if let Some((after, t)) = s.timeout {
                    let after = humantime::format_duration(after);
                    text.push_str(&format!(" (after {after}: {})", self.states[t].name));
                }
                text
            })
            .collect();
        format!("state machine {}", states.join(", "))
    }
}

/// A machine's part of its behaviour's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MachineStatus {
    /// The current state's name.
    pub state: String,
    /// When the machine entered it, in milliseconds since the Unix epoch.
    pub entered_ms: u64,
    /// Transitions taken since the agent started (timeouts included).
    pub transitions: u64,
}

impl MachineStatus {
    /// The current state as the machine's enum.
    pub fn state_as<S: Fsm>(&self) -> Option<S> {
        S::from_name(&self.state)
    }
}

/// The live state of a machine, kept in its behaviour.
#[derive(Debug)]
pub(crate) struct Live {
    pub(crate) state: usize,
    pub(crate) entered: Instant,
    entered_at: SystemTime,
    pub(crate) transitions: u64,
    /// In its state, to look (again) as soon as the agent handled
    /// something: after entering it (its method not run yet) and while
    /// it stays.
    pub(crate) waiting: bool,
}

impl Live {
    pub(crate) fn new(spec: &FsmSpec) -> Mutex<Live> {
        Mutex::new(Live {
            state: spec.initial,
            entered: Instant::now(),
            entered_at: SystemTime::now(),
            transitions: 0,
            waiting: true,
        })
    }

    /// Enters `state` now.
    pub(crate) fn enter(&mut self, state: usize) {
        self.state = state;
        self.entered = Instant::now();
        self.entered_at = SystemTime::now();
        self.waiting = true;
    }

    pub(crate) fn status(&self, spec: &FsmSpec) -> MachineStatus {
        let entered_ms = self
            .entered_at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        MachineStatus {
            state: spec.states[self.state].name.to_owned(),
            entered_ms,
            transitions: self.transitions,
        }
    }
}
