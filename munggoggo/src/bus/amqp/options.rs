//! Options of the RabbitMQ bus: set in code with [`AmqpOptions`], or as
//! query parameters of the broker URL (so `MUNGGOGGO_URL` and a config
//! file can carry them):
//!
//! | parameter | meaning | default |
//! |---|---|---|
//! | `durable=true` | durable queues and persistent messages: queued messages survive a broker restart | `false` |
//! | `queue_type=quorum` | agents' message queues are quorum queues, replicated over a cluster's nodes (implies `durable=true`); `classic` keeps them on one node | `classic` |
//! | `queue_expiry=30m` | how long an agent's queues outlive it unused (`never`: kept until deleted) | `30m` |
//! | `cacertfile=/path/ca.pem` | PEM certificates trusted for `amqps://`, beside the system's | none |
//! | `dead_letters=false` | reject what agents cannot handle without keeping it in `munggoggo.dead-letters` | `true` |
//! | `shuffle=true` | of a URL naming several nodes, try them in random order (spreads many processes over a cluster's nodes) | `false`: in the order given |
//! | `channel_share=32` | how many agents share a channel: consumers per consuming channel, agents per publish channel (`1`: a channel each) | `32` |
//! | `identity_grace=90s` | how long an agent reconnecting keeps trying for its identity held by another connection, before it stops as crashed with `IdentityInUse` | `90s` |
//!
//! The parameters are taken off the URL before lapin parses it; lapin's
//! own (`heartbeat`, `frame_max`, ...) pass through.

use std::path::PathBuf;
use std::time::Duration;

/// How many agents share a channel by default (see
/// [`AmqpOptions::channel_share`]).
pub const DEFAULT_CHANNEL_SHARE: usize = 32;

use crate::error::{Error, Result};

/// The default of [`AmqpOptions::identity_grace`]: longer than two
/// default heartbeats (60 s).
pub const DEFAULT_IDENTITY_GRACE: Duration = Duration::from_secs(90);

/// The default of [`AmqpOptions::queue_expiry`].
pub const DEFAULT_QUEUE_EXPIRY: Duration = Duration::from_secs(30 * 60);

/// The RabbitMQ queue type of the queues that hold messages for an agent
/// (its identity queue, its topic subscriptions, a replicated group's
/// shared queues); see [`AmqpOptions::queue_type`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum QueueType {
    /// Classic queues: on the node where they were declared.
    #[default]
    Classic,
    /// Quorum queues: replicated (Raft) over the cluster's nodes, so they
    /// and what they hold survive the loss of a minority of the nodes.
    Quorum,
}

impl QueueType {
    /// The value of the `x-queue-type` argument and the URL parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            QueueType::Classic => "classic",
            QueueType::Quorum => "quorum",
        }
    }
}

impl std::fmt::Display for QueueType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for QueueType {
    type Err = Error;

    fn from_str(text: &str) -> Result<QueueType> {
        match text {
            "classic" => Ok(QueueType::Classic),
            "quorum" => Ok(QueueType::Quorum),
            _ => Err(Error::Config(format!(
                "unknown queue type `{text}`: expected classic or quorum"
            ))),
        }
    }
}

/// How the RabbitMQ bus declares queues, publishes and connects.
///
/// ```
/// use std::time::Duration;
/// use munggoggo::bus::amqp::AmqpOptions;
///
/// let options = AmqpOptions::default().durable(true).queue_expiry(Some(Duration::from_secs(600)));
/// assert!(options.is_durable());
///
/// // On a cluster: quorum queues, which are durable.
/// use munggoggo::bus::amqp::QueueType;
/// assert!(AmqpOptions::default().queue_type(QueueType::Quorum).is_durable());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AmqpOptions {
    durable: bool,
    queue_type: QueueType,
    queue_expiry: Option<Duration>,
    ca_file: Option<PathBuf>,
    dead_letters: bool,
    identity_grace: Duration,
    shuffle: bool,
    channel_share: usize,
}

