//! Peers: the keepalive ping over the fanout exchange (0.4's
//! `PingControl`), the `PongControl` answers carrying each agent's status,
//! and the table of peers seen recently.
//!
//! Discovery costs O(N) messages per round, not O(N²): the agents of one
//! runtime form a [`Neighbourhood`] and know each other without messages
//! (a listing reads their status directly); they share one table of remote
//! peers, and one ping per round serves them all (an agent's start-up
//! announcement is skipped when its runtime pinged within
//! [`ANNOUNCE_GAP`], a keepalive tick when it pinged within three quarters
//! of the interval). An agent does not answer the pings of its own
//! runtime's agents, so such a ping costs one delivery per agent and no
//! replies; every other ping, a munggoggo 0.4 agent's included, still gets
//! one `PongControl` from each agent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
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
    /// Its identity (a replica's own name).
    pub name: String,
    /// The identity its group of replicas shares, for a replica of a
    /// replicated agent (munggoggo 0.4 ignores the field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
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

/// A runtime's agents pinged their peers this recently: an agent starting
/// now shares that round instead of announcing itself.
pub const ANNOUNCE_GAP: Duration = Duration::from_secs(1);

/// An agent of a runtime as its neighbours see it.
pub(crate) trait Neighbour: Send + Sync {
    /// Its status, as its pong would report it.
    fn status(&self) -> PeerStatus;
    /// Whether it is there for its peers (not stopped).
    fn is_up(&self) -> bool;
}

/// The agents of one runtime (of type `A`, the runtime's agent state;
/// generic so that this file need not know it) and the remote peers they
/// heard from.
pub(crate) struct Neighbourhood<A> {
    /// The runtime's agents by identity (stopped ones are skipped and
    /// pruned as agents join).
    local: Mutex<Locals<A>>,
    /// Peers outside the runtime, shared by its agents.
    pub(crate) remote: PeerTable,
    /// Identities found to be munggoggo 0.4 agents.
    pub(crate) py04: Py04Agents,
}

/// Identities found to be munggoggo 0.4 agents (no control queue; they
/// answered a ping on their identity queue), so that a call to one goes
/// straight to the method it exposes instead of trying the control queue
/// and pinging first: at most [`Py04Agents::MAX`] of them, each for
/// [`Py04Agents::TTL`] (a Rust agent may take the identity later).
#[derive(Default)]
pub(crate) struct Py04Agents {
    seen: Mutex<HashMap<Arc<str>, Instant>>,
}

impl Py04Agents {
    /// How long an identity is remembered.
    pub(crate) const TTL: Duration = Duration::from_secs(60);
    /// How many identities are remembered at most.
    pub(crate) const MAX: usize = 1024;

    fn seen(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, Instant>> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `identity` was found to be a 0.4 agent within the last [`Self::TTL`].
    pub(crate) fn contains(&self, identity: &str) -> bool {
        self.seen()
            .get(identity)
            .is_some_and(|at| at.elapsed() < Self::TTL)
    }

    /// Remembers that `identity` is a 0.4 agent.
    pub(crate) fn insert(&self, identity: &str) {
        let mut seen = self.seen();
        if seen.len() >= Self::MAX && !seen.contains_key(identity) {
            seen.retain(|_, at| at.elapsed() < Self::TTL);
            if seen.len() >= Self::MAX {
                let oldest = seen.iter().min_by_key(|(_, at)| **at).map(|(k, _)| Arc::clone(k));
                if let Some(oldest) = oldest {
                    seen.remove(&oldest);
                }
            }
        }
        seen.insert(identity.into(), Instant::now());
    }

    /// Forgets `identity` (a call to it went unanswered).
    pub(crate) fn remove(&self, identity: &str) {
        self.seen().remove(identity);
    }
}

struct Locals<A> {
    agents: HashMap<Arc<str>, Weak<A>>,
    /// Prune stopped agents when the map reaches this size.
    prune_at: usize,
}

impl<A> Default for Neighbourhood<A> {
    fn default() -> Self {
        Neighbourhood {
            local: Mutex::new(Locals {
                agents: HashMap::new(),
                prune_at: 0,
            }),
            remote: PeerTable::default(),
            py04: Py04Agents::default(),
        }
    }
}

impl<A> std::fmt::Debug for Neighbourhood<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Neighbourhood").finish_non_exhaustive()
    }
}

