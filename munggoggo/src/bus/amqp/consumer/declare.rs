//! Declaring a unit's queues: building a unit on a fresh channel (declare,
//! bind, consume), what a failed first build says, deleting the queues a
//! unit leaves, and the queue specs with their AMQP arguments.

use std::collections::HashMap;

use crate::bus::amqp::channels::{Seat, Setup};
use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};

use super::{close_quietly, discard, BuildError, Closing, QueueSpec, Spec, Step, PRECONDITION_FAILED};
use crate::bus::amqp::convert::short;
use crate::bus::amqp::QueueType;
use crate::bus::amqp::{is_reply_code, lapin_error};
use crate::bus::Source;
use crate::error::{Error, Result};

impl Spec {
    pub(super) fn queue_names(&self) -> String {
        self.queues
            .iter()
            .map(|q| q.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The consuming connection.
    pub(super) fn link(&self) -> &std::sync::Arc<crate::bus::amqp::link::Link> {
        self.channels.link()
    }

    /// [`Spec::build`] within [`BUILD_TIMEOUT`].
    pub(super) async fn build_within(
        &self,
    ) -> std::result::Result<(Seat, HashMap<ShortString, lapin::Consumer>), BuildError> {
        match tokio::time::timeout(BUILD_TIMEOUT, self.build()).await {
            Ok(built) => built,
            Err(_) => Err(BuildError {
                error: std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("the broker did not answer within {BUILD_TIMEOUT:?}"),
                )
                .into(),
                queue: None,
                declared: Vec::new(),
                channel: None,
            }),
        }
    }

    /// Declares and binds everything on a setup channel, then consumes on
    /// a shared channel: the unit's seat and a consumer per queue.
    pub(super) async fn build(
        &self,
    ) -> std::result::Result<(Seat, HashMap<ShortString, lapin::Consumer>), BuildError> {
        let mut declared = Vec::new();
        let channel = self.channels.setup().await.map_err(|error| BuildError {
            error,
            queue: None,
            declared: Vec::new(),
            channel: None,
        })?;
        macro_rules! step {
            ($op:expr, $queue:expr) => {
                match $op.await {
                    Ok(value) => value,
                    Err(error) => {
                        return Err(BuildError {
                            error,
                            queue: $queue,
                            declared,
                            channel: Some(channel.into_inner()),
                        })
                    }
                }
            };
        }
        for (name, kind, auto_delete) in &self.exchanges {
            let options = ExchangeDeclareOptions {
                auto_delete: *auto_delete,
                ..ExchangeDeclareOptions::default()
            };
            step!(
                channel.exchange_declare((*name).into(), kind.clone(), options, FieldTable::default()),
                None
            );
        }
        for queue in &self.queues {
            let options = QueueDeclareOptions {
                durable: queue.durable,
                auto_delete: queue.auto_delete,
                ..QueueDeclareOptions::default()
            };
            let state = step!(
                channel.queue_declare(queue.name.clone(), options, queue.arguments.clone()),
                Some((queue.name.clone(), Step::Declare))
            );
            declared.push(queue.name.clone());
            if queue.exclusive_consumer
                && queue.queue_type() == QueueType::Classic
                && state.consumer_count() > 0
            {
                // Another connection's exclusive consumer holds it: the
                // broker would refuse ours with a channel error, which on a
                // shared channel would take other agents' consumers down.
                // (A claimant that consumes between this look and our
                // consume still gets the refusal; the units on the channel
                // then rebuild elsewhere.)
                channel.done();
                return Err(BuildError {
                    error: held_elsewhere(&queue.name),
                    queue: Some((queue.name.clone(), Step::Consume)),
                    declared,
                    channel: None,
                });
            }
            for (exchange, key) in &queue.bindings {
                step!(
                    channel.queue_bind(
                        queue.name.clone(),
                        (*exchange).into(),
                        key.clone(),
                        QueueBindOptions::default(),
                        FieldTable::default()
                    ),
                    None
                );
            }
        }
        channel.done();
        let tags: Vec<ShortString> = self.queues.iter().map(|q| q.tag.clone()).collect();
        let seat = self.channels.seat(&tags).await.map_err(|error| BuildError {
            error,
            queue: None,
            declared: declared.clone(),
            channel: None,
        })?;
        let mut consumers = HashMap::new();
        for queue in &self.queues {
            let consumed = seat
                .consume(
                    queue.name.clone(),
                    queue.tag.clone(),
                    queue.exclusive_consumer,
                    self.prefetch,
                )
                .await;
            match consumed {
                Ok(consumer) => {
                    consumers.insert(queue.name.clone(), consumer);
                }
                Err(error) => {
                    for (_, consumer) in consumers.drain() {
                        discard(consumer, seat.channel());
                    }
                    // The broker closed the shared channel (a refused
                    // consume): its units rebuild, this one included.
                    return Err(BuildError {
                        error,
                        queue: Some((queue.name.clone(), Step::Consume)),
                        declared,
                        channel: None,
                    });
                }
            }
        }
        Ok((seat, consumers))
    }

    /// Cleans up after a failed first build and says why it failed.
    pub(super) async fn fail_open(&self, failure: BuildError) -> Error {
        let held = failure.held_elsewhere();
        let BuildError {
            error,
            queue,
            declared,
            channel,
        } = failure;
        if let Some(channel) = &channel {
            close_quietly(channel, &self.identity).await;
        }
        // Only what this open left unconsumed: the queues may be another
        // process's (deleting them would cancel its consumers), or hold
        // messages for this identity.
        self.delete_queues(&declared, Closing::Abandon).await;
        match queue {
            Some(_) if held && self.mailbox => Error::IdentityInUse(self.identity.to_string()),
            Some((queue, Step::Declare)) if held => Error::bus(format!(
                "queue `{queue}` of agent `{}` is held by another connection (RESOURCE_LOCKED); \
                 a munggoggo 0.4 agent may have left it behind: delete it with `rabbitmqctl delete_queue {queue}`",
                self.identity
            )),
            Some((queue, Step::Consume)) if held => Error::bus(format!(
                "queue `{queue}` of agent `{}` is consumed by another connection",
                self.identity
            )),
            Some((queue, Step::Declare)) if is_reply_code(&error, PRECONDITION_FAILED) => {
                let queue_type = self
                    .queues
                    .iter()
                    .find(|q| q.name == queue)
                    .map_or(QueueType::Classic, QueueSpec::queue_type);
                let other = match queue_type {
                    QueueType::Quorum => QueueType::Classic,
                    _ => QueueType::Quorum,
                };
                // A type change shows as either argument, whichever the
                // broker compares first.
                let text = error.to_string();
                let changed = if text.contains("x-queue-type") || text.contains("x-single-active-consumer") {
                    format!(
                        "it was declared as a {other} queue and the bus declares {queue_type} queues (the \
                         option queue_type={queue_type})"
                    )
                } else {
                    format!(
                        "the bus declares it as a {queue_type} queue with other settings (queue_type, durable \
                         mode, maximum length or expiry changed?)"
                    )
                };
                Error::Bus {
                    reason: format!(
                        "queue `{queue}` of agent `{}` exists with other settings: {changed}; it keeps its \
                         messages until deleted: `rabbitmqctl delete_queue {queue}`",
                        self.identity
                    ),
                    source: Some(Box::new(error)),
                }
            }
            _ => lapin_error(
                error,
                &format!("cannot set up queues {} of agent `{}`", self.queue_names(), self.identity),
            ),
        }
    }

    /// Deletes queues on a short-lived channel each (a refused delete
    /// closes its channel). With [`Closing::KeepBacklog`] only queues that
    /// are empty and unconsumed go, with [`Closing::Abandon`] only
    /// unconsumed ones (see [`Keep`]); the others are logged with what they
    /// keep.
    pub(super) async fn delete_queues(&self, queues: &[ShortString], closing: Closing) {
        // A setup channel, taken again only after the broker closed one
        // (a refused conditional delete, a queue already gone).
        let mut open: Option<Setup<'_>> = None;
        for queue in queues {
            let own = self.queues.iter().find(|q| q.name == *queue).map(|q| q.on_stop);
            let shared = self.queues.iter().any(|q| q.name == *queue && q.shared);
            let mut keep = Keep::of(closing, own);
            // Another replica may consume it.
            keep.consumers |= shared;
            let quorum = self
                .queues
                .iter()
                .any(|q| q.name == *queue && q.queue_type() == QueueType::Quorum);
            if quorum && keep.any() {
                // RabbitMQ refuses if-empty and if-unused deletes of a quorum
                // queue with a connection error, and a look before an
                // unconditional delete could lose a message confirmed in
                // between: the queue stays until it expires unused.
                tracing::debug!(
                    agent = %self.identity,
                    queue = %queue,
                    expires = %self.expiry.map_or("never".to_owned(), |d| humantime::format_duration(d).to_string()),
                    "a quorum queue stays until it expires unused"
                );
                continue;
            }
            let channel = match open.take().filter(|c| c.status().connected()) {
                Some(channel) => channel,
                None => match self.open_for_deletes().await {
                    Ok(channel) => channel,
                    Err(e) => {
                        // The next queue may fare better: the connection
                        // may be back.
                        tracing::warn!(agent = %self.identity, queue = %queue, error = %e, "cannot delete the queue; it expires unused");
                        continue;
                    }
                },
            };
            if keep.any() {
                // Looked at first: a refused conditional delete would close
                // the channel, which lapin logs as an error.
                let passive = QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                };
                match within(channel.queue_declare(queue.clone(), passive, FieldTable::default())).await {
                    Ok(state)
                        if keep.consumers
                            && state.consumer_count() > 0
                            && (closing == Closing::Abandon || shared) =>
                    {
                        tracing::debug!(
                            agent = %self.identity,
                            queue = %queue,
                            consumers = state.consumer_count(),
                            "another connection (or replica) consumes the queue; it is left alone"
                        );
                        open = Some(channel);
                        continue;
                    }
                    Ok(state)
                        if (keep.messages && state.message_count() > 0)
                            || (keep.consumers && state.consumer_count() > 0) =>
                    {
                        tracing::info!(
                            agent = %self.identity,
                            queue = %queue,
                            messages = state.message_count(),
                            consumers = state.consumer_count(),
                            expires = %self.expiry.map_or("never".to_owned(), |d| humantime::format_duration(d).to_string()),
                            "the queue stays, with its messages for the agent's next start"
                        );
                        open = Some(channel);
                        continue;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        // The broker closed the channel (404): the next
                        // queue opens another.
                        tracing::debug!(agent = %self.identity, queue = %queue, error = %e, "the queue is gone already");
                        continue;
                    }
                }
            }
            // Conditional on the broker's side too: a consumer or a message
            // may arrive between the look and the delete.
            let options = QueueDeleteOptions {
                if_empty: keep.messages,
                if_unused: keep.consumers,
                ..QueueDeleteOptions::default()
            };
            match within(channel.queue_delete(queue.clone(), options)).await {
                Ok(_) => open = Some(channel),
                Err(e) if keep.any() && is_reply_code(&e, PRECONDITION_FAILED) => {
                    tracing::info!(agent = %self.identity, queue = %queue, "the queue got a message or a consumer meanwhile; it stays");
                }
                Err(e) => {
                    tracing::warn!(agent = %self.identity, queue = %queue, error = %e, "cannot delete the queue")
                }
            }
        }
        if let Some(channel) = open {
            channel.done();
        }
    }

