//! The embedded, in-process bus: RabbitMQ's semantics without a broker.
//!
//! Each queue is a FIFO owned by one consumer; direct sends go to the queue
//! named by the identity, broadcasts to every fanout queue, topic
//! publications to every queue with a matching binding key (matched as
//! RabbitMQ matches them). Sends never wait for a receiver: a queue grows
//! until its maximum length (see [`crate::agent::DEFAULT_MAX_QUEUE`]),
//! past which a direct send fails with [`Error::QueueFull`] naming it (a
//! broadcast or publication skips that queue with a warning).
//!
//! A queue is a FIFO under a short lock with its consumer's waker, in one
//! allocation shared by the bus, the consumer and the slots of its
//! deliveries (`Queue`). The queues of a replicated agent's group (its
//! identity and control queues, its once-per-group subscriptions) are
//! shared: each replica's consumer takes one message at a time, so that
//! the replicas' own limits (prefetch and read-ahead) share the work out
//! fairly, and a replica that leaves leaves the rest to the others.
//! Leases ([`Endpoint::lease`]) are handed out in the order asked.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;
use futures_util::{Stream, StreamExt};

use super::{
    control_queue, topic_matches, Acker, Bus, Confirm, Consumer, Delivery, Endpoint, EndpointOptions, Lease,
    Outgoing, Route, Source,
};
use crate::error::{Error, Result};
use crate::future::BoxFuture;
use crate::message::{DeliveryInfo, Properties, Received, SmolStr};
use bytes::Bytes;

/// The embedded bus. Cloning it gives another handle to the same bus.
#[derive(Clone, Default)]
pub struct MemoryBus {
    topology: Arc<RwLock<Topology>>,
    /// Publications that reach nobody, looked at for a subscription that
    /// misses them by `*` vs `#`.
    near_misses: Arc<super::topic::NearMisses>,
    /// The leases asked for, by name.
    leases: Arc<Mutex<foldhash::HashMap<String, LeaseLine>>>,
}

/// Who holds a lease and who waits for it, in the order they asked.
#[derive(Default)]
struct LeaseLine {
    next_id: u64,
    line: VecDeque<(u64, tokio::sync::watch::Sender<bool>)>,
}

/// Gives up a place in a lease's line when dropped (the holder's place
/// passes the lease on to the next in line).
struct LeavesLine {
    leases: Arc<Mutex<foldhash::HashMap<String, LeaseLine>>>,
    name: String,
    id: u64,
}

impl Drop for LeavesLine {
    fn drop(&mut self) {
        let mut leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        let Some(line) = leases.get_mut(&self.name) else {
            return;
        };
        line.line.retain(|(id, _)| *id != self.id);
        match line.line.front() {
            Some((_, first)) => {
                first.send_replace(true);
            }
            None => {
                leases.remove(&self.name);
            }
        }
    }
}

impl std::fmt::Debug for MemoryBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemoryBus")
    }
}

#[derive(Default)]
struct Topology {
    /// Looked up on every send, so hashed with foldhash rather than SipHash
    /// (queue names come from the process itself, not from the network).
    queues: foldhash::HashMap<SmolStr, Arc<Queue>>,
    fanout: Vec<Arc<Queue>>,
    topic: Vec<(String, Arc<Queue>)>,
}

impl Drop for Topology {
    /// The bus is gone: every consumer ends once it took the rest.
    fn drop(&mut self) {
        for queue in self.queues.values() {
            queue.delete();
        }
    }
}

/// One queue, shared by the bus (which pushes), its consumer (which pops)
/// and the slots of its deliveries (which count them): one allocation, so
/// that ten thousand idle agents cost little; its FIFO allocates nothing
/// until its first message and nothing per message.
///
/// Senders and the consumer run on different threads at once, so what
/// each side writes per message lies apart, without padding (which would
/// cost every agent a kilobyte): the consumer takes the whole FIFO once
/// per batch, and writes per message only at the start of the allocation
/// (the reference count of the slots and `released`); the senders' fields
/// begin more than a cache line after it (`repr(C)` keeps this order).
#[repr(C)]
struct Queue {
    /// Messages acknowledged, rejected or dropped (see [`Slot`]): `pushed -
    /// released` are queued or in the consumer's hands.
    released: AtomicUsize,
    name: SmolStr,
    source: Source,
    max_len: Option<usize>,
    /// The consumers of a shared queue (a replicated agent's group): each
    /// takes one message at a time. `None`: the queue has one consumer.
    shared: Option<Box<Mutex<Members>>>,
    /// The queue was deleted: the consumer ends once it took the rest.
    deleted: AtomicBool,
    /// The consumer is gone: nothing can be delivered any more.
    abandoned: AtomicBool,
    /// Whether `items` holds anything: read without the lock, so that a
    /// look at an empty queue (most looks, for an agent's idle queues)
    /// costs one load.
    queued: AtomicBool,
    /// Messages ever pushed (written under the lock of `items`).
    pushed: AtomicUsize,
    /// What the senders published; the consumer makes the deliveries (see
    /// [`Receiver::pop`]), so that a sender in a loop does not do the
    /// receiver's share of the work.
    items: Mutex<VecDeque<Queued>>,
    waker: AtomicWaker,
}

