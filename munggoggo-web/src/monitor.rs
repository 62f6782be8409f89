//! The dashboard's view of the bus: an observer agent that pings the peers,
//! asks each to describe itself and for its newest messages, keeps the
//! result, and broadcasts every change to the WebSocket clients.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::{broadcast, watch, Notify};

use super::model::{AgentView, Event, TraceView};
use super::rates::{self, Rates};
use munggoggo::runtime::{is_tool, DASHBOARD_PREFIX};
use munggoggo::PeerStatus;
use munggoggo::{AgentHandle, Context, TraceQuery};

/// Rounds an agent may miss before it is taken as gone.
const MISSED_ROUNDS: u32 = 3;

/// Trace entries asked for per agent and round.
const TRACE_LIMIT: usize = 100;

/// Messages kept for clients that connect later.
const RECENT: usize = 300;

/// How often a round looks at the peer table while waiting for pongs.
const POLL: Duration = Duration::from_millis(10);

/// What the dashboard knows, shared by the monitor and the handlers.
pub(crate) struct Monitor {
    pub(crate) observer: AgentHandle,
    refresh: Duration,
    peers: RwLock<BTreeMap<String, (AgentView, u32)>>,
    recent: Mutex<VecDeque<TraceView>>,
    /// Agents that do not answer `DescribeAgent` (munggoggo 0.4).
    legacy: Mutex<HashSet<String>>,
    /// Per agent, the time of the newest trace entry seen.
    seen: Mutex<HashMap<String, f64>>,
    events: broadcast::Sender<Arc<str>>,
    /// Bumped after every round and every change.
    version: watch::Sender<u64>,
    wake: Notify,
    /// Held while agents are described and stored, so that a round that
    /// looked before a change cannot store its older view after it.
    looking: tokio::sync::Mutex<()>,
    /// When the last round pinged: a round also counts the pongs that
    /// answered that ping after its window closed.
    last_ping: Mutex<Option<tokio::time::Instant>>,
    /// The counters of the last rounds, for the live rates and times.
    rates: Mutex<Rates>,
}

impl Monitor {
    pub(crate) fn new(observer: AgentHandle, refresh: Duration) -> Self {
        Monitor {
            observer,
            refresh,
            peers: RwLock::new(BTreeMap::new()),
            recent: Mutex::new(VecDeque::new()),
            legacy: Mutex::new(HashSet::new()),
            seen: Mutex::new(HashMap::new()),
            events: broadcast::channel(256).0,
            version: watch::channel(0).0,
            wake: Notify::new(),
            looking: tokio::sync::Mutex::new(()),
            last_ping: Mutex::new(None),
            rates: Mutex::new(Rates::new(rates::window(refresh))),
        }
    }

    fn ctx(&self) -> &Context {
        self.observer.context()
    }

    /// The agents, sorted by name.
    pub(crate) fn peers(&self) -> Vec<AgentView> {
        let peers = self.peers.read().unwrap_or_else(|e| e.into_inner());
        peers.values().map(|(view, _)| view.clone()).collect()
    }

    /// One agent.
    pub(crate) fn peer(&self, name: &str) -> Option<AgentView> {
        let peers = self.peers.read().unwrap_or_else(|e| e.into_inner());
        peers.get(name).map(|(view, _)| view.clone())
    }

    /// The names of the agents.
    pub(crate) fn names(&self) -> Vec<String> {
        let peers = self.peers.read().unwrap_or_else(|e| e.into_inner());
        peers.keys().cloned().collect()
    }

    /// Everything at once, for a client that connects.
    pub(crate) fn snapshot(&self) -> Event {
        let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        Event::Snapshot {
            peers: self.peers(),
            traces: recent.iter().cloned().collect(),
        }
    }

