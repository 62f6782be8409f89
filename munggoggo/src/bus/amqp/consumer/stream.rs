//! A queue's consumer stream: follows the unit's rebuilds from one
//! consumer to the next and ends when the unit closes.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use lapin::types::ShortString;
use lapin::Channel;
use tokio::sync::watch;

use super::{discard, Generation, Unit};
use crate::bus::amqp::convert::from_amqp;
use crate::bus::{Acker, Delivery, Source};
use crate::message::{DeliveryInfo, Received, SmolStr};

pub(super) struct StreamState {
    pub(super) unit: Arc<Unit>,
    pub(super) queue: ShortString,
    pub(super) tag: SmolStr,
    pub(super) source: Source,
    pub(super) consumer: Option<lapin::Consumer>,
    /// The channel `consumer` belongs to.
    pub(super) channel: Arc<Channel>,
    pub(super) generation: u64,
    pub(super) updates: watch::Receiver<Generation>,
}

impl Drop for StreamState {
    fn drop(&mut self) {
        if let Some(consumer) = self.consumer.take() {
            let current = self.unit.state().generation == self.generation;
            if current && !self.unit.closed.load(Ordering::SeqCst) {
                // Still consuming (the unit holds it too): not to be drained.
                drop(consumer);
            } else {
                discard(consumer, &self.channel);
            }
        }
    }
}

impl StreamState {
    pub(super) async fn next(&mut self) -> Option<Delivery> {
        loop {
            tokio::select! {
                biased;
                item = next_delivery(&mut self.consumer), if self.consumer.is_some() => match item {
                    Some(Ok(delivery)) => {
                        if self.unit.closed.load(Ordering::SeqCst) {
                            // Read ahead before the close: back to its queue
                            // (its channel may be shared, and stay open).
                            let _ = crate::bus::amqp::release(crate::bus::amqp::AmqpAcker::new(delivery.acker)).await;
                            return None;
                        }
                        return Some(self.map(delivery));
                    }
                    Some(Err(e)) => {
                        if self.unit.closed.load(Ordering::SeqCst) {
                            return None;
                        }
                        if self.unit.state().generation == self.generation {
                            tracing::warn!(agent = %self.unit.spec.identity, queue = %self.queue, error = %e, "consumer error");
                            self.unit.wake.notify_one();
                        } else {
                            // The consumer of a channel already replaced.
                            tracing::debug!(agent = %self.unit.spec.identity, queue = %self.queue, error = %e, "consumer error");
                        }
                    }
                    None => {
                        if let Some(consumer) = self.consumer.take() {
                            discard(consumer, &self.channel);
                        }
                        if self.unit.closed.load(Ordering::SeqCst) {
                            return None;
                        }
                        tracing::debug!(agent = %self.unit.spec.identity, queue = %self.queue, "consumer cancelled");
                        self.unit.report_broken(self.generation);
                    }
                },
                changed = self.updates.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                    let current = *self.updates.borrow_and_update();
                    match current {
                        Generation::Ended => return None,
                        Generation::Live(generation) if generation != self.generation => {
                            let fresh = {
                                let mut state = self.unit.state();
                                let channel = Arc::clone(&state.channel);
                                state.fresh.remove(&self.queue).map(|consumer| (consumer, channel))
                            };
                            match fresh {
                                Some((consumer, channel)) => {
                                    if let Some(old) = self.consumer.replace(consumer) {
                                        discard(old, &self.channel);
                                    }
                                    self.channel = channel;
                                    self.generation = generation;
                                }
                                None => {
                                    tracing::error!(agent = %self.unit.spec.identity, queue = %self.queue, "rebuilt channel has no consumer for this queue");
                                    return None;
                                }
                            }
                        }
                        Generation::Live(_) => {}
                    }
                }
            }
        }
    }

    fn map(&self, delivery: lapin::message::Delivery) -> Delivery {
        let lapin::message::Delivery {
            delivery_tag,
            exchange,
            routing_key,
            redelivered,
            properties,
            data,
            acker,
        } = delivery;
        let info = DeliveryInfo {
            exchange: exchange.as_str().into(),
            routing_key: routing_key.as_str().into(),
            redelivered,
            consumer_tag: self.tag.clone(),
            delivery_tag,
        };
        Delivery {
            received: Arc::new(Received::new(from_amqp(&properties), info, Bytes::from(data))),
            source: self.source.clone(),
            acker: Acker::Amqp(Box::new(crate::bus::amqp::AmqpAcker::new(acker))),
        }
    }
}

async fn next_delivery(
    consumer: &mut Option<lapin::Consumer>,
) -> Option<lapin::Result<lapin::message::Delivery>> {
    match consumer {
        Some(consumer) => consumer.next().await,
        None => std::future::pending().await,
    }
}
