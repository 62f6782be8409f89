//! The RabbitMQ bus (lapin), wire-compatible with munggoggo 0.4.
//!
//! One [`AmqpBus`] per process holds two connections, as RabbitMQ advises:
//! one for publishing and one for consuming, so that flow control on a busy
//! publisher never stalls deliveries; the bus replaces either when lost.
//! Agents share their channels ([`AmqpOptions::channel_share`], 32 by
//! default), so that a process holds thousands of agents within a
//! connection's `channel_max`: publish channels in confirm mode on the
//! publishing connection, each driven by one task for its agents; on the
//! consuming connection, channels that carry the consumers of many agents'
//! units (an agent's identity and fanout queues, its control queue, each
//! topic subscription), each consumer with its own prefetch
//! (`basic.qos(prefetch, global = false)`), while declarations and deletes
//! run on setup channels of their own, so that a refusal there never closes
//! a channel others consume on (`channels.rs` says how sharing keeps every
//! guarantee of a channel per agent). Queues carry `x-max-length` with
//! `x-overflow = reject-publish` ([`EndpointOptions::max_queue`]): a send
//! past it is nacked and fails with [`Error::QueueFull`].
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
//! publishes persistent messages, which survive a broker restart. On a
//! cluster, [`AmqpOptions::queue_type`] makes the identity, subscription
//! and group queues quorum queues (replicated over the nodes; a single
//! active consumer, since RabbitMQ does not enforce an exclusive consumer
//! on them, and the control queue's exclusive consumer guards the
//! identity); control and broadcast queues stay classic and transient.
//!
//! Publishing waits for the broker's confirm. A direct send is `mandatory`,
//! gets a `message_id` if it has none, and fails with
//! [`Error::UnknownTarget`] when no queue has the identity; broadcasts and
//! topic publications that reach nobody succeed. Messages carry `user_id`
//! only when the caller sets it, and then it must be the login user
//! (RabbitMQ would close the channel otherwise).
//!
//! Recovery: the bus replaces a lost connection with a new one, with
//! backoff, for as long as it is open (`link.rs`); every consumer unit and
//! publish channel is rebuilt on the new connection by its own
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

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::{
    control_queue, group_fanout_queue, redact, Bus, Consumer, EndpointOptions, Opened, Source,
    FANOUT_EXCHANGE,
};
use crate::bus::topic::NearMisses;
use crate::error::{Error, Result};
use crate::future::BoxFuture;

mod channels;
mod connect;
mod consumer;
mod convert;
mod dead_letters;
mod endpoint;
mod error;
mod exposed;
mod guard;
mod lease;
mod link;
mod nodes;
mod options;
mod publisher;
mod quiet;
mod rounds;
mod settle;

use consumer::queue_spec;
use endpoint::open_endpoint;
use error::{is_reply_code, lapin_error};
use link::Link;
pub use settle::AmqpAcker;
pub(crate) use settle::{ack, reject, release};

/// The frame guard's invariant checks, for the fuzz targets of `fuzz/`.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub use guard::fuzz as __fuzz;
pub use guard::repaired_frames;
pub use options::{AmqpOptions, QueueType, DEFAULT_CHANNEL_SHARE, DEFAULT_QUEUE_EXPIRY};

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
    /// The consuming connection's channels, shared by the agents.
    channels: Arc<channels::Channels>,
    /// The publish channels, shared by the agents.
    publishers: Arc<publisher::Publishers>,
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
    /// The queues this process's endpoints consume: exclusively (0) or
    /// shared by that many replicas.
    queues: Mutex<HashMap<String, usize>>,
    /// The binding keys of this process's subscriptions, with their
    /// queues: what a topic publication is compared with for a
    /// [`NearMisses`] hint (the broker does not say whom it reached).
    bindings: Mutex<Vec<(String, String)>>,
    near_misses: NearMisses,
}

impl BusInner {
    fn queues(&self) -> MutexGuard<'_, HashMap<String, usize>> {
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Claims queue names for an endpoint, all or none.
    fn claim(&self, names: &[&str]) -> bool {
        self.claim_all(names, &[]).is_ok()
    }

    /// Claims `own` for one endpoint and a share of `shared` (a replica's
    /// group queues), all or none; fails with what holds a taken name.
    fn claim_all(&self, own: &[&str], shared: &[&str]) -> Result<()> {
        let mut queues = self.queues();
        for name in own {
            match queues.get(*name) {
                Some(0) => return Err(Error::IdentityInUse((*name).to_owned())),
                Some(_) => return Err(Error::identity_kind(name, true)),
                None => {}
            }
        }
        for name in shared {
            if queues.get(*name) == Some(&0) {
                return Err(Error::identity_kind(name, false));
            }
        }
        queues.extend(own.iter().map(|n| ((*n).to_owned(), 0)));
        for name in shared {
            *queues.entry((*name).to_owned()).or_insert(0) += 1;
        }
        Ok(())
    }

