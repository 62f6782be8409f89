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

    /// When the machine entered its current state.
    pub fn entered(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(self.entered_ms)
    }

    /// `in Reserved since 2026-12-07T16:30:01Z, 3 transitions`: how a
    /// `ListBehav` reply and the CLI show it.
    pub fn text(&self) -> String {
        let since = humantime::format_rfc3339_seconds(self.entered());
        let plural = if self.transitions == 1 { "" } else { "s" };
        format!(
            "in {} since {since}, {} transition{plural}",
            self.state, self.transitions
        )
    }
}

/// How a `ListBehav` reply shows a machine after its behaviour's name:
/// `agent1.session (state machine: in Reserved since ..., 3 transitions)`.
/// 0.4's `ctrl.py list-behaviour` prints the entry as it is; a Rust caller
/// reads the name before it ([`behaviour_name`]).
pub(crate) const LIST_SUFFIX: &str = " (state machine: ";

/// The behaviour's name of a `ListBehav` entry (one that shows a
/// machine's state carries it after the name).
pub(crate) fn behaviour_name(entry: &str) -> &str {
    entry.find(LIST_SUFFIX).map_or(entry, |at| &entry[..at])
}

/// A machine as the agent describes it (`DescribeAgent`): its states,
/// where each may go, and where it is now. The dashboard and the CLI's
/// `graph` draw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MachineDescription {
    /// The enum's name.
    pub name: String,
    /// Its states, in declaration order.
    pub states: Vec<StateDescription>,
    /// The initial state's name.
    pub initial: String,
    /// What `start` does after a stop: `resume` or `initial`.
    pub restart: String,
    /// Where it is now.
    pub current: MachineStatus,
}

/// One state of a [`MachineDescription`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StateDescription {
    /// The variant's name.
    pub name: String,
    /// The states it may go to.
    #[serde(default)]
    pub to: Vec<String>,
    /// After this long in the state (milliseconds), it goes to that state.
    #[serde(default)]
    pub timeout: Option<(u64, String)>,
    /// Reaching it finishes the machine.
    #[serde(default, rename = "final")]
    pub is_final: bool,
}

impl FsmSpec {
    /// The machine's description, in state `current`.
    pub(crate) fn describe(&self, current: MachineStatus) -> MachineDescription {
        let name = |i: usize| self.states[i].name.to_owned();
        MachineDescription {
            name: self.name.to_owned(),
            states: self
                .states
                .iter()
                .map(|s| StateDescription {
                    name: s.name.to_owned(),
                    to: s.to.iter().map(|&t| name(t)).collect(),
                    timeout: s
                        .timeout
                        .map(|(after, t)| (u64::try_from(after.as_millis()).unwrap_or(u64::MAX), name(t))),
                    is_final: s.is_final,
                })
                .collect(),
            initial: name(self.initial),
            restart: match self.restart {
                Restart::Resume => "resume",
                Restart::Initial => "initial",
            }
            .to_owned(),
            current,
        }
    }
}

pub(crate) use crate::trace::{Transition, Why};

/// The live state of a machine, kept in its behaviour.
#[derive(Debug)]
pub(crate) struct Live {
    pub(crate) state: usize,
    pub(crate) entered: Instant,
    /// When the machine was made, on both clocks: the time of an entry
    /// follows from its instant (one clock read per transition).
    origin: (Instant, SystemTime),
    pub(crate) transitions: u64,
    /// In its state, to look (again) as soon as the agent handled
    /// something: after entering it (its method not run yet) and while
    /// it stays.
    pub(crate) waiting: bool,
}

impl Live {
    pub(crate) fn new(spec: &FsmSpec) -> Mutex<Live> {
        let now = Instant::now();
        Mutex::new(Live {
            state: spec.initial,
            entered: now,
            origin: (now, SystemTime::now()),
            transitions: 0,
            waiting: true,
        })
    }

    /// Enters `state` now.
    pub(crate) fn enter(&mut self, state: usize) {
        self.state = state;
        self.entered = Instant::now();
        self.waiting = true;
    }

    pub(crate) fn status(&self, spec: &FsmSpec) -> MachineStatus {
        let (instant, time) = self.origin;
        let entered_at = time + self.entered.saturating_duration_since(instant);
        let entered_ms = entered_at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        MachineStatus {
            state: spec.states[self.state].name.to_owned(),
            entered_ms,
            transitions: self.transitions,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_entry_shows_the_state_and_gives_back_the_name() {
        let status = MachineStatus {
            state: "Reserved".to_owned(),
            entered_ms: 1_796_660_401_000,
            transitions: 3,
        };
        let entry = format!("cp.session{LIST_SUFFIX}{})", status.text());
        assert_eq!(
            entry,
            "cp.session (state machine: in Reserved since 2026-12-07T16:20:01Z, 3 transitions)"
        );
        assert_eq!(behaviour_name(&entry), "cp.session");
        assert_eq!(behaviour_name("cp.tick"), "cp.tick");
        let one = MachineStatus {
            transitions: 1,
            ..status
        };
        assert!(one.text().ends_with(", 1 transition"), "{}", one.text());
    }
}
