//! The consuming side of an endpoint: units of queues and their consumers
//! on the consuming connection.
//!
//! An agent's identity and fanout queues form one unit, its control queue
//! another, each topic subscription another. A unit declares and binds its
//! queues on a setup channel (so a subscription the broker refuses cannot
//! take the agent's mailbox, or anyone else's, down with it) and consumes
//! them on a seat of a channel it shares with other units
//! (`channels.rs`).
//!
//! Queues outlive their connection: they are not exclusive but consumed by
//! one exclusive consumer (a second claimant of the identity is refused
//! with ACCESS_REFUSED), expire with `x-expires` when nobody consumes them,
//! and an agent that stops deletes only the queues it left empty. So what
//! the broker confirmed to a sender waits in the queue through a lost
//! connection or a restart of the agent; durable mode adds a broker
//! restart.
//!
//! lapin's own connection recovery is not used: the bus replaces a lost
//! connection itself (see `link.rs`), and a channel error (such as
//! ACCESS_REFUSED while the broker still holds the old connection's
//! exclusive consumer) closes a channel for good. So a supervisor task per
//! unit watches its channel and rebuilds the unit (declare, bind, consume)
//! on a channel of the current connection with its own backoff; the unit's
//! consumer streams switch to the new consumers and only end when the unit
//! is closed or the bus is closed. (The paths for a channel that lapin is
//! still recovering are a guard, should its recovery be switched on.)
//!
//! (Longer than most files: a unit's life, from open through supervision
//! and rebuilds to close and the reaping of left-behind channels, is one
//! state machine over one `State`. Declaring queues is in
//! `consumer/declare.rs`, the consumer streams in `consumer/stream.rs`.)

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use futures_util::StreamExt;
use lapin::options::BasicCancelOptions;
use lapin::types::{FieldTable, ShortString};
use lapin::{Channel, ExchangeKind};
use tokio::sync::{watch, Notify};

use super::channels::{Channels, Seat};
use super::{is_reply_code, BACKOFF_MAX, BACKOFF_MIN, CHECK_INTERVAL, REAP_TIMEOUT, STUCK_GRACE};
use crate::bus::{Consumer, Source};
use crate::error::{Error, Result};

mod declare;
mod stream;

pub(super) use declare::{method_queue_spec, queue_spec};
use stream::StreamState;

/// AMQP reply code RESOURCE_LOCKED: an exclusive queue of another
/// connection (a munggoggo 0.4 agent's identity queue).
const RESOURCE_LOCKED: u16 = 405;
/// AMQP reply code ACCESS_REFUSED: on `basic.consume`, another connection's
/// exclusive consumer holds the queue.
const ACCESS_REFUSED: u16 = 403;
/// AMQP reply code PRECONDITION_FAILED: on `queue.declare`, the queue
/// exists with other arguments; on `queue.delete`, it is not empty or in use.
const PRECONDITION_FAILED: u16 = 406;

/// lapin consumers that must never be dropped. With recovery enabled, a
/// channel error leaves the channel's consumers "active"; dropping the last
/// handle of such a consumer makes lapin 4.12 cancel it on a channel that no
/// longer exists, and that error makes lapin reconnect the whole connection,
/// which deletes every agent's exclusive queues with the messages in them.
/// Such consumers are rare (one per queue and channel failure) and small.
static GRAVEYARD: Mutex<Vec<lapin::Consumer>> = Mutex::new(Vec::new());

/// Lets go of a consumer that was cancelled (by the unit, or by the
/// broker) or whose channel is gone. On an open channel, what it read ahead
/// and nobody took is requeued: the channel is shared and stays open, so
/// those deliveries would stay unacknowledged, and their messages out of
/// every consumer's reach, until it closes. On a closed channel the
/// consumer is kept in the [`GRAVEYARD`].
fn discard(consumer: lapin::Consumer, channel: &Channel) {
    if channel.status().connected() {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(requeue_rest(consumer));
        }
    } else {
        GRAVEYARD.lock().unwrap_or_else(|e| e.into_inner()).push(consumer);
    }
}