/// The consumers of a shared queue.
#[derive(Default)]
struct Members {
    next_id: u64,
    /// (id, waker, left): a consumer that left ends at its next look.
    consumers: Vec<(u64, Option<std::task::Waker>, bool)>,
}

/// A message in a queue.
struct Queued {
    route: Route,
    properties: QueuedProperties,
    body: Bytes,
}

/// The properties of a queued message.
///
/// A message for one queue holds its own copy rather than the sender's
/// `Arc`: the consumer puts it in an `Arc` of its own, which its delivery
/// and trace share and which it frees itself. Freeing on one thread what
/// another allocated takes a lock of the allocator's that the allocating
/// thread keeps taking too (glibc's arenas): an agent receiving from
/// another spent a sixth of its time waiting on it. The copy is cheap (the
/// strings munggoggo puts there are inline or shared). A message for many
/// queues shares the sender's `Arc` among them: one allocation for all,
/// freed by whichever consumer is last.
#[allow(clippy::large_enum_variant)] // boxing the copy would allocate on the sender's thread again
enum QueuedProperties {
    Own(Properties),
    Shared(Arc<Properties>),
}

impl Queued {
    fn new(msg: &Outgoing, shared: bool) -> Self {
        let properties = if shared {
            QueuedProperties::Shared(Arc::clone(&msg.properties))
        } else {
            QueuedProperties::Own(Properties::clone(&msg.properties))
        };
        Queued {
            route: msg.route.clone(),
            properties,
            body: msg.body.clone(),
        }
    }

    /// The properties, in an `Arc` made on the consumer's thread unless shared.
    fn properties(properties: QueuedProperties) -> Arc<Properties> {
        match properties {
            QueuedProperties::Own(properties) => Arc::new(properties),
            QueuedProperties::Shared(properties) => properties,
        }
    }
}

/// The room of a queue's first buffer (`VecDeque`'s first allocation):
/// a drained buffer no larger is freed rather than kept (see
/// [`Receiver::pop`]).
const SMALL_BATCH: usize = 4;

/// The consumer of one queue: a stream of its deliveries.
struct Receiver {
    queue: Arc<Queue>,
    /// The batch taken from the queue, oldest first: the consumer takes
    /// all the queue holds under one lock, and gives the emptied buffer
    /// back in exchange (so neither side allocates in steady traffic).
    batch: VecDeque<Queued>,
    /// The delivery tag of the next delivery.
    next_tag: u64,
    /// Its id among a shared queue's consumers.
    member: Option<u64>,
}

impl Stream for Receiver {
    type Item = Delivery;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Delivery>> {
        // Take part in tokio's cooperative budget, as its channels do, so
        // that a busy queue cannot starve the consumer's other work.
        let coop = std::task::ready!(tokio::task::coop::poll_proceed(cx));
        let this = self.get_mut();
        if let Some(id) = this.member {
            return this.poll_shared(id, cx).map(|delivery| {
                if delivery.is_some() {
                    coop.made_progress();
                }
                delivery
            });
        }
        if let Some(delivery) = this.pop() {
            coop.made_progress();
            return Poll::Ready(Some(delivery));
        }
        this.queue.waker.register(cx.waker());
        // A delivery pushed between the first look and the registration.
        if let Some(delivery) = this.pop() {
            coop.made_progress();
            return Poll::Ready(Some(delivery));
        }
        if this.queue.deleted.load(Ordering::Acquire) {
            // Deleted after the last push: take what it still held.
            return Poll::Ready(this.pop());
        }
        Poll::Pending
    }
}