    /// The event feed, as JSON texts.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        self.events.subscribe()
    }

    /// Changes whenever the view changed or a round ended.
    pub(crate) fn versions(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// Asks for a round now instead of at the next tick.
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    fn publish(&self, event: &Event) {
        match serde_json::to_string(event) {
            Ok(text) => {
                let _ = self.events.send(Arc::from(text));
            }
            Err(e) => tracing::error!(error = %e, "cannot encode a dashboard event"),
        }
    }

    fn bump(&self) {
        self.version.send_modify(|v| *v += 1);
    }

    /// Stores an agent's new view; pushes it when it changed.
    fn store(&self, view: AgentView) {
        let mut peers = self.peers.write().unwrap_or_else(|e| e.into_inner());
        let changed = peers.get(&view.name).is_none_or(|(old, _)| *old != view);
        peers.insert(view.name.clone(), (view.clone(), 0));
        if changed {
            self.publish(&Event::Peer { peer: view });
        }
        drop(peers);
        if changed {
            self.bump();
        }
    }

    /// Looks at agent `name` again at once (after it was told to change).
    pub(crate) async fn refresh_agent(&self, name: &str) {
        let _looking = self.looking.lock().await;
        let previous = self.peer(name);
        if let Some(view) = self.look_at(name, None, previous.as_ref()).await {
            self.store(view);
        }
    }

    /// The view of one agent, with its live figures.
    async fn look_at(
        &self,
        name: &str,
        pong: Option<&PeerStatus>,
        previous: Option<&AgentView>,
    ) -> Option<AgentView> {
        let (mut view, durations) = self.describe(name, pong, previous).await?;
        self.rates.lock().unwrap_or_else(|e| e.into_inner()).fill(
            &mut view,
            durations,
            tokio::time::Instant::now(),
        );
        Some(view)
    }

    /// The view of one agent: its description (with the bucket counts of
    /// its behaviours' durations, by name), else its pong.
    async fn describe(
        &self,
        name: &str,
        pong: Option<&PeerStatus>,
        previous: Option<&AgentView>,
    ) -> Option<(AgentView, HashMap<String, Vec<u64>>)> {
        let legacy = self
            .legacy
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(name);
        if !legacy {
            match self.ctx().describe_agent(name).await {
                Ok(mut description) => {
                    let durations = description
                        .behaviours
                        .iter_mut()
                        .filter_map(|b| Some((b.name.clone(), b.durations.take()?)))
                        .collect();
                    return Some((AgentView::described(description), durations));
                }
                Err(munggoggo::Error::Remote { .. }) => {
                    tracing::debug!(agent = name, "no DescribeAgent: a munggoggo 0.4 agent");
                    self.legacy
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(name.to_owned());
                }
                Err(e) => tracing::debug!(agent = name, error = %e, "cannot describe an agent"),
            }
        }
        let view = match pong {
            Some(pong) => Some(AgentView::from_pong(pong, previous)),
            None => {
                // Ask for a fresh pong (0.4 agents answer ManageBehav, but
                // their state is only in the pong).
                let status = self
                    .fresh_pongs(None, |peers| peers.iter().any(|p| p.name == name))
                    .await;
                status
                    .iter()
                    .find(|p| p.name == name)
                    .map(|p| AgentView::from_pong(p, previous))
            }
        };
        view.map(|view| (view, HashMap::new()))
    }

    /// Pings the peers and collects the pongs that answer this ping (or
    /// came after `since`, when earlier) until `done` holds or the window
    /// ends. Tools are left out. The observer's own runtime's agents are
    /// listed without a pong, so `done` may hold before any remote peer had
    /// time to answer: a round passes the time of the previous round's
    /// ping, so that the pongs that came after that round's window closed
    /// (an agent seen for the first time) count in the next one.
    async fn fresh_pongs(
        &self,
        since: Option<tokio::time::Instant>,
        done: impl Fn(&[PeerStatus]) -> bool,
    ) -> Vec<PeerStatus> {
        let started = tokio::time::Instant::now();
        let since = since.map_or(started, |since| since.min(started));
        if let Err(e) = self.ctx().ping_peers().await {
            tracing::warn!(error = %e, "cannot ping the peers");
            return Vec::new();
        }
        let window = (self.refresh / 2).clamp(Duration::from_millis(100), Duration::from_secs(1));
        loop {
            let peers: Vec<PeerStatus> = self
                .ctx()
                .peers()
                .into_iter()
                .filter(|p| p.last_seen <= since.elapsed())
                .map(|p| p.status)
                .filter(|s| !is_tool(&s.name))
                .collect();
            if done(&peers) || started.elapsed() >= window {
                return peers;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// One round: who is there, what each agent is like, what it received.
    async fn round(&self) {
        let known: HashSet<String> = self.names().into_iter().collect();
        let previous = self
            .last_ping
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace(tokio::time::Instant::now());
        let pongs = self
            .fresh_pongs(previous, |peers| {
                !known.is_empty() && known.iter().all(|k| peers.iter().any(|p| &p.name == k))
            })
            .await;
        let looking = self.looking.lock().await;
        let looks = pongs.iter().map(|pong| async move {
            let previous = self.peer(&pong.name);
            self.look_at(&pong.name, Some(pong), previous.as_ref()).await
        });
        let views: Vec<AgentView> = futures_util::future::join_all(looks)
            .await
            .into_iter()
            .flatten()
            .collect();
        let answered: HashSet<String> = views.iter().map(|v| v.name.clone()).collect();
        for view in views {
            self.store(view);
        }
        drop(looking);
        self.expire(&answered);
        // Every trace request leaves two entries in the agent's own trace:
        // ask only while someone watches the feed. The next request after a
        // pause brings what arrived in it.
        if self.events.receiver_count() > 0 {
            self.collect_traces(&answered).await;
        }
        self.bump();
    }

    /// Agents that missed several rounds in a row have left.
    fn expire(&self, answered: &HashSet<String>) {
        let mut gone = Vec::new();
        {
            let mut peers = self.peers.write().unwrap_or_else(|e| e.into_inner());
            for (name, (_, missed)) in peers.iter_mut() {
                if !answered.contains(name) {
                    *missed += 1;
                    if *missed >= MISSED_ROUNDS {
                        gone.push(name.clone());
                    }
                }
            }
            for name in &gone {
                peers.remove(name);
                self.publish(&Event::Left { name: name.clone() });
            }
        }
        for name in &gone {
            self.seen.lock().unwrap_or_else(|e| e.into_inner()).remove(name);
            self.rates.lock().unwrap_or_else(|e| e.into_inner()).forget(name);
        }
    }

    /// Asks every agent for the messages it received since the last round.
    async fn collect_traces(&self, agents: &HashSet<String>) {
        let asks = agents.iter().map(|name| async move {
            let query = TraceQuery {
                limit: Some(TRACE_LIMIT),
                category: Some("incoming".to_owned()),
                ..TraceQuery::default()
            };
            (name, self.ctx().list_traces(name, &query).await)
        });
        let mut fresh = Vec::new();
        for (name, result) in futures_util::future::join_all(asks).await {
            let entries = match result {
                Ok(entries) => entries,
                Err(e) => {
                    tracing::debug!(agent = %name, error = %e, "cannot read an agent's traces");
                    continue;
                }
            };
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            let last = seen.get(name.as_str()).copied().unwrap_or(0.0);
            let mut newest = last;
            for entry in &entries {
                let Some(view) = TraceView::parse(name, entry) else {
                    continue;
                };
                if view.time <= last {
                    continue;
                }
                newest = newest.max(view.time);
                if shown(&view) {
                    fresh.push(view);
                }
            }
            seen.insert(name.clone(), newest);
        }
        if fresh.is_empty() {
            return;
        }
        fresh.sort_by(|a, b| a.time.total_cmp(&b.time));
        {
            let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
            recent.extend(fresh.iter().cloned());
            while recent.len() > RECENT {
                recent.pop_front();
            }
        }
        self.publish(&Event::Traces { traces: fresh });
    }

    /// Runs rounds until the observer stops: one per refresh interval, or
    /// at once when woken.
    pub(crate) async fn run(self: Arc<Self>) {
        loop {
            self.round().await;
            tokio::select! {
                () = tokio::time::sleep(self.refresh) => {}
                () = self.wake.notified() => {}
                () = self.observer.stopped() => return,
            }
        }
    }
}

/// Whether a message belongs in the feed: not the keepalive pings, not
/// the requests of munggoggo's tools (what a user sends with them stays).
pub(crate) fn shown(view: &TraceView) -> bool {
    view.kind != munggoggo::message::CONTROL && !tool_request(view)
}

/// Whether a dashboard or the CLI sent or receives the message as one of
/// their system requests or replies (peer pings, descriptions, traces, calls).
pub(crate) fn tool_request(view: &TraceView) -> bool {
    let system = view.kind == munggoggo::message::RPC || view.kind == munggoggo::message::CONTROL;
    system && (is_tool(&view.from) || is_tool(&view.to))
}

/// `munggoggo-dashboard-<pid>-<8 random hex digits>`.
pub(crate) fn unique_identity() -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{DASHBOARD_PREFIX}{}-{}", std::process::id(), &random[..8])
}
