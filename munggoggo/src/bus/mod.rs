//! The message bus: the [`Bus`] and [`Endpoint`] traits that both the
//! embedded bus ([`memory`]) and RabbitMQ (`amqp`) implement.
//!
//! The topology is RabbitMQ's, as munggoggo 0.4 declares it: each agent has
//! an exclusive queue named by its identity (direct sends), an exclusive
//! queue bound to the `admin` fanout exchange (broadcasts), and one queue
//! per topic handler bound to the `topic` exchange with its binding keys.
//! Every delivery carries an acknowledgement handle: the runtime acks after
//! the handler returns and rejects (without requeue) what it cannot handle.
//!
//! Besides 0.4's queues, every agent has a control queue
//! (`<identity>.control`, see [`control_queue`]) consumed apart from user
//! traffic: requests from Rust callers go there, and it is the `reply_to`
//! of the agent's own requests. So replies and system requests never wait
//! in the broker behind user messages that the agent has not handled yet.
//! A publish returns once the message is in the endpoint's window of
//! outstanding confirms; its [`Confirm`] says whether the bus took it.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::BoxStream;

use tokio::sync::oneshot;

use crate::error::{Error, Result};
use crate::future::BoxFuture;
use crate::message::{Properties, Received, SmolStr};

#[cfg(feature = "amqp")]
#[cfg_attr(docsrs, doc(cfg(feature = "amqp")))]
pub mod amqp;
pub mod dead_letter;
pub mod memory;
mod topic;

pub use crate::protocol::validate_binding_key;
pub use topic::topic_matches;

/// The topic exchange of munggoggo 0.4.
pub const TOPIC_EXCHANGE: &str = "topic";
/// The fanout exchange of munggoggo 0.4.
pub const FANOUT_EXCHANGE: &str = "admin";

/// The name of an agent's control queue: requests from Rust callers and
/// replies to the agent's own requests arrive there, apart from user
/// traffic.
pub fn control_queue(identity: &str) -> String {
    format!("{identity}.control")
}

/// The fanout queue a replicated agent's replicas share (`<group>.fanout`),
/// for broadcasts handled once per group; it delivers as a subscription
/// of that name does ([`Source::Topic`]).
pub fn group_fanout_queue(group: &str) -> String {
    format!("{group}.fanout")
}

/// Where a message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// To the agent with this identity (default exchange).
    Direct(SmolStr),
    /// To every agent (the `admin` fanout exchange), the sender included.
    Fanout,
    /// To every subscription whose binding key matches this topic.
    Topic(SmolStr),
}

impl Route {
    /// The exchange the route publishes to.
    pub fn exchange(&self) -> &'static str {
        match self {
            Route::Direct(_) => "",
            Route::Fanout => FANOUT_EXCHANGE,
            Route::Topic(_) => TOPIC_EXCHANGE,
        }
    }

    /// The routing key.
    pub fn routing_key(&self) -> &str {
        match self {
            Route::Direct(id) => id,
            Route::Fanout => FANOUT_EXCHANGE,
            Route::Topic(t) => t,
        }
    }

    /// Where a message on this route goes, as an outgoing trace record
    /// names it: the identity, `fanout` or `publish`.
    pub(crate) fn target(&self) -> SmolStr {
        match self {
            Route::Direct(identity) => identity.clone(),
            Route::Fanout => SmolStr::new_static("fanout"),
            Route::Topic(_) => SmolStr::new_static("publish"),
        }
    }

    /// The routing key, shared rather than copied.
    pub(crate) fn key(&self) -> SmolStr {
        match self {
            Route::Direct(key) | Route::Topic(key) => key.clone(),
            Route::Fanout => SmolStr::new_static(FANOUT_EXCHANGE),
        }
    }
}

/// A message to publish.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Where it goes.
    pub route: Route,
    /// Its properties.
    pub properties: Arc<Properties>,
    /// Its body.
    pub body: Bytes,
}

/// Which of an agent's queues a delivery came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The identity queue.
    Direct,
    /// The fanout queue.
    Fanout,
    /// A topic subscription queue, by name.
    Topic(Arc<str>),
    /// The control queue (requests and replies, see [`control_queue`]).
    Control,
}

/// A message delivered to one of an agent's queues.
pub struct Delivery {
    /// What was received (shared: the handlers, the trace store and a
    /// dead letter take it without a copy, and a queued delivery stays
    /// small).
    pub received: Arc<Received>,
    /// Which queue it came from.
    pub source: Source,
    /// Its acknowledgement handle.
    pub acker: Acker,
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("received", &self.received)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// Acknowledges or rejects a delivery on its bus.
#[non_exhaustive]
pub enum Acker {
    /// Nothing to acknowledge.
    None,
    /// An embedded-bus delivery: it counts towards its queue's length until
    /// it is acknowledged, rejected or dropped.
    Memory(memory::Slot),
    /// A RabbitMQ delivery. Boxed, and so are the futures of its methods:
    /// lapin's acker and futures are large, and every agent's task (on
    /// either bus, with the `amqp` feature) would carry their size.
    #[cfg(feature = "amqp")]
    Amqp(Box<amqp::AmqpAcker>),
}

impl Acker {
    /// Acknowledges the delivery: it was handled.
    pub async fn ack(self) -> Result<()> {
        match self {
            Acker::None | Acker::Memory(_) => Ok(()),
            #[cfg(feature = "amqp")]
            Acker::Amqp(acker) => Box::pin(amqp::ack(*acker)).await,
        }
    }

