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
//! A publish that fails with its channel (a broker restart, closed
//! connections) is not answered with the failure: it waits in the
//! [`outbox`] and is published again, in order, on the next channel, so
//! that a send that returned Ok is delivered at least once.
//!
//! (Longer than most files: the window, the confirms, the returns and the
//! outbox are one state machine that only the publisher task drives; its
//! tests are in `publisher/tests.rs`.)

use std::collections::HashMap;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::ShortString;
use lapin::{BasicProperties, Channel, Confirmation, Connection};

use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

use super::convert::{self, short};
use super::link::Link;
use super::rounds::Rounds;
use super::{lapin_error, BACKOFF_MAX, BACKOFF_MIN, CLOSE_TIMEOUT, STUCK_GRACE};
use crate::bus::{Confirm, Outgoing, Route};
use crate::error::{Error, Result};
use crate::future::BoxFuture;

mod outbox;

pub(crate) use outbox::OUTBOX_BYTES;
use outbox::{Job, Outbox, MAX_TRIES};

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

/// How an endpoint's messages become AMQP publishes.
#[derive(Clone)]
pub(super) struct Wire {
    /// The login user: a message's `user_id` must be it.
    pub(super) user: String,
    /// Durable mode: messages are persistent.
    pub(super) durable: bool,
}

impl Wire {
    /// The publish for `msg`; a direct message gets a message id (if it
    /// has none) by which a returned message is recognised.
    fn prepare(&self, msg: &mut Outgoing) -> Result<Publish> {
        let Outgoing {
            route, properties, ..
        } = msg;
        if let Some(user_id) = &properties.user_id {
            if *user_id != self.user {
                return Err(Error::bus(format!(
                    "user_id `{user_id}` is not the login user `{}`; RabbitMQ would refuse the message",
                    self.user
                )));
            }
        }
        let direct = match &*route {
            Route::Direct(target) => {
                if properties.message_id.is_none() {
                    Arc::make_mut(properties).message_id = Some(crate::message::message_id());
                }
                let message_id = properties.message_id.as_deref().unwrap_or_default();
                Some(ReturnKey {
                    target: short("identity", target)?,
                    message_id: short("message_id", message_id)?,
                })
            }
            Route::Fanout | Route::Topic(_) => None,
        };
        let amqp = convert::to_amqp(properties)?;
        Ok(Publish {
            exchange: route.exchange().into(),
            routing_key: short("routing key", route.routing_key())?,
            // Persistent, so that a durable queue keeps it through a broker restart.
            properties: if self.durable {
                amqp.with_delivery_mode(2)
            } else {
                amqp
            },
            body: msg.body.clone(),
            direct,
        })
    }
}

// Publishing is the common case: boxing it would cost an allocation each.
#[allow(clippy::large_enum_variant)]
enum Command {
    Publish(Outgoing, Publish, Answer),
    Close(oneshot::Sender<()>),
}

/// The handle an endpoint publishes through: a place on one of the
/// bus's publish channels, and the agent's own window.
pub(super) struct Publisher {
    identity: Arc<str>,
    wire: Wire,
    pool: Arc<Publishers>,
    /// The publish channel's task, and its number in the pool.
    commands: mpsc::UnboundedSender<Command>,
    channel: u64,
    /// Places in the window of outstanding confirms; they bound the command
    /// queue too.
    window: Arc<Semaphore>,
    size: usize,
    /// How long a publish may wait for a place and then for its confirm.
    timeout: std::time::Duration,
}

impl Drop for Publisher {
    fn drop(&mut self) {
        // Dropped without close(): its place on the channel is free.
        if !self.window.is_closed() {
            self.window.close();
            self.pool.leave(self.channel);
        }
    }
}

/// Who waits for a publish's outcome, and its place in the window.
struct Answer {
    reply: oneshot::Sender<Result<()>>,
    /// The publishing agent.
    agent: Arc<str>,
    _place: OwnedSemaphorePermit,
}

/// The publish channels of a bus, each driven by its task and shared by
/// up to [`super::AmqpOptions::channel_share`] agents: an agent's messages
/// go through one channel in the order sent, with its own window; the
/// confirms, returns and outbox of a channel are its task's (so a returned
/// message is matched to its publish whichever agent sent it).
pub(super) struct Publishers {
    link: Arc<Link>,
    wire: Wire,
    share: usize,
    channels: std::sync::Mutex<Vec<Shared>>,
    next: std::sync::atomic::AtomicU64,
}

