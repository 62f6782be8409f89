//! The publishing side of an endpoint: a channel in confirm mode on the
//! publishing connection, driven by one task per agent.
//!
//! A publish is answered through its [`Confirm`] when the broker's confirm
//! arrives; up to the endpoint's publish window may be in flight at once
//! (a publish past it waits for a place), so an agent that sends one
//! message after another does not wait a round trip for each. Direct sends are `mandatory`: for an unroutable one the broker
//! sends a `basic.return` just before the message's `basic.ack`, but lapin
//! hands the returned message to whichever confirm it completes next, which
//! under pipelining (and with multiple acks) is often another publish's
//! (about one return in four in a test with 3000 concurrent publishes). So
//! the task, the only one publishing on its channel, looks at the confirms
//! in rounds, matches every returned message to its publish by target and
//! `message_id`, and answers a confirmed direct publish only once every
//! confirm completed before its own has been looked at: a returned direct
//! message is [`Error::UnknownTarget`]. Broadcasts and topic publications
//! that reach no queue are normal (and not `mandatory`, so the broker does
//! not send them back).
//!
//! (Longer than most files: the window, the confirms and the returns are
//! one state machine that only the publisher task drives; its tests are in
//! `publisher/tests.rs`.)

use std::collections::HashMap;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::ShortString;
use lapin::{BasicProperties, Channel, Confirmation, Connection};

use super::link::Link;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

use super::rounds::Rounds;
use super::{lapin_error, BACKOFF_MAX, BACKOFF_MIN, CLOSE_TIMEOUT, STUCK_GRACE};
use crate::bus::Confirm;
use crate::error::{Error, Result};
use crate::future::BoxFuture;

/// A message ready for the wire.
pub(super) struct Publish {
    /// The exchange (`""` for direct sends).
    pub(super) exchange: ShortString,
    /// The routing key.
    pub(super) routing_key: ShortString,
    /// The AMQP properties.
    pub(super) properties: BasicProperties,
    /// The body.
    pub(super) body: Bytes,
    /// For a direct send: how to recognise the message if it comes back.
    pub(super) direct: Option<ReturnKey>,
}

/// What identifies a returned direct message: its routing key (the
/// target identity) and its `message_id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct ReturnKey {
    pub(super) target: ShortString,
    pub(super) message_id: ShortString,
}

// Publishing is the common case: boxing it would cost an allocation each.
#[allow(clippy::large_enum_variant)]
enum Command {
    Publish(Publish, Answer),
    Close(oneshot::Sender<()>),
}

/// The handle an endpoint publishes through.
pub(super) struct Publisher {
    identity: Arc<str>,
    commands: mpsc::UnboundedSender<Command>,
    /// Places in the window of outstanding confirms; they bound the command
    /// queue too.
    window: Arc<Semaphore>,
    /// How long a publish may wait for a place and then for its confirm.
    timeout: std::time::Duration,
}

/// Who waits for a publish's outcome, and its place in the window.
struct Answer {
    reply: oneshot::Sender<Result<()>>,
    _place: OwnedSemaphorePermit,
}

impl Answer {
    fn send(self, outcome: Result<()>) {
        let _ = self.reply.send(outcome);
    }
}

impl Publisher {
    /// Opens the agent's publish channel (confirm mode) and starts its task.
    pub(super) async fn open(
        link: Arc<Link>,
        identity: Arc<str>,
        window: usize,
        timeout: std::time::Duration,
    ) -> Result<Publisher> {
        let channel = open_channel(&link.current()).await.map_err(|e| {
            lapin_error(
                e,
                &format!("cannot open the publish channel of agent `{identity}`"),
            )
        })?;
        let (commands, rx) = mpsc::unbounded_channel();
        let task = Task {
            identity: Arc::clone(&identity),
            link,
            channel: Arc::new(channel),
            confirms: Confirms {
                identity: Arc::clone(&identity),
                in_flight: Rounds::new(),
                undecided: Vec::new(),
                book: ReturnBook::default(),
            },
            reopening: None,
            stuck_since: None,
        };
        tokio::spawn(task.run(rx));
        Ok(Publisher {
            identity,
            commands,
            window: Arc::new(Semaphore::new(window.max(1))),
            timeout,
        })
    }