impl Default for AmqpOptions {
    fn default() -> Self {
        AmqpOptions {
            durable: false,
            queue_type: QueueType::Classic,
            queue_expiry: Some(DEFAULT_QUEUE_EXPIRY),
            ca_file: None,
            dead_letters: true,
            identity_grace: DEFAULT_IDENTITY_GRACE,
            shuffle: false,
            channel_share: DEFAULT_CHANNEL_SHARE,
        }
    }
}

impl AmqpOptions {
    /// Durable mode: agents' queues are declared durable and every message
    /// is published persistent (`delivery_mode` 2), so what the broker
    /// confirmed survives a broker restart. Costs a disk write per message
    /// (the README says how to measure it). The exchanges stay as munggoggo
    /// 0.4 declares them (transient); bindings are declared again after a
    /// restart.
    pub fn durable(mut self, durable: bool) -> Self {
        self.durable = durable;
        self
    }

    /// The type of the queues that hold messages for an agent: its
    /// identity queue, its topic subscriptions and a replicated group's
    /// shared queues. [`QueueType::Quorum`] replicates them over a
    /// cluster's nodes, so that they and what they hold survive a node
    /// being stopped or lost; quorum queues are always durable and keep
    /// every message on disk, so this implies [`AmqpOptions::durable`].
    /// They keep the length limit (`reject-publish`) and the expiry; they
    /// cannot be exclusive, which the agents' queues are not anyway (one
    /// exclusive consumer guards an identity).
    ///
    /// Control queues, broadcast (fanout) queues and singleton leases stay
    /// classic, and transient with quorum queues: they serve one running
    /// process, so when their node goes away they are declared again on
    /// the node the process moves to (a durable classic queue would be
    /// unusable until its node came back).
    ///
    /// A queue that exists with the other type cannot be declared again
    /// (the agent fails at start naming the queue and this option): delete
    /// it, or move its messages (shovel) first.
    pub fn queue_type(mut self, queue_type: QueueType) -> Self {
        self.queue_type = queue_type;
        self
    }

    /// See [`AmqpOptions::queue_type`].
    pub fn queue_kind(&self) -> QueueType {
        self.queue_type
    }