/// A publish channel's task, and how many agents use it.
struct Shared {
    number: u64,
    commands: mpsc::UnboundedSender<Command>,
    users: usize,
}

impl Publishers {
    pub(super) fn new(link: Arc<Link>, wire: Wire, share: usize) -> Publishers {
        Publishers {
            link,
            wire,
            share: share.max(1),
            channels: std::sync::Mutex::new(Vec::new()),
            next: std::sync::atomic::AtomicU64::new(1),
        }
    }

    fn channels(&self) -> std::sync::MutexGuard<'_, Vec<Shared>> {
        self.channels.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A place on a channel with room, else on a new channel (opened in
    /// confirm mode), else (at the connection's channel limit) on the
    /// least used.
    async fn join(&self) -> lapin::Result<(u64, mpsc::UnboundedSender<Command>)> {
        if let Some(place) = self.room() {
            return Ok(place);
        }
        match open_channel(&self.link.current()).await {
            Ok(channel) => {
                let number = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let (commands, rx) = mpsc::unbounded_channel();
                tokio::spawn(Task::new(number, Arc::clone(&self.link), channel, self.wire.clone()).run(rx));
                self.channels().push(Shared {
                    number,
                    commands: commands.clone(),
                    users: 1,
                });
                Ok((number, commands))
            }
            Err(e) => {
                let mut channels = self.channels();
                channels.retain(|c| !c.commands.is_closed());
                match channels.iter_mut().min_by_key(|c| c.users) {
                    Some(least) if matches!(e.kind(), lapin::ErrorKind::ChannelsLimitReached) => {
                        least.users += 1;
                        Ok((least.number, least.commands.clone()))
                    }
                    _ => Err(e),
                }
            }
        }
    }

    fn room(&self) -> Option<(u64, mpsc::UnboundedSender<Command>)> {
        let mut channels = self.channels();
        channels.retain(|c| !c.commands.is_closed());
        let room = channels.iter_mut().find(|c| c.users < self.share)?;
        room.users += 1;
        Some((room.number, room.commands.clone()))
    }

    /// An agent leaves its channel; the last one closes it (after the
    /// confirms in flight, a few seconds at most).
    fn leave(&self, number: u64) {
        let mut channels = self.channels();
        let Some(at) = channels.iter().position(|c| c.number == number) else {
            return;
        };
        channels[at].users -= 1;
        if channels[at].users == 0 {
            let last = channels.swap_remove(at);
            let (done, _) = oneshot::channel();
            let _ = last.commands.send(Command::Close(done));
        }
    }
}

impl Answer {
    fn send(self, outcome: Result<()>) {
        let _ = self.reply.send(outcome);
    }
}

impl Publisher {
    /// Takes a place on a publish channel of the bus for the agent.
    pub(super) async fn open(
        pool: Arc<Publishers>,
        identity: Arc<str>,
        window: usize,
        timeout: std::time::Duration,
    ) -> Result<Publisher> {
        let (channel, commands) = pool.join().await.map_err(|e| {
            lapin_error(
                e,
                &format!("cannot open a publish channel for agent `{identity}`"),
            )
        })?;
        Ok(Publisher {
            identity,
            wire: pool.wire.clone(),
            pool,
            commands,
            channel,
            window: Arc::new(Semaphore::new(window.max(1))),
            size: window.max(1),
            timeout,
        })
    }

