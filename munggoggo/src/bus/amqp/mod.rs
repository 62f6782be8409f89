//! The RabbitMQ bus (lapin), wire-compatible with munggoggo 0.4.
//!
//! One [`AmqpBus`] per process holds two connections, as RabbitMQ advises:
//! one for publishing and one for consuming, so that flow control on a busy
//! publisher never stalls deliveries. Both use lapin's connection recovery.
//! Each agent gets its own channels: a publish channel in confirm mode on
//! the publishing connection, and on the consuming connection one channel
//! for its identity and fanout queues plus one per topic subscription, each
//! with `basic.qos(prefetch, global = false)` (prefetch per consumer) and
//! `x-max-length` with `x-overflow = reject-publish` on its queues
//! ([`EndpointOptions::max_queue`]): a send past it is nacked and fails with
//! [`Error::QueueFull`].
//!
//! Topology: the exchanges `topic` (topic) and `admin` (fanout),
//! non-durable and not auto-delete, as munggoggo 0.4 declares them; per
//! agent a queue named by its identity, a `<identity>.control` queue for
//! system requests and replies, a `<identity>.fanout` queue bound to
//! `admin` with key `admin`, and a queue per topic subscription bound to
//! `topic`; consumer tags are the queue names. The queues are not exclusive
//! but each has one exclusive consumer, so a second process claiming the
//! identity gets [`Error::IdentityInUse`] while messages queued for an agent
//! survive its lost connection and its restart; they expire unused after
//! [`AmqpOptions::queue_expiry`]. An endpoint that closes deletes the
//! queues it leaves empty (a subscription that ends deletes its queue).
//! Durable mode ([`AmqpOptions::durable`]) declares the queues durable and
//! publishes persistent messages, which survive a broker restart.
//!
//! Publishing waits for the broker's confirm. A direct send is `mandatory`,
//! gets a `message_id` if it has none, and fails with
//! [`Error::UnknownTarget`] when no queue has the identity; broadcasts and
//! topic publications that reach nobody succeed. Messages carry `user_id`
//! only when the caller sets it, and then it must be the login user
//! (RabbitMQ would close the channel otherwise).
//!
//! Recovery: the bus replaces a lost connection with a new one, with
//! backoff, for as long as it is open (`link.rs`); every channel (consumer
//! units, publishers) is rebuilt on the new connection by its own
//! supervisor: queues declared and bound again, consumers started again,
//! and the consumer streams carry on. A consumer the broker cancelled (its
//! queue was deleted) is rebuilt the same way.
//!
//! Poison messages: every byte from the broker passes a guard of ours
//! (`guard.rs`, hooked in by `connect.rs`) that repairs malformed frames
//! before lapin parses them, so that a message with a non-UTF-8 `type`
//! or header name, or headers nested thousands deep, reaches the agent as
//! bad input instead of killing the connection or the process
//! ([`repaired_frames`] counts them).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use lapin::options::{BasicAckOptions, BasicRejectOptions};
use lapin::uri::AMQPUri;
use lapin::{ErrorKind, ExchangeKind};

use super::{
    control_queue, redact, Bus, Confirm, Consumer, Endpoint, EndpointOptions, Opened, Outgoing, Route, Source,
};
use super::{FANOUT_EXCHANGE, TOPIC_EXCHANGE};
use crate::error::{Error, Result};
use crate::future::BoxFuture;

mod connect;
mod consumer;
mod convert;
mod dead_letters;
mod exposed;
mod guard;
mod link;
mod options;
mod publisher;
mod quiet;
mod rounds;

use consumer::{queue_spec, Closing, Spec, Unit};
use convert::short;
use link::Link;
use publisher::{Publish, Publisher, ReturnKey};

pub use guard::repaired_frames;
pub use options::{AmqpOptions, DEFAULT_QUEUE_EXPIRY};

