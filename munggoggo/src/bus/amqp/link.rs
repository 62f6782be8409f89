//! One of the bus's two connections, replaced by a new one whenever it is
//! lost, for as long as the bus is open.
//!
//! The bus reconnects itself instead of using lapin's connection recovery:
//! lapin 4.12 recovers a connection that failed with an I/O error, but one
//! the broker closed (`CONNECTION_FORCED` when the broker stops or an
//! operator closes connections) could stay down for good, so that a
//! restarted broker saw the agent again only as a deaf consumer and a
//! publisher failing every send. (The fix upstream would be for lapin to
//! finish the recovery it starts on a server-sent `connection.close`.) Here
//! a lost connection is replaced by a fresh one with backoff, forever, and
//! the endpoints' channel supervisors (consumer units, publishers) rebuild
//! their channels on it; they always take the [`Link::current`]
//! connection.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lapin::tcp::OwnedTLSConfig;
use lapin::uri::AMQPUri;
use lapin::{Connection, ConnectionProperties};

use super::nodes::Node;
use super::{connect, is_reply_code, lapin_error, reachable, BACKOFF_MAX, BACKOFF_MIN, CONNECT_TIMEOUT};
use crate::error::{Error, Result};

/// How often a link looks at its connection.
const WATCH_INTERVAL: Duration = Duration::from_millis(250);
/// Longest delay between two reconnect attempts early in an outage: a
/// broker that was up is most likely restarting, and should find its
/// clients back within a second of being ready (measured in
/// `tests/faults.rs`: the time from `rabbitmqctl await_startup` to the
/// first successful send).
const RECONNECT_MAX_EARLY: Duration = Duration::from_secs(1);
/// How long an outage counts as early; after it, attempts slow down to
/// [`BACKOFF_MAX`], so that a broker that is gone for good is not hammered.
const EARLY_OUTAGE: Duration = Duration::from_secs(60);

/// The delay before the next reconnect attempt: exponential from
/// `BACKOFF_MIN`, capped by how long the outage has lasted, and jittered
/// (half to all of it) so that many processes do not retry in step.
fn reconnect_delay(attempts: u32, outage: Duration) -> Duration {
    let cap = if outage < EARLY_OUTAGE {
        RECONNECT_MAX_EARLY
    } else {
        BACKOFF_MAX
    };
    let exponential = BACKOFF_MIN.saturating_mul(1 << attempts.saturating_sub(1).min(16));
    exponential.min(cap).mul_f64(0.5 + fastrand::f64() / 2.0)
}

/// A connection of the bus that is replaced when lost.
pub(super) struct Link {
    role: &'static str,
    /// The nodes it may connect to, and the one it is (or was last) on.
    nodes: Vec<Node>,
    at: AtomicUsize,
    /// The URL without its password.
    shown: String,
    tls: OwnedTLSConfig,
    current: Mutex<Arc<Connection>>,
    closed: AtomicBool,
    /// Counts the connections the link has had; changes (and wakes
    /// [`Link::connected`]) when one replaces another, or the link closes.
    generation: tokio::sync::watch::Sender<u64>,
}

impl Link {
    /// Opens the first connection on the first node that takes it, in the
    /// order given (failing fast, with every node's reason), and starts
    /// watching it.
    pub(super) async fn open(
        nodes: &[Node],
        shown: &str,
        role: &'static str,
        tls: &OwnedTLSConfig,
    ) -> Result<Arc<Link>> {
        let mut failures = Vec::new();
        for (at, node) in nodes.iter().enumerate() {
            // Of several nodes, each error names its node's address.
            let named = if nodes.len() == 1 {
                shown
            } else {
                node.address.as_str()
            };
            let first = match first_connect(node, named, role, tls).await {
                Ok(first) => first,
                Err(e) if nodes.len() == 1 => return Err(e),
                Err(e) => {
                    tracing::debug!(node = %node.address, connection = role, error = %e, "cannot connect to this node; trying the next");
                    let text = e.to_string();
                    failures.push(text.strip_prefix("connection lost: ").unwrap_or(&text).to_owned());
                    continue;
                }
            };
            if nodes.len() > 1 {
                tracing::info!(url = %shown, node = %node.address, connection = role, "connected to RabbitMQ node");
            }
            let link = Arc::new(Link {
                role,
                nodes: nodes.to_vec(),
                at: AtomicUsize::new(at),
                shown: shown.to_owned(),
                tls: tls.clone(),
                current: Mutex::new(Arc::new(first)),
                closed: AtomicBool::new(false),
                generation: tokio::sync::watch::Sender::new(0),
            });
            tokio::spawn(Arc::clone(&link).watch());
            return Ok(link);
        }
        Err(Error::connection_lost(format!(
            "cannot connect to any of the {} broker nodes of `{shown}`: {}",
            nodes.len(),
            failures.join("; ")
        )))
    }