    /// Publishes once there is a place in the window; the [`Confirm`]
    /// completes with the broker's answer (after a loss, with the answer to
    /// its publish on the next channel: see the [`outbox`]).
    pub(super) async fn publish(&self, mut msg: Outgoing) -> Result<Confirm> {
        let publish = self.wire.prepare(&mut msg)?;
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
        let command = Command::Publish(
            msg,
            publish,
            Answer {
                reply,
                agent: Arc::clone(&self.identity),
                _place: place,
            },
        );
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

    /// Waits for the agent's confirms in flight (a few seconds at most),
    /// then leaves its channel. Later publishes fail with
    /// [`Error::AgentStopped`].
    pub(super) async fn close(&self) {
        if self.window.is_closed() {
            return;
        }
        // Every publish holds a place until it is answered.
        let places = u32::try_from(self.size).unwrap_or(u32::MAX);
        let settled = tokio::time::timeout(CLOSE_TIMEOUT, self.window.acquire_many(places)).await;
        if settled.is_err() {
            tracing::warn!(
                agent = %self.identity,
                "stopping without the broker's confirms for some messages; they stay with the publish channel"
            );
        }
        self.window.close();
        self.pool.leave(self.channel);
    }
}

async fn open_channel(conn: &Connection) -> lapin::Result<Channel> {
    let channel = conn.create_channel().await?;
    channel.confirm_select(ConfirmSelectOptions::default()).await?;
    Ok(channel)
}

/// What a round of confirms gives back to the outbox: publishes that
/// failed with their channel, and whether some came back (bounced).
struct Failed {
    jobs: Vec<Job<Answer>>,
    bounced: bool,
}

/// A publish on the current channel, waiting for its confirm.
struct Pending {
    job: Job<Answer>,
    direct: Option<ReturnKey>,
}

/// The confirms in flight and what is known about returned messages.
///
/// A returned direct message is attached to some confirm that lapin
/// completes no later than the message's own. So a direct publish confirmed
/// without a known return is answered one round later (see [`Rounds`]),
/// when every confirm completed before its own has been looked at.
struct Confirms {
    in_flight: Rounds<Pending, lapin::Result<Confirmation>>,
    /// Direct publishes confirmed in the last round, without a return yet.
    undecided: Vec<Pending>,
    book: ReturnBook,
    /// Messages published again after a loss that came back, to be tried
    /// once more.
    bounced: Vec<Pending>,
}

/// For how long after it was first published again on a new channel a
/// message from the outbox that comes back (no queue for its target) is
/// tried again rather than failed with [`Error::UnknownTarget`]: after a
/// broker restart in transient mode the target's queue is gone until its
/// agent, reconnecting too, declares it again. (Counted from the new
/// channel, not from the loss: a broker restart on a loaded machine took
/// longer than 10 s in CI.)
const BOUNCE_GRACE: std::time::Duration = std::time::Duration::from_secs(10);
/// How long a publisher waits before it tries bounced messages again.
const BOUNCE_PAUSE: std::time::Duration = std::time::Duration::from_millis(200);

impl Confirms {
    fn is_idle(&self) -> bool {
        self.in_flight.is_empty() && self.undecided.is_empty()
    }

    /// Takes the confirms of one round and answers whom it can. Ready with
    /// the publishes that failed with their channel (to be published again;
    /// the channel may need reopening).
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Failed> {
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
                        .returned(&pending.job.reply.agent, pending.direct.as_ref(), &returned);
                }
                nack
            });
            results.push((pending, result));
        }
        for pending in previous {
            self.answer(pending, Ok(()));
        }
        let mut failed = Vec::new();
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
                Err(e) if pending.job.tries >= MAX_TRIES => {
                    let error = lapin_error(
                        e,
                        &format!(
                            "publish of agent `{}` failed {MAX_TRIES} times on as many channels",
                            pending.job.reply.agent
                        ),
                    );
                    tracing::error!(agent = %pending.job.reply.agent, target = %pending.job.message.route.target(), error = %error, "a message could not be published; giving up");
                    self.answer(pending, Err(error));
                }
                Err(e) => {
                    let came_back = pending.direct.as_ref().is_some_and(|key| self.book.settle(key));
                    if came_back {
                        let target = pending.direct.as_ref().map(|key| key.target.to_string());
                        pending
                            .job
                            .reply
                            .send(Err(Error::UnknownTarget(target.unwrap_or_default())));
                    } else {
                        tracing::trace!(agent = %pending.job.reply.agent, error = %e, "a publish failed with its channel; it waits in the outbox");
                        failed.push(pending);
                    }
                }
            }
        }
        if !self.undecided.is_empty() {
            // Their answer needs one more round, even if nothing else wakes us.
            cx.waker().wake_by_ref();
        }
        Poll::Ready(Failed {
            bounced: !self.bounced.is_empty(),
            jobs: failed
                .into_iter()
                .chain(self.bounced.drain(..))
                .map(|p| p.job)
                .collect(),
        })
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
                tracing::warn!(agent = %pending.job.reply.agent, "a broadcast or publication was refused by a full queue");
                Ok(())
            }
        }
    }

    /// Answers a publish; a direct one that came back is `UnknownTarget`.
    ///
    /// Except one that waited in the outbox through a loss, shortly after:
    /// its target's queue may be gone with the broker's restart and about to
    /// be declared again by its agent, so it goes back to the outbox
    /// (see [`BOUNCE_GRACE`]).
    fn answer(&mut self, pending: Pending, outcome: Result<()>) {
        let Pending { job, direct } = pending;
        let outcome = match direct {
            Some(key) if self.book.settle(&key) => match outcome {
                Ok(()) if job.retried.is_some_and(|at| at.elapsed() < BOUNCE_GRACE) => {
                    tracing::debug!(agent = %job.reply.agent, target = %key.target, "a message published again came back: its target's queue is not there yet; trying again");
                    self.bounced.push(Pending {
                        job,
                        direct: Some(key),
                    });
                    return;
                }
                Ok(()) => Err(Error::UnknownTarget(key.target.to_string())),
                Err(e) => Err(e),
            },
            _ => outcome,
        };
        job.reply.send(outcome);
    }
}

