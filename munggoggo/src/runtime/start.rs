//! Starting one agent: its endpoint, setup, topic subscriptions, then its
//! task (watched: see [`supervise`]) and its keepalive pings.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use tokio::time::Instant;
use tracing::Instrument;

use super::core::Core;
use super::{invocation, lanes, task};
use crate::agent::{Agent, AgentOptions, BehaviourKind, HandlerRoute};
use crate::behaviour::State;
use crate::bus::{Bus, EndpointOptions};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::message::SmolStr;

/// Deliveries in flight on an agent's control queue: requests and replies
/// are answered at once (see `lanes`), so this only covers bursts.
const CONTROL_PREFETCH: u16 = 256;

/// Opens the agent's endpoint, runs its setup, subscribes its topic
/// handlers and spawns its task. Returns the agent's
/// context and the flag its task sets when it has finished.
pub(crate) async fn start_agent<A: Agent>(
    bus: Arc<dyn Bus>,
    neighbourhood: Arc<crate::peers::Neighbourhood<super::core::Core>>,
    mut agent: A,
    options: AgentOptions,
) -> Result<Context> {
    // A replica runs under a name of its own, beside its group's identity.
    let (identity, group) = if options.replicated {
        let replica = options.replica.clone().unwrap_or_else(|| {
            let suffix = uuid::Uuid::new_v4().simple().to_string();
            format!("{}@{}", options.identity, &suffix[..6])
        });
        (replica, Some(SmolStr::from(options.identity.as_str())))
    } else {
        (options.identity.clone(), None)
    };
    let prefetch = options.prefetch.max(1);
    let endpoint_options = EndpointOptions {
        // The broker may deliver the window plus the read-ahead, which
        // the agent's task holds (see `lanes`).
        prefetch: prefetch.saturating_add(options.readahead),
        control_prefetch: CONTROL_PREFETCH,
        max_queue: options.max_queue,
        publish_window: options.publish_window.max(1),
        send_timeout: options.send_timeout,
        group: group.clone(),
    };
    let opened = bus.open(&identity, &endpoint_options).await?;
    let core = Arc::new(Core::new(
        &identity,
        group,
        options,
        A::spec(),
        // The `#[fsm]` machines of the agent's type come after its
        // behaviours and handlers.
        super::machine::machines_of(A::spec()),
        opened.endpoint,
        Arc::clone(&neighbourhood),
    ));
    let mut consumers = opened.mailbox;
    let ctx = Context {
        core: Arc::clone(&core),
    };
    #[cfg(feature = "metrics")]
    super::metrics::attach(&core, A::spec());
    let span = tracing::info_span!("agent", agent = %identity);

    let setup = AssertUnwindSafe(agent.setup(&ctx))
        .catch_unwind()
        .instrument(span.clone())
        .await;
    let setup = match setup {
        Ok(result) => result,
        Err(panic) => Err(format!("setup panicked: {}", invocation::panic_message(&*panic)).into()),
    };
    if let Err(source) = setup {
        let _ = core.endpoint.close().await;
        return Err(Error::Setup {
            agent: identity,
            source,
        });
    }
    for (i, b) in core.behaviours.iter().enumerate() {
        if let BehaviourKind::Handler(HandlerRoute::Topic(_)) = b.spec.kind {
            let keys = core.binding_keys(i);
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            let shared = core.shares_subscription(i);
            match core
                .endpoint
                .subscribe(&core.subscription_queue(i), &keys, shared)
                .await
            {
                Ok(consumer) => consumers.push(consumer),
                Err(e) => {
                    let _ = core.endpoint.close().await;
                    return Err(e);
                }
            }
        }
    }

    for (i, b) in core.behaviours.iter().enumerate() {
        b.state.set(if core.is_singleton(i) {
            State::Standby
        } else {
            State::Running
        });
    }
    core.state.set(State::Running);
    let neighbour: std::sync::Weak<Core> = Arc::downgrade(&core);
    neighbourhood.join(Arc::from(core.identity.as_str()), neighbour);
    let limit = usize::from(prefetch) + usize::from(core.options.readahead);
    let task = task::Task {
        agent,
        ctx: ctx.clone(),
        lanes: lanes::Lanes {
            control: lanes::ControlLane::new(opened.control, Arc::clone(&core.quiet)),
            users: lanes::UserLanes::new(consumers, limit),
        },
        invocation: Arc::default(),
    };
    tokio::spawn(supervise(Arc::clone(&core), task.run()).instrument(span.clone()));
    if let Err(e) = crate::pyrpc::serve(&bus, &core).instrument(span.clone()).await {
        core.request_shutdown();
        return Err(e);
    }
    for i in (0..core.behaviours.len()).filter(|&i| core.is_singleton(i)) {
        super::lease::ask_lease(&ctx, i);
    }
    // The runtime's first agent pings for all of them (see `crate::peers`):
    // the others need no keepalive task unless they have an interval.
    let announce = core.options.announce && core.peers.remote.claim_round(crate::peers::ANNOUNCE_GAP);
    if announce || core.options.peer_interval.is_some() {
        let peer_interval = core.options.peer_interval;
        ctx.spawn(keepalive(ctx.clone(), announce, peer_interval).instrument(span));
    }
    tracing::info!(agent = %identity, "agent started");
    Ok(ctx)
}