/// First delay between attempts to reopen a channel.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Longest delay between attempts to reopen a channel or reconnect.
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// How long the first connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How often a unit's supervisor looks at its channel.
const CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// How long a channel may stay in lapin's recovery after its connection
/// is back before it counts as left behind and is rebuilt.
const STUCK_GRACE: Duration = Duration::from_secs(5);
/// How long closing waits for outstanding publisher confirms.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a closed endpoint keeps trying to delete queues that lapin's
/// recovery may still re-create.
const REAP_TIMEOUT: Duration = Duration::from_secs(600);

/// The RabbitMQ bus: two connections (publishing and consuming) shared by
/// every agent of the process. Cloning it gives another handle to the same
/// connections.
#[derive(Clone)]
pub struct AmqpBus {
    inner: Arc<BusInner>,
}

struct BusInner {
    publishing: Arc<Link>,
    consuming: Arc<Link>,
    /// The URL with its password redacted.
    url: String,
    /// The login user name.
    user: String,
    options: AmqpOptions,
    /// Whether the dead-letter queue could be declared.
    dead_letters: bool,
    /// Queue names the endpoints of this process hold. Exclusivity is per
    /// connection, so the broker does not stop two agents of this process
    /// from sharing a queue; this does.
    queues: Mutex<HashSet<String>>,
}

impl BusInner {
    fn queues(&self) -> MutexGuard<'_, HashSet<String>> {
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Claims queue names for an endpoint, all or none.
    fn claim(&self, names: &[&str]) -> bool {
        let mut queues = self.queues();
        if names.iter().any(|n| queues.contains(*n)) {
            return false;
        }
        queues.extend(names.iter().map(|n| (*n).to_owned()));
        true
    }

    fn release(&self, names: &[&str]) {
        let mut queues = self.queues();
        for name in names {
            queues.remove(*name);
        }
    }
}

impl fmt::Debug for AmqpBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmqpBus")
            .field("url", &self.inner.url)
            .finish_non_exhaustive()
    }
}

impl AmqpBus {
    /// Connects to the broker at `url` (`amqp://user:password@host:port/vhost`,
    /// or `amqps://...`), opening the publishing and the consuming
    /// connection. The URL's query may carry [`AmqpOptions`]
    /// (`?durable=true&queue_expiry=1h&cacertfile=/etc/ca.pem`). An
    /// unreachable broker, or one that refuses TCP or TLS, is
    /// [`Error::ConnectionLost`], a malformed URL [`Error::Config`];
    /// messages show the URL without its password.
    pub async fn connect(url: &str) -> Result<AmqpBus> {
        AmqpBus::connect_with(url, AmqpOptions::default()).await
    }

    /// [`connect`](Self::connect) with options; the URL's query parameters
    /// apply on top of them.
    pub async fn connect_with(url: &str, options: AmqpOptions) -> Result<AmqpBus> {
        let shown = redact(url);
        let (options, url) = options.take_from_url(url, &shown)?;
        let url = url.as_str();
        let tls = lapin::tcp::OwnedTLSConfig {
            identity: None,
            cert_chain: options.ca_pem()?,
        };
        let uri: AMQPUri = url.parse().map_err(|e: String| {
            Error::Config(format!(
                "invalid broker URL `{shown}`: {}",
                e.replace(url, &shown)
            ))
        })?;
        let user = uri.authority.userinfo.username.clone();
        reachable(&uri.authority.host, uri.authority.port)
            .await
            .map_err(|e| Error::ConnectionLost {
                reason: format!("cannot reach the broker at `{shown}`"),
                source: Some(Box::new(e)),
            })?;
        let publishing = Link::open(&uri, &shown, "publish", &tls).await?;
        let consuming = match Link::open(&uri, &shown, "consume", &tls).await {
            Ok(link) => link,
            Err(e) => {
                let _ = publishing.close().await;
                return Err(e);
            }
        };
        let dead_letters = options.keeps_dead_letters() && declare_dead_letters(&consuming).await;
        tracing::info!(url = %shown, user = %user, durable = options.is_durable(), "connected to RabbitMQ");
        Ok(AmqpBus {
            inner: Arc::new(BusInner {
                publishing,
                consuming,
                url: shown,
                user,
                options,
                dead_letters,
                queues: Mutex::new(HashSet::new()),
            }),
        })
    }