    /// The connection to use now (it may be down: check its status).
    pub(super) fn current(&self) -> Arc<Connection> {
        Arc::clone(&self.current.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Whether the bus closed this link (it is not replaced any more).
    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Waits until the current connection is open, or the link closed:
    /// what a channel's rebuild waits for instead of retrying on a
    /// connection that is down, so that it starts the moment the link has a
    /// new one (no backoff of its own to sit out).
    pub(super) async fn connected(&self) {
        let mut generations = self.generation.subscribe();
        loop {
            if self.is_closed() || self.current().status().connected() {
                return;
            }
            if generations.changed().await.is_err() {
                return;
            }
        }
    }

    /// Closes the connection for good.
    pub(super) async fn close(&self) -> lapin::Result<()> {
        self.closed.store(true, Ordering::SeqCst);
        self.generation.send_modify(|n| *n += 1);
        let conn = self.current();
        if conn.status().connected() {
            conn.close(200, "OK".into()).await
        } else {
            Ok(())
        }
    }

    /// Replaces the connection whenever it is lost, until the link closes.
    async fn watch(self: Arc<Self>) {
        loop {
            tokio::time::sleep(WATCH_INTERVAL).await;
            if self.is_closed() {
                return;
            }
            let current = self.current();
            let status = current.status();
            if status.connected() || status.connecting() {
                continue;
            }
            let lost = Instant::now();
            let was = self.at.load(Ordering::SeqCst);
            tracing::warn!(url = %self.shown, node = %self.nodes[was].address, connection = self.role, status = ?status, "connection to RabbitMQ lost; reconnecting");
            let mut attempts = 0u32;
            loop {
                if self.is_closed() {
                    return;
                }
                attempts += 1;
                // The next node of the list first: the one just lost may be
                // the one that is down.
                let at = (was + attempts as usize) % self.nodes.len();
                let node = &self.nodes[at];
                match connect(&node.uri, &self.shown, self.role, &self.tls).await {
                    Ok(conn) => {
                        let old = std::mem::replace(
                            &mut *self.current.lock().unwrap_or_else(|e| e.into_inner()),
                            Arc::new(conn),
                        );
                        drop(old);
                        self.at.store(at, Ordering::SeqCst);
                        self.generation.send_modify(|n| *n += 1);
                        if self.is_closed() {
                            let _ = self.current().close(200, "OK".into()).await;
                            return;
                        }
                        tracing::info!(
                            url = %self.shown,
                            node = %node.address,
                            connection = self.role,
                            after = ?lost.elapsed(),
                            attempts,
                            "connection to RabbitMQ recovered"
                        );
                        #[cfg(feature = "metrics")]
                        crate::stats::bus::reconnected();
                        break;
                    }
                    Err(e) => {
                        let log = attempts == 1 || attempts.is_multiple_of(10);
                        if log {
                            tracing::warn!(url = %self.shown, node = %node.address, connection = self.role, attempts, error = %e, "cannot reconnect yet; retrying");
                        }
                    }
                }
                tokio::time::sleep(reconnect_delay(attempts, lost.elapsed())).await;
            }
        }
    }
}

/// A first connection to `node`: fails at once when nothing listens there
/// (lapin would retry for minutes), else as [`connect`] does.
async fn first_connect(
    node: &Node,
    shown: &str,
    role: &'static str,
    tls: &OwnedTLSConfig,
) -> Result<Connection> {
    reachable(&node.uri.authority.host, node.uri.authority.port)
        .await
        .map_err(|e| Error::ConnectionLost {
            reason: format!("cannot reach the broker at `{shown}`"),
            source: Some(Box::new(e)),
        })?;
    connect(&node.uri, shown, role, tls).await
}

/// Opens one connection, whose inbound frames pass the guard; fails at
/// once when TCP or TLS cannot be set up, with the reason.
async fn connect(uri: &AMQPUri, shown: &str, role: &'static str, tls: &OwnedTLSConfig) -> Result<Connection> {
    let properties = ConnectionProperties::default()
        .with_connection_name(format!("munggoggo {role} (pid {})", std::process::id()).into());
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(Error::Config("lapin needs a tokio runtime".to_owned()));
    }
    let errors = Arc::new(connect::SetupErrors::default());
    let connecting = connect::connector(uri.clone(), properties, role, tls.clone(), Arc::clone(&errors));
    let hint = if uri.scheme == lapin::uri::AMQPScheme::AMQPS {
        " (is the port a TLS port, and is the server's certificate trusted? see `cacertfile`)"
    } else {
        ""
    };
    // Biased: a failed TCP or TLS set-up is recorded before lapin returns
    // its error, so the recorded reason (with the hint) wins either way.
    let outcome = tokio::select! {
        biased;
        error = errors.next() => {
            return Err(Error::connection_lost(format!(
                "cannot connect to the broker at `{shown}`: {error}{hint}"
            )));
        }
        outcome = tokio::time::timeout(CONNECT_TIMEOUT, connecting) => outcome,
    };
    match outcome {
        Ok(Ok(conn)) => {
            tokio::spawn(log_blocking(conn.events_listener(), shown.to_owned(), role));
            Ok(conn)
        }
        Ok(Err(e)) if is_reply_code(&e, NOT_ALLOWED) && e.to_string().contains("not found") => {
            Err(Error::bus(format!(
                "cannot connect to the broker at `{shown}`: {}",
                vhost_not_found(&uri.vhost)
            )))
        }
        Ok(Err(e)) => {
            let hint = if matches!(e.kind(), lapin::ErrorKind::IOError(_)) { hint } else { "" };
            Err(lapin_error(e, &format!("cannot connect to the broker at `{shown}`{hint}")))
        }
        Err(_) => Err(Error::connection_lost(format!(
            "the broker at `{shown}` did not complete the connection within {CONNECT_TIMEOUT:?} (wrong credentials or vhost?)"
        ))),
    }
}

/// AMQP reply code NOT_ALLOWED: on `connection.open`, the vhost does not
/// exist (`vhost x not found`) or the user may not use it.
const NOT_ALLOWED: u16 = 530;

/// What to say when the broker has no vhost `vhost` (as parsed from the
/// URL: its path without the leading `/`, percent-decoded).
fn vhost_not_found(vhost: &str) -> String {
    if vhost.is_empty() || vhost.starts_with('/') {
        // `amqp://host/` names the vhost "", and `amqp://host//x` the
        // vhost "/x": a `/` in the path taken for the vhost `/`.
        let shown = if vhost.is_empty() {
            "`` (empty: the URL's path is `/`)".to_owned()
        } else {
            format!("`{vhost}`")
        };
        format!(
            "vhost {shown} not found on the broker; the vhost `/` is written `%2f` in an AMQP URL: \
             `amqp://host:5672/%2f` (or no path at all)"
        )
    } else {
        format!("vhost `{vhost}` not found on the broker (rabbitmqctl add_vhost {vhost})")
    }
}

/// One log line per block and unblock of the connection by the broker
/// (a resource alarm: memory or disk).
async fn log_blocking(
    events: impl futures_util::Stream<Item = lapin::Event>,
    url: String,
    role: &'static str,
) {
    use futures_util::StreamExt;
    let mut events = std::pin::pin!(events);
    #[cfg(feature = "metrics")]
    let mut blocked_since = None;
    while let Some(event) = events.next().await {
        match event {
            lapin::Event::ConnectionBlocked(reason) => {
                #[cfg(feature = "metrics")]
                {
                    blocked_since = blocked_since.or_else(|| Some(crate::stats::bus::blocked()));
                }
                tracing::warn!(url = %url, connection = role, reason = %reason, "RabbitMQ blocked the connection")
            }
            lapin::Event::ConnectionUnblocked => {
                #[cfg(feature = "metrics")]
                if let Some(since) = blocked_since.take() {
                    crate::stats::bus::unblocked(since);
                }
                tracing::info!(url = %url, connection = role, "RabbitMQ unblocked the connection")
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_vhost_is_named_with_a_hint() {
        let empty = vhost_not_found("");
        assert!(empty.starts_with("vhost `` (empty"), "{empty}");
        assert!(
            empty.contains("the vhost `/` is written `%2f` in an AMQP URL"),
            "{empty}"
        );
        let slashed = vhost_not_found("/x");
        assert!(slashed.starts_with("vhost `/x` not found"), "{slashed}");
        assert!(slashed.contains("`%2f`"), "{slashed}");
        assert_eq!(
            vhost_not_found("staging"),
            "vhost `staging` not found on the broker (rabbitmqctl add_vhost staging)"
        );
    }

    #[test]
    fn reconnect_delays_grow_jittered_up_to_a_short_cap_early_in_an_outage() {
        for attempts in 1..40 {
            let early = reconnect_delay(attempts, Duration::from_secs(5));
            let late = reconnect_delay(attempts, EARLY_OUTAGE);
            let exponential = BACKOFF_MIN.saturating_mul(1 << (attempts - 1).min(16));
            assert!(
                early <= RECONNECT_MAX_EARLY.min(exponential),
                "{attempts}: {early:?}"
            );
            assert!(
                early >= RECONNECT_MAX_EARLY.min(exponential) / 2,
                "{attempts}: {early:?}"
            );
            assert!(
                late <= BACKOFF_MAX && late >= BACKOFF_MAX.min(exponential) / 2,
                "{attempts}: {late:?}"
            );
        }
        assert!(reconnect_delay(1, Duration::ZERO) <= BACKOFF_MIN);
    }
}
