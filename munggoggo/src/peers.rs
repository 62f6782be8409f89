//! Peers: the keepalive ping over the fanout exchange (0.4's
//! `PingControl`), the `PongControl` answers carrying each agent's status,
//! and the table of peers seen recently.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

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

/// How many peers an agent's table holds at most; past it the one heard
/// from longest ago makes room.
pub const MAX_PEERS: usize = 4096;

/// The peers an agent has heard from.
#[derive(Debug, Default)]
pub(crate) struct PeerTable {
    peers: Mutex<HashMap<String, (PeerStatus, Instant)>>,
    /// When the agent sent its last two pings: a peer that answered
    /// neither has left.
    rounds: Mutex<[Option<Instant>; 2]>,
}

impl PeerTable {
    /// Records a pong; `sender` is its `app_id`, which must name the
    /// status's agent (an answer on someone else's behalf is ignored).
    pub(crate) fn update(&self, sender: &str, status: PeerStatus) -> bool {
        if status.name != sender {
            return false;
        }
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        if peers.len() >= MAX_PEERS && !peers.contains_key(&status.name) {
            let oldest = peers
                .iter()
                .min_by_key(|(_, (_, seen))| *seen)
                .map(|(name, _)| name.clone());
            if let Some(oldest) = oldest {
                peers.remove(&oldest);
            }
        }
        peers.insert(status.name.clone(), (status, Instant::now()));
        true
    }

    /// Notes that the agent pinged its peers now.
    pub(crate) fn round_started(&self) {
        let mut rounds = self.rounds.lock().unwrap_or_else(|e| e.into_inner());
        *rounds = [rounds[1], Some(Instant::now())];
    }

    /// When the agent last pinged its peers.
    pub(crate) fn last_round(&self) -> Option<Instant> {
        self.rounds.lock().unwrap_or_else(|e| e.into_inner())[1]
    }

    /// The live peers, sorted by name: those heard from within `ttl`, and
    /// those that answered one of the last two pings.
    pub(crate) fn live(&self, ttl: Duration) -> Vec<Peer> {
        let previous = self.rounds.lock().unwrap_or_else(|e| e.into_inner())[0];
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        peers.retain(|_, (_, seen)| seen.elapsed() <= ttl || previous.is_none_or(|round| *seen >= round));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn status(name: &str) -> PeerStatus {
        PeerStatus {
            name: name.to_owned(),
            state: "running".to_owned(),
            behaviours: Vec::new(),
        }
    }

    #[test]
    fn answers_on_behalf_of_others_are_ignored() {
        let table = PeerTable::default();
        assert!(!table.update("mallory", status("alice")));
        assert!(table.update("alice", status("alice")));
        let live = table.live(DEFAULT_PEER_TTL);
        assert_eq!(live.len(), 1);
    }

    #[test]
    fn the_table_is_bounded() {
        let table = PeerTable::default();
        for i in 0..MAX_PEERS + 10 {
            let name = format!("peer-{i}");
            table.update(&name, status(&name));
        }
        assert_eq!(table.live(DEFAULT_PEER_TTL).len(), MAX_PEERS);
    }

    #[tokio::test(start_paused = true)]
    async fn peers_that_miss_two_rounds_expire() {
        let table = PeerTable::default();
        table.round_started();
        table.update("old", status("old"));
        table.update("stays", status("stays"));
        tokio::time::advance(DEFAULT_PEER_TTL * 2).await;
        // Still there: it answered the last round.
        assert_eq!(table.live(DEFAULT_PEER_TTL).len(), 2);
        table.round_started();
        table.update("stays", status("stays"));
        tokio::time::advance(Duration::from_secs(1)).await;
        table.round_started();
        let names: Vec<String> = table
            .live(DEFAULT_PEER_TTL)
            .into_iter()
            .map(|p| p.status.name)
            .collect();
        assert_eq!(names, ["stays"]);
    }
}