/// Pings the peers at once when `announce` (its round is claimed), then
/// every `interval` unless another agent of the runtime pinged within
/// three quarters of it (its round serves all of them).
async fn keepalive(ctx: Context, announce: bool, interval: Option<Duration>) {
    let core = Arc::clone(&ctx.core);
    if announce {
        if let Err(e) = core.send_ping().await {
            tracing::warn!(agent = %core.identity, error = %e, "cannot ping peers");
        }
    }
    let Some(interval) = interval else { return };
    let mut ticks = tokio::time::interval_at(Instant::now() + interval, interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        ticks.tick().await;
        if !core.peers.remote.claim_round(interval * 3 / 4) {
            continue;
        }
        if let Err(e) = core.send_ping().await {
            tracing::warn!(agent = %core.identity, error = %e, "cannot ping peers");
        }
    }
}

/// Runs the agent's task and notices its end: the agent's `done` flag is
/// set however it ends (also when the runtime drops the task unfinished), and a task that panicked outside the handlers (which catch their
/// own panics) leaves the agent `crashed`, its queues deleted, rather than
/// `running` and deaf.
///
/// A combinator rather than an `async fn`: an `async fn` would hold the
/// task's future twice (as its argument and as what it awaits), which made
/// every agent kilobytes larger; `then` holds one or the other.
pub(crate) fn supervise(
    core: Arc<Core>,
    task: impl std::future::Future<Output = ()>,
) -> impl std::future::Future<Output = ()> {
    let done = SetsDone(Arc::clone(&core));
    AssertUnwindSafe(task).catch_unwind().then(move |outcome| async move {
        let _done = done;
        if let Err(panic) = outcome {
            // Requests that will not be taken any more are dropped: their
            // senders learn that the agent stopped.
            drop(core.control.close());
            drop(core.calls.close());
            let reason = invocation::panic_message(&*panic);
            tracing::error!(agent = %core.identity, "the agent's task panicked outside its handlers: {reason}; the agent is stopped");
            core.abort_tasks();
            core.pending.clear();
            if let Err(e) = core.endpoint.close().await {
                tracing::warn!(agent = %core.identity, error = %e, "cannot delete the agent's queues");
            }
            core.buffered.store(0, std::sync::atomic::Ordering::Relaxed);
            for b in &core.behaviours {
                b.state.set(State::Shutdown);
            }
            core.state.set(State::Crashed);
            core.activity.notify();
        }
    })
}

/// Sets the agent's `done` flag when dropped: when its supervision ends,
/// or is dropped unfinished.
struct SetsDone(Arc<Core>);

impl Drop for SetsDone {
    fn drop(&mut self) {
        self.0.done.set();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::agent::{
        Agent, AgentDefaults, AgentOptions, AgentSpec, BehaviourKind, BehaviourSpec, HandlerRoute,
    };
    use crate::behaviour::State;
    use crate::context::Context;
    use crate::error::Error;
    use crate::future::BoxFuture;
    use crate::message::Received;

    /// An agent written by hand whose `handle` panics before it returns
    /// its future, outside the catch_unwind around every handler run.
    struct Faulty;

    static FAULTY: AgentSpec = AgentSpec {
        name: "Faulty",
        behaviours: &[BehaviourSpec::new(
            "any",
            BehaviourKind::Handler(HandlerRoute::Fallback),
        )],
        rpcs: &[],
    };

    impl AgentDefaults for Faulty {
        fn options() -> AgentOptions {
            AgentOptions::new("faulty")
        }

        fn construct() -> Option<Self> {
            None
        }
    }

    impl Agent for Faulty {
        fn spec() -> &'static AgentSpec {
            &FAULTY
        }

        fn handle<'a>(
            &'a mut self,
            _: &'a Context,
            _: usize,
            _: &'a Arc<Received>,
        ) -> BoxFuture<'a, Result<(), crate::agent::HandlerError>> {
            panic!("broken by hand")
        }
    }

    #[tokio::test]
    async fn a_task_that_panics_outside_its_handlers_leaves_the_agent_crashed() {
        let rt = crate::Runtime::memory().start().await.unwrap();
        let agent = rt.spawn(Faulty).await.unwrap();
        let client = rt.client("prober").await.unwrap();
        client.send_raw("faulty", "Anything", "{}").await.unwrap();
        agent.stopped().await;
        assert_eq!(agent.state(), State::Crashed);
        assert!(
            rt.agent("faulty").is_none(),
            "a crashed agent is not listed as running"
        );
        assert!(matches!(
            agent.wait_until(|_| false).await,
            Err(Error::AgentStopped(_))
        ));
        let gone = client.send_raw("faulty", "Anything", "{}").await;
        assert!(
            matches!(gone, Err(Error::UnknownTarget(_))),
            "its queues are deleted: {gone:?}"
        );
        rt.shutdown().await;
    }
}
