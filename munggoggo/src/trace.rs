//! The trace store: a ring of the latest messages an agent received, sent,
//! handed to a behaviour or rejected, so that a `ListTraceStore` request can
//! be answered in munggoggo 0.4's format.
//!
//! (Longer than most files for its unit tests: the store and 0.4's record
//! format belong together and are tested together.)

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::{Serialize, Serializer};

use crate::bus::Route;
use crate::message::{DeliveryInfo, Headers, Properties, Received, SmolStr};

/// How many entries a store keeps by default, as in munggoggo 0.4.
pub const DEFAULT_CAPACITY: usize = 1000;

/// How many bytes of a body a trace store keeps by default.
pub const DEFAULT_BODY_LIMIT: usize = 4096;

/// Why a message is in the trace.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Category {
    /// Received on the direct, fanout or a topic queue.
    Incoming,
    /// Published by the agent.
    Outgoing,
    /// Handed to a behaviour or handler, named `<identity>.<method>`.
    Behaviour(Arc<str>),
    /// Rejected (no handler, handler stopped or failed); the record says why.
    Rejected,
}

impl Category {
    /// The name on the wire: `incoming`, `outgoing`, `rejected` or the
    /// behaviour's name.
    pub fn as_str(&self) -> &str {
        match self {
            Category::Incoming => "incoming",
            Category::Outgoing => "outgoing",
            Category::Behaviour(name) => name,
            Category::Rejected => "rejected",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for Category {
    /// Reads a wire name back; any name but the three fixed ones is a
    /// behaviour's.
    fn from(name: &str) -> Self {
        match name {
            "incoming" => Category::Incoming,
            "outgoing" => Category::Outgoing,
            "rejected" => Category::Rejected,
            other => Category::Behaviour(Arc::from(other)),
        }
    }
}

impl FromStr for Category {
    type Err = std::convert::Infallible;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Ok(Category::from(name))
    }
}

/// One message as the trace keeps it: what 0.4's trace record holds, plus
/// why it was rejected or its handler failed.
///
/// Serializes (with `serde`) to 0.4's record object, fields in 0.4's order;
/// see [`TraceRecord::to_wire_json`].
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct TraceRecord {
    /// The body as it went over the wire.
    pub body: Bytes,
    /// The message's properties.
    pub properties: Arc<Properties>,
    /// How it was delivered; for an outgoing message only the routing key.
    pub delivery: Arc<DeliveryInfo>,
    /// Where an outgoing message went: the identity for a direct send,
    /// `fanout` for a broadcast, `publish` for a topic; empty when incoming.
    pub target: SmolStr,
    /// Whether the agent sent it (rather than received it).
    pub outgoing: bool,
    /// Why the message was rejected or its handler failed.
    pub reason: Option<String>,
    /// The body's true size when the store keeps only its start (see
    /// [`TraceStore::with_body_limit`]).
    pub cut_from: Option<usize>,
}

impl TraceRecord {
    /// The record of a received message.
    pub fn incoming(received: &Received) -> Self {
        Self::delivered(
            Arc::clone(&received.properties),
            Arc::new(received.delivery.clone()),
            received.body.clone(),
        )
    }

    /// The record of a message delivered with these properties and body.
    pub(crate) fn delivered(properties: Arc<Properties>, delivery: Arc<DeliveryInfo>, body: Bytes) -> Self {
        TraceRecord {
            body,
            properties,
            delivery,
            target: SmolStr::default(),
            outgoing: false,
            reason: None,
            cut_from: None,
        }
    }

    /// The record of a published message: `target` as in [`Self::target`],
    /// `routing_key` the identity, `admin` or the topic.
    pub fn outgoing(
        target: impl Into<SmolStr>,
        routing_key: impl Into<SmolStr>,
        props: &Arc<Properties>,
        body: Bytes,
    ) -> Self {
        TraceRecord {
            body,
            properties: Arc::clone(props),
            delivery: Arc::new(DeliveryInfo {
                routing_key: routing_key.into(),
                ..DeliveryInfo::default()
            }),
            target: target.into(),
            outgoing: true,
            reason: None,
            cut_from: None,
        }
    }

    /// Adds why the message was rejected or its handler failed.
    #[must_use]
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// The sender the `ListTraceStore` filter compares with: the `app_id` of
    /// an incoming message, `""` for an outgoing one (as in 0.4).
    pub fn sender(&self) -> &str {
        if self.outgoing {
            ""
        } else {
            self.properties.app_id.as_deref().unwrap_or("")
        }
    }

    /// 0.4's record object as a JSON value. `serde_json::Value` sorts object
    /// keys, so use [`Self::to_wire_json`] (or serialize the record) where
    /// 0.4's field order matters.
    pub fn to_wire(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a trace record is always valid JSON")
    }

    /// 0.4's record object as JSON text, fields in 0.4's order.
    pub fn to_wire_json(&self) -> String {
        serde_json::to_string(self).expect("a trace record is always valid JSON")
    }

    /// The view that serializes to 0.4's record: outgoing records fill only
    /// body, headers, correlation id, type, target and routing key (0.4 left
    /// the rest at its defaults); incoming ones copy properties and delivery.
    fn wire(&self) -> WireRecord<'_> {
        let props = &self.properties;
        let body = String::from_utf8_lossy(&self.body);
        let reason = self.reason.as_deref();
        if self.outgoing {
            return WireRecord {
                body,
                body_size: 0,
                headers: (!props.headers.is_empty()).then_some(&props.headers),
                content_type: Some("application/json"),
                content_encoding: "",
                delivery_mode: 0,
                priority: 0,
                correlation_id: props.correlation_id.as_deref(),
                reply_to: Some(""),
                expiration: None,
                message_id: Some(""),
                timestamp: None,
                kind: props.kind.as_deref(),
                user_id: Some(""),
                app_id: Some(""),
                target: &self.target,
                cluster_id: "",
                consumer_tag: "",
                delivery_tag: 0,
                exchange: "",
                redelivered: false,
                routing_key: &self.delivery.routing_key,
                reason,
            };
        }
        WireRecord {
            body,
            body_size: self.cut_from.unwrap_or(self.body.len()),
            headers: Some(&props.headers),
            content_type: props.content_type.as_deref(),
            content_encoding: "",
            delivery_mode: 1,
            priority: 0,
            correlation_id: props.correlation_id.as_deref(),
            reply_to: props.reply_to.as_deref(),
            expiration: None,
            message_id: props.message_id.as_deref(),
            timestamp: props.timestamp.map(|secs| secs as f64),
            kind: props.kind.as_deref(),
            user_id: props.user_id.as_deref(),
            app_id: props.app_id.as_deref(),
            target: &self.target,
            cluster_id: "",
            consumer_tag: &self.delivery.consumer_tag,
            delivery_tag: self.delivery.delivery_tag,
            exchange: &self.delivery.exchange,
            redelivered: self.delivery.redelivered,
            routing_key: &self.delivery.routing_key,
            reason,
        }
    }
}

impl Serialize for TraceRecord {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.wire().serialize(serializer)
    }
}