    /// The user name the bus logged in with.
    pub fn user(&self) -> &str {
        &self.inner.user
    }

    /// The options the bus runs with.
    pub fn options(&self) -> &AmqpOptions {
        &self.inner.options
    }

    /// Closes both connections. Close the endpoints first: their exclusive
    /// queues vanish with the connections anyway.
    pub async fn close(&self) -> Result<()> {
        let publishing = self.inner.publishing.close().await;
        let consuming = self.inner.consuming.close().await;
        publishing
            .and(consuming)
            .map_err(|e| lapin_error(e, &format!("closing the connections to `{}`", self.inner.url)))
    }
}

/// Declares the dead-letter queue; without it, agents reject what they
/// cannot handle as before (logged and traced).
async fn declare_dead_letters(link: &Link) -> bool {
    let declared = async {
        let channel = link.current().create_channel().await?;
        dead_letters::declare(&channel).await?;
        channel.close(200, "OK".into()).await
    }
    .await;
    if let Err(e) = &declared {
        tracing::warn!(
            queue = crate::bus::dead_letter::DEAD_LETTER_QUEUE,
            error = %e,
            "cannot declare the dead-letter queue; rejected messages are dropped (still logged and traced)"
        );
    }
    declared.is_ok()
}

/// Fails fast when nothing listens at the broker's address: with recovery
/// enabled, lapin would otherwise retry the first connection for minutes.
async fn reachable(host: &str, port: u16) -> std::io::Result<()> {
    let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
    let probe = tokio::task::spawn_blocking(move || {
        use std::net::{TcpStream, ToSocketAddrs};
        let mut last = std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "the host name resolves to no address",
        );
        for addr in (host.as_str(), port).to_socket_addrs()? {
            match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
                Ok(_) => return Ok(()),
                Err(e) => last = e,
            }
        }
        Err(last)
    });
    probe.await.map_err(std::io::Error::other)?
}

impl Bus for AmqpBus {
    fn open<'a>(&'a self, identity: &'a str, options: &'a EndpointOptions) -> BoxFuture<'a, Result<Opened>> {
        Box::pin(async move {
            let fanout = format!("{identity}.fanout");
            let control = control_queue(identity);
            let mailbox = vec![
                queue_spec(
                    identity,
                    Source::Direct,
                    &[],
                    options.max_queue,
                    &self.inner.options,
                )?,
                queue_spec(
                    &fanout,
                    Source::Fanout,
                    &[(FANOUT_EXCHANGE, FANOUT_EXCHANGE)],
                    options.max_queue,
                    &self.inner.options,
                )?,
            ];
            let control_spec = queue_spec(
                &control,
                Source::Control,
                &[],
                options.max_queue,
                &self.inner.options,
            )?;
            if !self.inner.claim(&[identity, &fanout, &control]) {
                return Err(Error::IdentityInUse(identity.to_owned()));
            }
            let opened = open_endpoint(&self.inner, identity, options, mailbox, control_spec).await;
            if opened.is_err() {
                self.inner.release(&[identity, &fanout, &control]);
            }
            opened
        })
    }

    fn describe(&self) -> String {
        self.inner.url.clone()
    }

    fn expose<'a>(
        &'a self,
        identity: &'a str,
        methods: &'a [String],
        prefetch: u16,
    ) -> BoxFuture<'a, Result<Option<Consumer>>> {
        Box::pin(async move { self.expose_methods(identity, methods, prefetch).await.map(Some) })
    }
}

