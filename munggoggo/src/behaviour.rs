//! Behaviours: their states, counters and schedules.

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::agent::{BehaviourKind, BehaviourSpec, Route};

/// What a behaviour step asks for next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Next {
    /// Keep the behaviour's schedule: the next tick of a periodic behaviour,
    /// at once again for a cyclic one, done for oneshot and delay.
    Continue,
    /// Run again after this delay.
    After(Duration),
    /// Stop the behaviour; it reports state `shutdown`.
    Stop,
}

/// A behaviour's or an agent's state, in munggoggo 0.4's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub enum State {
    /// Not started, or stopped.
    Init = 0,
    /// Running.
    Running = 1,
    /// Stopping.
    Stopping = 2,
    /// Finished.
    Shutdown = 3,
    /// Failed beyond recovery.
    Crashed = 4,
}

impl State {
    /// The wire word: `init`, `running`, `stopping`, `shutdown`, `crashed`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Init => "init",
            State::Running => "running",
            State::Stopping => "stopping",
            State::Shutdown => "shutdown",
            State::Crashed => "crashed",
        }
    }

    fn from_u8(v: u8) -> State {
        match v {
            1 => State::Running,
            2 => State::Stopping,
            3 => State::Shutdown,
            4 => State::Crashed,
            _ => State::Init,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A snapshot of one behaviour's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BehaviourStatus {
    /// The full name, `<identity>.<method>`.
    pub name: String,
    /// Its state.
    pub state: State,
    /// Completed runs (behaviours) or handled messages (handlers).
    pub runs: u64,
    /// Failed runs or messages: errors and panics.
    pub errors: u64,
    /// The last error, if any.
    pub last_error: Option<String>,
}

/// A state shared between the agent's task and everyone who asks.
#[derive(Debug)]
pub(crate) struct AtomicState(AtomicU8);

impl AtomicState {
    pub(crate) fn new(state: State) -> Self {
        AtomicState(AtomicU8::new(state as u8))
    }

    pub(crate) fn get(&self) -> State {
        State::from_u8(self.0.load(Ordering::Acquire))
    }

    pub(crate) fn set(&self, state: State) {
        self.0.store(state as u8, Ordering::Release);
    }

    /// Sets `to` if the state is `from`; true if it did.
    pub(crate) fn transition(&self, from: State, to: State) -> bool {
        self.0
            .compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

/// The live status of one behaviour, shared by the agent's task (which
/// updates it) and the system requests (which read it).
#[derive(Debug)]
pub(crate) struct Behaviour {
    pub(crate) name: Arc<str>,
    pub(crate) spec: BehaviourSpec,
    pub(crate) state: AtomicState,
    runs: AtomicU64,
    errors: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl Behaviour {
    pub(crate) fn new(identity: &str, spec: BehaviourSpec) -> Self {
        Behaviour {
            name: format!("{identity}.{}", spec.method).into(),
            spec,
            state: AtomicState::new(State::Init),
            runs: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            last_error: Mutex::new(None),
        }
    }

    pub(crate) fn route(&self) -> Option<Route> {
        match self.spec.kind {
            BehaviourKind::Handler(route) => Some(route),
            _ => None,
        }
    }

    pub(crate) fn record_run(&self) {
        self.runs.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_error(&self, error: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(error);
    }

    pub(crate) fn status(&self) -> BehaviourStatus {
        BehaviourStatus {
            name: self.name.to_string(),
            state: self.state.get(),
            runs: self.runs.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            last_error: self.last_error.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        }
    }

    /// Whether `name` selects this behaviour: its full name, or a suffix
    /// after a `.` (`ping` selects `agent1.ping`, not `agent1.keep_ping`).
    pub(crate) fn is_named(&self, name: &str) -> bool {
        &*self.name == name
            || (self.name.len() > name.len()
                && self.name.ends_with(name)
                && self.name.as_bytes()[self.name.len() - name.len() - 1] == b'.')
    }
}

/// When each timed behaviour of an agent runs next.
#[derive(Debug)]
pub(crate) struct Schedule {
    next: Vec<Option<Instant>>,
}

impl Schedule {
    pub(crate) fn new(len: usize) -> Self {
        Schedule {
            next: vec![None; len],
        }
    }

    /// Schedules the first run of behaviour `i` of kind `kind`, from now.
    pub(crate) fn start(&mut self, i: usize, kind: BehaviourKind) {
        let now = Instant::now();
        self.next[i] = match kind {
            BehaviourKind::Periodic {
                period,
                initial_delay,
            } => Some(now + initial_delay.unwrap_or(period)),
            BehaviourKind::Oneshot | BehaviourKind::Cyclic => Some(now),
            BehaviourKind::Delay(d) => Some(now + d),
            BehaviourKind::Handler(_) => None,
        };
    }

    pub(crate) fn stop(&mut self, i: usize) {
        self.next[i] = None;
    }

    /// The behaviour due first, and when.
    pub(crate) fn next_due(&self) -> Option<(usize, Instant)> {
        self.next
            .iter()
            .enumerate()
            .filter_map(|(i, at)| at.map(|at| (i, at)))
            .min_by_key(|&(_, at)| at)
    }

    /// Reschedules behaviour `i` after a run that asked for `next`; returns
    /// false when the behaviour is finished.
    pub(crate) fn after_run(&mut self, i: usize, kind: BehaviourKind, next: Next) -> bool {
        let now = Instant::now();
        self.next[i] = match (next, kind) {
            (Next::Stop, _) => None,
            (Next::After(d), _) => Some(now + d),
            (Next::Continue, BehaviourKind::Periodic { period, .. }) => {
                // Skip missed ticks: the next tick strictly after now.
                let scheduled = self.next[i].unwrap_or(now);
                let mut at = scheduled + period;
                if at <= now {
                    let behind = now.duration_since(scheduled).as_nanos();
                    let periods = behind / period.as_nanos().max(1) + 1;
                    at = scheduled + period * u32::try_from(periods).unwrap_or(u32::MAX);
                }
                Some(at)
            }
            (Next::Continue, BehaviourKind::Cyclic) => Some(now),
            (Next::Continue, _) => None,
        };
        self.next[i].is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_matching_needs_a_dot() {
        let b = Behaviour::new(
            "agent1",
            BehaviourSpec {
                method: "keep_ping",
                kind: BehaviourKind::Oneshot,
            },
        );
        assert!(b.is_named("agent1.keep_ping"));
        assert!(b.is_named("keep_ping"));
        assert!(!b.is_named("ping"));
        assert!(!b.is_named("agent1.keep_ping.x"));
    }

    #[tokio::test(start_paused = true)]
    async fn periodic_skips_missed_ticks() {
        let kind = BehaviourKind::Periodic {
            period: Duration::from_secs(5),
            initial_delay: None,
        };
        let mut s = Schedule::new(1);
        let t0 = Instant::now();
        s.start(0, kind);
        assert_eq!(s.next_due(), Some((0, t0 + Duration::from_secs(5))));
        // The run took 12 s: the ticks at 10 s and 15 s are skipped.
        tokio::time::advance(Duration::from_secs(17)).await;
        assert!(s.after_run(0, kind, Next::Continue));
        assert_eq!(s.next_due(), Some((0, t0 + Duration::from_secs(20))));
    }
}
