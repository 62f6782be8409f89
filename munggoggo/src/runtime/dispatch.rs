//! The dispatcher: one task per agent that takes every delivery of the
//! agent's queues, answers system messages at once from shared status, and
//! passes the rest into the agent's task through its prefetch window.

use std::collections::VecDeque;
use std::sync::Arc;

use futures_util::stream::SelectAll;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use crate::bus::{Consumer, Delivery, Source};
use crate::context::Core;
use crate::message;
use crate::trace::{Category, TraceRecord};

pub(crate) async fn run(
    core: Arc<Core>,
    consumers: Vec<Consumer>,
    mut added: mpsc::UnboundedReceiver<Consumer>,
    window: mpsc::Sender<Delivery>,
) {
    let mut consumers: SelectAll<Consumer> = consumers.into_iter().collect();
    let mut backlog: VecDeque<Delivery> = VecDeque::new();
    loop {
        tokio::select! {
            consumer = added.recv() => match consumer {
                Some(consumer) => consumers.push(consumer),
                None => break,
            },
            Some(delivery) = consumers.next(), if !consumers.is_empty() => {
                core.traces.append(Category::Incoming, TraceRecord::incoming(&delivery.received));
                if is_system(&delivery) {
                    crate::system::handle(&core, delivery).await;
                    core.activity.notify_waiters();
                } else {
                    backlog.push_back(delivery);
                }
            }
            permit = window.reserve(), if !backlog.is_empty() => match permit {
                Ok(permit) => {
                    if let Some(delivery) = backlog.pop_front() {
                        permit.send(delivery);
                    }
                }
                Err(_) => break,
            },
        }
    }
    if !backlog.is_empty() {
        tracing::warn!(
            agent = %core.identity,
            count = backlog.len(),
            "agent stopped before handling these messages; rejecting them"
        );
        for delivery in backlog {
            crate::runtime::task::reject(&core, delivery, "agent stopped").await;
        }
    }
}

/// CONTROL and RPC messages on the direct and fanout queues go to the
/// system handlers; on a topic subscription everything goes to its handler.
fn is_system(delivery: &Delivery) -> bool {
    !matches!(delivery.source, Source::Topic(_))
        && matches!(
            delivery.received.properties.kind.as_deref(),
            Some(message::CONTROL | message::RPC)
        )
}
