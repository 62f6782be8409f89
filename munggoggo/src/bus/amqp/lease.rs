//! Leases on RabbitMQ ([`crate::bus::Endpoint::lease`]): one holder at a
//! time, cluster-wide, kept by the broker rather than by an election of
//! ours.
//!
//! A lease is a queue declared with `x-single-active-consumer`: the broker
//! delivers its messages to one consumer at a time, and when that consumer
//! goes (cancelled, its channel or connection closed, its process killed)
//! it makes the next one active and requeues what the old one held. The
//! queue holds a token message (`x-max-length = 1`: at most one waits);
//! whoever asks for the lease publishes one and consumes the queue with
//! prefetch 1, and the consumer that has a token delivered, unacknowledged,
//! holds the lease. Only the active consumer ever gets a token, so at most
//! one holds one; a token that waits when nobody holds it goes to the next
//! active consumer at once.
//!
//! Takeover: when the holder's connection closes (a graceful stop, a
//! crash, `kill -9`: the socket closes) the broker hands the token on at
//! once; when the holder's host vanishes without closing its socket, it
//! does so once the connection's heartbeat times out (two heartbeat
//! intervals). The holder notices a lost channel within
//! [`CHECK_INTERVAL`] and stops counting itself the holder.
//!
//! A holder that gives the lease up (its agent stops) cancels its consumer
//! first, so the token goes on at once, and deletes the lease's queue if
//! no other replica consumes it; else the queue expires unused.
//!
//! RabbitMQ closes a channel whose delivery stays unacknowledged past its
//! `consumer_timeout` (30 minutes by default): the holder swaps its token
//! for a fresh one every [`ROTATE`], publishing the new one before it acks
//! the old, so that it stays the active consumer throughout.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel};
use tokio::sync::{oneshot, watch};

use super::convert::short;
use super::link::Link;
use super::{BACKOFF_MIN, CHECK_INTERVAL};
use crate::bus::Lease;
use crate::error::Result;

/// How often the holder swaps its token for a fresh one (well within
/// RabbitMQ's default `consumer_timeout` of 30 minutes).
const ROTATE: Duration = Duration::from_secs(5 * 60);

/// The longest wait between attempts at the lease's queue after a failure.
const BACKOFF_CAP: Duration = Duration::from_secs(1);

/// Asks for lease `name` on `link` as `tag` (the agent's identity): the
/// lease, and a task that holds or waits for it until the lease is dropped
/// or the link closes.
pub(super) fn lease(
    link: Arc<Link>,
    name: &str,
    tag: &str,
    durable: bool,
    expiry: Option<Duration>,
) -> Result<Lease> {
    let (held, watch) = watch::channel(false);
    let (release, released) = oneshot::channel::<()>();
    let holder = Holder {
        link,
        name: short("lease name", name)?,
        tag: short("consumer tag", tag)?,
        durable,
        expiry,
        held,
    };
    tokio::spawn(holder.run(released));
    Ok(Lease::new(watch, release))
}

/// The task behind one lease.
struct Holder {
    link: Arc<Link>,
    name: ShortString,
    tag: ShortString,
    durable: bool,
    expiry: Option<Duration>,
    held: watch::Sender<bool>,
}

/// How holding on ended.
enum Ended {
    /// The lease was dropped.
    Released,
    /// The channel or its consumer went away.
    Lost,
}

