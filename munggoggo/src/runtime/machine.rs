//! Runs the `#[fsm]` machines of an agent: one step is the timeout of the
//! current state or its method; a transition is counted, traced and
//! entered at once; a state that stays waits until the agent handled
//! something else (a message, a call, another behaviour's run) or until
//! its timeout.

use std::any::Any;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use super::core::Core;
use crate::agent::{Agent, AgentSpec, BehaviourKind, BehaviourSpec};
use crate::behaviour::{Behaviour, Next, Schedule, State};
use crate::context::Context;
use crate::error::BoxError;
use crate::fsm::{FsmSpec, Live, Restart};
use crate::future::BoxFuture;
use crate::trace::{Category, TraceRecord};

/// Runs the method of state `state` on the agent; `Ok(None)` to stay.
pub type StepFn = for<'a> fn(
    &'a mut (dyn Any + Send),
    &'a Context,
    usize,
) -> BoxFuture<'a, Result<Option<usize>, BoxError>>;

/// Ties a machine to the agent type that runs it (submitted by `#[fsm]`).
#[derive(Debug)]
pub struct MachineRegistration {
    behaviour: &'static BehaviourSpec,
    agent: fn() -> &'static AgentSpec,
    step: StepFn,
}

impl MachineRegistration {
    /// The machine behaviour `behaviour`, run by the agent whose spec
    /// `agent` returns, its states' methods called by `step`.
    pub const fn new(
        behaviour: &'static BehaviourSpec,
        agent: fn() -> &'static AgentSpec,
        step: StepFn,
    ) -> Self {
        MachineRegistration {
            behaviour,
            agent,
            step,
        }
    }
}

inventory::collect!(MachineRegistration);

/// The machines the agent of `spec` runs, in a stable order (by name).
pub(crate) fn machines_of(spec: &'static AgentSpec) -> Vec<&'static BehaviourSpec> {
    let mut found: Vec<&'static BehaviourSpec> = inventory::iter::<MachineRegistration>
        .into_iter()
        .filter(|r| std::ptr::eq((r.agent)(), spec))
        .map(|r| r.behaviour)
        .collect();
    found.sort_by_key(|b| b.method);
    found
}

/// The state methods of the machine behaviour `behaviour`.
fn step_of(behaviour: &'static BehaviourSpec) -> Option<StepFn> {
    inventory::iter::<MachineRegistration>
        .into_iter()
        .find(|r| std::ptr::eq(r.behaviour, behaviour))
        .map(|r| r.step)
}

/// How long a state without a timeout waits when nothing wakes it.
const FOREVER: Duration = Duration::from_secs(60 * 60 * 24 * 365 * 30);

fn lock(live: &Mutex<Live>) -> MutexGuard<'_, Live> {
    live.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether the agent runs a machine.
pub(super) fn any(core: &Core) -> bool {
    core.behaviours.iter().any(|b| b.machine.is_some())
}

/// One step of machine `fsm` (behaviour `i`): what to do next, as for a
/// cyclic behaviour (`Continue` after a transition, `After` while it
/// stays, `Stop` in a final state).
pub(super) fn run<'a, A: Agent>(
    core: &'a Core,
    i: usize,
    fsm: &'static FsmSpec,
    agent: &'a mut A,
    ctx: &'a Context,
) -> BoxFuture<'a, Result<Next, BoxError>> {
    Box::pin(async move {
        let b = &core.behaviours[i];
        let Some(live) = &b.machine else {
            return Ok(Next::Stop);
        };
        let (state, entered) = {
            let live = lock(live);
            (live.state, live.entered)
        };
        let spec = &fsm.states[state];
        if spec.is_final {
            return Ok(Next::Stop);
        }
        if let Some((after, target)) = spec.timeout {
            if Instant::now() >= entered + after {
                return Ok(transition(
                    core,
                    b,
                    fsm,
                    target,
                    &format!("timeout after {}", humantime::format_duration(after)),
                ));
            }
        }
        let Some(step) = step_of(b.spec) else {
            return Err(format!("state machine `{}` is not registered", fsm.name).into());
        };
        let agent: &mut (dyn Any + Send) = agent;
        match step(agent, ctx, state).await? {
            Some(next) => Ok(transition(core, b, fsm, next, "")),
            None => {
                lock(live).waiting = true;
                Ok(Next::After(match spec.timeout {
                    Some((after, _)) => (entered + after).saturating_duration_since(Instant::now()),
                    None => FOREVER,
                }))
            }
        }
    })
}

/// Enters state `to`: counted, logged and traced (`Available -> Reserved`).
fn transition(core: &Core, b: &Behaviour, fsm: &FsmSpec, to: usize, why: &str) -> Next {
    let Some(live) = &b.machine else {
        return Next::Stop;
    };
    let from = {
        let mut live = lock(live);
        let from = live.state;
        live.enter(to);
        live.transitions += 1;
        from
    };
    let (from, to) = (fsm.states[from].name, &fsm.states[to]);
    tracing::debug!(agent = %core.identity, behaviour = %b.name, from, to = to.name, why, "state machine transition");
    let mut reason = format!("{from} -> {}", to.name);
    if !why.is_empty() {
        reason = format!("{reason} ({why})");
    }
    core.traces.append(
        Category::Behaviour(Arc::clone(&b.name)),
        TraceRecord::default().with_reason(reason),
    );
    if to.is_final {
        Next::Stop
    } else {
        Next::Continue
    }
}

/// Behaviour `i` is started again: a machine resumes in its state (its
/// timeout counts from now), or begins again in the initial state when it
/// had finished or is declared `restart = "initial"`.
pub(super) fn restart(core: &Core, i: usize) {
    let b = &core.behaviours[i];
    let (BehaviourKind::Fsm(fsm), Some(live)) = (b.spec.kind, &b.machine) else {
        return;
    };
    let state = lock(live).state;
    if fsm.restart == Restart::Initial || fsm.states[state].is_final {
        transition(core, b, fsm, fsm.initial, "started again");
    } else {
        lock(live).enter(state);
    }
}

/// The agent handled something: machines waiting in their state (but
/// `except`, the one that just ran) run their state's method again.
pub(super) fn wake(core: &Core, schedule: &mut Schedule, except: Option<usize>) {
    for (i, b) in core.behaviours.iter().enumerate() {
        let Some(live) = &b.machine else {
            continue;
        };
        if except == Some(i) || b.state.get() != State::Running {
            continue;
        }
        let mut live = lock(live);
        if live.waiting {
            live.waiting = false;
            schedule.wake(i);
        }
    }
}