    /// Of a URL naming several nodes (`amqp://u:p@h1,h2,h3/vhost`), try
    /// them in a random order rather than the order given, so that many
    /// processes with one URL spread over a cluster's nodes instead of
    /// all connecting to the first. After a loss the link moves on to the
    /// next node of that order either way.
    pub fn shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }

    /// See [`AmqpOptions::shuffle`].
    pub fn shuffles_nodes(&self) -> bool {
        self.shuffle
    }

    /// How many agents share a channel (at least 1; default
    /// [`DEFAULT_CHANNEL_SHARE`]): on the consuming connection, how many
    /// consumer units (an agent's mailbox, its control queue, each topic
    /// subscription) consume on one channel, each with its own prefetch;
    /// on the publishing connection, how many agents publish through one
    /// channel in confirm mode. A connection allows `channel_max` channels
    /// (2047 by default), so sharing is what lets one process hold
    /// thousands of agents. `1` gives every unit and agent a channel of
    /// its own, as a channel error then touches only its owner.
    pub fn channel_share(mut self, share: usize) -> Self {
        self.channel_share = share.max(1);
        self
    }

    /// See [`AmqpOptions::channel_share`].
    pub fn channel_sharing(&self) -> usize {
        self.channel_share
    }

    /// Whether the queues that serve one running process (control,
    /// broadcast, lease) are durable: in durable mode with classic queues
    /// only (see [`AmqpOptions::queue_type`]).
    pub(super) fn process_queues_durable(&self) -> bool {
        self.durable && self.queue_type == QueueType::Classic
    }

    /// How long an agent's queues stay on the broker without a consumer
    /// (RabbitMQ's `x-expires`): an agent that restarts within it finds the
    /// messages sent meanwhile. `None`: kept until deleted. An agent that
    /// stops deletes its empty queues at once.
    pub fn queue_expiry(mut self, expiry: Option<Duration>) -> Self {
        self.queue_expiry = expiry;
        self
    }

    /// A PEM file of certificates to trust for `amqps://` beside the
    /// system's (a private CA).
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Whether agents keep what they reject as dead letters (see
    /// [`crate::bus::dead_letter`]); on by default.
    pub fn dead_letters(mut self, keep: bool) -> Self {
        self.dead_letters = keep;
        self
    }

    /// How long an agent that lost its connection keeps trying to consume
    /// its queues again while another connection holds them, before it
    /// gives its identity up and stops as `crashed` with
    /// [`Error::IdentityInUse`]. The broker keeps a dead connection's
    /// consumers until it notices (at once for a closed socket, two
    /// heartbeats for a silent one), so the default outlasts two default
    /// heartbeats; a deployment with a short `heartbeat` can shorten it.
    pub fn identity_grace(mut self, grace: Duration) -> Self {
        self.identity_grace = grace;
        self
    }

    /// See [`AmqpOptions::identity_grace`].
    pub fn identity_grace_period(&self) -> Duration {
        self.identity_grace
    }

    /// Whether dead letters are kept.
    pub fn keeps_dead_letters(&self) -> bool {
        self.dead_letters
    }

    /// Whether durable mode is on: set with [`AmqpOptions::durable`], or
    /// implied by quorum queues.
    pub fn is_durable(&self) -> bool {
        self.durable || self.queue_type == QueueType::Quorum
    }

    /// The queue expiry (`None`: never).
    pub fn expiry(&self) -> Option<Duration> {
        self.queue_expiry
    }

    /// The extra CA file, if any.
    pub fn ca(&self) -> Option<&std::path::Path> {
        self.ca_file.as_deref()
    }

    /// Takes this crate's query parameters off `url`, applying them on top
    /// of `self`; returns the URL lapin is to parse. `shown` is the URL
    /// without its password, for errors.
    pub(super) fn take_from_url(mut self, url: &str, shown: &str) -> Result<(Self, String)> {
        let Some((base, query)) = url.split_once('?') else {
            return Ok((self, url.to_owned()));
        };
        let mut rest = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let bad = |what: &str| {
                Error::Config(format!(
                    "invalid broker URL `{shown}`: query parameter `{key}={value}`: {what}"
                ))
            };
            let flag = || match value {
                "true" | "1" | "yes" => Ok(true),
                "false" | "0" | "no" => Ok(false),
                _ => Err(bad("expected true or false")),
            };
            match key {
                "durable" => self.durable = flag()?,
                "shuffle" => self.shuffle = flag()?,
                "channel_share" => {
                    self.channel_share = match value.parse::<usize>() {
                        Ok(n) if n >= 1 => n,
                        _ => return Err(bad("expected a whole number of at least 1")),
                    }
                }
                "dead_letters" => self.dead_letters = flag()?,
                "queue_type" => {
                    self.queue_type = value.parse().map_err(|_| bad("expected classic or quorum"))?
                }
                "identity_grace" => {
                    self.identity_grace = humantime::parse_duration(value)
                        .map_err(|e| bad(&format!("{e} (for example 90s or 5s)")))?
                }
                "queue_expiry" => {
                    self.queue_expiry = match value {
                        "never" => None,
                        text => match humantime::parse_duration(text) {
                            Ok(d) if d >= Duration::from_millis(1) => Some(d),
                            Ok(_) => return Err(bad("must be at least 1ms")),
                            Err(e) => return Err(bad(&format!("{e} (for example 30m, 2h or never)"))),
                        },
                    }
                }
                "cacertfile" => {
                    if value.is_empty() {
                        return Err(bad("expected a file path"));
                    }
                    let path = percent_encoding::percent_decode_str(value).decode_utf8_lossy();
                    self.ca_file = Some(PathBuf::from(path.into_owned()));
                }
                _ => rest.push(pair),
            }
        }
        let url = if rest.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", rest.join("&"))
        };
        Ok((self, url))
    }

    /// The PEM text of the CA file, if one is set.
    pub(super) fn ca_pem(&self) -> Result<Option<String>> {
        let Some(path) = &self.ca_file else {
            return Ok(None);
        };
        std::fs::read_to_string(path)
            .map(Some)
            .map_err(|e| Error::Config(format!("cannot read the CA file `{}`: {e}", path.display())))
    }
}