    /// A setup channel for deleting queues: opening one may fail while the
    /// connection is at its channel limit or being replaced, so a failure
    /// is retried a few times with backoff (about 3 s in all) before the
    /// queue is given up to its expiry.
    async fn open_for_deletes(&self) -> lapin::Result<Setup<'_>> {
        let mut delay = std::time::Duration::from_millis(50);
        let mut attempt = 1;
        loop {
            match self.channels.setup().await {
                Ok(channel) => return Ok(channel),
                Err(e) if attempt >= DELETE_CHANNEL_ATTEMPTS || self.link().is_closed() => return Err(e),
                Err(e) => {
                    tracing::debug!(agent = %self.identity, attempt, error = %e, "no channel to delete queues with yet; retrying");
                }
            }
            tokio::time::sleep(delay).await;
            delay *= 2;
            attempt += 1;
        }
    }
}

/// How long building a unit may take. lapin 4.12 can leave a request on a
/// connection that died unanswered for good (see `channels::OPEN_TIMEOUT`);
/// past this the build fails and is tried again on the current connection.
const BUILD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A request to the broker within `channels::OPEN_TIMEOUT` (see there).
async fn within<T>(request: impl std::future::Future<Output = lapin::Result<T>>) -> lapin::Result<T> {
    let limit = crate::bus::amqp::channels::OPEN_TIMEOUT;
    match tokio::time::timeout(limit, request).await {
        Ok(answer) => answer,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("the broker did not answer within {limit:?}"),
        )
        .into()),
    }
}