    /// Rejects the delivery without requeueing it.
    pub async fn reject(self) -> Result<()> {
        match self {
            Acker::None | Acker::Memory(_) => Ok(()),
            #[cfg(feature = "amqp")]
            Acker::Amqp(acker) => Box::pin(amqp::reject(*acker)).await,
        }
    }

    /// Gives the delivery back to its queue unhandled (the agent stops):
    /// the broker delivers it again, to the agent's next start.
    pub async fn release(self) -> Result<()> {
        match self {
            Acker::None | Acker::Memory(_) => Ok(()),
            #[cfg(feature = "amqp")]
            Acker::Amqp(acker) => Box::pin(amqp::release(*acker)).await,
        }
    }
}

/// The deliveries of one queue.
pub type Consumer = BoxStream<'static, Delivery>;

/// What [`Bus::open`] gives: the agent's endpoint, the consumer of its
/// control queue and the consumers of its identity and fanout queues.
pub struct Opened {
    /// The agent's endpoint.
    pub endpoint: Arc<dyn Endpoint>,
    /// The control queue's consumer.
    pub control: Consumer,
    /// The identity and fanout queues' consumers.
    pub mailbox: Vec<Consumer>,
}

impl fmt::Debug for Opened {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opened").finish_non_exhaustive()
    }
}

/// Options for an agent's endpoint.
#[derive(Debug, Clone)]
pub struct EndpointOptions {
    /// Deliveries in flight per user consumer (on RabbitMQ the consumer's
    /// `basic.qos` prefetch).
    pub prefetch: u16,
    /// Deliveries in flight on the control queue.
    pub control_prefetch: u16,
    /// Maximum queue length (the embedded bus enforces it).
    pub max_queue: Option<usize>,
    /// Publishes that may wait for their confirm at once; a publish past
    /// it waits for a place.
    pub publish_window: usize,
    /// How long a publish may wait for a place in the window and then for
    /// its confirm.
    pub send_timeout: std::time::Duration,
    /// For a replica of a replicated agent, the identity its group shares:
    /// the endpoint (opened under the replica's own name) also consumes the
    /// group's identity and control queues, shared with the other replicas.
    pub group: Option<SmolStr>,
}

/// Whether the bus took a published message: ready at once on the
/// embedded bus, on RabbitMQ when the broker's confirm arrives (or fails
/// with [`Error::SendTimeout`] when it does not come in time).
#[must_use = "a Confirm says whether the message reached the bus"]
pub struct Confirm {
    pending: Option<Box<PendingConfirm>>,
}

struct PendingConfirm {
    answer: oneshot::Receiver<Result<()>>,
    identity: Arc<str>,
    target: String,
    deadline: tokio::time::Instant,
    timeout: std::time::Duration,
}

impl fmt::Debug for Confirm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Confirm")
            .field("pending", &self.pending.is_some())
            .finish()
    }
}

impl Confirm {
    /// A message the bus has taken already.
    pub fn done() -> Self {
        Confirm { pending: None }
    }

    /// A confirm that `answer` completes within `timeout`; a dropped sender
    /// means the endpoint of `identity` stopped first.
    pub fn pending(
        answer: oneshot::Receiver<Result<()>>,
        identity: Arc<str>,
        target: &str,
        timeout: std::time::Duration,
    ) -> Self {
        Confirm {
            pending: Some(Box::new(PendingConfirm {
                answer,
                identity,
                target: target.to_owned(),
                deadline: tokio::time::Instant::now() + timeout,
                timeout,
            })),
        }
    }

    /// Whether the outcome is known without waiting.
    pub fn is_done(&self) -> bool {
        self.pending.is_none()
    }

    /// Waits for the outcome.
    pub async fn wait(self) -> Result<()> {
        let Some(pending) = self.pending else {
            return Ok(());
        };
        let PendingConfirm {
            answer,
            identity,
            target,
            deadline,
            timeout,
        } = *pending;
        match tokio::time::timeout_at(deadline, answer).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(Error::AgentStopped(identity.to_string())),
            Err(_) => Err(Error::SendTimeout { target, timeout }),
        }
    }
}

/// A lease asked for with [`Endpoint::lease`]: whether this endpoint
/// holds it now, and when that changes. Dropping it gives it up.
pub struct Lease {
    held: tokio::sync::watch::Receiver<bool>,
    _release: Box<dyn Send + Sync>,
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("held", &*self.held.borrow())
            .finish_non_exhaustive()
    }
}