async fn open_endpoint(
    bus: &Arc<BusInner>,
    identity: &str,
    options: &EndpointOptions,
    queues: Vec<consumer::QueueSpec>,
    control: consumer::QueueSpec,
) -> Result<Opened> {
    let identity: Arc<str> = identity.into();
    let exchanges = vec![
        (TOPIC_EXCHANGE, ExchangeKind::Topic, false),
        (FANOUT_EXCHANGE, ExchangeKind::Fanout, false),
    ];
    // The control queue first: once the identity queue exists, peers may
    // already send requests that are answered through it.
    let (control_unit, mut control_consumers) = Unit::open(Spec {
        link: Arc::clone(&bus.consuming),
        identity: Arc::clone(&identity),
        mailbox: true,
        prefetch: options.control_prefetch,
        exchanges: Vec::new(),
        queues: vec![control],
        expiry: bus.options.expiry(),
    })
    .await?;
    let spec = Spec {
        link: Arc::clone(&bus.consuming),
        identity: Arc::clone(&identity),
        mailbox: true,
        prefetch: options.prefetch,
        exchanges,
        queues,
        expiry: bus.options.expiry(),
    };
    let (mailbox, consumers) = match Unit::open(spec).await {
        Ok(opened) => opened,
        Err(e) => {
            let _ = control_unit.close(Closing::KeepBacklog).await;
            return Err(e);
        }
    };
    let publisher = match Publisher::open(
        Arc::clone(&bus.publishing),
        Arc::clone(&identity),
        options.publish_window,
        options.send_timeout,
    )
    .await
    {
        Ok(publisher) => publisher,
        Err(e) => {
            let _ = mailbox.close(Closing::KeepBacklog).await;
            let _ = control_unit.close(Closing::KeepBacklog).await;
            return Err(e);
        }
    };
    tracing::debug!(agent = %identity, "endpoint open");
    let control = control_consumers
        .pop()
        .ok_or_else(|| Error::bus(format!("no consumer for the control queue of `{identity}`")))?;
    let endpoint = AmqpEndpoint {
        bus: Arc::clone(bus),
        identity,
        prefetch: options.prefetch,
        max_queue: options.max_queue,
        publisher,
        mailbox,
        control: control_unit,
        subscriptions: Mutex::new(HashMap::new()),
        closed: AtomicBool::new(false),
    };
    Ok(Opened {
        endpoint: Arc::new(endpoint),
        control,
        mailbox: consumers,
    })
}

/// One agent's channels and queues.
struct AmqpEndpoint {
    bus: Arc<BusInner>,
    identity: Arc<str>,
    prefetch: u16,
    max_queue: Option<usize>,
    publisher: Publisher,
    mailbox: Arc<Unit>,
    control: Arc<Unit>,
    subscriptions: Mutex<HashMap<String, Arc<Unit>>>,
    closed: AtomicBool,
}

impl AmqpEndpoint {
    fn subscriptions(&self) -> MutexGuard<'_, HashMap<String, Arc<Unit>>> {
        self.subscriptions.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stopped(&self) -> Error {
        Error::AgentStopped(self.identity.to_string())
    }

    fn mailbox_names(&self) -> [String; 3] {
        [
            self.identity.to_string(),
            format!("{}.fanout", self.identity),
            control_queue(&self.identity),
        ]
    }

    fn prepare(&self, msg: Outgoing) -> Result<Publish> {
        let Outgoing {
            route,
            mut properties,
            body,
        } = msg;
        if let Some(user_id) = &properties.user_id {
            if *user_id != self.bus.user {
                return Err(Error::bus(format!(
                    "user_id `{user_id}` is not the login user `{}`; RabbitMQ would refuse the message",
                    self.bus.user
                )));
            }
        }
        let direct = match &route {
            Route::Direct(target) => {
                if properties.message_id.is_none() {
                    // Needed to recognise the message if the broker returns it.
                    Arc::make_mut(&mut properties).message_id =
                        Some(uuid::Uuid::new_v4().simple().to_string());
                }
                let message_id = properties.message_id.as_deref().unwrap_or_default();
                Some(ReturnKey {
                    target: short("identity", target)?,
                    message_id: short("message_id", message_id)?,
                })
            }
            Route::Fanout | Route::Topic(_) => None,
        };
        Ok(Publish {
            exchange: route.exchange().into(),
            routing_key: short("routing key", route.routing_key())?,
            properties: if self.bus.options.is_durable() {
                // Persistent, so that a durable queue keeps it through a broker restart.
                convert::to_amqp(&properties)?.with_delivery_mode(2)
            } else {
                convert::to_amqp(&properties)?
            },
            body,
            direct,
        })
    }
}

