//! Channels shared by the agents of a process, on the consuming connection.
//!
//! A connection allows a bounded number of channels (RabbitMQ's default
//! `channel_max` is 2047), so a channel per consumer would cap a process
//! near a thousand agents. Here the consumers of many agents share a
//! channel ([`Channels::seat`]: up to [`AmqpOptions::consumers_per_channel`]
//! units each), and the operations the broker may refuse with a channel
//! error (declaring, binding, deleting, looking at a queue) run on setup
//! channels of their own ([`Channels::setup`]), one user at a time, so that
//! a refusal never closes a channel that other agents consume on.
//!
//! Sharing keeps what a channel per agent gave:
//! - Prefetch is per consumer (`basic.qos` with `global = false`, set just
//!   before each `basic.consume` under the channel's consume lock), so each
//!   queue of each agent has its own read-ahead, the control lane apart.
//! - A slow agent stalls nobody: lapin hands each consumer's deliveries to
//!   that consumer's own buffer, which its agent drains at its own pace;
//!   the broker stops at the consumer's prefetch, not the channel's.
//! - Acks travel on the delivery's channel, after the handler, as before.
//! - A channel the broker closes takes its consumers with it; each unit on
//!   it sees its channel dead and rebuilds on another (the unacked
//!   deliveries return to their queues). The one channel-level refusal left
//!   on a shared channel is `basic.consume` meeting another connection's
//!   exclusive consumer, which a look at the queue just before rules out
//!   except for a claimant racing in between (see `consumer/declare.rs`).
//!
//! [`AmqpOptions::consumers_per_channel`]: super::AmqpOptions::consumers_per_channel

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use lapin::options::{BasicConsumeOptions, BasicQosOptions};
use lapin::types::{FieldTable, ShortString};
use lapin::{Channel, Connection, ErrorKind};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::link::Link;

/// Setup channels open at once, at most: they bound how many agents
/// declare or delete queues at the same time.
pub(super) const SETUP_CHANNELS: usize = 16;
/// Channels kept free of shared consumers below the connection's
/// `channel_max`: the setup channels and a few for leases and the
/// dead-letter queue.
const RESERVED: usize = SETUP_CHANNELS + 8;

/// The channels of the consuming connection.
pub(super) struct Channels {
    link: Arc<Link>,
    /// How many consumer units share a channel.
    share: usize,
    shared: tokio::sync::Mutex<Vec<Shared>>,
    /// Setup channels not in use, with their connection.
    idle: Mutex<Vec<(Arc<Connection>, Channel)>>,
    setup_places: Arc<Semaphore>,
}

/// A channel shared by consumer units.
struct Shared {
    /// The connection it is on: a channel of a connection the link has
    /// replaced is never handed out, whatever lapin says of its state.
    conn: Arc<Connection>,
    channel: Arc<Channel>,
    users: Arc<AtomicUsize>,
    /// The consumer tags of its units: a tag used twice on a channel is a
    /// connection error (NOT_ALLOWED), so units whose tags would clash
    /// (an exposed method's `<agent>.<method>` and a queue of that name)
    /// sit on different channels.
    tags: Arc<Mutex<HashSet<ShortString>>>,
    /// Held from `basic.qos` to `basic.consume`; holds the prefetch last set.
    consume: Arc<tokio::sync::Mutex<Option<u16>>>,
}

impl Shared {
    fn seat(&self, tags: &[ShortString]) -> Seat {
        self.users.fetch_add(1, Ordering::SeqCst);
        lock(&self.tags).extend(tags.iter().cloned());
        Seat {
            channel: Arc::clone(&self.channel),
            users: Arc::clone(&self.users),
            tags: Arc::clone(&self.tags),
            mine: tags.to_vec(),
            consume: Arc::clone(&self.consume),
        }
    }

    fn users(&self) -> usize {
        self.users.load(Ordering::SeqCst)
    }

    fn takes(&self, tags: &[ShortString]) -> bool {
        let taken = lock(&self.tags);
        tags.iter().all(|tag| !taken.contains(tag))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// A unit's place on a shared channel, with its consumer tags: its
/// consumers live there. Drop it only once they are cancelled (or the
/// channel is gone): its tags are free again then.
pub(super) struct Seat {
    channel: Arc<Channel>,
    users: Arc<AtomicUsize>,
    tags: Arc<Mutex<HashSet<ShortString>>>,
    mine: Vec<ShortString>,
    consume: Arc<tokio::sync::Mutex<Option<u16>>>,
}

impl Drop for Seat {
    fn drop(&mut self) {
        let mut tags = lock(&self.tags);
        for tag in &self.mine {
            tags.remove(tag);
        }
        self.users.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Seat {
    pub(super) fn channel(&self) -> &Arc<Channel> {
        &self.channel
    }

    /// Starts a consumer with its own prefetch.
    pub(super) async fn consume(
        &self,
        queue: ShortString,
        tag: ShortString,
        exclusive: bool,
        prefetch: u16,
    ) -> lapin::Result<lapin::Consumer> {
        let mut set = self.consume.lock().await;
        if *set != Some(prefetch) {
            self.channel
                .basic_qos(prefetch, BasicQosOptions { global: false })
                .await?;
            *set = Some(prefetch);
        }
        self.channel
            .basic_consume(
                queue,
                tag,
                BasicConsumeOptions {
                    exclusive,
                    ..BasicConsumeOptions::default()
                },
                FieldTable::default(),
            )
            .await
    }
}

/// A setup channel, for one user at a time; back to the idle ones by
/// [`Setup::done`] once its operations succeeded, else dropped.
pub(super) struct Setup<'a> {
    conn: Arc<Connection>,
    channel: Option<Channel>,
    channels: &'a Channels,
    _place: OwnedSemaphorePermit,
}

impl std::ops::Deref for Setup<'_> {
    type Target = Channel;
    fn deref(&self) -> &Channel {
        self.channel.as_ref().expect("a setup channel until dropped")
    }
}

impl Setup<'_> {
    /// Gives the channel up (it failed: the broker closes it).
    pub(super) fn into_inner(mut self) -> Channel {
        self.channel.take().expect("a setup channel until dropped")
    }

    /// Puts the channel back for the next user: its operations succeeded.
    /// (A setup dropped without it, as when an operation timed out, goes
    /// with its channel.)
    pub(super) fn done(mut self) {
        if let Some(channel) = self.channel.take() {
            if channel.status().connected() {
                self.channels.idle().push((Arc::clone(&self.conn), channel));
            }
        }
    }
}

impl Channels {
    pub(super) fn new(link: Arc<Link>, share: usize) -> Channels {
        Channels {
            link,
            share: share.max(1),
            shared: tokio::sync::Mutex::new(Vec::new()),
            idle: Mutex::new(Vec::new()),
            setup_places: Arc::new(Semaphore::new(SETUP_CHANNELS)),
        }
    }