impl<A: Neighbour> Neighbourhood<A> {
    /// Adds a started agent.
    pub(crate) fn join(&self, identity: Arc<str>, agent: Weak<A>) {
        let mut local = self.local.lock().unwrap_or_else(|e| e.into_inner());
        if local.agents.len() >= local.prune_at {
            local.agents.retain(|_, a| a.upgrade().is_some_and(|a| a.is_up()));
            local.prune_at = (local.agents.len() * 2).max(64);
        }
        local.agents.insert(identity, agent);
    }

    /// Whether `identity` is a running agent of this runtime.
    pub(crate) fn is_local(&self, identity: &str) -> bool {
        self.local(identity).is_some()
    }

    /// The running agent of this runtime with this identity.
    pub(crate) fn local(&self, identity: &str) -> Option<Arc<A>> {
        let local = self.local.lock().unwrap_or_else(|e| e.into_inner());
        local
            .agents
            .get(identity)
            .and_then(Weak::upgrade)
            .filter(|a| a.is_up())
    }

    /// The runtime's running agents and the remote peers live within
    /// `ttl` (see [`PeerTable::live`]), sorted by identity; an agent of
    /// this runtime is listed as it is now, whatever a pong with its name
    /// said.
    pub(crate) fn peers(&self, ttl: Duration) -> Vec<Peer> {
        let agents: Vec<Arc<A>> = {
            let local = self.local.lock().unwrap_or_else(|e| e.into_inner());
            local.agents.values().filter_map(Weak::upgrade).collect()
        };
        let local: Vec<PeerStatus> = agents.iter().filter(|a| a.is_up()).map(|a| a.status()).collect();
        let mut peers = self.remote.live(ttl);
        peers.retain(|p| !local.iter().any(|l| l.name == p.status.name));
        peers.extend(local.into_iter().map(|status| Peer {
            status,
            last_seen: Duration::ZERO,
        }));
        peers.sort_by(|a, b| a.status.name.cmp(&b.status.name));
        peers
    }
}

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

    /// Starts a round unless one started within `gap`; whether it did.
    pub(crate) fn claim_round(&self, gap: Duration) -> bool {
        let mut rounds = self.rounds.lock().unwrap_or_else(|e| e.into_inner());
        if rounds[1].is_some_and(|last| last.elapsed() < gap) {
            return false;
        }
        *rounds = [rounds[1], Some(Instant::now())];
        true
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

    #[tokio::test(start_paused = true)]
    async fn py04_agents_are_remembered_bounded_in_number_and_time() {
        let agents = Py04Agents::default();
        assert!(!agents.contains("agent1"));
        agents.insert("agent1");
        assert!(agents.contains("agent1"));
        agents.remove("agent1");
        assert!(!agents.contains("agent1"));
        for n in 0..=Py04Agents::MAX {
            agents.insert(&format!("agent{n}"));
            tokio::time::advance(Duration::from_millis(1)).await;
        }
        assert_eq!(agents.seen().len(), Py04Agents::MAX);
        assert!(!agents.contains("agent0"), "the oldest went");
        assert!(agents.contains(&format!("agent{}", Py04Agents::MAX)));
        tokio::time::advance(Py04Agents::TTL).await;
        assert!(!agents.contains(&format!("agent{}", Py04Agents::MAX)), "expired");
    }

    fn status(name: &str) -> PeerStatus {
        PeerStatus {
            name: name.to_owned(),
            group: None,
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