/// 0.4's record object; the field order is the wire order.
#[derive(Serialize)]
struct WireRecord<'a> {
    body: Cow<'a, str>,
    body_size: usize,
    headers: Option<&'a Headers>,
    content_type: Option<&'a str>,
    content_encoding: &'a str,
    delivery_mode: u8,
    priority: u8,
    correlation_id: Option<&'a str>,
    reply_to: Option<&'a str>,
    expiration: Option<&'a str>,
    message_id: Option<&'a str>,
    timestamp: Option<f64>,
    #[serde(rename = "type")]
    kind: Option<&'a str>,
    user_id: Option<&'a str>,
    app_id: Option<&'a str>,
    target: &'a str,
    cluster_id: &'a str,
    consumer_tag: &'a str,
    delivery_tag: u64,
    exchange: &'a str,
    redelivered: bool,
    routing_key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

/// One trace event: when, why, and which message.
///
/// Serializes to 0.4's `[<epoch seconds>, <record>, <category>]`.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceEntry {
    /// When it was traced (local clock).
    pub time: SystemTime,
    /// Why it was traced.
    pub category: Category,
    /// The message. Read from a store, it is made from what the store kept
    /// of the message (see [`TraceStore`]); entries may share it.
    pub record: Arc<TraceRecord>,
}

impl TraceEntry {
    /// The time as float seconds since the Unix epoch, as 0.4 sends it.
    pub fn epoch_secs(&self) -> f64 {
        self.time
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    }

    /// 0.4's `[<epoch seconds>, <record>, <category>]` as JSON text, the
    /// record's fields in 0.4's order.
    pub fn to_wire_json(&self) -> String {
        serde_json::to_string(self).expect("a trace entry is always valid JSON")
    }
}

impl Serialize for TraceEntry {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (self.epoch_secs(), &*self.record, self.category.as_str()).serialize(serializer)
    }
}

/// How many entries of CONTROL traffic (keepalive pings and pongs) a store
/// keeps in a ring of their own, beside its capacity for the rest.
pub const SYSTEM_CAPACITY: usize = 100;