impl Receiver {
    /// The next message of a shared queue, one at a time; `None` once this
    /// consumer left or the queue was deleted and is empty.
    fn poll_shared(&mut self, id: u64, cx: &mut Context<'_>) -> Poll<Option<Delivery>> {
        let queue = Arc::clone(&self.queue);
        let members = queue.shared.as_ref().expect("a member consumes a shared queue");
        {
            let mut members = members.lock().unwrap_or_else(|e| e.into_inner());
            let Some(me) = members.consumers.iter_mut().find(|(i, _, _)| *i == id) else {
                return Poll::Ready(None);
            };
            if me.2 {
                return Poll::Ready(None);
            }
            // Registered before the look, under the lock senders wake under.
            me.1 = Some(cx.waker().clone());
        }
        let queued = {
            let mut items = queue.items();
            let queued = items.pop_front();
            if items.is_empty() {
                queue.queued.store(false, Ordering::Relaxed);
            }
            queued
        };
        match queued {
            Some(queued) => Poll::Ready(Some(self.delivery(queued))),
            None if queue.deleted.load(Ordering::Acquire) => Poll::Ready(None),
            None => Poll::Pending,
        }
    }

    /// The delivery of a message taken from the queue.
    fn delivery(&mut self, queued: Queued) -> Delivery {
        let queue = &self.queue;
        let delivery = DeliveryInfo {
            exchange: SmolStr::new_static(queued.route.exchange()),
            routing_key: queued.route.key(),
            redelivered: false,
            consumer_tag: queue.name.clone(),
            delivery_tag: self.next_tag,
        };
        self.next_tag += 1;
        Delivery {
            received: Arc::new(Received::new(
                Queued::properties(queued.properties),
                delivery,
                queued.body,
            )),
            source: queue.source.clone(),
            acker: Acker::Memory(Slot(Arc::clone(queue))),
        }
    }

    /// The oldest message as a delivery. A drained batch's buffer goes
    /// back to the queue for the next batch, so that steady traffic
    /// allocates nothing per message, unless it is a fanout queue's or as
    /// small as a first allocation ([`SMALL_BATCH`]): broadcasts are rare
    /// (a peer's ping, an announcement), and so are the messages of a
    /// queue that never had more than a few waiting; ten thousand agents
    /// keeping the room of their last few would cost megabytes.
    fn pop(&mut self) -> Option<Delivery> {
        let queue = &self.queue;
        if self.batch.is_empty() {
            if !queue.queued.load(Ordering::Acquire) {
                return None;
            }
            let mut items = queue.items();
            std::mem::swap(&mut *items, &mut self.batch);
            queue.queued.store(false, Ordering::Relaxed);
        }
        let queued = self.batch.pop_front()?;
        let room = self.batch.capacity();
        if self.batch.is_empty() && room > 0 && (room <= SMALL_BATCH || queue.source == Source::Fanout) {
            self.batch = VecDeque::new();
        }
        Some(self.delivery(queued))
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let queue = &self.queue;
        if let (Some(id), Some(members)) = (self.member, &queue.shared) {
            let mut members = members.lock().unwrap_or_else(|e| e.into_inner());
            members.consumers.retain(|(i, _, _)| *i != id);
            if !members.consumers.is_empty() {
                // What is queued is the others' now.
                for (_, waker, _) in &mut members.consumers {
                    if let Some(waker) = waker.take() {
                        waker.wake();
                    }
                }
                return;
            }
        }
        queue.abandoned.store(true, Ordering::Release);
        // Dropped outside the lock, each freeing its place.
        let mut left = std::mem::take(&mut *queue.items());
        queue.queued.store(false, Ordering::Relaxed);
        left.append(&mut self.batch);
        queue.released.fetch_add(left.len(), Ordering::Relaxed);
        drop(left);
    }
}

impl Queue {
    #[cfg(test)]
    fn new(name: SmolStr, source: Source, max_len: Option<usize>) -> (Arc<Queue>, Consumer) {
        Queue::with(name, source, max_len, false)
    }