/// A queue of a unit: not exclusive, not auto-delete, durable in durable
/// mode, expiring after `x-expires` unused, consumed by one exclusive
/// consumer with manual acks under the queue's name as tag. With a maximum
/// length it refuses publishes past it (`x-overflow = reject-publish`): the
/// publisher gets a `basic.nack`.
pub(super) struct QueueSpec {
    pub(super) name: ShortString,
    /// The consumer tag (the queue's name for an agent's own queues).
    pub(super) tag: ShortString,
    /// Whether the consumer is exclusive (an agent's own queues), or
    /// shares the queue round-robin (0.4's method queues, a replicated
    /// agent's group queues).
    pub(super) exclusive_consumer: bool,
    /// Whether the replicas of a group share the queue: it is deleted
    /// only once nobody consumes it, whatever its own rule.
    pub(super) shared: bool,
    /// What an agent that stops does with the queue.
    pub(super) on_stop: Closing,
    pub(super) durable: bool,
    /// Whether the broker deletes the queue once its last consumer goes
    /// (a tool's queues).
    pub(super) auto_delete: bool,
    pub(super) source: Source,
    /// (exchange, binding key) pairs.
    pub(super) bindings: Vec<(&'static str, ShortString)>,
    /// `x-max-length` and `x-overflow`, if bounded.
    pub(super) arguments: FieldTable,
}

/// Which consumers a unit has, and whether it still exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Generation {
    Live(u64),
    Ended,
}

/// What a unit declares, binds and consumes.
pub(super) struct Spec {
    /// The consuming connection's channels (the connection is replaced
    /// when lost).
    pub(super) channels: Arc<Channels>,
    pub(super) identity: Arc<str>,
    /// Whether this is the agent's mailbox (identity and fanout queues).
    pub(super) mailbox: bool,
    pub(super) prefetch: u16,
    /// (name, kind, auto-delete) of the exchanges to declare.
    pub(super) exchanges: Vec<(&'static str, ExchangeKind, bool)>,
    pub(super) queues: Vec<QueueSpec>,
    /// The queues' `x-expires`, for messages.
    pub(super) expiry: Option<std::time::Duration>,
    /// How long a rebuild keeps meeting a queue held elsewhere before it
    /// counts as taken by another connection ([`super::AmqpOptions::identity_grace`]).
    pub(super) identity_grace: std::time::Duration,
}

/// One channel with its queues, bindings and consumers.
pub(super) struct Unit {
    spec: Spec,
    state: Mutex<State>,
    /// Serialises rebuilding and closing, so a rebuild never re-declares
    /// queues that a close deleted.
    topology: tokio::sync::Mutex<()>,
    generation: watch::Sender<Generation>,
    /// The newest generation in which a stream lost its consumer, plus one
    /// (0: none); a generation at or past it needs a rebuild.
    broken: AtomicU64,
    wake: Notify,
    closed: AtomicBool,
    /// Another connection took the unit's queues while it was reconnecting.
    taken: AtomicBool,
}

/// A step of building a unit that names a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Declare,
    Consume,
}

impl BuildError {
    /// Whether the queue is held by another connection: its exclusive
    /// consumer, or a munggoggo 0.4 agent's exclusive queue of that name.
    fn held_elsewhere(&self) -> bool {
        match self.queue {
            Some((_, Step::Consume)) => is_reply_code(&self.error, ACCESS_REFUSED),
            Some((_, Step::Declare)) => is_reply_code(&self.error, RESOURCE_LOCKED),
            None => false,
        }
    }
}

/// What closing a unit does with its queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Closing {
    /// The agent stops: queues with messages stay for its next start (until
    /// they expire); empty ones are deleted.
    KeepBacklog,
    /// A subscription ends: its queue is deleted with what it holds, as
    /// munggoggo 0.4 does when a pub/sub behaviour stops.
    Delete,
    /// An open failed: the queues it declared may be another process's
    /// (the holder of the identity consumes them) or hold messages for the
    /// identity, so only unconsumed ones go, and of those only the empty
    /// ones unless their own rule is [`Closing::Delete`]. Whatever a
    /// queue's own rule, one that another connection consumes is never
    /// deleted: that would cancel the holder's consumer.
    Abandon,
}

struct State {
    /// The shared channel the unit's consumers are on.
    channel: Arc<Channel>,
    /// The unit's place on it, until the unit closes.
    seat: Option<Seat>,
    generation: u64,
    /// Consumers of the latest rebuild that their streams have not taken yet.
    fresh: HashMap<ShortString, lapin::Consumer>,
    /// The unit's own handles on its current consumers: closing drains
    /// them (on a shared channel, what a consumer read ahead is not
    /// requeued by the channel's close but by the unit).
    live: Vec<lapin::Consumer>,
    /// Channels given up on while lapin was still recovering them: closed
    /// as soon as lapin brings them back, so their stale consumers go away.
    zombies: Vec<Arc<Channel>>,
}

/// Why building a unit's channel failed.
struct BuildError {
    error: lapin::Error,
    /// The queue whose declaration or consumer failed, if that was the step.
    queue: Option<(ShortString, Step)>,
    /// The queues declared before the failure.
    declared: Vec<ShortString>,
    channel: Option<Channel>,
}

