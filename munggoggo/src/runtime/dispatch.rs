//! The dispatcher: one task per agent that takes the deliveries of the
//! agent's queues, answers system messages at once from shared status, and
//! passes the rest into the agent's task through its prefetch window.
//!
//! Two lanes, so that nothing the runtime must answer waits behind user
//! messages: the control queue (requests from Rust callers, replies to
//! this agent's own requests) is always read; the identity, fanout and
//! topic queues are read ahead of the agent's task only up to
//! [`AgentOptions::readahead`](crate::agent::AgentOptions::readahead)
//! deliveries, the rest waits in its queue (on RabbitMQ, in the broker).
//! System requests among them (munggoggo 0.4 peers send theirs to the
//! identity queue) are answered as soon as they are read.

use std::collections::VecDeque;
use std::sync::Arc;

use futures_util::stream::SelectAll;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::core::Core;
use crate::bus::{Consumer, Delivery, Source};
use crate::message;
use crate::trace::{Category, TraceRecord};

/// The consumers and lanes of one agent's dispatcher.
pub(crate) struct Lanes {
    /// The control queue's consumer.
    pub(crate) control: Consumer,
    /// The identity, fanout and topic queues' consumers.
    pub(crate) users: Vec<Consumer>,
    /// Consumers of topic subscriptions started later.
    pub(crate) added: mpsc::UnboundedReceiver<Consumer>,
    /// The prefetch window into the agent's task (boxed: a channel
    /// allocates room for 32 entries at once, for every agent).
    pub(crate) window: mpsc::Sender<Box<Delivery>>,
}

pub(crate) async fn run(core: Arc<Core>, lanes: Lanes) {
    let Lanes {
        control,
        users,
        mut added,
        window,
    } = lanes;
    let readahead = usize::from(core.options.readahead).max(1);
    let mut control = Some(control);
    let mut users: SelectAll<Consumer> = users.into_iter().collect();
    // Grows when needed: most agents never read ahead.
    let mut backlog: VecDeque<Delivery> = VecDeque::new();
    loop {
        let in_window = window.max_capacity() - window.capacity();
        core.buffered
            .store(backlog.len() + in_window, std::sync::atomic::Ordering::Relaxed);
        tokio::select! {
            biased;
            delivery = next(&mut control), if control.is_some() => match delivery {
                Some(delivery) => {
                    trace_incoming(&core, &delivery);
                    // Boxed, here and below: inline, these futures would
                    // make every agent's dispatcher task kilobytes larger.
                    if is_system(&delivery) {
                        Box::pin(super::system::handle(&core, delivery)).await;
                    } else if crate::pyrpc::is_reply(&delivery) {
                        Box::pin(crate::pyrpc::complete(&core, delivery)).await;
                    } else {
                        Box::pin(core.reject(delivery, "not a system message (control queue)")).await;
                    }
                    core.activity.notify_waiters();
                }
                None => {
                    control = None;
                    if core.state.get() == crate::State::Running {
                        // The bus gave the queues up (the connection is gone for
                        // good, or another connection took the identity): a deaf
                        // agent must not go on reporting `running`.
                        tracing::error!(agent = %core.identity, "the agent's queues are gone; stopping it");
                        core.request_shutdown();
                    }
                }
            },
            consumer = added.recv() => match consumer {
                Some(consumer) => users.push(consumer),
                None => break,
            },
            permit = window.reserve(), if !backlog.is_empty() => match permit {
                Ok(permit) => {
                    if let Some(delivery) = backlog.pop_front() {
                        permit.send(Box::new(delivery));
                    }
                }
                Err(_) => break,
            },
            Some(delivery) = users.next(), if !users.is_empty() && backlog.len() < readahead => {
                trace_incoming(&core, &delivery);
                if is_system(&delivery) {
                    Box::pin(super::system::handle(&core, delivery)).await;
                    core.activity.notify_waiters();
                } else if backlog.is_empty() {
                    // The common case: straight into a free place of the
                    // window, without another turn of the loop.
                    match window.try_send(Box::new(delivery)) {
                        Ok(()) => {}
                        Err(mpsc::error::TrySendError::Full(delivery)) => backlog.push_back(*delivery),
                        Err(mpsc::error::TrySendError::Closed(delivery)) => {
                            backlog.push_back(*delivery);
                            break;
                        }
                    }
                } else {
                    backlog.push_back(delivery);
                }
            }
        }
    }
    Box::pin(core.release(backlog)).await;
}

/// Records a delivery as incoming, unless it is system traffic of a CLI
/// observer (see [`crate::protocol::is_observer_traffic`]).
fn trace_incoming(core: &Core, delivery: &Delivery) {
    let received = &delivery.received;
    if !crate::protocol::is_observer_traffic(received.properties.kind.as_deref(), received.sender()) {
        core.traces
            .append(Category::Incoming, TraceRecord::incoming(received));
    }
}

async fn next(consumer: &mut Option<Consumer>) -> Option<Delivery> {
    match consumer {
        Some(consumer) => consumer.next().await,
        None => std::future::pending().await,
    }
}

/// CONTROL and RPC messages on the direct, fanout and control queues go to
/// the system handlers; on a topic subscription everything goes to its
/// handler.
fn is_system(delivery: &Delivery) -> bool {
    !matches!(delivery.source, Source::Topic(_))
        && matches!(
            delivery.received.properties.kind.as_deref(),
            Some(message::CONTROL | message::RPC)
        )
}