impl Endpoint for AmqpEndpoint {
    fn publish(&self, msg: Outgoing) -> BoxFuture<'_, Result<Confirm>> {
        let prepared = self.prepare(msg);
        Box::pin(async move { self.publisher.publish(prepared?).await })
    }

    fn subscribe<'a>(
        &'a self,
        queue: &'a str,
        binding_keys: &'a [&'a str],
    ) -> BoxFuture<'a, Result<Consumer>> {
        Box::pin(async move {
            if self.closed.load(Ordering::SeqCst) {
                return Err(self.stopped());
            }
            let bindings: Vec<(&'static str, &str)> =
                binding_keys.iter().map(|k| (TOPIC_EXCHANGE, *k)).collect();
            let spec = queue_spec(
                queue,
                Source::Topic(queue.into()),
                &bindings,
                self.max_queue,
                &self.bus.options,
            )?;
            if !self.bus.claim(&[queue]) {
                return Err(Error::bus(format!(
                    "queue `{queue}` is already in use by an agent of this process"
                )));
            }
            let opened = Unit::open(Spec {
                link: Arc::clone(&self.bus.consuming),
                identity: Arc::clone(&self.identity),
                mailbox: false,
                prefetch: self.prefetch,
                exchanges: vec![(TOPIC_EXCHANGE, ExchangeKind::Topic, false)],
                queues: vec![spec],
                expiry: self.bus.options.expiry(),
            })
            .await;
            let (unit, mut consumers) = match opened {
                Ok(opened) => opened,
                Err(e) => {
                    self.bus.release(&[queue]);
                    return Err(e);
                }
            };
            self.subscriptions().insert(queue.to_owned(), Arc::clone(&unit));
            if self.closed.load(Ordering::SeqCst) {
                // close() ran meanwhile and did not see this subscription.
                self.subscriptions().remove(queue);
                let _ = unit.close(Closing::KeepBacklog).await;
                self.bus.release(&[queue]);
                return Err(self.stopped());
            }
            tracing::debug!(agent = %self.identity, queue, keys = ?binding_keys, "subscribed");
            consumers
                .pop()
                .ok_or_else(|| Error::bus(format!("no consumer for queue `{queue}`")))
        })
    }

    fn keeps_dead_letters(&self) -> bool {
        self.bus.dead_letters
    }

    fn unsubscribe<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let unit = self.subscriptions().remove(queue);
            let Some(unit) = unit else {
                return Ok(());
            };
            let result = unit.close(Closing::Delete).await;
            self.bus.release(&[queue]);
            tracing::debug!(agent = %self.identity, queue, "unsubscribed");
            result
        })
    }

    fn close(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            if self.closed.swap(true, Ordering::SeqCst) {
                return Ok(());
            }
            self.publisher.close().await;
            let subscriptions: Vec<(String, Arc<Unit>)> = self.subscriptions().drain().collect();
            let mut result = self.mailbox.close(Closing::KeepBacklog).await;
            result = result.and(self.control.close(Closing::KeepBacklog).await);
            let [identity, fanout, control] = self.mailbox_names();
            self.bus.release(&[&identity, &fanout, &control]);
            for (queue, unit) in subscriptions {
                let closed = unit.close(Closing::KeepBacklog).await;
                self.bus.release(&[&queue]);
                result = result.and(closed);
            }
            tracing::debug!(agent = %self.identity, "endpoint closed");
            result
        })
    }

    fn user(&self) -> Option<&str> {
        Some(&self.bus.user)
    }
}