/// A fixed-size ring of the latest trace entries of one agent.
///
/// Appending is O(1) under one short lock, as it happens for every message;
/// when the ring is full the oldest entry goes. The runtime's own entries
/// share the message they trace (its properties and body) rather than
/// copying it, and become [`TraceRecord`]s only when read. CONTROL messages (peer
/// discovery) go to a second, small ring ([`SYSTEM_CAPACITY`] entries), so
/// that keepalive traffic never pushes user entries out. Queries see both
/// rings merged in order and return entries oldest first, as 0.4 does.
/// Clones share the same rings.
#[derive(Clone)]
pub struct TraceStore {
    inner: Arc<Inner>,
}

struct Inner {
    capacity: usize,
    /// Bodies longer than this are kept cut to it.
    body_limit: usize,
    rings: Mutex<Rings>,
}

/// The two rings, newest first.
#[derive(Default)]
struct Rings {
    next: u64,
    user: VecDeque<Slot>,
    system: VecDeque<Slot>,
}

/// One entry as a ring keeps it; `seq` orders entries across both rings.
struct Slot {
    seq: u64,
    time: SystemTime,
    category: Category,
    kept: Kept,
}

/// What a ring keeps of a message: a record, or the parts of the message
/// that a record is made of when the entry is read. Tracing a message as
/// it goes by then allocates nothing: it shares what the message holds.
enum Kept {
    Record(Arc<TraceRecord>),
    /// A received message, as its handlers got it.
    Received(Arc<Received>),
    /// A published message.
    Sent {
        properties: Arc<Properties>,
        route: Route,
        body: Bytes,
    },
    /// A message whose record is made when it is read.
    Deferred {
        message: Arc<dyn Deferred>,
        outgoing: bool,
    },
    /// A state machine's transition: a record whose reason says it.
    Transition(Transition),
}

/// A message traced as it goes by and encoded only if its entry is read
/// (a call between agents of one runtime, which travels without being
/// encoded at all: see `runtime::calls`).
pub(crate) trait Deferred: Send + Sync {
    /// The sender's identity (the `app_id` of its record).
    fn sender(&self) -> &str;

    /// Whether it is CONTROL traffic (kept in the system ring).
    fn is_control(&self) -> bool;

    /// The record of the message as its sender (`outgoing`) or its
    /// receiver traces it.
    fn record(&self, outgoing: bool) -> TraceRecord;
}

impl Kept {
    /// Whether it is CONTROL traffic (peer discovery), kept in the system ring.
    fn is_control(&self) -> bool {
        let properties = match self {
            Kept::Record(record) => &record.properties,
            Kept::Received(received) => &received.properties,
            Kept::Sent { properties, .. } => properties,
            Kept::Deferred { message, .. } => return message.is_control(),
            Kept::Transition(_) => return false,
        };
        properties.kind.as_deref() == Some(crate::message::CONTROL)
    }

    /// As [`TraceRecord::sender`].
    fn sender(&self) -> &str {
        match self {
            Kept::Record(record) => record.sender(),
            Kept::Received(received) => received.sender(),
            Kept::Sent { .. } | Kept::Deferred { outgoing: true, .. } | Kept::Transition(_) => "",
            Kept::Deferred { message, .. } => message.sender(),
        }
    }

    /// The record, with a body cut to `body_limit` (see [`TraceStore::with_body_limit`]).
    fn record(&self, body_limit: usize) -> Arc<TraceRecord> {
        match self {
            Kept::Record(record) => Arc::clone(record),
            Kept::Received(received) => Arc::new(TraceRecord::incoming(received)),
            Kept::Sent {
                properties,
                route,
                body,
            } => Arc::new(TraceRecord::outgoing(
                route.target(),
                route.key(),
                properties,
                body.clone(),
            )),
            Kept::Transition(transition) => Arc::new(TraceRecord::default().with_reason(transition.text())),
            Kept::Deferred { message, outgoing } => {
                let record = message.record(*outgoing);
                Arc::new(if record.body.len() > body_limit {
                    cut(record, body_limit)
                } else {
                    record
                })
            }
        }
    }
}

/// `record` with its body cut to its first `limit` bytes (a copy, not a
/// slice: a slice would keep the whole body alive).
fn cut(mut record: TraceRecord, limit: usize) -> TraceRecord {
    record.cut_from = Some(record.body.len());
    record.body = Bytes::copy_from_slice(&record.body[..limit]);
    record
}

