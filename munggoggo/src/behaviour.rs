//! Behaviours: their states, counters and schedules.

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::agent::{BehaviourKind, BehaviourSpec, HandlerRoute};

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
    /// A singleton behaviour of a replica that does not hold its lease:
    /// ready to run as soon as the replica that runs it goes away.
    Standby = 5,
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
            State::Standby => "standby",
        }
    }

    fn from_u8(v: u8) -> State {
        match v {
            1 => State::Running,
            2 => State::Stopping,
            3 => State::Shutdown,
            4 => State::Crashed,
            5 => State::Standby,
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
    /// A state machine's current state (`#[fsm]`); `None` for other behaviours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<crate::fsm::MachineStatus>,
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
    pub(crate) spec: &'static BehaviourSpec,
    pub(crate) state: AtomicState,
    /// Whether this replica holds the lease of a singleton behaviour.
    pub(crate) leased: std::sync::atomic::AtomicBool,
    runs: AtomicU64,
    errors: AtomicU64,
    last_error: Mutex<Option<String>>,
    /// A state machine's live state.
    pub(crate) machine: Option<Mutex<crate::fsm::Live>>,
}

impl Behaviour {
    pub(crate) fn new(identity: &str, spec: &'static BehaviourSpec) -> Self {
        Behaviour {
            name: format!("{identity}.{}", spec.method).into(),
            spec,
            state: AtomicState::new(State::Init),
            leased: std::sync::atomic::AtomicBool::new(false),
            runs: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            last_error: Mutex::new(None),
            machine: match spec.kind {
                BehaviourKind::Fsm(fsm) => Some(crate::fsm::Live::new(fsm)),
                _ => None,
            },
        }
    }

    pub(crate) fn route(&self) -> Option<HandlerRoute> {
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
            machine: match (self.spec.kind, &self.machine) {
                (BehaviourKind::Fsm(fsm), Some(live)) => {
                    Some(live.lock().unwrap_or_else(|e| e.into_inner()).status(fsm))
                }
                _ => None,
            },
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

/// How a behaviour that keeps failing is treated: each failure in a row
/// doubles the wait before the next run (from [`FailurePolicy::backoff`] up
/// to [`FailurePolicy::max_backoff`], never sooner than its own schedule),
/// and after [`FailurePolicy::crash_after`] failures in a row it stops and
/// reports `crashed`. A oneshot or delay behaviour that fails is `crashed`
/// at once. Starting a behaviour again clears its failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailurePolicy {
    /// The wait after the first failure.
    pub backoff: Duration,
    /// The longest wait between failing runs.
    pub max_backoff: Duration,
    /// Failures in a row after which the behaviour is `crashed`.
    pub crash_after: u32,
}

impl Default for FailurePolicy {
    fn default() -> Self {
        FailurePolicy {
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(60),
            crash_after: 10,
        }
    }
}

/// What the schedule makes of a step that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterFailure {
    /// Run again, at the latest of its own schedule and the backoff.
    Retry,
    /// Too many failures (or a oneshot): it is crashed.
    Crash,
}

/// A wait this long or longer parks a behaviour (a state machine waiting
/// for a message): it is due at one fixed far time, the same after every
/// run, so that waiting again neither reads the clock nor moves the
/// agent's timer.
pub(crate) const PARKED: Duration = Duration::from_secs(60 * 60 * 24 * 365 * 30);

/// When each timed behaviour of an agent runs next.
#[derive(Debug)]
pub(crate) struct Schedule {
    next: Vec<Option<Instant>>,
    /// Failures in a row, per behaviour.
    failures: Vec<u32>,
    policy: FailurePolicy,
    /// When a parked behaviour is due: [`PARKED`] after the schedule began.
    parked: Instant,
}

impl Schedule {
    pub(crate) fn new(len: usize, policy: FailurePolicy) -> Self {
        Schedule {
            next: vec![None; len],
            failures: vec![0; len],
            policy,
            parked: Instant::now() + PARKED,
        }
    }

    /// Records a failed run of behaviour `i` and reschedules it with backoff.
    pub(crate) fn after_failure(&mut self, i: usize, kind: BehaviourKind) -> AfterFailure {
        self.failures[i] = self.failures[i].saturating_add(1);
        let failures = self.failures[i];
        let once = matches!(kind, BehaviourKind::Oneshot | BehaviourKind::Delay(_));
        if once || failures >= self.policy.crash_after.max(1) {
            self.next[i] = None;
            return AfterFailure::Crash;
        }
        let backoff = self
            .policy
            .backoff
            .saturating_mul(1 << (failures - 1).min(20))
            .min(self.policy.max_backoff);
        let earliest = Instant::now() + backoff;
        self.after_run(i, kind, Next::Continue);
        self.failures[i] = failures;
        self.next[i] = Some(self.next[i].map_or(earliest, |at| at.max(earliest)));
        AfterFailure::Retry
    }

    /// Failures in a row of behaviour `i`.
    pub(crate) fn failures(&self, i: usize) -> u32 {
        self.failures[i]
    }

    /// Schedules the first run of behaviour `i` of kind `kind`, from now.
    pub(crate) fn start(&mut self, i: usize, kind: BehaviourKind) {
        self.failures[i] = 0;
        let now = Instant::now();
        self.next[i] = match kind {
            BehaviourKind::Periodic {
                period,
                initial_delay,
            } => Some(now + initial_delay.unwrap_or(period)),
            BehaviourKind::Oneshot | BehaviourKind::Cyclic | BehaviourKind::Fsm(_) => Some(now),
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
        self.failures[i] = 0;
        if matches!(next, Next::After(wait) if wait >= PARKED) {
            self.next[i] = Some(self.parked);
            return true;
        }
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
            (Next::Continue, BehaviourKind::Cyclic | BehaviourKind::Fsm(_)) => Some(now),
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
        static SPEC: BehaviourSpec = BehaviourSpec::new("keep_ping", BehaviourKind::Oneshot);
        let b = Behaviour::new("agent1", &SPEC);
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
        let mut s = Schedule::new(1, FailurePolicy::default());
        let t0 = Instant::now();
        s.start(0, kind);
        assert_eq!(s.next_due(), Some((0, t0 + Duration::from_secs(5))));
        // The run took 12 s: the ticks at 10 s and 15 s are skipped.
        tokio::time::advance(Duration::from_secs(17)).await;
        assert!(s.after_run(0, kind, Next::Continue));
        assert_eq!(s.next_due(), Some((0, t0 + Duration::from_secs(20))));
    }

    #[tokio::test(start_paused = true)]
    async fn failures_back_off_then_crash() {
        let policy = FailurePolicy {
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(4),
            crash_after: 5,
        };
        let mut s = Schedule::new(1, policy);
        let t0 = Instant::now();
        s.start(0, BehaviourKind::Cyclic);
        let waits: Vec<Duration> = (0..4)
            .map(|_| {
                assert_eq!(s.after_failure(0, BehaviourKind::Cyclic), AfterFailure::Retry);
                s.next_due().unwrap().1 - t0
            })
            .collect();
        let secs = |n| Duration::from_secs(n);
        assert_eq!(waits, [secs(1), secs(2), secs(4), secs(4)]);
        assert_eq!(s.after_failure(0, BehaviourKind::Cyclic), AfterFailure::Crash);
        assert_eq!(s.next_due(), None);
        // Starting again clears the failures; a success too.
        s.start(0, BehaviourKind::Cyclic);
        assert_eq!(s.failures(0), 0);
        assert_eq!(s.after_failure(0, BehaviourKind::Oneshot), AfterFailure::Crash);
        // A periodic behaviour never runs sooner than its own tick.
        let periodic = BehaviourKind::Periodic {
            period: Duration::from_secs(10),
            initial_delay: None,
        };
        s.start(0, periodic);
        assert_eq!(s.after_failure(0, periodic), AfterFailure::Retry);
        assert_eq!(s.next_due(), Some((0, t0 + secs(20))));
    }
}
