//! The message bus: the [`Bus`] and [`Endpoint`] traits that both the
//! embedded bus ([`memory`]) and RabbitMQ (`amqp`) implement.
//!
//! The topology is RabbitMQ's, as munggoggo 0.4 declares it: each agent has
//! an exclusive queue named by its identity (direct sends), an exclusive
//! queue bound to the `admin` fanout exchange (broadcasts), and one queue
//! per topic handler bound to the `topic` exchange with its binding keys.
//! Every delivery carries an acknowledgement handle: the runtime acks after
//! the handler returns and rejects (without requeue) what it cannot handle.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::BoxStream;

use crate::agent::BoxFuture;
use crate::error::Result;
use crate::message::{Properties, Received};

#[cfg(feature = "amqp")]
pub mod amqp;
pub mod memory;
mod topic;

pub use topic::{topic_matches, validate_binding_key};

/// The topic exchange of munggoggo 0.4.
pub const TOPIC_EXCHANGE: &str = "topic";
/// The fanout exchange of munggoggo 0.4.
pub const FANOUT_EXCHANGE: &str = "admin";

/// Where a message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// To the agent with this identity (default exchange).
    Direct(String),
    /// To every agent (the `admin` fanout exchange), the sender included.
    Fanout,
    /// To every subscription whose binding key matches this topic.
    Topic(String),
}

impl Route {
    /// The exchange the route publishes to.
    pub fn exchange(&self) -> &str {
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
}

/// A message delivered to one of an agent's queues.
pub struct Delivery {
    /// What was received.
    pub received: Received,
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
    /// A RabbitMQ delivery.
    #[cfg(feature = "amqp")]
    Amqp(lapin::Acker),
}

impl Acker {
    /// Acknowledges the delivery: it was handled.
    pub async fn ack(self) -> Result<()> {
        match self {
            Acker::None | Acker::Memory(_) => Ok(()),
            #[cfg(feature = "amqp")]
            Acker::Amqp(acker) => amqp::ack(acker).await,
        }
    }

    /// Rejects the delivery without requeueing it.
    pub async fn reject(self) -> Result<()> {
        match self {
            Acker::None | Acker::Memory(_) => Ok(()),
            #[cfg(feature = "amqp")]
            Acker::Amqp(acker) => amqp::reject(acker).await,
        }
    }
}

/// The deliveries of one queue.
pub type Consumer = BoxStream<'static, Delivery>;

/// What [`Bus::open`] gives: the agent's endpoint and the consumers of its
/// identity and fanout queues.
pub type Opened = (Arc<dyn Endpoint>, Vec<Consumer>);

/// Options for an agent's endpoint.
#[derive(Debug, Clone)]
pub struct EndpointOptions {
    /// Deliveries in flight per consumer.
    pub prefetch: u16,
    /// Maximum queue length (the embedded bus enforces it).
    pub max_queue: Option<usize>,
}

/// A message bus: opens one endpoint per agent.
pub trait Bus: Send + Sync + 'static {
    /// Declares the agent's identity and fanout queues and starts consuming
    /// them. Fails with [`crate::Error::IdentityInUse`] when the identity is taken.
    fn open<'a>(&'a self, identity: &'a str, options: &'a EndpointOptions) -> BoxFuture<'a, Result<Opened>>;

    /// A description of the bus for logs, with any password redacted.
    fn describe(&self) -> String;
}

/// One agent's connection to the bus.
pub trait Endpoint: Send + Sync + 'static {
    /// Publishes a message. A direct send to an identity no queue has fails
    /// with [`crate::Error::UnknownTarget`].
    fn publish(&self, msg: Outgoing) -> BoxFuture<'_, Result<()>>;

    /// Declares a topic subscription queue with its binding keys and starts
    /// consuming it.
    fn subscribe<'a>(
        &'a self,
        queue: &'a str,
        binding_keys: &'a [&'a str],
    ) -> BoxFuture<'a, Result<Consumer>>;

    /// Deletes a topic subscription queue; its consumer ends.
    fn unsubscribe<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<()>>;

    /// Deletes the agent's queues; every consumer ends.
    fn close(&self) -> BoxFuture<'_, Result<()>>;
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