impl Slot {
    fn entry(&self, body_limit: usize) -> TraceEntry {
        TraceEntry {
            time: self.time,
            category: self.category.clone(),
            record: self.kept.record(body_limit),
        }
    }
}

impl Rings {
    /// Every entry, newest first.
    fn newest_first(&self) -> impl Iterator<Item = &Slot> + '_ {
        let mut user = self.user.iter().peekable();
        let mut system = self.system.iter().peekable();
        std::iter::from_fn(move || {
            let from_user = match (user.peek(), system.peek()) {
                (Some(u), Some(s)) => u.seq > s.seq,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => return None,
            };
            if from_user {
                user.next()
            } else {
                system.next()
            }
        })
    }
}

impl TraceStore {
    /// A store keeping the latest `capacity` entries (0 keeps none, which
    /// turns tracing off).
    pub fn new(capacity: usize) -> Self {
        Self::with_body_limit(capacity, DEFAULT_BODY_LIMIT)
    }

    /// A store keeping the latest `capacity` entries, with bodies cut to
    /// their first `body_limit` bytes (the record's `cut_from` and the wire
    /// record's `body_size` keep the true size), so that large messages do
    /// not stay in memory through the trace.
    pub fn with_body_limit(capacity: usize, body_limit: usize) -> Self {
        TraceStore {
            inner: Arc::new(Inner {
                capacity,
                body_limit,
                rings: Mutex::new(Rings::default()),
            }),
        }
    }

    /// How many bytes of a body the store keeps.
    pub fn body_limit(&self) -> usize {
        self.inner.body_limit
    }

    /// Records a message under `category`, dropping the oldest entry of its
    /// ring when full.
    pub fn append(&self, category: Category, record: impl Into<Arc<TraceRecord>>) {
        if self.inner.capacity == 0 {
            return;
        }
        let mut record = record.into();
        if record.body.len() > self.inner.body_limit {
            record = Arc::new(cut((*record).clone(), self.inner.body_limit));
        }
        self.keep([(category, Kept::Record(record))]);
    }

    /// Records a state machine's transition under `category` (its
    /// behaviour), allocating nothing: its record is made when read.
    pub(crate) fn append_transition(&self, category: Category, transition: Transition) {
        if self.inner.capacity == 0 {
            return;
        }
        self.keep([(category, Kept::Transition(transition))]);
    }

    /// Records a received message under `category`, sharing it.
    pub(crate) fn append_received(&self, category: Category, received: &Arc<Received>) {
        self.append_received_as([category], received);
    }

    /// Records a received message under each of `categories` in turn (as
    /// incoming and as handed to its handler), at one time and under one lock.
    pub(crate) fn append_received_as<const N: usize>(
        &self,
        categories: [Category; N],
        received: &Arc<Received>,
    ) {
        if self.inner.capacity == 0 {
            return;
        }
        if received.body.len() > self.inner.body_limit {
            let record = Arc::new(cut(TraceRecord::incoming(received), self.inner.body_limit));
            return self.keep(categories.map(|category| (category, Kept::Record(Arc::clone(&record)))));
        }
        self.keep(categories.map(|category| (category, Kept::Received(Arc::clone(received)))));
    }

    /// Records a published message as outgoing, sharing its properties and body.
    pub(crate) fn append_sent(&self, route: &Route, properties: &Arc<Properties>, body: Bytes) {
        if self.inner.capacity == 0 {
            return;
        }
        if body.len() > self.inner.body_limit {
            let record = TraceRecord::outgoing(route.target(), route.key(), properties, body);
            return self.append(Category::Outgoing, record);
        }
        let kept = Kept::Sent {
            properties: Arc::clone(properties),
            route: route.clone(),
            body,
        };
        self.keep([(Category::Outgoing, kept)]);
    }

    /// Records a message whose record is made when its entry is read, as
    /// sent (`outgoing`) or received.
    pub(crate) fn append_deferred(&self, message: &Arc<dyn Deferred>, outgoing: bool) {
        if self.inner.capacity == 0 {
            return;
        }
        let category = if outgoing {
            Category::Outgoing
        } else {
            Category::Incoming
        };
        let message = Arc::clone(message);
        self.keep([(category, Kept::Deferred { message, outgoing })]);
    }