    /// A queue, `shared` by the replicas of a group or not, with its first
    /// consumer.
    fn with(name: SmolStr, source: Source, max_len: Option<usize>, shared: bool) -> (Arc<Queue>, Consumer) {
        let queue = Arc::new(Queue {
            released: AtomicUsize::new(0),
            name,
            source,
            max_len,
            shared: shared.then(Box::default),
            items: Mutex::default(),
            queued: AtomicBool::new(false),
            pushed: AtomicUsize::new(0),
            waker: AtomicWaker::new(),
            deleted: AtomicBool::new(false),
            abandoned: AtomicBool::new(false),
        });
        let consumer = queue.consumer();
        (queue, consumer)
    }

    /// A new consumer: the queue's only one, or another member of a shared queue.
    fn consumer(self: &Arc<Self>) -> Consumer {
        let member = self.shared.as_ref().map(|members| {
            let mut members = members.lock().unwrap_or_else(|e| e.into_inner());
            let id = members.next_id;
            members.next_id += 1;
            members.consumers.push((id, None, false));
            id
        });
        Receiver {
            queue: Arc::clone(self),
            batch: VecDeque::new(),
            next_tag: 1,
            member,
        }
        .boxed()
    }

    /// Consumer `id` of a shared queue leaves: its stream ends; whether it
    /// was the last.
    fn leave(&self, id: u64) -> bool {
        let Some(members) = &self.shared else { return true };
        let mut members = members.lock().unwrap_or_else(|e| e.into_inner());
        for (i, waker, left) in &mut members.consumers {
            if *i == id {
                *left = true;
                if let Some(waker) = waker.take() {
                    waker.wake();
                }
            }
        }
        members.consumers.iter().all(|(_, _, left)| *left)
    }

    fn items(&self) -> std::sync::MutexGuard<'_, VecDeque<Queued>> {
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Deleted from the bus: its consumer ends once it took the rest.
    fn delete(&self) {
        self.deleted.store(true, Ordering::Release);
        self.wake();
    }

    /// Wakes the consumer (every consumer of a shared queue: the first
    /// with room takes the message).
    fn wake(&self) {
        match &self.shared {
            None => self.waker.wake(),
            Some(members) => {
                let mut members = members.lock().unwrap_or_else(|e| e.into_inner());
                for (_, waker, _) in &mut members.consumers {
                    if let Some(waker) = waker.take() {
                        waker.wake();
                    }
                }
            }
        }
    }

    /// Queues `msg`, sharing its properties with the other queues it goes
    /// to when `shared` (see [`QueuedProperties`]).
    fn enqueue(self: &Arc<Self>, msg: &Outgoing, shared: bool) -> Result<()> {
        let queued = Queued::new(msg, shared);
        {
            let mut items = self.items();
            if self.abandoned.load(Ordering::Acquire) {
                drop(items);
                // The consumer is gone: the queue is being deleted.
                return Err(Error::UnknownTarget(self.name.to_string()));
            }
            let pushed = self.pushed.load(Ordering::Relaxed);
            if let Some(max_len) = self.max_len {
                // `released` only grows, so this may count too many, never too few.
                if pushed.wrapping_sub(self.released.load(Ordering::Relaxed)) >= max_len {
                    drop(items);
                    return Err(Error::QueueFull {
                        queue: self.name.to_string(),
                        max_len: Some(max_len),
                    });
                }
            }
            self.pushed.store(pushed.wrapping_add(1), Ordering::Relaxed);
            items.push_back(queued);
            if !self.queued.load(Ordering::Relaxed) {
                self.queued.store(true, Ordering::Release);
            }
        }
        self.wake();
        Ok(())
    }
}

/// A message's place in its queue: the queue counts it until the message
/// is acknowledged, rejected or dropped, so its maximum length bounds what
/// waits for a slow consumer as well as what it is handling.
pub struct Slot(Arc<Queue>);

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Slot").field(&self.0.name).finish()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.released.fetch_add(1, Ordering::Relaxed);
    }
}

impl MemoryBus {
    /// A new, empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Topology> {
        self.topology.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Topology> {
        self.topology.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Names of all queues, sorted (for tests and diagnostics).
    pub fn queue_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.read().queues.keys().map(|k| k.to_string()).collect();
        names.sort();
        names
    }