    pub(super) fn link(&self) -> &Arc<Link> {
        &self.link
    }

    fn idle(&self) -> MutexGuard<'_, Vec<(Arc<Connection>, Channel)>> {
        lock(&self.idle)
    }

    /// Whether `channel` of `conn` may be used: open, on the link's
    /// current connection.
    fn usable(&self, conn: &Arc<Connection>, channel: &Channel) -> bool {
        Arc::ptr_eq(conn, &self.link.current()) && conn.status().connected() && channel.status().connected()
    }

    /// A place for consumers tagged `tags` on a shared channel of the
    /// current connection: the first open one with room (and none of the
    /// tags), else a new one, else (at the connection's channel limit) the
    /// least used.
    pub(super) async fn seat(&self, tags: &[ShortString]) -> lapin::Result<Seat> {
        let mut shared = self.shared.lock().await;
        // Channels of a lost connection, or closed by the broker, go:
        // their units are rebuilding elsewhere.
        shared.retain(|s| self.usable(&s.conn, &s.channel));
        if let Some(room) = shared.iter().find(|s| s.users() < self.share && s.takes(tags)) {
            return Ok(room.seat(tags));
        }
        let conn = self.link.current();
        let limit = usize::from(conn.configuration().channel_max());
        // 0: no limit announced.
        let full = limit != 0 && shared.len() + RESERVED >= limit;
        let opened = if full {
            Err(ErrorKind::ChannelsLimitReached.into())
        } else {
            open(&conn).await
        };
        match opened {
            Ok(channel) => {
                let fresh = Shared {
                    conn,
                    channel: Arc::new(channel),
                    users: Arc::new(AtomicUsize::new(0)),
                    tags: Arc::default(),
                    consume: Arc::new(tokio::sync::Mutex::new(None)),
                };
                let seat = fresh.seat(tags);
                shared.push(fresh);
                Ok(seat)
            }
            Err(e) => match shared.iter().filter(|s| s.takes(tags)).min_by_key(|s| s.users()) {
                Some(least) if matches!(e.kind(), ErrorKind::ChannelsLimitReached) => {
                    tracing::debug!(
                        channels = shared.len(),
                        limit,
                        "at the connection's channel limit; channels take more consumers"
                    );
                    Ok(least.seat(tags))
                }
                _ => Err(e),
            },
        }
    }

    /// A setup channel: an idle one, or a new one once fewer than
    /// [`SETUP_CHANNELS`] are in use (waiting for a place meanwhile).
    pub(super) async fn setup(&self) -> lapin::Result<Setup<'_>> {
        let place = Arc::clone(&self.setup_places)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        loop {
            let Some((conn, channel)) = self.idle().pop() else {
                break;
            };
            if self.usable(&conn, &channel) {
                return Ok(Setup {
                    conn,
                    channel: Some(channel),
                    channels: self,
                    _place: place,
                });
            }
        }
        let conn = self.link.current();
        let channel = open(&conn).await?;
        Ok(Setup {
            conn,
            channel: Some(channel),
            channels: self,
            _place: place,
        })
    }

    /// Closes shared channels nobody uses any more, but one (many agents
    /// that stopped together leave many).
    pub(super) async fn tidy(&self) {
        let mut shared = self.shared.lock().await;
        let mut spare = false;
        let mut unused = Vec::new();
        shared.retain(|s| {
            if s.users() > 0 || !self.usable(&s.conn, &s.channel) {
                return true;
            }
            if !spare {
                spare = true;
                return true;
            }
            unused.push(Arc::clone(&s.channel));
            false
        });
        drop(shared);
        for channel in unused {
            if let Err(e) = channel.close(200, "OK".into()).await {
                tracing::debug!(error = %e, "closing an unused shared channel failed");
            }
        }
    }
}

/// How long opening a channel may take. lapin 4.12 can leave a request on
/// a connection that died unanswered for good (its recovery is off, see
/// `link.rs`); a pool waiting on it would hold every other unit back.
/// (The fix upstream: fail pending requests when their connection is
/// gone.)
pub(super) const OPEN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Opens a channel within [`OPEN_TIMEOUT`].
async fn open(conn: &Connection) -> lapin::Result<Channel> {
    match tokio::time::timeout(OPEN_TIMEOUT, conn.create_channel()).await {
        Ok(opened) => opened,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("the broker did not open a channel within {OPEN_TIMEOUT:?}"),
        )
        .into()),
    }
}