    /// Keeps `entries` in order, at one time and under one lock.
    fn keep<const N: usize>(&self, entries: [(Category, Kept); N]) {
        let time = SystemTime::now();
        let mut evicted: [Option<Slot>; N] = [const { None }; N];
        {
            let mut rings = self.lock();
            for ((category, kept), evicted) in entries.into_iter().zip(&mut evicted) {
                let seq = rings.next;
                rings.next += 1;
                let (ring, ring_capacity) = if kept.is_control() {
                    (&mut rings.system, self.inner.capacity.min(SYSTEM_CAPACITY))
                } else {
                    (&mut rings.user, self.inner.capacity)
                };
                if ring.len() >= ring_capacity {
                    *evicted = ring.pop_back();
                }
                ring.push_front(Slot {
                    seq,
                    time,
                    category,
                    kept,
                });
            }
        }
        // The evicted entries (and the messages they may keep alive) are
        // freed after the lock is released.
        drop(evicted);
    }

    /// The newest `limit` entries (all with `None`), oldest first.
    pub fn all(&self, limit: Option<usize>) -> Vec<TraceEntry> {
        self.select(limit, |_, _| true)
    }

    /// The newest `limit` entries of received messages, oldest first.
    pub fn received(&self, limit: Option<usize>) -> Vec<TraceEntry> {
        self.select(limit, |category, _| *category == Category::Incoming)
    }

    /// The newest `limit` entries of sent messages, oldest first.
    pub fn sent(&self, limit: Option<usize>) -> Vec<TraceEntry> {
        self.select(limit, |category, _| *category == Category::Outgoing)
    }

    /// The newest `limit` entries matching a `ListTraceStore` filter, oldest
    /// first. `sender` compares with [`TraceRecord::sender`] (so it selects
    /// incoming messages from that sender) and `category` with
    /// [`Category::as_str`]; `None` or `""` does not filter, as in 0.4.
    pub fn filter(
        &self,
        limit: Option<usize>,
        sender: Option<&str>,
        category: Option<&str>,
    ) -> Vec<TraceEntry> {
        let sender = sender.filter(|s| !s.is_empty());
        let category = category.filter(|c| !c.is_empty());
        self.select(limit, |kind, kept| {
            sender.is_none_or(|s| kept.sender() == s) && category.is_none_or(|c| kind.as_str() == c)
        })
    }

    /// The newest entry.
    pub fn latest(&self) -> Option<TraceEntry> {
        let limit = self.inner.body_limit;
        self.lock().newest_first().next().map(|slot| slot.entry(limit))
    }

    /// How many entries the store holds.
    pub fn len(&self) -> usize {
        let rings = self.lock();
        rings.user.len() + rings.system.len()
    }

    /// Whether the store holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many entries the store keeps at most (besides up to
    /// [`SYSTEM_CAPACITY`] of CONTROL traffic).
    pub fn capacity(&self) -> usize {
        self.inner.capacity
    }

    /// Forgets every entry.
    pub fn reset(&self) {
        let mut rings = self.lock();
        rings.user.clear();
        rings.system.clear();
    }

    /// The newest `limit` entries that `keep` accepts, oldest first.
    fn select(&self, limit: Option<usize>, keep: impl Fn(&Category, &Kept) -> bool) -> Vec<TraceEntry> {
        let mut picked: Vec<TraceEntry> = self
            .lock()
            .newest_first()
            .filter(|slot| keep(&slot.category, &slot.kept))
            .take(limit.unwrap_or(usize::MAX))
            .map(|slot| slot.entry(self.inner.body_limit))
            .collect();
        picked.reverse();
        picked
    }

    /// The rings; a panic elsewhere cannot leave them inconsistent, so a
    /// poisoned lock is taken over.
    fn lock(&self) -> MutexGuard<'_, Rings> {
        self.inner.rings.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for TraceStore {
    /// A store of [`DEFAULT_CAPACITY`] entries.
    fn default() -> Self {
        TraceStore::new(DEFAULT_CAPACITY)
    }
}

impl fmt::Debug for TraceStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceStore")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .finish()
    }
}