    /// Publishes once there is a place in the window; the [`Confirm`]
    /// completes with the broker's answer.
    pub(super) async fn publish(&self, publish: Publish) -> Result<Confirm> {
        let stopped = || Error::AgentStopped(self.identity.to_string());
        let target = publish.routing_key.to_string();
        let place = match tokio::time::timeout(self.timeout, Arc::clone(&self.window).acquire_owned()).await {
            Ok(place) => place.map_err(|_| stopped())?,
            Err(_) => {
                return Err(Error::SendTimeout {
                    target,
                    timeout: self.timeout,
                })
            }
        };
        let (reply, answer) = oneshot::channel();
        let command = Command::Publish(publish, Answer { reply, _place: place });
        if self.commands.send(command).is_err() {
            return Err(stopped());
        }
        Ok(Confirm::pending(
            answer,
            Arc::clone(&self.identity),
            &target,
            self.timeout,
        ))
    }

    /// Waits for the confirms in flight (a few seconds at most), then closes
    /// the channel. Later publishes fail with [`Error::AgentStopped`].
    pub(super) async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.commands.send(Command::Close(done)).is_ok() {
            let _ = closed.await;
        }
    }
}

async fn open_channel(conn: &Connection) -> lapin::Result<Channel> {
    let channel = conn.create_channel().await?;
    channel.confirm_select(ConfirmSelectOptions::default()).await?;
    Ok(channel)
}

/// What a publish waits for, and who to answer.
struct Pending {
    direct: Option<ReturnKey>,
    reply: Answer,
}

/// The confirms in flight and what is known about returned messages.
///
/// A returned direct message is attached to some confirm that lapin
/// completes no later than the message's own. So a direct publish confirmed
/// without a known return is answered one round later (see [`Rounds`]),
/// when every confirm completed before its own has been looked at.
struct Confirms {
    identity: Arc<str>,
    in_flight: Rounds<Pending, lapin::Result<Confirmation>>,
    /// Direct publishes confirmed in the last round, without a return yet.
    undecided: Vec<Pending>,
    book: ReturnBook,
}

impl Confirms {
    fn is_idle(&self) -> bool {
        self.in_flight.is_empty() && self.undecided.is_empty()
    }

    /// Takes the confirms of one round and answers whom it can. Ready with
    /// whether a publish failed (the channel may need reopening).
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        let previous = std::mem::take(&mut self.undecided);
        let completed = match self.in_flight.poll_round(cx) {
            Poll::Ready(completed) => completed,
            Poll::Pending if previous.is_empty() => return Poll::Pending,
            Poll::Pending => Vec::new(),
        };
        // First every returned message of this round, whoever it rode on.
        let mut results = Vec::with_capacity(completed.len());
        for (pending, result) in completed {
            let result = result.map(|confirmation| {
                let nack = confirmation.is_nack();
                if let Some(returned) = confirmation.take_message() {
                    self.book
                        .returned(&self.identity, pending.direct.as_ref(), &returned);
                }
                nack
            });
            results.push((pending, result));
        }
        for pending in previous {
            self.answer(pending, Ok(()));
        }
        let mut failed = false;
        for (pending, result) in results {
            match result {
                Ok(false) => {
                    let returned = pending
                        .direct
                        .as_ref()
                        .is_some_and(|key| self.book.was_returned(key));
                    if pending.direct.is_some() && !returned {
                        self.undecided.push(pending);
                    } else {
                        self.answer(pending, Ok(()));
                    }
                }
                Ok(true) => {
                    let refused = self.refused(&pending);
                    self.answer(pending, refused);
                }
                Err(e) => {
                    failed = true;
                    let error = lapin_error(e, &format!("publish of agent `{}` failed", self.identity));
                    self.answer(pending, Err(error));
                }
            }
        }
        if !self.undecided.is_empty() {
            // Their answer needs one more round, even if nothing else wakes us.
            cx.waker().wake_by_ref();
        }
        Poll::Ready(failed)
    }

    /// What a `basic.nack` means: a queue at its maximum length refused the
    /// message (`x-overflow = reject-publish`). A direct send fails with
    /// [`Error::QueueFull`]; a broadcast or publication reached the other
    /// queues, so it succeeds with a warning, as on the embedded bus.
    fn refused(&self, pending: &Pending) -> Result<()> {
        match &pending.direct {
            Some(key) => Err(Error::QueueFull {
                queue: key.target.to_string(),
                max_len: None,
            }),
            None => {
                tracing::warn!(agent = %self.identity, "a broadcast or publication was refused by a full queue");
                Ok(())
            }
        }
    }

    /// Answers a publish; a direct one that came back is `UnknownTarget`.
    fn answer(&mut self, pending: Pending, outcome: Result<()>) {
        let Pending { direct, reply } = pending;
        let outcome = match direct {
            Some(key) if self.book.settle(&key) => match outcome {
                Ok(()) => Err(Error::UnknownTarget(key.target.to_string())),
                Err(e) => Err(e),
            },
            _ => outcome,
        };
        reply.send(outcome);
    }
}