struct Task {
    /// The channel's number in the pool, for log lines.
    number: u64,
    link: Arc<Link>,
    channel: Arc<Channel>,
    confirms: Confirms,
    reopening: Option<BoxFuture<'static, Option<Channel>>>,
    stuck_since: Option<Instant>,
    wire: Wire,
    /// Publishes waiting for a channel.
    outbox: Outbox<Answer>,
    /// Messages taken so far: the next one's place in the order.
    sent: u64,
    /// When the current channel replaced a lost one.
    reopened: Option<Instant>,
    /// Until when the outbox waits after messages bounced.
    pause: Option<Instant>,
}

/// How often a publisher whose outbox holds messages looks at its channel.
const OUTBOX_CHECK: std::time::Duration = std::time::Duration::from_millis(250);

impl Task {
    fn new(number: u64, link: Arc<Link>, channel: Channel, wire: Wire) -> Task {
        Task {
            number,
            link,
            channel: Arc::new(channel),
            confirms: Confirms {
                in_flight: Rounds::new(),
                undecided: Vec::new(),
                book: ReturnBook::default(),
                bounced: Vec::new(),
            },
            reopening: None,
            stuck_since: None,
            wire,
            outbox: Outbox::new(OUTBOX_BYTES),
            sent: 0,
            reopened: None,
            pause: None,
        }
    }

    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut closing: Option<(oneshot::Sender<()>, tokio::time::Instant)> = None;
        loop {
            self.drain();
            if closing.is_some() && self.confirms.is_idle() && self.outbox.is_empty() {
                break;
            }
            let deadline = closing.as_ref().map(|(_, deadline)| *deadline);
            let confirms = &mut self.confirms;
            let busy = !confirms.is_idle();
            let waiting = !self.outbox.is_empty();
            tokio::select! {
                biased;
                failed = std::future::poll_fn(|cx| confirms.poll(cx)), if busy => {
                    if failed.bounced {
                        self.pause = Some(Instant::now() + BOUNCE_PAUSE);
                    }
                    if !failed.jobs.is_empty() {
                        for job in failed.jobs {
                            self.outbox.keep(job);
                        }
                        self.check_channel();
                    }
                }
                channel = poll_reopen(&mut self.reopening), if self.reopening.is_some() => {
                    self.reopening = None;
                    if let Some(channel) = channel {
                        self.channel = Arc::new(channel);
                        self.stuck_since = None;
                        self.reopened = Some(Instant::now());
                    }
                }
                command = commands.recv(), if closing.is_none() => {
                    let mut command = command;
                    // Take what else is queued too: one round serves them all.
                    loop {
                        match command {
                            Some(Command::Publish(message, publish, reply)) => {
                                self.start(message, publish, reply)
                            }
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
                () = tokio::time::sleep(OUTBOX_CHECK), if waiting && self.reopening.is_none() => {
                    self.check_channel();
                }
                () = sleep_until(deadline), if deadline.is_some() => {
                    tracing::warn!(
                        publisher = self.number,
                        unconfirmed = self.confirms.in_flight.len(),
                        "closing the publish channel without the broker's confirms for these messages"
                    );
                    break;
                }
            }
        }
        self.finish(closing.map(|(done, _)| done)).await;
    }

    /// Closes the channel; messages still in flight or in the outbox are
    /// answered by dropping their reply senders.
    async fn finish(mut self, done: Option<oneshot::Sender<()>>) {
        if !self.outbox.is_empty() {
            tracing::error!(
                publisher = self.number,
                messages = self.outbox.len(),
                "a publish channel closed with messages in its outbox that no broker confirmed; they are not published"
            );
        }
        self.outbox.take();
        self.confirms.in_flight.clear();
        self.confirms.undecided.clear();
        if self.channel.status().connected() {
            if let Err(e) = self.channel.close(200, "agent stopped".into()).await {
                tracing::debug!(publisher = self.number, error = %e, "closing the publish channel failed");
            }
        }
        if let Some(done) = done {
            let _ = done.send(());
        }
    }

    /// Takes a message from a sender: published at once, or kept in the
    /// outbox while the channel is down (or the outbox is not yet empty,
    /// so that the order holds).
    fn start(&mut self, message: Outgoing, publish: Publish, reply: Answer) {
        self.sent += 1;
        let job = Job {
            seq: self.sent,
            tries: 0,
            retried: None,
            message,
            reply,
        };
        if self.link.is_closed() {
            let error = Error::connection_lost(format!(
                "agent `{}` cannot publish: the bus is closed",
                job.reply.agent
            ));
            job.reply.send(Err(error));
            return;
        }
        if self.outbox.is_empty() && self.channel.status().connected() {
            return self.put(job, publish);
        }
        self.check_channel();
        if let Err(job) = self.outbox.offer(job) {
            let error = Error::connection_lost(format!(
                "agent `{}` cannot publish: the publishing connection is down and its channel's outbox \
                 holds {} messages ({} bytes at most); the bus is reconnecting",
                job.reply.agent,
                self.outbox.len(),
                OUTBOX_BYTES
            ));
            job.reply.send(Err(error));
        }
    }

    /// Publishes the outbox again once a new channel is open and every
    /// publish of the old one is settled (so that the order holds; or after
    /// [`STUCK_GRACE`], should the old channel leave one unanswered).
    fn drain(&mut self) {
        if self.outbox.is_empty() || !self.channel.status().connected() {
            return;
        }
        if self.pause.is_some_and(|until| Instant::now() < until) {
            return;
        }
        let settled =
            self.confirms.in_flight.is_empty() || self.reopened.is_some_and(|at| at.elapsed() >= STUCK_GRACE);
        if !settled {
            return;
        }
        let waited = self.outbox.waiting_since().map(|since| since.elapsed());
        let jobs = self.outbox.take();
        tracing::info!(publisher = self.number, messages = jobs.len(), waited = ?waited, "publishing the outbox again");
        for mut job in jobs {
            if !self.channel.status().connected() {
                self.outbox.keep(job);
                continue;
            }
            job.retried.get_or_insert_with(Instant::now);
            match self.wire.prepare(&mut job.message) {
                Ok(publish) => self.put(job, publish),
                Err(e) => job.reply.send(Err(e)),
            }
        }
    }

    /// Publishes on the current channel.
    fn put(&mut self, mut job: Job<Answer>, publish: Publish) {
        let Publish {
            exchange,
            routing_key,
            properties,
            body,
            direct,
        } = publish;
        job.tries += 1;
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
        self.confirms.in_flight.push(Pending { job, direct }, future);
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
        tracing::warn!(
            publisher = self.number,
            "the publish channel is closed; opening a new one"
        );
        let link = Arc::clone(&self.link);
        let number = self.number;
        self.reopening = Some(Box::pin(async move { reopen(&link, number).await }));
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
async fn reopen(link: &Link, number: u64) -> Option<Channel> {
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
                tracing::info!(publisher = number, "publish channel reopened");
                return Some(channel);
            }
            Err(e) => {
                tracing::warn!(publisher = number, error = %e, "cannot reopen the publish channel yet")
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
