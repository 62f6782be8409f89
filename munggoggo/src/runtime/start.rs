//! Starting one agent: its endpoint, setup, topic subscriptions, then its
//! dispatcher, its task and its keepalive pings.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::Instrument;

use super::core::{Core, CONTROL_QUEUE};
use super::{dispatch, invocation, task};
use crate::agent::{Agent, AgentOptions, BehaviourKind, HandlerRoute};
use crate::behaviour::State;
use crate::bus::{Bus, EndpointOptions};
use crate::context::Context;
use crate::error::{Error, Result};

/// Deliveries in flight on an agent's control queue: requests and replies
/// are answered by the dispatcher at once, so this only covers bursts.
const CONTROL_PREFETCH: u16 = 256;

/// Opens the agent's endpoint, runs its setup, subscribes its topic
/// handlers and spawns its dispatcher and task. Returns the agent's
/// context and the flag its task sets when it has finished.
pub(crate) async fn start_agent<A: Agent>(
    bus: Arc<dyn Bus>,
    neighbourhood: Arc<crate::peers::Neighbourhood>,
    mut agent: A,
    options: AgentOptions,
) -> Result<(Context, watch::Receiver<bool>)> {
    invocation::install_panic_hook();
    let identity = options.identity.clone();
    let prefetch = options.prefetch.max(1);
    let endpoint_options = EndpointOptions {
        // The broker may deliver the window plus the read-ahead; the
        // dispatcher holds the read-ahead (see `dispatch`).
        prefetch: prefetch.saturating_add(options.readahead),
        control_prefetch: CONTROL_PREFETCH,
        max_queue: options.max_queue,
        publish_window: options.publish_window.max(1),
        send_timeout: options.send_timeout,
    };
    let opened = bus.open(&identity, &endpoint_options).await?;
    let (control_tx, control_rx) = mpsc::channel(CONTROL_QUEUE);
    let (calls_tx, calls_rx) = mpsc::channel(options.call_queue.max(1));
    let core = Arc::new(Core::new(
        &identity,
        options,
        A::spec(),
        opened.endpoint,
        control_tx,
        calls_tx,
        Arc::clone(&neighbourhood),
    ));
    let mut consumers = opened.mailbox;
    let ctx = Context {
        core: Arc::clone(&core),
    };
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
            match core.endpoint.subscribe(&core.subscription_queue(i), &keys).await {
                Ok(consumer) => consumers.push(consumer),
                Err(e) => {
                    let _ = core.endpoint.close().await;
                    return Err(e);
                }
            }
        }
    }

    for b in &core.behaviours {
        b.state.set(State::Running);
    }
    core.state.set(State::Running);
    let neighbour: std::sync::Weak<Core> = Arc::downgrade(&core);
    neighbourhood.join(Arc::clone(&core.identity), neighbour);
    let (window_tx, window_rx) = mpsc::channel(usize::from(prefetch));
    let (subscriptions_tx, subscriptions_rx) = mpsc::unbounded_channel();
    let (done_tx, done_rx) = watch::channel(false);
    let lanes = dispatch::Lanes {
        control: opened.control,
        users: consumers,
        added: subscriptions_rx,
        window: window_tx,
    };
    tokio::spawn(dispatch::run(Arc::clone(&core), lanes).instrument(span.clone()));
    let task = task::Task {
        agent,
        ctx: ctx.clone(),
        mailbox: window_rx,
        control: control_rx,
        calls: calls_rx,
        shutdown: core.shutdown.subscribe(),
        invocation: Arc::default(),
        subscriptions: subscriptions_tx,
        done: done_tx,
    };
    tokio::spawn(task.run().instrument(span.clone()));
    if let Err(e) = crate::pyrpc::serve(&bus, &core).instrument(span.clone()).await {
        core.request_shutdown();
        return Err(e);
    }
    // The runtime's first agent pings for all of them (see `crate::peers`):
    // the others need no keepalive task unless they have an interval.
    let announce = core.options.announce && core.peers.remote.claim_round(crate::peers::ANNOUNCE_GAP);
    if announce || core.options.peer_interval.is_some() {
        let peer_interval = core.options.peer_interval;
        ctx.spawn(keepalive(ctx.clone(), announce, peer_interval).instrument(span));
    }
    tracing::info!(agent = %identity, "agent started");
    Ok((ctx, done_rx))
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