struct Task {
    identity: Arc<str>,
    link: Arc<Link>,
    channel: Arc<Channel>,
    confirms: Confirms,
    reopening: Option<BoxFuture<'static, Option<Channel>>>,
    stuck_since: Option<Instant>,
}

impl Task {
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut closing: Option<(oneshot::Sender<()>, tokio::time::Instant)> = None;
        loop {
            if closing.is_some() && self.confirms.is_idle() {
                break;
            }
            let deadline = closing.as_ref().map(|(_, deadline)| *deadline);
            let confirms = &mut self.confirms;
            let busy = !confirms.is_idle();
            tokio::select! {
                biased;
                failed = std::future::poll_fn(|cx| confirms.poll(cx)), if busy => {
                    if failed {
                        self.check_channel();
                    }
                }
                channel = poll_reopen(&mut self.reopening), if self.reopening.is_some() => {
                    self.reopening = None;
                    if let Some(channel) = channel {
                        self.channel = Arc::new(channel);
                        self.stuck_since = None;
                    }
                }
                command = commands.recv(), if closing.is_none() => {
                    let mut command = command;
                    // Take what else is queued too: one round serves them all.
                    loop {
                        match command {
                            Some(Command::Publish(publish, reply)) => self.start(publish, reply),
                            Some(Command::Close(done)) => {
                                closing = Some((done, tokio::time::Instant::now() + CLOSE_TIMEOUT));
                                break;
                            }
                            None => return self.finish(None).await,
                        }
                        match commands.try_recv() {
                            Ok(next) => command = Some(next),
                            Err(_) => break,
                        }
                    }
                }
                () = sleep_until(deadline), if deadline.is_some() => {
                    tracing::warn!(
                        agent = %self.identity,
                        unconfirmed = self.confirms.in_flight.len(),
                        "closing the publish channel without the broker's confirms for these messages"
                    );
                    break;
                }
            }
        }
        self.finish(closing.map(|(done, _)| done)).await;
    }

    /// Closes the channel; messages still in flight are answered by
    /// dropping their reply senders.
    async fn finish(mut self, done: Option<oneshot::Sender<()>>) {
        self.confirms.in_flight.clear();
        self.confirms.undecided.clear();
        if self.channel.status().connected() {
            if let Err(e) = self.channel.close(200, "agent stopped".into()).await {
                tracing::debug!(agent = %self.identity, error = %e, "closing the publish channel failed");
            }
        }
        if let Some(done) = done {
            let _ = done.send(());
        }
    }

    fn start(&mut self, publish: Publish, reply: Answer) {
        if !self.channel.status().connected() {
            self.check_channel();
            let why = if self.reopening.is_some() {
                "its publish channel is being reopened"
            } else if self.link.is_closed() {
                "the bus is closed"
            } else {
                "the publishing connection is down; the bus is reconnecting"
            };
            reply.send(Err(Error::connection_lost(format!(
                "agent `{}` cannot publish: {why}",
                self.identity
            ))));
            return;
        }
        let Publish {
            exchange,
            routing_key,
            properties,
            body,
            direct,
        } = publish;
        self.confirms.book.expect(direct.as_ref());
        // Only a direct send needs to learn that nobody took it. A returned
        // broadcast or publication would carry its whole body back and make
        // lapin log it as a warning, for nothing.
        let options = BasicPublishOptions {
            mandatory: direct.is_some(),
            immediate: false,
        };
        let channel = Arc::clone(&self.channel);
        #[cfg(feature = "metrics")]
        let started = crate::stats::bus::publish_started();
        let future = Box::pin(async move {
            let confirm = channel
                .basic_publish(exchange, routing_key, options, &body, properties)
                .await?;
            let confirmed = confirm.await;
            #[cfg(feature = "metrics")]
            crate::stats::bus::confirmed(started);
            confirmed
        });
        self.confirms.in_flight.push(Pending { direct, reply }, future);
    }

    /// Starts reopening the channel when it is dead, or when lapin's
    /// recovery left it behind although the connection is back.
    fn check_channel(&mut self) {
        if self.reopening.is_some() {
            return;
        }
        let status = self.channel.status();
        if status.connected() {
            self.stuck_since = None;
            return;
        }
        if status.reconnecting() {
            if !self.link.current().status().connected() {
                self.stuck_since = None;
                return;
            }
            let since = *self.stuck_since.get_or_insert_with(Instant::now);
            if since.elapsed() < STUCK_GRACE {
                return;
            }
        }
        tracing::warn!(agent = %self.identity, "the publish channel is closed; opening a new one");
        let link = Arc::clone(&self.link);
        let identity = Arc::clone(&self.identity);
        self.reopening = Some(Box::pin(async move { reopen(&link, &identity).await }));
    }
}