    /// Declares queue `name` with a consumer: a new queue, or a new
    /// member of a `shared` one. A queue of the other kind is in use.
    fn declare(
        &self,
        name: &str,
        source: Source,
        max_len: Option<usize>,
        shared: bool,
    ) -> Result<(Arc<Queue>, Consumer)> {
        let mut topology = self.write();
        if let Some(queue) = topology.queues.get(name) {
            return match (queue.shared.is_some(), shared) {
                (true, true) if !queue.abandoned.load(Ordering::Acquire) => {
                    let queue = Arc::clone(queue);
                    let consumer = queue.consumer();
                    Ok((queue, consumer))
                }
                (true, false) => Err(Error::identity_kind(name, true)),
                (false, true) => Err(Error::identity_kind(name, false)),
                _ => Err(Error::IdentityInUse(name.to_owned())),
            };
        }
        let (queue, consumer) = Queue::with(name.into(), source, max_len, shared);
        topology.queues.insert(queue.name.clone(), Arc::clone(&queue));
        Ok((queue, consumer))
    }

    fn delete(&self, name: &str) {
        let mut topology = self.write();
        if let Some(queue) = topology.queues.remove(name) {
            queue.delete();
        }
        topology.fanout.retain(|q| &*q.name != name);
        topology.topic.retain(|(_, q)| &*q.name != name);
    }

    /// An endpoint lets go of its queue: deleted if it was the only
    /// consumer, else the endpoint's consumer ends and the others go on.
    fn leave(&self, owned: &Owned) {
        let last = match owned.member {
            Some(id) => {
                let topology = self.read();
                topology.queues.get(&owned.name).is_none_or(|q| q.leave(id))
            }
            None => true,
        };
        if last {
            self.delete(&owned.name);
        }
    }

    fn publish(&self, msg: &Outgoing) -> Result<()> {
        let topology = self.read();
        match &msg.route {
            Route::Direct(identity) => match topology.queues.get(identity.as_str()) {
                Some(queue) => queue.enqueue(msg, false),
                None => Err(Error::UnknownTarget(identity.to_string())),
            },
            Route::Fanout => {
                let shared = topology.fanout.len() > 1;
                for queue in &topology.fanout {
                    if let Err(e) = queue.enqueue(msg, shared) {
                        tracing::warn!(queue = %queue.name, error = %e, "broadcast not delivered to a queue");
                    }
                }
                Ok(())
            }
            Route::Topic(key) => {
                let mut matched: Vec<&Arc<Queue>> = Vec::new();
                for (binding, queue) in &topology.topic {
                    if topic_matches(binding, key) {
                        matched.push(queue);
                    }
                }
                // A queue matched by several of its bindings gets the
                // message once: sorted and deduplicated rather than looked
                // up at each match (quadratic in the subscribers).
                if matched.len() > 1 {
                    matched.sort_unstable_by_key(|q| Arc::as_ptr(q));
                    matched.dedup_by(|a, b| Arc::ptr_eq(a, b));
                }
                if matched.is_empty() {
                    // Off the hot path: only a publication that reaches nobody.
                    self.near_misses.look(key, msg.properties.app_id.as_deref(), || {
                        topology
                            .topic
                            .iter()
                            .map(|(b, q)| (b.as_str(), q.name.as_str()))
                            .collect()
                    });
                }
                let shared = matched.len() > 1;
                for queue in matched {
                    if let Err(e) = queue.enqueue(msg, shared) {
                        tracing::warn!(queue = %queue.name, error = %e, "publication not delivered to a queue");
                    }
                }
                Ok(())
            }
        }
    }
}