/// Attempts at opening a channel to delete queues with (50 ms, doubling).
const DELETE_CHANNEL_ATTEMPTS: u32 = 6;

/// The error a consume meeting another connection's exclusive consumer
/// would get: ACCESS_REFUSED.
fn held_elsewhere(queue: &ShortString) -> lapin::Error {
    use lapin::protocol::{AMQPError, AMQPErrorKind, AMQPSoftError};
    lapin::ErrorKind::ProtocolError(AMQPError::new(
        AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED),
        format!("queue '{queue}' has an exclusive consumer on another connection").into(),
    ))
    .into()
}

/// What deleting a queue must leave alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Keep {
    /// A queue with messages stays.
    messages: bool,
    /// A queue with a consumer stays.
    consumers: bool,
}

impl Keep {
    /// For a queue whose own rule is `own` (`None`: not one of the unit's
    /// queues), closed as `closing` says. A queue whose own rule is to go
    /// (the control and fanout queues: nobody waits for what they hold)
    /// goes outright when its agent stops; after a failed open it goes
    /// only if nobody consumes it, since it may be the running holder's.
    fn of(closing: Closing, own: Option<Closing>) -> Keep {
        let (messages, consumers) = match (closing, own) {
            (Closing::Delete, _) | (Closing::KeepBacklog, Some(Closing::Delete)) => (false, false),
            (Closing::Abandon, Some(Closing::Delete)) => (false, true),
            (Closing::KeepBacklog | Closing::Abandon, _) => (true, true),
        };
        Keep { messages, consumers }
    }