    /// Lets go of one endpoint's claims on queue names (and of their
    /// binding keys, once nobody claims them).
    fn release(&self, names: &[&str]) {
        let mut queues = self.queues();
        let mut gone = Vec::with_capacity(names.len());
        for name in names {
            match queues.get_mut(*name) {
                Some(shared) if *shared > 1 => *shared -= 1,
                _ => {
                    queues.remove(*name);
                    gone.push(*name);
                }
            }
        }
        drop(queues);
        self.bindings_mut()
            .retain(|(_, queue)| !gone.contains(&queue.as_str()));
    }

    fn bindings_mut(&self) -> MutexGuard<'_, Vec<(String, String)>> {
        self.bindings.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records the binding keys of a subscription queue (until released).
    fn bind(&self, queue: &str, keys: &[&str]) {
        self.bindings_mut()
            .extend(keys.iter().map(|key| ((*key).to_owned(), queue.to_owned())));
    }

    /// Looks at a topic publication once per routing key (see
    /// [`NearMisses`]).
    fn look_at_topic(&self, routing_key: &str, publisher: Option<&str>) {
        if !self.near_misses.first_time(routing_key) {
            return;
        }
        let bindings = self.bindings_mut();
        crate::bus::topic::hint(
            routing_key,
            publisher,
            bindings.iter().map(|(key, queue)| (key.as_str(), queue.as_str())),
        );
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
        options::require_tls(url, &shown, cfg!(feature = "tls"))?;
        let (options, url) = options.take_from_url(url, &shown)?;
        let url = url.as_str();
        let tls = lapin::tcp::OwnedTLSConfig {
            identity: None,
            cert_chain: options.ca_pem()?,
        };
        let mut nodes = nodes::parse(url, &shown)?;
        if options.shuffles_nodes() {
            fastrand::shuffle(&mut nodes);
        }
        let user = nodes[0].uri.authority.userinfo.username.clone();
        let publishing = Link::open(&nodes, &shown, "publish", &tls).await?;
        let consuming = match Link::open(&nodes, &shown, "consume", &tls).await {
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
                channels: Arc::new(channels::Channels::new(
                    Arc::clone(&consuming),
                    options.channel_sharing(),
                )),
                publishers: Arc::new(publisher::Publishers::new(
                    Arc::clone(&publishing),
                    publisher::Wire {
                        user: user.clone(),
                        durable: options.is_durable(),
                    },
                    options.channel_sharing(),
                )),
                publishing,
                consuming,
                url: shown,
                user,
                options,
                dead_letters,
                queues: Mutex::new(HashMap::new()),
                bindings: Mutex::new(Vec::new()),
                near_misses: NearMisses::default(),
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
    fn close(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(AmqpBus::close(self))
    }

    fn open<'a>(&'a self, identity: &'a str, options: &'a EndpointOptions) -> BoxFuture<'a, Result<Opened>> {
        Box::pin(async move {
            let fanout = format!("{identity}.fanout");
            let control = control_queue(identity);
            // A tool (the command line, a dashboard) never comes back under
            // its identity: its queues go with it.
            let tool = crate::protocol::is_tool(identity);
            let spec = |name: &str, source: Source, bindings: &[(&'static str, &str)]| {
                let spec = queue_spec(name, source, bindings, options.max_queue, &self.inner.options)?;
                Ok::<_, Error>(if tool { spec.for_a_tool() } else { spec })
            };
            let fanout_spec = spec(&fanout, Source::Fanout, &[(FANOUT_EXCHANGE, FANOUT_EXCHANGE)])?;
            let mut controls = vec![spec(&control, Source::Control, &[])?];
            // A replica consumes its group's identity and control queues
            // with the other replicas, its broadcasts and replies apart.
            let (mailbox, own, shared) = match options.group.as_deref() {
                None => (
                    vec![spec(identity, Source::Direct, &[])?, fanout_spec],
                    vec![identity.to_owned(), fanout.clone(), control.clone()],
                    Vec::new(),
                ),
                Some(group) => {
                    let group_control = control_queue(group);
                    controls.push(spec(&group_control, Source::Control, &[])?.shared_by(identity)?);
                    // Broadcasts handled once per group come from a fanout
                    // queue the replicas share.
                    let group_fanout = group_fanout_queue(group);
                    let group_fanout_spec = spec(
                        &group_fanout,
                        Source::Topic(group_fanout.as_str().into()),
                        &[(FANOUT_EXCHANGE, FANOUT_EXCHANGE)],
                    )?
                    .shared_by(identity)?;
                    (
                        vec![
                            spec(group, Source::Direct, &[])?.shared_by(identity)?,
                            // Addressable on its own too, by its replica name.
                            spec(identity, Source::Direct, &[])?,
                            fanout_spec,
                            group_fanout_spec,
                        ],
                        vec![identity.to_owned(), fanout.clone(), control.clone()],
                        vec![group.to_owned(), group_control, group_fanout],
                    )
                }
            };
            fn as_str(names: &[String]) -> Vec<&str> {
                names.iter().map(String::as_str).collect()
            }
            self.inner.claim_all(&as_str(&own), &as_str(&shared))?;
            let names: Vec<String> = own.into_iter().chain(shared).collect();
            let opened =
                open_endpoint(&self.inner, identity, options, mailbox, controls, names.clone()).await;
            if opened.is_err() {
                self.inner.release(&as_str(&names));
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