impl Bus for MemoryBus {
    fn open<'a>(
        &'a self,
        identity: &'a str,
        options: &'a EndpointOptions,
    ) -> BoxFuture<'a, Result<super::Opened>> {
        Box::pin(async move {
            let fanout_name = format!("{identity}.fanout");
            // A replica's direct messages and requests come from its
            // group's shared queues, its control replies and broadcasts to
            // queues of its own.
            let (direct, shared) = match &options.group {
                Some(group) => (group.to_string(), true),
                None => (identity.to_owned(), false),
            };
            let mut names = vec![(direct, Source::Direct, shared)];
            if shared {
                // Addressable on its own too, by its replica name.
                names.push((identity.to_owned(), Source::Direct, false));
            }
            names.push((fanout_name.clone(), Source::Fanout, false));
            // Broadcasts handled once per group come from a fanout queue
            // the replicas share.
            let group_fanout = options.group.as_deref().map(super::group_fanout_queue);
            if let Some(name) = &group_fanout {
                names.push((name.clone(), Source::Topic(name.as_str().into()), true));
            }
            let mailbox = names.len();
            names.push((control_queue(identity), Source::Control, false));
            if let Some(group) = &options.group {
                names.push((control_queue(group), Source::Control, true));
            }
            // The names the queues keep, shared rather than copied.
            let mut declared: Vec<Owned> = Vec::with_capacity(names.len());
            let mut consumers = Vec::with_capacity(names.len());
            for (name, source, shared) in names {
                match self.declare(&name, source, options.max_queue, shared) {
                    Ok((queue, consumer)) => {
                        declared.push(Owned::of(&queue));
                        let mut topology = self.write();
                        let bound = topology.fanout.iter().any(|q| Arc::ptr_eq(q, &queue));
                        if (name == fanout_name || group_fanout.as_ref() == Some(&name)) && !bound {
                            topology.fanout.push(queue);
                        }
                        drop(topology);
                        consumers.push(consumer);
                    }
                    Err(e) => {
                        drop(consumers);
                        for owned in &declared {
                            self.leave(owned);
                        }
                        return Err(e);
                    }
                }
            }
            let mut control = consumers.split_off(mailbox);
            let control = if control.len() == 1 {
                control.pop().expect("one control queue")
            } else {
                futures_util::stream::select_all(control).boxed()
            };
            let endpoint = MemoryEndpoint {
                bus: self.clone(),
                owned: Mutex::new(declared),
                max_queue: options.max_queue,
            };
            Ok(super::Opened {
                endpoint: Arc::new(endpoint),
                control,
                mailbox: consumers,
            })
        })
    }

    fn describe(&self) -> String {
        "memory://".to_owned()
    }
}

struct MemoryEndpoint {
    bus: MemoryBus,
    owned: Mutex<Vec<Owned>>,
    max_queue: Option<usize>,
}

/// A queue an endpoint consumes: its name, and its consumer's id if the
/// queue is shared.
struct Owned {
    name: SmolStr,
    member: Option<u64>,
}

impl Owned {
    /// The queue's newest consumer (the one just made).
    fn of(queue: &Queue) -> Owned {
        let member = queue.shared.as_ref().and_then(|members| {
            let members = members.lock().unwrap_or_else(|e| e.into_inner());
            members.consumers.last().map(|(id, _, _)| *id)
        });
        Owned {
            name: queue.name.clone(),
            member,
        }
    }
}

impl MemoryEndpoint {
    fn owned(&self) -> std::sync::MutexGuard<'_, Vec<Owned>> {
        self.owned.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Endpoint for MemoryEndpoint {
    fn publish(&self, msg: Outgoing) -> BoxFuture<'_, Result<Confirm>> {
        let result = self.bus.publish(&msg).map(|()| Confirm::done());
        Box::pin(std::future::ready(result))
    }

    fn publish_now(&self, msg: Outgoing) -> std::result::Result<Result<Confirm>, Outgoing> {
        Ok(self.bus.publish(&msg).map(|()| Confirm::done()))
    }

    fn in_process(&self) -> bool {
        true
    }

    fn message_id(&self) -> SmolStr {
        crate::message::local_message_id()
    }