    fn any(self) -> bool {
        self.messages || self.consumers
    }
}

/// The argument that lets one consumer of a queue receive at a time.
const SINGLE_ACTIVE_CONSUMER: &str = "x-single-active-consumer";

/// A queue spec, checking that its names fit AMQP.
pub(in crate::bus::amqp) fn queue_spec(
    name: &str,
    source: Source,
    bindings: &[(&'static str, &str)],
    max_len: Option<usize>,
    options: &crate::bus::amqp::AmqpOptions,
) -> Result<QueueSpec> {
    let mut arguments = FieldTable::default();
    if let Some(max_len) = max_len {
        let max_len = i64::try_from(max_len).unwrap_or(i64::MAX);
        arguments.insert("x-max-length".into(), AMQPValue::LongLongInt(max_len));
        arguments.insert(
            "x-overflow".into(),
            AMQPValue::LongString("reject-publish".into()),
        );
    }
    if let Some(expiry) = options.expiry() {
        let millis = i64::try_from(expiry.as_millis()).unwrap_or(i64::MAX).max(1);
        arguments.insert("x-expires".into(), AMQPValue::LongLongInt(millis));
    }
    // The queues that hold messages for the agent take the configured type.
    // Control and broadcast queues serve one running process: they stay
    // classic, and transient with quorum queues, so that when their node
    // goes the process declares them again on the node it moves to (a
    // durable classic queue is unusable until its node is back).
    let holds_messages = matches!(source, Source::Direct | Source::Topic(_));
    let quorum = holds_messages && options.queue_kind() == QueueType::Quorum;
    if quorum {
        arguments.insert(
            "x-queue-type".into(),
            AMQPValue::LongString(QueueType::Quorum.as_str().into()),
        );
        // RabbitMQ (3.10 at least) accepts a second exclusive consumer on a
        // quorum queue: a single active consumer keeps every other one
        // idle, and the agent's classic control queue, consumed
        // exclusively, refuses a second claimant of the identity.
        arguments.insert(SINGLE_ACTIVE_CONSUMER.into(), AMQPValue::Boolean(true));
    }
    let durable = if holds_messages {
        options.is_durable()
    } else {
        options.process_queues_durable()
    };
    let name = short("queue name", name)?;
    Ok(QueueSpec {
        tag: name.clone(),
        name,
        exclusive_consumer: true,
        shared: false,
        // Broadcasts, requests and replies are for a running agent: only
        // direct messages and subscriptions wait for its return.
        on_stop: match source {
            Source::Fanout | Source::Control => Closing::Delete,
            _ => Closing::KeepBacklog,
        },
        durable,
        auto_delete: false,
        source,
        arguments,
        bindings: bindings
            .iter()
            .map(|(exchange, key)| Ok((*exchange, short("binding key", key)?)))
            .collect::<Result<_>>()?,
    })
}

impl QueueSpec {
    /// The queue of a tool (the command line, a dashboard), whose identity
    /// never comes back: classic, transient and auto-delete (the broker
    /// deletes it when its consumer goes, even with a process killed), and
    /// deleted with what it holds when the tool stops (a late reply must
    /// not keep it).
    pub(in crate::bus::amqp) fn for_a_tool(mut self) -> Self {
        let mut arguments = self.arguments.inner().clone();
        arguments.retain(|key, _| !matches!(key.as_str(), "x-queue-type" | SINGLE_ACTIVE_CONSUMER));
        self.arguments = arguments.into();
        self.durable = false;
        self.auto_delete = true;
        self.on_stop = Closing::Delete;
        self
    }

    /// The queue's type, as its `x-queue-type` argument says.
    fn queue_type(&self) -> QueueType {
        match self.arguments.inner().get("x-queue-type") {
            Some(AMQPValue::LongString(kind)) if kind.to_string() == QueueType::Quorum.as_str() => {
                QueueType::Quorum
            }
            _ => QueueType::Classic,
        }
    }

    /// The queue shared by the replicas of a group, each consuming it
    /// under the tag `<replica>:<queue>` (unique on the replica's channel,
    /// where its own queues' tags are their names).
    pub(in crate::bus::amqp) fn shared_by(mut self, replica: &str) -> Result<Self> {
        self.exclusive_consumer = false;
        self.shared = true;
        // Replicas compete for its messages.
        let mut arguments = self.arguments.inner().clone();
        arguments.retain(|key, _| key.as_str() != SINGLE_ACTIVE_CONSUMER);
        self.arguments = arguments.into();
        self.tag = short("consumer tag", &format!("{replica}:{}", self.name))?;
        Ok(self)
    }
}

/// A method queue of munggoggo 0.4's RPC pattern, declared exactly as
/// aio-pika 6.8 declares it (non-durable, dead-lettered to `dlx`),
/// consumed round-robin with the agents and Python processes that expose
/// the same method.
pub(in crate::bus::amqp) fn method_queue_spec(method: &str, identity: &str, dlx: &str) -> Result<QueueSpec> {
    let mut arguments = FieldTable::default();
    arguments.insert("x-dead-letter-exchange".into(), AMQPValue::LongString(dlx.into()));
    Ok(QueueSpec {
        name: short("method name", method)?,
        tag: short("consumer tag", &format!("{identity}.{method}"))?,
        exclusive_consumer: false,
        shared: false,
        on_stop: Closing::KeepBacklog,
        durable: false,
        auto_delete: false,
        source: Source::Direct,
        bindings: Vec::new(),
        arguments,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::amqp::AmqpOptions;

    fn has(spec: &QueueSpec, key: &str) -> bool {
        spec.arguments.contains_key(key)
    }

    #[test]
    fn quorum_queues_hold_messages_and_control_queues_stay_classic_and_transient() {
        let quorum = AmqpOptions::default().queue_type(QueueType::Quorum);
        let direct = queue_spec("a", Source::Direct, &[], Some(10), &quorum).unwrap();
        assert_eq!(direct.queue_type(), QueueType::Quorum);
        assert!(direct.durable, "quorum queues are durable");
        assert!(has(&direct, "x-max-length") && has(&direct, "x-overflow") && has(&direct, "x-expires"));
        assert!(has(&direct, SINGLE_ACTIVE_CONSUMER), "one consumer at a time");
        let topic = queue_spec("t", Source::Topic("t".into()), &[], None, &quorum).unwrap();
        assert_eq!(topic.queue_type(), QueueType::Quorum);
        let shared = queue_spec("g", Source::Direct, &[], None, &quorum)
            .unwrap()
            .shared_by("g-1")
            .unwrap();
        assert_eq!(shared.queue_type(), QueueType::Quorum);
        assert!(!has(&shared, SINGLE_ACTIVE_CONSUMER), "replicas compete");
        for source in [Source::Control, Source::Fanout] {
            let spec = queue_spec("a.control", source, &[], Some(10), &quorum).unwrap();
            assert_eq!(spec.queue_type(), QueueType::Classic);
            assert!(!spec.durable && !has(&spec, "x-queue-type"));
        }

        let classic = AmqpOptions::default().durable(true);
        for source in [Source::Direct, Source::Control, Source::Fanout] {
            let spec = queue_spec("a", source, &[], None, &classic).unwrap();
            assert!(spec.durable && !has(&spec, "x-queue-type") && !has(&spec, SINGLE_ACTIVE_CONSUMER));
        }
    }
}