impl Drop for AmqpEndpoint {
    fn drop(&mut self) {
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        // Dropped without close(): delete the queues in the background.
        let mut units: Vec<(Option<String>, Arc<Unit>)> = vec![
            (None, Arc::clone(&self.mailbox)),
            (None, Arc::clone(&self.control)),
        ];
        units.extend(self.subscriptions().drain().map(|(q, u)| (Some(q), u)));
        let bus = Arc::clone(&self.bus);
        let [identity, fanout, control] = self.mailbox_names();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            for (queue, unit) in units {
                let _ = unit.close(Closing::KeepBacklog).await;
                if let Some(queue) = queue {
                    bus.release(&[&queue]);
                }
            }
            bus.release(&[&identity, &fanout, &control]);
        });
    }
}

/// How long settling a delivery may take. lapin 4.12 can leave the ack of
/// a delivery whose connection died unanswered for good (its recovery is
/// off, see `link.rs`), which would stall the agent's task; past this the
/// delivery counts as unsettled, and the broker delivers it again. (The fix
/// upstream: fail pending acks when their channel's connection is gone.)
const SETTLE_TIMEOUT: Duration = Duration::from_secs(5);

/// Settles a delivery within [`SETTLE_TIMEOUT`].
async fn settle(settling: impl std::future::Future<Output = lapin::Result<bool>>, what: &str) -> Result<()> {
    match tokio::time::timeout(SETTLE_TIMEOUT, settling).await {
        Ok(Ok(true)) => Ok(()),
        Ok(Ok(false)) | Err(_) => Err(unackable()),
        Ok(Err(e)) => Err(lapin_error(e, what)),
    }
}

/// Acknowledges a RabbitMQ delivery.
pub(crate) async fn ack(acker: lapin::Acker) -> Result<()> {
    settle(
        acker.ack(BasicAckOptions::default()),
        "acknowledging a delivery failed",
    )
    .await
}

/// Rejects a RabbitMQ delivery without requeueing it.
pub(crate) async fn reject(acker: lapin::Acker) -> Result<()> {
    settle(
        acker.reject(BasicRejectOptions { requeue: false }),
        "rejecting a delivery failed",
    )
    .await
}

/// Requeues a RabbitMQ delivery.
pub(crate) async fn release(acker: lapin::Acker) -> Result<()> {
    settle(
        acker.reject(BasicRejectOptions { requeue: true }),
        "requeueing a delivery failed",
    )
    .await
}

fn unackable() -> Error {
    Error::connection_lost(
        "the delivery's channel closed before it was settled; the broker delivers it again",
    )
}

/// Whether `error` is the broker's reply `code` (such as 405 RESOURCE_LOCKED).
fn is_reply_code(error: &lapin::Error, code: u16) -> bool {
    matches!(error.kind(), ErrorKind::ProtocolError(e) if e.get_id() == code)
}

/// Maps a lapin error, kept as the source: a lost connection or channel
/// is [`Error::ConnectionLost`], anything else [`Error::Bus`].
fn lapin_error(error: lapin::Error, context: &str) -> Error {
    let lost = matches!(
        error.kind(),
        ErrorKind::IOError(_)
            | ErrorKind::RuntimeShutdownError(_)
            | ErrorKind::InvalidConnectionState(_)
            | ErrorKind::InvalidChannelState(..)
            | ErrorKind::InvalidChannel(_)
            | ErrorKind::MissingHeartbeatError
    );
    let reason = context.to_owned();
    let source = Some(Box::new(error) as crate::error::BoxError);
    if lost {
        Error::ConnectionLost { reason, source }
    } else {
        Error::Bus { reason, source }
    }
}