/// Refuses an `amqps://` URL in a build without the `tls` feature, with the
/// line that turns it on (lapin alone would fail later, at connect time,
/// with a message about no TLS backend).
pub(super) fn require_tls(url: &str, shown: &str, tls_built: bool) -> Result<()> {
    let secure = url
        .get(..8)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("amqps://"));
    if secure && !tls_built {
        return Err(Error::Config(format!(
            "`{shown}` asks for TLS (amqps://), which needs munggoggo's `tls` feature: \
             munggoggo = {{ version = \"0.1\", features = [\"amqp\", \"tls\"] }}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amqps_without_the_tls_feature_names_the_feature() {
        let shown = "amqps://u:***@h:5671/%2f";
        let e = require_tls("AMQPS://u:p@h:5671/%2f", shown, false).unwrap_err();
        assert!(e.to_string().contains("`tls` feature"), "{e}");
        assert!(e.to_string().contains(shown), "{e}");
        assert!(require_tls("amqps://u:p@h:5671/%2f", shown, true).is_ok());
        assert!(require_tls("amqp://u:p@h:5672/%2f", shown, false).is_ok());
    }

    fn take(url: &str) -> Result<(AmqpOptions, String)> {
        AmqpOptions::default().take_from_url(url, url)
    }

    #[test]
    fn query_parameters_set_options_and_are_taken_off() {
        let (options, url) = take(
            "amqps://u:p@h:5671/%2f?heartbeat=10&durable=true&queue_expiry=2h&cacertfile=%2Ftmp%2Fca.pem&dead_letters=false",
        )
        .unwrap();
        assert!(options.is_durable());
        assert!(!options.keeps_dead_letters());
        assert_eq!(options.expiry(), Some(Duration::from_secs(7200)));
        assert_eq!(options.ca(), Some(std::path::Path::new("/tmp/ca.pem")));
        assert_eq!(url, "amqps://u:p@h:5671/%2f?heartbeat=10");

        let (options, url) = take("amqp://h1,h2:5673/%2f?queue_type=quorum&heartbeat=5").unwrap();
        assert_eq!(options.queue_kind(), QueueType::Quorum);
        assert!(options.is_durable(), "quorum queues imply durable mode");
        assert!(!options.process_queues_durable());
        assert_eq!(url, "amqp://h1,h2:5673/%2f?heartbeat=5");
        let (options, _) = take("amqp://h/%2f?queue_type=classic&durable=true").unwrap();
        assert_eq!(options.queue_kind(), QueueType::Classic);
        assert!(options.process_queues_durable());

        let (options, url) = take("amqp://h1,h2,h3/%2f?shuffle=true").unwrap();
        assert!(options.shuffles_nodes());
        assert_eq!(url, "amqp://h1,h2,h3/%2f");
        assert!(!AmqpOptions::default().shuffles_nodes());

        let (options, url) = take("amqp://h/%2f?queue_expiry=never").unwrap();
        assert_eq!(options.expiry(), None);
        assert_eq!(url, "amqp://h/%2f");
        assert_eq!(take("amqp://h").unwrap().0, AmqpOptions::default());
    }

    #[test]
    fn bad_values_are_config_errors_naming_the_parameter() {
        for url in [
            "amqp://h/?durable=maybe",
            "amqp://h/?dead_letters=2",
            "amqp://h/?queue_expiry=soon",
            "amqp://h/?queue_type=mirrored",
            "amqp://h/?cacertfile=",
        ] {
            let err = take(url).unwrap_err();
            assert!(matches!(err, Error::Config(_)), "{url}: {err}");
            let key = url.split('?').nth(1).unwrap().split('=').next().unwrap();
            assert!(err.to_string().contains(key), "{err}");
        }
        let err = AmqpOptions::default()
            .ca_file("/nonexistent/ca.pem")
            .ca_pem()
            .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }
}