impl Unit {
    /// Declares the unit's topology on a new channel and starts consuming:
    /// the unit and one consumer stream per queue, in the order given.
    pub(super) async fn open(mut spec: Spec) -> Result<(Arc<Unit>, Vec<Consumer>)> {
        spec.prefetch = spec.prefetch.max(1);
        let (seat, mut consumers) = match spec.build_within().await {
            Ok(built) => built,
            Err(failure) => return Err(spec.fail_open(failure).await),
        };
        let (generation, _) = watch::channel(Generation::Live(0));
        let unit = Arc::new(Unit {
            spec,
            state: Mutex::new(State {
                channel: Arc::clone(seat.channel()),
                seat: Some(seat),
                generation: 0,
                fresh: HashMap::new(),
                live: consumers.values().cloned().collect(),
                zombies: Vec::new(),
            }),
            topology: tokio::sync::Mutex::new(()),
            generation,
            broken: AtomicU64::new(0),
            wake: Notify::new(),
            closed: AtomicBool::new(false),
            taken: AtomicBool::new(false),
        });
        let streams = unit
            .spec
            .queues
            .iter()
            .map(|q| unit.stream(q, consumers.remove(&q.name)))
            .collect();
        tokio::spawn(Arc::clone(&unit).supervise());
        Ok((unit, streams))
    }

