//! Peers: the keepalive ping over the fanout exchange (0.4's
//! `PingControl`), the `PongControl` answers carrying each agent's status,
//! and the table of peers seen recently.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::context::{Context, Core};

/// How many peer intervals a peer may stay silent before it expires.
pub const MISSED_INTERVALS: u32 = 3;

/// How long a peer without a keepalive interval of its own stays listed.
pub const DEFAULT_PEER_TTL: Duration = Duration::from_secs(30);

/// An agent's status as its `PongControl` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerStatus {
    /// Its identity.
    pub name: String,
    /// Its state word (`running`, ...).
    pub state: String,
    /// Its behaviours with their states.
    #[serde(default)]
    pub behaviours: Vec<PeerBehaviour>,
}

/// One behaviour in a [`PeerStatus`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerBehaviour {
    /// Its full name, `<identity>.<method>`.
    pub name: String,
    /// Its state word.
    pub state: String,
}

/// A peer in the table, with when it was last heard of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Its status.
    pub status: PeerStatus,
    /// How long ago its last pong arrived.
    pub last_seen: Duration,
}

/// `PongControl`'s payload.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct PongControl {
    pub(crate) status: PeerStatus,
}

/// The peers an agent has heard from.
#[derive(Debug, Default)]
pub(crate) struct PeerTable {
    peers: Mutex<HashMap<String, (PeerStatus, Instant)>>,
}

impl PeerTable {
    pub(crate) fn update(&self, status: PeerStatus) {
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        peers.insert(status.name.clone(), (status, Instant::now()));
    }

    /// The live peers, sorted by name; those older than `ttl` are dropped.
    pub(crate) fn live(&self, ttl: Duration) -> Vec<Peer> {
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        peers.retain(|_, (_, seen)| seen.elapsed() <= ttl);
        let mut live: Vec<Peer> = peers
            .values()
            .map(|(status, seen)| Peer {
                status: status.clone(),
                last_seen: seen.elapsed(),
            })
            .collect();
        live.sort_by(|a, b| a.status.name.cmp(&b.status.name));
        live
    }
}

/// The agent's own status, as its pong reports it.
pub(crate) fn status_of(core: &Core) -> PeerStatus {
    PeerStatus {
        name: core.identity.to_string(),
        state: core.state.get().as_str().to_owned(),
        behaviours: core
            .behaviours
            .iter()
            .map(|b| PeerBehaviour {
                name: b.name.to_string(),
                state: b.state.get().as_str().to_owned(),
            })
            .collect(),
    }
}

impl Context {
    /// The peers that answered this agent's keepalive pings recently
    /// (itself included), sorted by identity.
    pub fn peers(&self) -> Vec<Peer> {
        let ttl = match self.core.options.peer_interval {
            Some(interval) => interval * MISSED_INTERVALS,
            None => DEFAULT_PEER_TTL,
        };
        self.core.peers.live(ttl)
    }

    /// Broadcasts a keepalive ping; every agent answers with its status.
    pub async fn ping_peers(&self) -> crate::Result<()> {
        crate::system::send_ping_control(&self.core).await
    }
}

/// Pings the peers at start and then every `interval`.
pub(crate) async fn keepalive(ctx: Context, interval: Option<Duration>) {
    if ctx.options().announce {
        if let Err(e) = ctx.ping_peers().await {
            tracing::warn!(agent = %ctx.identity(), error = %e, "cannot ping peers");
        }
    }
    let Some(interval) = interval else { return };
    let mut ticks = tokio::time::interval_at(Instant::now() + interval, interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        ticks.tick().await;
        if let Err(e) = ctx.ping_peers().await {
            tracing::warn!(agent = %ctx.identity(), error = %e, "cannot ping peers");
        }
    }
}
