//! Runs the `#[fsm]` machines of an agent: a step runs the current
//! state's timeout or method and goes on through the states it enters; a
//! transition is counted and traced; a state that stays waits until the
//! agent handled something else (a message, a call, another behaviour's
//! run), which runs its method again at once, or until its timeout.

use std::any::Any;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use super::core::Core;
use crate::agent::{Agent, AgentSpec, BehaviourKind, BehaviourSpec};
use crate::behaviour::{Behaviour, Next, State};
use crate::context::Context;
use crate::error::BoxError;
use crate::fsm::{FsmSpec, Live, Restart, Transition, Why};
use crate::future::BoxFuture;
use crate::trace::Category;

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

/// How long a state without a timeout waits when nothing wakes it: the
/// schedule parks it (see `Schedule::after_run`), so that waiting after
/// each message neither reads the clock nor moves the agent's timer.
pub(crate) const FOREVER: Duration = crate::behaviour::PARKED;

fn lock(live: &Mutex<Live>) -> MutexGuard<'_, Live> {
    live.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether the agent runs a machine.
pub(super) fn any(core: &Core) -> bool {
    core.behaviours.iter().any(|b| b.machine.is_some())
}

/// Transitions a step takes at most before it yields to the agent's
/// other work (a machine that goes round in circles does not starve it).
const TRANSITIONS_PER_STEP: usize = 64;

/// One step of machine `fsm` (behaviour `i`): the current state's timeout
/// or method, and on through every state it enters, until one stays
/// (`After`: its timeout, or a wake-up), a final state is reached (`Stop`)
/// or it took [`TRANSITIONS_PER_STEP`] (`Continue`, at once).
pub(super) fn run<'a, A: Agent>(
    core: &'a Core,
    i: usize,
    fsm: &'static FsmSpec,
    agent: &'a mut A,
    ctx: &'a Context,
) -> BoxFuture<'a, Result<Next, BoxError>> {
    Box::pin(async move {
        let b = &core.behaviours[i];
        let (Some(live), Some(step)) = (&b.machine, step_of(b.spec)) else {
            return Err(format!("state machine `{}` is not registered", fsm.name).into());
        };
        // Looking now. Only this task changes the state, so it is read
        // once and followed here.
        let (mut state, mut entered) = {
            let mut live = lock(live);
            live.waiting = false;
            (live.state, live.entered)
        };
        let agent: &mut (dyn Any + Send) = agent;
        for _ in 0..TRANSITIONS_PER_STEP {
            let spec = &fsm.states[state];
            if spec.is_final {
                return Ok(Next::Stop);
            }
            let (to, why) = match spec.timeout {
                Some((after, target)) if Instant::now() >= entered + after => (target, Why::Timeout(after)),
                _ => match step(&mut *agent, ctx, state).await.inspect_err(|_| {
                    // A failure waits for its backoff, not for a message.
                    lock(live).waiting = false;
                })? {
                    Some(next) => (next, Why::Step),
                    None => {
                        lock(live).waiting = true;
                        return Ok(Next::After(match spec.timeout {
                            Some((after, _)) => (entered + after).saturating_duration_since(Instant::now()),
                            None => FOREVER,
                        }));
                    }
                },
            };
            entered = transition(core, b, live, fsm, to, why);
            state = to;
        }
        Ok(Next::Continue)
    })
}

/// Enters state `to`: counted, logged and traced (`Available -> Reserved`,
/// an entry that allocates nothing until it is read); returns when.
fn transition(core: &Core, b: &Behaviour, live: &Mutex<Live>, fsm: &FsmSpec, to: usize, why: Why) -> Instant {
    let (from, entered) = {
        let mut live = lock(live);
        let from = live.state;
        live.enter(to);
        live.transitions += 1;
        (from, live.entered)
    };
    let transition = Transition {
        from: fsm.states[from].name,
        to: fsm.states[to].name,
        why,
    };
    tracing::debug!(agent = %core.identity, behaviour = %b.name, from = transition.from, to = transition.to, why = ?transition.why, "state machine transition");
    core.traces
        .append_transition(Category::Behaviour(Arc::clone(&b.name)), transition);
    entered
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
        transition(core, b, live, fsm, fsm.initial, Why::StartedAgain);
    } else {
        lock(live).enter(state);
    }
}

/// Whether machine behaviour `i` waits in its state to look again; it no
/// longer does (the agent's task runs its step at once).
pub(super) fn woken(core: &Core, i: usize) -> bool {
    let b = &core.behaviours[i];
    let Some(live) = &b.machine else {
        return false;
    };
    b.state.get() == State::Running && std::mem::take(&mut lock(live).waiting)
}
