//! The CLI's presence on the bus: a [`Client`] with a unique observer
//! identity and the user's `--timeout` for its requests.

use std::time::Duration;

use super::args::GlobalArgs;
use super::error::{CliError, ErrorKind};
use munggoggo::bus::redact;
use munggoggo::runtime::Client;
use munggoggo::{Context, Runtime, RuntimeHandle};
use munggoggo::{PeerBehaviour, PeerStatus};

/// Identities of CLI observers start with this; they are left out of peer lists.
pub(crate) const CLI_PREFIX: &str = munggoggo::runtime::OBSERVER_PREFIX;

/// The state of an agent or behaviour that did not answer the peer ping in time.
pub(crate) const UNKNOWN: &str = "unknown";

/// How often discovery looks at the peer table.
const POLL: Duration = Duration::from_millis(20);

/// A joined bus: the runtime and the observer client.
pub(crate) struct Session {
    runtime: RuntimeHandle,
    observer: Client,
    /// The user's timeout.
    pub(crate) timeout: Duration,
}

impl Session {
    /// Connects to the broker of `args` and joins it as a new observer.
    pub(crate) async fn join(args: &GlobalArgs) -> Result<Session, CliError> {
        let url = args.broker_url();
        let shown = redact(url);
        let runtime = Runtime::from_url(url).map_err(CliError::from)?;
        let connect_timeout = args.timeout.max(Duration::from_secs(1));
        let runtime = match tokio::time::timeout(connect_timeout, runtime.start()).await {
            Ok(Ok(runtime)) => runtime,
            Ok(Err(e)) => return Err(connect_error(&shown, url, &e)),
            Err(_) => {
                return Err(CliError::new(
                    ErrorKind::Connect,
                    format!(
                        "cannot reach the broker at `{shown}`: no connection within {}",
                        humantime::format_duration(connect_timeout)
                    ),
                ))
            }
        };
        let mut options = Client::options(unique_identity());
        options.call_timeout = args.timeout;
        options.trace_size = 64;
        options.prefetch = 16;
        let observer = match runtime.client_with(options).await {
            Ok(observer) => observer,
            Err(e) => {
                return Err(CliError::new(
                    ErrorKind::Connect,
                    format!(
                        "cannot join the bus at `{shown}`: {}",
                        scrub(&e.to_string(), url, &shown)
                    ),
                ));
            }
        };
        tracing::debug!(identity = observer.identity(), url = %shown, "joined the bus");
        Ok(Session {
            runtime,
            observer,
            timeout: args.timeout,
        })
    }

    /// The observer's context: send, call, ping as the CLI.
    pub(crate) fn ctx(&self) -> &Context {
        &self.observer
    }

    /// How long discovery waits for pongs: half the timeout, at most 1 s.
    pub(crate) fn window(&self) -> Duration {
        (self.timeout / 2).min(Duration::from_secs(1))
    }

    /// Pings the peers and collects their answers for the whole window;
    /// CLI observers are left out. Sorted by name.
    pub(crate) async fn peers(&self) -> Result<Vec<PeerStatus>, CliError> {
        self.discover(|_| false).await
    }

    /// The status of agent `agent`, or an error listing the known peers.
    /// Returns as soon as its pong arrives. When none came in the window
    /// (a pong can wait behind a flood of broadcasts in the agent's fanout
    /// queue), asks the agent directly for its behaviours: a direct send to
    /// an identity without a queue fails at once.
    pub(crate) async fn peer(&self, agent: &str) -> Result<PeerStatus, CliError> {
        let peers = self
            .discover(|peers| peers.iter().any(|p| p.name == agent))
            .await?;
        if let Some(peer) = peers.iter().find(|p| p.name == agent) {
            return Ok(peer.clone());
        }
        match self.ctx().list_behaviours(agent).await {
            Ok(behaviours) => Ok(PeerStatus {
                name: agent.to_owned(),
                group: None,
                state: UNKNOWN.to_owned(),
                behaviours: behaviours
                    .into_iter()
                    .map(|name| PeerBehaviour {
                        name,
                        state: UNKNOWN.to_owned(),
                    })
                    .collect(),
            }),
            Err(munggoggo::Error::UnknownTarget(_)) => Err(CliError::unknown_agent(agent, names(&peers))),
            Err(e) => Err(e.into()),
        }
    }

    /// Pings the peers and collects answers until `done` holds or the
    /// window ends.
    async fn discover(&self, done: impl Fn(&[PeerStatus]) -> bool) -> Result<Vec<PeerStatus>, CliError> {
        let started = tokio::time::Instant::now();
        self.ctx().ping_peers().await?;
        let deadline = started + self.window();
        loop {
            // Only pongs that answer this ping: older entries may be stale.
            let peers: Vec<PeerStatus> = self
                .ctx()
                .peers()
                .into_iter()
                .filter(|p| p.last_seen <= started.elapsed())
                .map(|p| p.status)
                .filter(|s| !s.name.starts_with(CLI_PREFIX))
                .collect();
            if done(&peers) || tokio::time::Instant::now() >= deadline {
                return Ok(peers);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Leaves the bus: the observer stops and its queues are deleted.
    pub(crate) async fn leave(self) {
        self.observer.shutdown().await;
        self.runtime.shutdown().await;
    }
}

/// The names of peers.
pub(crate) fn names(peers: &[PeerStatus]) -> Vec<String> {
    peers.iter().map(|p| p.name.clone()).collect()
}

/// `munggoggo-cli-<pid>-<8 random hex digits>`.
fn unique_identity() -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{CLI_PREFIX}{}-{}", std::process::id(), &random[..8])
}

/// An error of connecting, naming the broker with its password hidden.
fn connect_error(shown: &str, url: &str, e: &munggoggo::Error) -> CliError {
    let kind = match e {
        munggoggo::Error::Config(_) => ErrorKind::Failed,
        _ => ErrorKind::Connect,
    };
    let text = match e {
        munggoggo::Error::ConnectionLost { reason, source } | munggoggo::Error::Bus { reason, source } => {
            match source {
                Some(source) => format!("{reason}: {source}"),
                None => reason.clone(),
            }
        }
        other => other.to_string(),
    };
    let text = scrub(&text, url, shown);
    if text.contains(shown) {
        CliError::new(kind, text)
    } else {
        CliError::new(kind, format!("cannot connect to the broker at `{shown}`: {text}"))
    }
}

/// Replaces the URL with its redacted form, should a message carry it.
fn scrub(text: &str, url: &str, shown: &str) -> String {
    if url.is_empty() {
        text.to_owned()
    } else {
        text.replace(url, shown)
    }
}