    /// Whether another connection took the unit's queues while it was
    /// reconnecting (its streams then ended).
    pub(super) fn is_taken(&self) -> bool {
        self.taken.load(Ordering::SeqCst)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn channel(&self) -> Arc<Channel> {
        Arc::clone(&self.state().channel)
    }

    /// The consumer stream of one queue: follows the unit's rebuilds and
    /// ends when the unit is closed or the connection is gone.
    fn stream(self: &Arc<Self>, queue: &QueueSpec, consumer: Option<lapin::Consumer>) -> Consumer {
        let state = StreamState {
            unit: Arc::clone(self),
            queue: queue.name.clone(),
            tag: queue.tag.as_str().into(),
            source: queue.source.clone(),
            consumer,
            channel: self.channel(),
            generation: 0,
            updates: self.generation.subscribe(),
        };
        futures_util::stream::unfold(state, |mut s| async move {
            let delivery = s.next().await?;
            Some((delivery, s))
        })
        .boxed()
    }

    /// Marks generation `generation` broken and wakes the supervisor.
    fn report_broken(&self, generation: u64) {
        self.broken.fetch_max(generation + 1, Ordering::SeqCst);
        self.wake.notify_one();
    }

    /// Watches the channel; rebuilds it when it died, when lapin's recovery
    /// left it behind, or when a stream lost its consumer.
    async fn supervise(self: Arc<Self>) {
        let mut stuck_since: Option<Instant> = None;
        loop {
            tokio::select! {
                () = tokio::time::sleep(CHECK_INTERVAL) => {}
                () = self.wake.notified() => {}
            }
            if self.closed.load(Ordering::SeqCst) {
                return;
            }
            self.bury_zombies().await;
            if self.spec.link().is_closed() {
                self.connection_gone();
                return;
            }
            let current = self.spec.link().current();
            let conn = current.status();
            let (channel, generation) = {
                let state = self.state();
                (Arc::clone(&state.channel), state.generation)
            };
            let status = channel.status();
            tracing::trace!(
                agent = %self.spec.identity,
                queues = %self.spec.queue_names(),
                connection = ?conn,
                channel = channel.id(),
                channel_status = ?status,
                generation,
                "supervisor check"
            );
            let broken = self.broken.load(Ordering::SeqCst) > generation;
            // A channel of a lost connection is dead too: the link brings
            // a new connection, and the rebuild waits for it.
            let dead = !status.connected() && !status.reconnecting();
            let stuck = if status.reconnecting() && conn.connected() {
                stuck_since.get_or_insert_with(Instant::now).elapsed() >= STUCK_GRACE
            } else {
                stuck_since = None;
                false
            };
            if !(broken || dead || stuck) {
                continue;
            }
            tracing::warn!(
                agent = %self.spec.identity,
                queues = %self.spec.queue_names(),
                reason = if stuck { "lapin's recovery left the channel behind" } else if dead { "the channel closed" } else { "a consumer was cancelled" },
                "rebuilding the agent's channel"
            );
            self.rebuild().await;
            stuck_since = None;
        }
    }

    async fn rebuild(&self) {
        let mut delay = BACKOFF_MIN;
        let mut attempt = 0u32;
        let mut locked_since: Option<Instant> = None;
        loop {
            if !self.spec.link().is_closed() && !self.spec.link().current().status().connected() {
                // The link reconnects; the rebuild starts the moment it has
                // a connection, without a backoff grown while the broker
                // was away.
                self.spec.link().connected().await;
                delay = BACKOFF_MIN;
            }
            {
                let _topology = self.topology.lock().await;
                if self.closed.load(Ordering::SeqCst) {
                    return;
                }
                if self.spec.link().is_closed() {
                    self.connection_gone();
                    return;
                }
                if self.spec.link().current().status().connected() {
                    self.retire_channel().await;
                    // Its consumers are cancelled (or gone with the channel):
                    // their tags are free for the new seat, on any channel.
                    drop(self.state().seat.take());
                    attempt += 1;
                    match self.spec.build_within().await {
                        Ok((seat, consumers)) => {
                            let generation = {
                                let mut state = self.state();
                                let old = std::mem::replace(&mut state.channel, Arc::clone(seat.channel()));
                                state.seat = Some(seat);
                                let live = consumers.values().cloned().collect();
                                for consumer in std::mem::replace(&mut state.live, live) {
                                    discard(consumer, &old);
                                }
                                for (_, consumer) in std::mem::replace(&mut state.fresh, consumers) {
                                    discard(consumer, &old);
                                }
                                state.generation += 1;
                                state.generation
                            };
                            self.generation.send_replace(Generation::Live(generation));
                            tracing::info!(agent = %self.spec.identity, queues = %self.spec.queue_names(), attempt, "channel rebuilt");
                            return;
                        }
                        Err(failure) => {
                            let locked = failure.held_elsewhere();
                            if !locked {
                                locked_since = None;
                            } else if locked_since.get_or_insert_with(Instant::now).elapsed()
                                >= self.spec.identity_grace
                            {
                                // Longer than the broker keeps a dead connection's
                                // consumers: another connection holds the queues.
                                // (The agent logs the error as it stops.)
                                tracing::warn!(
                                    agent = %self.spec.identity,
                                    queues = %self.spec.queue_names(),
                                    "another connection took these queues while the agent was reconnecting; they are given up rather than claim the identity twice"
                                );
                                self.taken.store(true, Ordering::SeqCst);
                                if let Some(channel) = failure.channel {
                                    close_quietly(&channel, &self.spec.identity).await;
                                }
                                self.generation.send_replace(Generation::Ended);
                                return;
                            }
                            tracing::warn!(
                                agent = %self.spec.identity,
                                queue = failure.queue.as_ref().map(|(q, _)| q.as_str()),
                                error = %failure.error,
                                attempt,
                                "cannot rebuild the channel yet; retrying"
                            );
                            if let Some(channel) = failure.channel {
                                close_quietly(&channel, &self.spec.identity).await;
                            }
                        }
                    }
                }
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(BACKOFF_MAX);
        }
    }

    /// Cancels the unit's consumers on its current channel if it is open
    /// (a shared channel, which stays); remembers it as a zombie if lapin
    /// is still recovering it.
    async fn retire_channel(&self) {
        let channel = self.channel();
        let status = channel.status();
        if status.connected() {
            self.cancel_on(&channel).await;
        } else if status.reconnecting() {
            self.state().zombies.push(channel);
        }
    }

    async fn bury_zombies(&self) {
        let zombies = std::mem::take(&mut self.state().zombies);
        let mut keep = Vec::new();
        for zombie in zombies {
            let status = zombie.status();
            if status.connected() {
                tracing::debug!(agent = %self.spec.identity, "cancelling consumers on a channel lapin recovered after it was replaced");
                self.cancel_on(&zombie).await;
            } else if status.reconnecting() {
                keep.push(zombie);
            }
        }
        self.state().zombies.extend(keep);
    }

    /// Ends the streams: the bus was closed.
    fn connection_gone(&self) {
        tracing::debug!(
            agent = %self.spec.identity,
            queues = %self.spec.queue_names(),
            "the consuming connection was closed"
        );
        self.generation.send_replace(Generation::Ended);
    }

    /// Cancels the consumers and closes the channel (the broker requeues
    /// what was delivered and not acknowledged), then deletes the queues as
    /// `closing` says; the unit's streams end. Queues lapin may still
    /// re-create (a channel it is recovering) are dealt with in the
    /// background once it has.
    pub(super) async fn close(self: &Arc<Self>, closing: Closing) -> Result<()> {
        if self.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        self.wake.notify_one();
        let _topology = self.topology.lock().await;
        let names: Vec<ShortString> = self.spec.queues.iter().map(|q| q.name.clone()).collect();
        let channel = self.channel();
        let mut pending: Vec<Arc<Channel>> = std::mem::take(&mut self.state().zombies);
        let status = channel.status();
        let mut result = Ok(());
        if status.connected() {
            self.cancel_on(&channel).await;
            // What the consumers read ahead goes back to the queues before
            // they are looked at: a queue is empty only without it.
            let live = std::mem::take(&mut self.state().live);
            for consumer in live {
                requeue_rest(consumer).await;
            }
            self.spec.delete_queues(&names, closing).await;
        } else if status.reconnecting() {
            pending.push(channel);
        } else if self.spec.link().current().status().connected() {
            // A channel-level error closed it.
            self.spec.delete_queues(&names, closing).await;
        } else {
            result = Err(Error::connection_lost(format!(
                "cannot delete queues {} of agent `{}`: the connection is down (they expire unused{})",
                self.spec.queue_names(),
                self.spec.identity,
                match self.spec.expiry {
                    Some(after) => format!(" after {}", humantime::format_duration(after)),
                    None => " never: delete them with `rabbitmqctl delete_queue`".to_owned(),
                }
            )));
        }
        self.generation.send_replace(Generation::Ended);
        // The unit's place on its channel is free for another.
        drop(self.state().seat.take());
        self.spec.channels.tidy().await;
        if !pending.is_empty() {
            tokio::spawn(Arc::clone(self).reap(pending, names, closing));
        }
        tracing::debug!(agent = %self.spec.identity, queues = %self.spec.queue_names(), "queues closed");
        result
    }

    /// Waits (bounded) for channels lapin is still recovering, closes them
    /// and deletes the queues they re-declare as `closing` says.
    async fn reap(
        self: Arc<Self>,
        mut channels: Vec<Arc<Channel>>,
        names: Vec<ShortString>,
        closing: Closing,
    ) {
        let deadline = Instant::now() + REAP_TIMEOUT;
        while !channels.is_empty() && Instant::now() < deadline {
            tokio::time::sleep(CHECK_INTERVAL).await;
            let mut keep = Vec::new();
            for channel in channels {
                let status = channel.status();
                if status.connected() {
                    self.cancel_on(&channel).await;
                    self.spec.delete_queues(&names, closing).await;
                } else if status.reconnecting() {
                    keep.push(channel);
                }
            }
            channels = keep;
            if self.spec.link().is_closed() {
                return;
            }
        }
        if !channels.is_empty() {
            tracing::warn!(agent = %self.spec.identity, queues = %self.spec.queue_names(), "gave up waiting to delete these queues; they expire unused");
        }
    }
}

impl Drop for Unit {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        for (_, consumer) in state.fresh.drain() {
            discard(consumer, &state.channel);
        }
        for consumer in state.live.drain(..) {
            discard(consumer, &state.channel);
        }
    }
}

impl Unit {
    /// Cancels the unit's consumers on `channel` (a shared channel: the
    /// other units' consumers stay).
    async fn cancel_on(&self, channel: &Channel) {
        for queue in &self.spec.queues {
            let cancel = channel.basic_cancel(queue.tag.clone(), BasicCancelOptions::default());
            match tokio::time::timeout(super::channels::OPEN_TIMEOUT, cancel).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::debug!(agent = %self.spec.identity, queue = %queue.name, error = %e, "cancelling the consumer failed")
                }
                Err(_) => {
                    tracing::debug!(agent = %self.spec.identity, queue = %queue.name, "the broker did not answer the consumer's cancel")
                }
            }
        }
    }
}

/// How long draining a cancelled consumer waits for its next delivery or
/// its end: lapin hands what it buffered at once, so this only bounds a
/// drain whose end marker the consumer's stream took.
const DRAIN_WAIT: std::time::Duration = std::time::Duration::from_millis(250);

/// Requeues what a cancelled consumer had read ahead, until its end.
async fn requeue_rest(mut consumer: lapin::Consumer) {
    let mut requeued = 0usize;
    while let Ok(Some(item)) = tokio::time::timeout(DRAIN_WAIT, consumer.next()).await {
        match item {
            Ok(delivery) => {
                if super::release(super::AmqpAcker::new(delivery.acker))
                    .await
                    .is_ok()
                {
                    requeued += 1;
                }
            }
            Err(_) => break,
        }
    }
    if requeued > 0 {
        tracing::debug!(queue = %consumer.queue(), requeued, "read-ahead deliveries of a cancelled consumer requeued");
    }
}

async fn close_quietly(channel: &Channel, identity: &str) {
    if channel.status().connected() {
        if let Err(e) = channel.close(200, "OK".into()).await {
            tracing::debug!(agent = %identity, error = %e, "closing a channel failed");
        }
    }
}