impl Holder {
    async fn run(self, mut released: oneshot::Receiver<()>) {
        let mut delay = BACKOFF_MIN;
        loop {
            if self.link.is_closed() {
                break;
            }
            if !self.link.current().status().connected() {
                tokio::select! {
                    () = self.link.connected() => {}
                    _ = &mut released => break,
                }
                delay = BACKOFF_MIN;
            }
            match self.hold(&mut released).await {
                Ok(Ended::Released) => break,
                Ok(Ended::Lost) => {
                    tracing::debug!(lease = %self.name, "the lease's channel went away; asking again");
                    delay = BACKOFF_MIN;
                }
                Err(e) => {
                    tracing::warn!(lease = %self.name, agent = %self.tag, error = %e, "cannot ask for the lease; retrying");
                }
            }
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                _ = &mut released => break,
            }
            delay = (delay * 2).min(BACKOFF_CAP);
        }
        self.held.send_replace(false);
    }

    /// One channel's worth of asking for and holding the lease; the
    /// channel is closed after (which hands a held token on).
    async fn hold(&self, released: &mut oneshot::Receiver<()>) -> lapin::Result<Ended> {
        let channel = self.link.current().create_channel().await?;
        let ended = self.hold_on(&channel, released).await;
        self.held.send_replace(false);
        if matches!(ended, Ok(Ended::Released)) && channel.status().connected() {
            self.leave(&channel).await;
        }
        if channel.status().connected() {
            if let Err(e) = channel.close(200, "OK".into()).await {
                tracing::debug!(lease = %self.name, error = %e, "closing the lease's channel failed");
            }
        }
        ended
    }

    async fn hold_on(&self, channel: &Channel, released: &mut oneshot::Receiver<()>) -> lapin::Result<Ended> {
        channel.basic_qos(1, BasicQosOptions { global: false }).await?;
        // Classic, whatever the queue type of the agents' queues: RabbitMQ
        // 3.10 declares a quorum queue with single active consumer and
        // `x-max-length = 1`, but the token is the only state and any
        // holder publishes it again, so a lease needs no replication; with
        // quorum queues it is transient (`durable` false), so that when its
        // node goes the replicas declare it again on theirs rather than
        // wait for that node.
        let mut arguments = FieldTable::default();
        arguments.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
        arguments.insert("x-max-length".into(), AMQPValue::LongLongInt(1));
        if let Some(expiry) = self.expiry {
            let millis = i64::try_from(expiry.as_millis()).unwrap_or(i64::MAX).max(1);
            arguments.insert("x-expires".into(), AMQPValue::LongLongInt(millis));
        }
        let options = QueueDeclareOptions {
            durable: self.durable,
            ..QueueDeclareOptions::default()
        };
        channel
            .queue_declare(self.name.clone(), options, arguments)
            .await?;
        self.publish_token(channel).await?;
        let mut consumer = channel
            .basic_consume(
                self.name.clone(),
                self.tag.clone(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let mut token: Option<lapin::Acker> = None;
        let mut since = tokio::time::Instant::now();
        let mut checks = tokio::time::interval(CHECK_INTERVAL);
        loop {
            tokio::select! {
                _ = &mut *released => return Ok(Ended::Released),
                next = consumer.next() => match next {
                    Some(Ok(delivery)) => {
                        if token.replace(delivery.acker).is_none() && !*self.held.borrow() {
                            tracing::debug!(lease = %self.name, agent = %self.tag, "lease held");
                        }
                        since = tokio::time::Instant::now();
                        self.held.send_replace(true);
                    }
                    Some(Err(e)) => return Err(e),
                    None => return Ok(Ended::Lost),
                },
                _ = checks.tick() => {
                    if !channel.status().connected() {
                        return Ok(Ended::Lost);
                    }
                    if token.is_some() && since.elapsed() >= ROTATE {
                        // The fresh token first: the queue never lacks one,
                        // and it comes to this consumer, still the active one.
                        self.publish_token(channel).await?;
                        if let Some(old) = token.take() {
                            old.ack(BasicAckOptions::default()).await?;
                        }
                        since = tokio::time::Instant::now();
                    }
                }
            }
        }
    }

    /// Gives the lease up for good: the token goes on to the next
    /// replica, and the last one to leave deletes the lease's queue.
    async fn leave(&self, channel: &Channel) {
        if let Err(e) = channel
            .basic_cancel(self.tag.clone(), BasicCancelOptions::default())
            .await
        {
            tracing::debug!(lease = %self.name, error = %e, "cancelling the lease's consumer failed");
            return;
        }
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        // Looked at first: a refused conditional delete would close the
        // channel with an error line of lapin's.
        let unused = channel
            .queue_declare(self.name.clone(), passive, FieldTable::default())
            .await
            .is_ok_and(|state| state.consumer_count() == 0);
        if unused {
            let options = QueueDeleteOptions {
                if_unused: true,
                ..QueueDeleteOptions::default()
            };
            if let Err(e) = channel.queue_delete(self.name.clone(), options).await {
                tracing::debug!(lease = %self.name, error = %e, "the lease's queue stays (another replica came?)");
            }
        }
    }

    async fn publish_token(&self, channel: &Channel) -> lapin::Result<()> {
        let properties = BasicProperties::default().with_delivery_mode(if self.durable { 2 } else { 1 });
        channel
            .basic_publish(
                "".into(),
                self.name.clone(),
                BasicPublishOptions::default(),
                b"lease",
                properties,
            )
            .await?;
        Ok(())
    }
}