async fn poll_reopen(reopening: &mut Option<BoxFuture<'static, Option<Channel>>>) -> Option<Channel> {
    match reopening {
        Some(future) => future.await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Opens a new publish channel on the bus's current publishing
/// connection, retrying with backoff while it is down; `None` once the bus
/// is closed.
async fn reopen(link: &Link, identity: &str) -> Option<Channel> {
    let mut delay = BACKOFF_MIN;
    loop {
        if link.is_closed() {
            return None;
        }
        let conn = link.current();
        if !conn.status().connected() {
            // The link reconnects; the channel follows at once, without a
            // backoff grown while the broker was away.
            link.connected().await;
            delay = BACKOFF_MIN;
            continue;
        }
        match open_channel(&conn).await {
            Ok(channel) => {
                tracing::info!(agent = %identity, "publish channel reopened");
                return Some(channel);
            }
            Err(e) => {
                tracing::warn!(agent = %identity, error = %e, "cannot reopen the publish channel yet")
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(BACKOFF_MAX);
    }
}

/// Which direct publishes in flight came back, matched by [`ReturnKey`].
#[derive(Default)]
struct ReturnBook {
    /// Per key: publishes in flight, and how many of them were returned.
    entries: HashMap<ReturnKey, (u32, u32)>,
}

impl ReturnBook {
    fn expect(&mut self, key: Option<&ReturnKey>) {
        if let Some(key) = key {
            self.entries.entry(key.clone()).or_default().0 += 1;
        }
    }

    /// Records a returned message for the direct publish it belongs to
    /// (`carrier` is the publish whose confirm brought it); returns of
    /// broadcasts and topic publications are normal and dropped.
    fn returned(
        &mut self,
        identity: &str,
        carrier: Option<&ReturnKey>,
        message: &lapin::message::BasicReturnMessage,
    ) {
        let delivery = &message.delivery;
        let key = match (delivery.exchange.as_str(), delivery.properties.message_id()) {
            ("", Some(message_id)) => ReturnKey {
                target: delivery.routing_key.clone(),
                message_id: message_id.clone(),
            },
            _ => {
                tracing::trace!(
                    agent = %identity,
                    exchange = %delivery.exchange,
                    routing_key = %delivery.routing_key,
                    "a published message reached no queue"
                );
                return;
            }
        };
        if carrier != Some(&key) {
            tracing::trace!(agent = %identity, target = %key.target, "a returned message came with another publish's confirm");
        }
        match self.entries.get_mut(&key) {
            Some((in_flight, returned)) if *returned < *in_flight => *returned += 1,
            _ => tracing::debug!(
                agent = %identity,
                target = %key.target,
                "returned message matches no publish in flight"
            ),
        }
    }

    /// Whether a publish with this key is known to have come back.
    fn was_returned(&self, key: &ReturnKey) -> bool {
        self.entries.get(key).is_some_and(|(_, returned)| *returned > 0)
    }

    /// Settles one publish with this key: whether it came back.
    fn settle(&mut self, key: &ReturnKey) -> bool {
        let Some((in_flight, returned)) = self.entries.get_mut(key) else {
            return false;
        };
        *in_flight = in_flight.saturating_sub(1);
        let came_back = *returned > 0;
        if came_back {
            *returned -= 1;
        }
        if *in_flight == 0 {
            self.entries.remove(key);
        }
        came_back
    }
}

#[cfg(test)]
mod tests;
