//! The dead-letter queue on RabbitMQ: declared once per bus, filled by the
//! agents' publishers (see [`crate::bus::dead_letter`]), browsed, replayed and
//! purged by the command line through [`AmqpBus`].

use lapin::options::{
    BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions, QueuePurgeOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::Channel;

use super::convert::{from_amqp, short, to_amqp};
use super::{lapin_error, AmqpBus};
use crate::bus::dead_letter::{DeadLetter, DEAD_LETTER_LIMIT, DEAD_LETTER_QUEUE};
use crate::error::{Error, Result};
use crate::message::{DeliveryInfo, Received, SmolStr};

/// Declares the dead-letter queue: durable, bounded, refusing publishes
/// past its limit (the agent then logs the loss).
pub(super) async fn declare(channel: &Channel) -> lapin::Result<()> {
    let mut arguments = FieldTable::default();
    let limit = i64::try_from(DEAD_LETTER_LIMIT).unwrap_or(i64::MAX);
    arguments.insert("x-max-length".into(), AMQPValue::LongLongInt(limit));
    arguments.insert(
        "x-overflow".into(),
        AMQPValue::LongString("reject-publish".into()),
    );
    let options = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare(DEAD_LETTER_QUEUE.into(), options, arguments)
        .await?;
    Ok(())
}

/// A dead letter as the queue holds it.
struct Stored {
    letter: DeadLetter,
    received: Received,
    acker: lapin::Acker,
}

impl AmqpBus {
    async fn dead_letter_channel(&self) -> Result<Channel> {
        let conn = self.inner.consuming.current();
        let channel = conn
            .create_channel()
            .await
            .map_err(|e| lapin_error(e, "cannot open a channel for the dead letters"))?;
        declare(&channel)
            .await
            .map_err(|e| lapin_error(e, &format!("cannot declare `{DEAD_LETTER_QUEUE}`")))?;
        Ok(channel)
    }

    /// Takes up to `limit` dead letters off the queue without settling
    /// them (closing `channel` puts them back, in order).
    async fn take(&self, channel: &Channel, limit: usize) -> Result<Vec<Stored>> {
        let mut taken = Vec::new();
        while taken.len() < limit {
            let got = channel
                .basic_get(DEAD_LETTER_QUEUE.into(), BasicGetOptions { no_ack: false })
                .await
                .map_err(|e| lapin_error(e, "cannot read the dead letters"))?;
            let Some(message) = got else { break };
            let delivery = message.delivery;
            let info = DeliveryInfo {
                exchange: delivery.exchange.as_str().into(),
                routing_key: delivery.routing_key.as_str().into(),
                redelivered: delivery.redelivered,
                consumer_tag: SmolStr::default(),
                delivery_tag: delivery.delivery_tag,
            };
            let received = Received::new(from_amqp(&delivery.properties), info, delivery.data.into());
            let letter = DeadLetter::from_received(&received).unwrap_or_else(|| {
                DeadLetter::of(
                    &received,
                    "?",
                    None,
                    "not a munggoggo dead letter (no x-munggoggo-agent header)",
                )
            });
            taken.push(Stored {
                letter,
                received,
                acker: delivery.acker,
            });
        }
        Ok(taken)
    }

    /// The first `limit` dead letters, oldest first; they stay in the queue.
    pub async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>> {
        let channel = self.dead_letter_channel().await?;
        let taken = self.take(&channel, limit).await;
        let _ = channel.close(200, "OK".into()).await;
        Ok(taken?.into_iter().map(|s| s.letter).collect())
    }

    /// Sends the dead letters that `select` picks (by position, oldest
    /// first, among the first `limit`) again to where they first went, and
    /// removes them from the queue once the broker confirmed the resend.
    /// Returns how many were replayed.
    pub async fn replay_dead_letters(
        &self,
        limit: usize,
        mut select: impl FnMut(usize, &DeadLetter) -> bool,
    ) -> Result<usize> {
        let channel = self.dead_letter_channel().await?;
        let publish = self
            .inner
            .publishing
            .current()
            .create_channel()
            .await
            .map_err(|e| lapin_error(e, "cannot open a channel to replay dead letters"))?;
        publish
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| lapin_error(e, "cannot open a channel to replay dead letters"))?;
        let mut replayed = 0;
        let mut outcome = Ok(());
        for (i, stored) in self.take(&channel, limit).await?.into_iter().enumerate() {
            if !select(i, &stored.letter) {
                continue;
            }
            let again = stored.letter.replay(&stored.received.properties);
            let sent = async {
                let properties = to_amqp(&again.properties)?;
                let confirm = publish
                    .basic_publish(
                        again.route.exchange().into(),
                        short("routing key", again.route.routing_key())?,
                        BasicPublishOptions::default(),
                        &again.body,
                        properties,
                    )
                    .await
                    .map_err(|e| lapin_error(e, "cannot replay a dead letter"))?;
                let confirmation = confirm
                    .await
                    .map_err(|e| lapin_error(e, "cannot replay a dead letter"))?;
                if confirmation.is_nack() {
                    return Err(Error::bus(format!(
                        "the broker refused the replayed message to `{}`",
                        again.route.routing_key()
                    )));
                }
                Ok(())
            }
            .await;
            match sent {
                Ok(()) => {
                    stored
                        .acker
                        .ack(lapin::options::BasicAckOptions::default())
                        .await
                        .map_err(|e| lapin_error(e, "cannot remove a replayed dead letter"))?;
                    replayed += 1;
                }
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            }
        }
        let _ = publish.close(200, "OK".into()).await;
        let _ = channel.close(200, "OK".into()).await;
        outcome.map(|()| replayed)
    }

    /// Deletes every dead letter; returns how many there were.
    pub async fn purge_dead_letters(&self) -> Result<u32> {
        let channel = self.dead_letter_channel().await?;
        let purged = channel
            .queue_purge(DEAD_LETTER_QUEUE.into(), QueuePurgeOptions::default())
            .await
            .map_err(|e| lapin_error(e, "cannot purge the dead letters"));
        let _ = channel.close(200, "OK".into()).await;
        purged
    }
}