/// Filters of a trace query (all optional).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceQuery {
    /// At most this many of the newest matching entries.
    pub limit: Option<usize>,
    /// Only messages from this sender.
    pub sender: Option<String>,
    /// Only this category (`incoming`, `outgoing`, `rejected` or a behaviour name).
    pub category: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incoming_from(sender: &str, body: &'static str) -> TraceRecord {
        let mut props = Properties::new("Demo", sender);
        props.correlation_id = None;
        TraceRecord::incoming(&Received::new(
            props,
            DeliveryInfo::default(),
            Bytes::from_static(body.as_bytes()),
        ))
    }

    fn bodies(entries: &[TraceEntry]) -> Vec<String> {
        entries
            .iter()
            .map(|e| String::from_utf8_lossy(&e.record.body).into_owned())
            .collect()
    }

    #[test]
    fn control_traffic_does_not_push_user_entries_out() {
        let store = TraceStore::new(3);
        store.append(Category::Incoming, incoming_from("a", "user1"));
        for i in 0..SYSTEM_CAPACITY + 5 {
            let mut props = Properties::new(crate::message::CONTROL, "peer");
            props.correlation_id = None;
            let pong = Received::new(props, DeliveryInfo::default(), Bytes::from(format!("pong{i}")));
            store.append(Category::Incoming, TraceRecord::incoming(&pong));
        }
        store.append(Category::Incoming, incoming_from("a", "user2"));
        let all = store.all(None);
        assert_eq!(all.len(), 3 + 2, "three pongs and both user entries");
        assert_eq!(bodies(&all)[0], "user1");
        assert_eq!(bodies(&all)[4], "user2", "merged in the order of appending");
        assert_eq!(bodies(&store.all(Some(1))), ["user2"]);
    }

    #[test]
    fn ring_drops_the_oldest_when_full() {
        let store = TraceStore::new(3);
        for body in ["1", "2", "3", "4", "5"] {
            store.append(Category::Incoming, incoming_from("a", body));
        }
        assert_eq!(store.len(), 3);
        assert_eq!(store.capacity(), 3);
        assert_eq!(bodies(&store.all(None)), ["3", "4", "5"]);
    }

    #[test]
    fn limit_takes_the_newest_and_returns_them_oldest_first() {
        let store = TraceStore::default();
        assert_eq!(store.capacity(), DEFAULT_CAPACITY);
        for body in ["1", "2", "3", "4"] {
            store.append(Category::Incoming, incoming_from("a", body));
        }
        assert_eq!(bodies(&store.all(Some(2))), ["3", "4"]);
        assert_eq!(bodies(&store.all(Some(10))), ["1", "2", "3", "4"]);
        assert!(store.all(Some(0)).is_empty());
        let times: Vec<_> = store.all(None).iter().map(|e| e.time).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn filter_by_sender_and_category() {
        let store = TraceStore::new(10);
        let from_a = Arc::new(incoming_from("a", "a1"));
        store.append(Category::Incoming, Arc::clone(&from_a));
        store.append(Category::from("agent1.on_demo"), from_a);
        store.append(Category::Incoming, incoming_from("b", "b1"));
        let props = Properties::new("Demo", "me");
        let sent = TraceRecord::outgoing("a", "a", &Arc::new(props.clone()), Bytes::from_static(b"out"));
        store.append(Category::Outgoing, sent);
        store.append(Category::Incoming, incoming_from("a", "a2"));
        store.append(
            Category::Rejected,
            incoming_from("b", "b2").with_reason("no handler"),
        );

        assert_eq!(bodies(&store.filter(None, Some("a"), None)), ["a1", "a1", "a2"]);
        assert_eq!(bodies(&store.filter(Some(1), Some("a"), None)), ["a2"]);
        // Outgoing records have no sender, even though the properties name one.
        assert!(store.filter(None, Some("me"), None).is_empty());
        assert_eq!(
            bodies(&store.filter(None, Some("a"), Some("incoming"))),
            ["a1", "a2"]
        );
        assert_eq!(bodies(&store.filter(None, None, Some("agent1.on_demo"))), ["a1"]);
        assert_eq!(bodies(&store.filter(None, None, Some("rejected"))), ["b2"]);
        assert_eq!(store.filter(None, Some(""), Some("")).len(), 6);
        assert!(store.filter(None, None, Some("agent1")).is_empty());
        assert_eq!(bodies(&store.received(None)), ["a1", "b1", "a2"]);
        assert_eq!(bodies(&store.received(Some(1))), ["a2"]);
        assert_eq!(bodies(&store.sent(None)), ["out"]);
    }

    #[test]
    fn latest_and_reset() {
        let store = TraceStore::new(5);
        assert!(store.latest().is_none());
        assert!(store.is_empty());
        store.append(Category::Incoming, incoming_from("a", "1"));
        store.append(Category::Outgoing, incoming_from("a", "2"));
        let latest = store.latest().unwrap();
        assert_eq!(&latest.record.body[..], b"2");
        assert_eq!(latest.category, Category::Outgoing);
        let clone = store.clone();
        clone.reset();
        assert!(store.is_empty());
        assert!(store.latest().is_none());
    }

    #[test]
    fn zero_capacity_keeps_nothing() {
        let store = TraceStore::new(0);
        store.append(Category::Incoming, incoming_from("a", "1"));
        assert!(store.is_empty());
    }

    #[test]
    fn category_names_round_trip() {
        for name in ["incoming", "outgoing", "rejected", "agent1.on_demo"] {
            let category: Category = name.parse().unwrap();
            assert_eq!(category.as_str(), name);
            assert_eq!(category.to_string(), name);
        }
        assert_eq!(
            Category::from("agent1.on_demo"),
            Category::Behaviour("agent1.on_demo".into())
        );
    }

    /// The shape of the response captured from 0.4 (docs/protocol.md §7).
    #[test]
    fn outgoing_record_has_04_fields_in_04_order() {
        let mut props = Properties::new("RPC", "agent1");
        props.correlation_id = Some("23d009aa".into());
        let body = Bytes::from_static(br#"{"c_type": "Pong"}"#);
        let record = TraceRecord::outgoing("probe", "probe", &Arc::new(props.clone()), body);
        assert_eq!(
            record.to_wire_json(),
            r#"{"body":"{\"c_type\": \"Pong\"}","body_size":0,"headers":null,"content_type":"application/json","content_encoding":"","delivery_mode":0,"priority":0,"correlation_id":"23d009aa","reply_to":"","expiration":null,"message_id":"","timestamp":null,"type":"RPC","user_id":"","app_id":"","target":"probe","cluster_id":"","consumer_tag":"","delivery_tag":0,"exchange":"","redelivered":false,"routing_key":"probe"}"#
        );
        assert_eq!(record.to_wire()["target"], "probe");
        assert_eq!(record.sender(), "");
    }

    #[test]
    fn incoming_entry_has_04_fields_in_04_order() {
        let mut props = Properties::new("RPC", "probe");
        props.correlation_id = Some("4e6b461c".into());
        props.message_id = Some("d28a690d".into());
        props.timestamp = Some(1_795_544_513);
        props.user_id = Some("guest".into());
        let delivery = DeliveryInfo {
            exchange: Default::default(),
            routing_key: "agent1".into(),
            redelivered: false,
            consumer_tag: "agent1".into(),
            delivery_tag: 65,
        };
        let received = Received::new(props, delivery, Bytes::from_static(b"{\"x\": 1}"));
        let entry = TraceEntry {
            time: UNIX_EPOCH + std::time::Duration::from_millis(1_795_544_513_250),
            category: Category::Incoming,
            record: Arc::new(TraceRecord::incoming(&received)),
        };
        assert_eq!(
            entry.to_wire_json(),
            r#"[1795544513.25,{"body":"{\"x\": 1}","body_size":8,"headers":{},"content_type":"application/json","content_encoding":"","delivery_mode":1,"priority":0,"correlation_id":"4e6b461c","reply_to":null,"expiration":null,"message_id":"d28a690d","timestamp":1795544513.0,"type":"RPC","user_id":"guest","app_id":"probe","target":"","cluster_id":"","consumer_tag":"agent1","delivery_tag":65,"exchange":"","redelivered":false,"routing_key":"agent1"},"incoming"]"#
        );
        let rejected = TraceRecord::incoming(&received).with_reason("no handler");
        assert!(rejected
            .to_wire_json()
            .ends_with(r#""routing_key":"agent1","reason":"no handler"}"#));
        let lossy = TraceRecord::incoming(&Received::new(
            Properties::default(),
            DeliveryInfo::default(),
            Bytes::from_static(b"a\xffb"),
        ));
        assert_eq!(lossy.to_wire()["body"], "a\u{fffd}b");
        assert_eq!(lossy.to_wire()["body_size"], 3);
    }

    #[test]
    fn long_bodies_are_kept_cut_with_their_true_size() {
        let store = TraceStore::with_body_limit(2, 4);
        store.append(Category::Incoming, incoming_from("a", "0123456789"));
        store.append(Category::Incoming, incoming_from("a", "abc"));
        let entries = store.all(None);
        assert_eq!(&entries[0].record.body[..], b"0123");
        assert_eq!(entries[0].record.cut_from, Some(10));
        assert_eq!(entries[0].record.to_wire()["body_size"], 10);
        assert_eq!(&entries[1].record.body[..], b"abc");
        assert_eq!(entries[1].record.cut_from, None);
    }

    #[test]
    fn messages_kept_as_they_went_by_read_as_their_records() {
        let store = TraceStore::with_body_limit(10, 4);
        let received = Arc::new(Received::new(
            Properties::new("Demo", "peer"),
            DeliveryInfo {
                routing_key: "me".into(),
                consumer_tag: "me".into(),
                delivery_tag: 7,
                ..DeliveryInfo::default()
            },
            Bytes::from_static(b"{}"),
        ));
        let sent = Arc::new(Properties::new("Demo", "me"));
        let topic = Route::Topic("sensors.kitchen".into());
        store.append_received(Category::Incoming, &received);
        store.append_received(Category::Behaviour("me.demo".into()), &received);
        store.append_sent(&Route::Direct("peer".into()), &sent, Bytes::from_static(b"[]"));
        store.append_sent(&topic, &sent, Bytes::from_static(b"0123456789"));
        let long = Arc::new(Received::new(
            Properties::new("Demo", "peer"),
            DeliveryInfo::default(),
            Bytes::from_static(b"abcdefgh"),
        ));
        store.append_received(Category::Incoming, &long);

        let entries = store.all(None);
        let categories: Vec<&str> = entries.iter().map(|e| e.category.as_str()).collect();
        assert_eq!(
            categories,
            ["incoming", "me.demo", "outgoing", "outgoing", "incoming"]
        );
        assert_eq!(*entries[0].record, TraceRecord::incoming(&received));
        assert_eq!(*entries[1].record, TraceRecord::incoming(&received));
        let direct = TraceRecord::outgoing("peer", "peer", &sent, Bytes::from_static(b"[]"));
        assert_eq!(*entries[2].record, direct);
        // Long bodies are cut whichever way the message was kept.
        assert_eq!(entries[3].record.target, "publish");
        assert_eq!(entries[3].record.delivery.routing_key, "sensors.kitchen");
        assert_eq!(
            (&entries[3].record.body[..], entries[3].record.cut_from),
            (&b"0123"[..], Some(10))
        );
        assert_eq!(
            (&entries[4].record.body[..], entries[4].record.cut_from),
            (&b"abcd"[..], Some(8))
        );
        assert_eq!(
            store.filter(None, Some("peer"), None).len(),
            3,
            "sent entries have no sender"
        );
    }

    /// Counts how often its record is made.
    struct Counted(Properties, std::sync::atomic::AtomicUsize);

    impl Deferred for Counted {
        fn sender(&self) -> &str {
            self.0.app_id.as_deref().unwrap_or("")
        }

        fn is_control(&self) -> bool {
            false
        }

        fn record(&self, outgoing: bool) -> TraceRecord {
            self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let props = Arc::new(self.0.clone());
            let body = Bytes::from_static(b"0123456789");
            if outgoing {
                TraceRecord::outgoing("peer.control", "peer.control", &props, body)
            } else {
                TraceRecord::delivered(props, Arc::default(), body)
            }
        }
    }

    #[test]
    fn deferred_entries_are_made_only_when_read_and_cut_then() {
        let store = TraceStore::with_body_limit(10, 4);
        let counted = Arc::new(Counted(
            Properties::new("RPC", "caller"),
            std::sync::atomic::AtomicUsize::new(0),
        ));
        let message: Arc<dyn Deferred> = counted.clone();
        store.append_deferred(&message, true);
        store.append_deferred(&message, false);
        assert_eq!(
            counted.1.load(std::sync::atomic::Ordering::Relaxed),
            0,
            "not made while kept"
        );
        assert_eq!(
            store.filter(None, Some("caller"), None).len(),
            1,
            "only the received entry has a sender"
        );
        let entries = store.all(None);
        assert_eq!(counted.1.load(std::sync::atomic::Ordering::Relaxed), 3);
        assert_eq!(entries[0].category, Category::Outgoing);
        assert_eq!(entries[0].record.target, "peer.control");
        assert_eq!(entries[1].category, Category::Incoming);
        for entry in &entries {
            assert_eq!(
                (&entry.record.body[..], entry.record.cut_from),
                (&b"0123"[..], Some(10))
            );
        }
    }
}

/// A transition as the trace store keeps it: nothing allocated when it is
/// traced; its text (`Reserved -> Available (timeout after 30s)`) is made
/// when the entry is read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Transition {
    pub(crate) from: &'static str,
    pub(crate) to: &'static str,
    pub(crate) why: Why,
}

/// Why a machine took a transition.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Why {
    /// The state's method returned the next state.
    Step,
    /// The state's timeout expired.
    Timeout(Duration),
    /// The behaviour was started again (into the initial state).
    StartedAgain,
}

impl Transition {
    /// The trace entry's reason.
    pub(crate) fn text(&self) -> String {
        let (from, to) = (self.from, self.to);
        match self.why {
            Why::Step => format!("{from} -> {to}"),
            Why::Timeout(after) => {
                let after = humantime::format_duration(after);
                format!("{from} -> {to} (timeout after {after})")
            }
            Why::StartedAgain => format!("{from} -> {to} (started again)"),
        }
    }
}