impl Lease {
    /// A lease whose holding `held` reports; `release` is dropped with it
    /// (and gives it up).
    pub fn new(held: tokio::sync::watch::Receiver<bool>, release: impl Send + Sync + 'static) -> Self {
        Lease {
            held,
            _release: Box::new(release),
        }
    }

    /// Whether this endpoint holds the lease now.
    pub fn is_held(&self) -> bool {
        *self.held.borrow()
    }

    /// Waits until holding the lease is `held`; `false` once the bus can
    /// never give it any more (the endpoint closed).
    pub async fn until(&mut self, held: bool) -> bool {
        self.held.wait_for(|h| *h == held).await.is_ok()
    }
}

/// A message bus: opens one endpoint per agent.
pub trait Bus: Send + Sync + 'static {
    /// Declares the agent's identity, fanout and control queues and starts
    /// consuming them. Fails with [`crate::Error::IdentityInUse`] when the identity is taken.
    fn open<'a>(&'a self, identity: &'a str, options: &'a EndpointOptions) -> BoxFuture<'a, Result<Opened>>;

    /// A description of the bus for logs, with any password redacted.
    fn describe(&self) -> String;

    /// Declares and consumes munggoggo 0.4's method queues of `methods` for
    /// agent `identity` (aio-pika's RPC pattern, see [`crate::pyrpc`]); the
    /// stream's deliveries are calls. `None`: this bus has no such queues
    /// (the embedded bus). Dropping the stream stops consuming.
    fn expose<'a>(
        &'a self,
        identity: &'a str,
        methods: &'a [String],
        prefetch: u16,
    ) -> BoxFuture<'a, Result<Option<Consumer>>> {
        let _ = (identity, methods, prefetch);
        Box::pin(async { Ok(None) })
    }

    /// Closes the bus's connections once its runtime has stopped every
    /// agent (see [`crate::RuntimeHandle::shutdown`]); endpoints cannot be
    /// opened afterwards. Nothing to do on a bus without connections.
    fn close(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async { Ok(()) })
    }
}

/// One agent's connection to the bus.
pub trait Endpoint: Send + Sync + 'static {
    /// Publishes a message: ready once the message is on its way (waiting
    /// for a place in the window of outstanding confirms), with its
    /// [`Confirm`]. A direct send to an identity no queue has fails with
    /// [`crate::Error::UnknownTarget`], at once or through its confirm.
    fn publish(&self, msg: Outgoing) -> BoxFuture<'_, Result<Confirm>>;

    /// Publishes at once when the bus never waits (the embedded bus), as
    /// [`Endpoint::publish`] would, without a boxed future per message;
    /// `Err` gives the message back to be published with
    /// [`Endpoint::publish`].
    fn publish_now(&self, msg: Outgoing) -> std::result::Result<Result<Confirm>, Outgoing> {
        Err(msg)
    }

    /// Declares a topic subscription queue with its binding keys and starts
    /// consuming it; a `shared` queue has competing consumers (the
    /// replicas of a group), an unshared one only this endpoint's.
    fn subscribe<'a>(
        &'a self,
        queue: &'a str,
        binding_keys: &'a [&'a str],
        shared: bool,
    ) -> BoxFuture<'a, Result<Consumer>>;

    /// Stops consuming a topic subscription queue and deletes it (a shared
    /// one only once no other endpoint consumes it); its consumer ends.
    fn unsubscribe<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<()>>;

    /// Asks for the lease `name`: of all the endpoints, in any process,
    /// that ask for it, one holds it at a time; when the holder lets it go
    /// (drops its [`Lease`]), stops or loses its connection, the next one
    /// gets it. On RabbitMQ a lease is a single-active-consumer queue with
    /// one token message that its active consumer holds unacknowledged.
    fn lease<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Lease>>;

    /// Deletes the agent's queues; every consumer ends.
    fn close(&self) -> BoxFuture<'_, Result<()>>;

    /// The user the bus logged in as, which a message's `user_id` must
    /// name (`None` on buses without users).
    fn user(&self) -> Option<&str> {
        None
    }

    /// Whether every agent of the bus lives in this process (the embedded
    /// bus): a call of another agent of the runtime then goes straight to
    /// its task, without encoding it as a request and its reply.
    fn in_process(&self) -> bool {
        false
    }

    /// A fresh `message_id` for a message published without one.
    fn message_id(&self) -> crate::message::SmolStr {
        crate::message::message_id()
    }

    /// Why the endpoint's queues ended while it was open, if they did for
    /// a reason the agent must report: [`Error::IdentityInUse`] when
    /// another connection took them while it was reconnecting.
    fn lost(&self) -> Option<Error> {
        None
    }

    /// Whether the bus keeps dead letters in
    /// [`crate::bus::dead_letter::DEAD_LETTER_QUEUE`] (RabbitMQ does; on the
    /// embedded bus a rejected message stays in the trace store only).
    fn keeps_dead_letters(&self) -> bool {
        false
    }
}

/// The URL with its password replaced by `***`, for messages and logs.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}