    fn subscribe<'a>(
        &'a self,
        queue: &'a str,
        binding_keys: &'a [&'a str],
        shared: bool,
    ) -> BoxFuture<'a, Result<Consumer>> {
        Box::pin(async move {
            let (declared, consumer) =
                self.bus
                    .declare(queue, Source::Topic(queue.into()), self.max_queue, shared)?;
            let mut topology = self.bus.write();
            for key in binding_keys {
                // One binding per key, however many replicas share the queue.
                let bound = topology
                    .topic
                    .iter()
                    .any(|(k, q)| k == key && Arc::ptr_eq(q, &declared));
                if !bound {
                    topology.topic.push(((*key).to_owned(), Arc::clone(&declared)));
                }
            }
            drop(topology);
            self.owned().push(Owned::of(&declared));
            Ok(consumer)
        })
    }

    fn unsubscribe<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<()>> {
        let mut owned = self.owned();
        if let Some(at) = owned.iter().position(|q| q.name == queue) {
            let left = owned.remove(at);
            drop(owned);
            self.bus.leave(&left);
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn close(&self) -> BoxFuture<'_, Result<()>> {
        let owned = std::mem::take(&mut *self.owned());
        for queue in &owned {
            self.bus.leave(queue);
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn lease<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Lease>> {
        let mut leases = self.bus.leases.lock().unwrap_or_else(|e| e.into_inner());
        let line = leases.entry(name.to_owned()).or_default();
        let id = line.next_id;
        line.next_id += 1;
        let (held, watch) = tokio::sync::watch::channel(line.line.is_empty());
        line.line.push_back((id, held));
        drop(leases);
        let leaves = LeavesLine {
            leases: Arc::clone(&self.bus.leases),
            name: name.to_owned(),
            id,
        };
        Box::pin(std::future::ready(Ok(Lease::new(watch, leaves))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> EndpointOptions {
        EndpointOptions {
            prefetch: 10,
            control_prefetch: 10,
            max_queue: None,
            publish_window: 10,
            send_timeout: std::time::Duration::from_secs(5),
            group: None,
        }
    }

    async fn publish(from: &crate::bus::Opened, route: Route, properties: &Arc<Properties>) {
        let msg = Outgoing {
            route,
            properties: Arc::clone(properties),
            body: Bytes::from_static(b"{}"),
        };
        from.endpoint.publish(msg).await.unwrap().wait().await.unwrap();
    }

    #[tokio::test]
    async fn one_queue_gets_its_own_properties_and_many_share_the_senders() {
        let bus = MemoryBus::new();
        let mut agent = bus.open("props-agent", &options()).await.unwrap();
        let sender = bus.open("props-sender", &options()).await.unwrap();
        let mut both = agent
            .endpoint
            .subscribe("props-both", &["x.*", "*.y"], false)
            .await
            .unwrap();
        let mut one = agent
            .endpoint
            .subscribe("props-one", &["x.y"], false)
            .await
            .unwrap();
        let mut properties = Properties::new("Note", "props-sender");
        properties.message_id = Some("m1".into());
        properties.headers.insert("h".to_owned(), 1.into());
        let properties = Arc::new(properties);

        let direct = Route::Direct("props-agent".into());
        publish(&sender, direct, &properties).await;
        let got = agent.mailbox[0].next().await.unwrap().received;
        assert_eq!(*got.properties, *properties);
        assert!(
            !Arc::ptr_eq(&got.properties, &properties),
            "a copy made by the consumer"
        );

        // Two queues match (one of them by both its bindings): one delivery each, sharing.
        let topic = Route::Topic("x.y".into());
        publish(&sender, topic, &properties).await;
        let (a, b) = (both.next().await.unwrap(), one.next().await.unwrap());
        assert!(Arc::ptr_eq(&a.received.properties, &properties));
        assert!(Arc::ptr_eq(&b.received.properties, &properties));

        // One queue matches: its own copy; and `x.y` came to it only once.
        let topic = Route::Topic("x.z".into());
        publish(&sender, topic, &properties).await;
        let next = both.next().await.unwrap();
        assert_eq!(next.received.delivery.routing_key, "x.z");
        assert_eq!(*next.received.properties, *properties);
        assert!(!Arc::ptr_eq(&next.received.properties, &properties));
        drop(agent.control);
    }

    #[test]
    fn a_queue_keeps_buffers_only_once_it_had_a_backlog() {
        let (queue, _consumer) = Queue::new("buffers".into(), Source::Direct, None);
        let mut receiver = Receiver {
            queue: Arc::clone(&queue),
            batch: VecDeque::new(),
            next_tag: 1,
            member: None,
        };
        let msg = Outgoing {
            route: Route::Direct("buffers".into()),
            properties: Arc::new(Properties::new("Note", "sender")),
            body: Bytes::from_static(b"{}"),
        };
        let room = |receiver: &Receiver| receiver.batch.capacity() + queue.items().capacity();

        // A message now and then: no buffer stays.
        for _ in 0..3 {
            queue.enqueue(&msg, false).unwrap();
            assert!(receiver.pop().is_some());
            assert!(receiver.pop().is_none());
            assert_eq!(room(&receiver), 0);
        }
        // A backlog: its buffer stays for the next one.
        for _ in 0..10 {
            queue.enqueue(&msg, false).unwrap();
        }
        for _ in 0..10 {
            assert!(receiver.pop().is_some());
        }
        assert!(receiver.pop().is_none());
        assert!(room(&receiver) >= 10);
        queue.enqueue(&msg, false).unwrap();
        assert!(receiver.pop().is_some());
        assert!(room(&receiver) >= 10, "kept for steady traffic");
    }
}
