//! `watch`: follow peers and new trace entries until Ctrl-C.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde_json::json;

use super::error::CliError;
use super::output::{self, Cell, Colour};
use super::session::Session;
use super::tables::{behaviour_summary, TraceLine, TRACE_HEADERS};
use munggoggo::PeerStatus;
use munggoggo::TraceQuery;

/// Looks every `interval` (until Ctrl-C, or for `duration`): prints agents
/// that joined, left or changed, and the messages each agent received since
/// the last look (its `incoming` trace entries; the CLIs' own traffic left
/// out). With `--json`, one JSON document per line and event.
///
/// Only incoming entries are asked for: an agent's outgoing entries hold its
/// replies to earlier trace requests, so asking for them again and again
/// would make every reply larger than the one before.
pub(crate) async fn watch(
    session: &Session,
    json: bool,
    interval: Duration,
    duration: Option<Duration>,
) -> Result<(), CliError> {
    let stop = async {
        match duration {
            Some(duration) => tokio::time::sleep(duration).await,
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    };
    tokio::pin!(stop);
    let mut state = Watch {
        json,
        interval,
        peers: BTreeMap::new(),
        seen: HashMap::new(),
        first: true,
        said_empty: false,
    };
    if !json {
        output::print(&output::paint(
            "watching the agents; Ctrl-C to stop\n",
            Some(Colour::Dim),
        ));
    }
    loop {
        let look = state.look(session);
        tokio::select! {
            () = &mut stop => return Ok(()),
            result = look => result?,
        }
        tokio::select! {
            () = &mut stop => return Ok(()),
            () = tokio::time::sleep(interval) => {}
        }
    }
}

/// Trace entries asked for per agent and look: the newest ones.
const TRACE_LIMIT: usize = 200;

/// Looks an agent may miss before it is reported as gone.
const MISSED_LOOKS: u32 = 3;

struct Watch {
    json: bool,
    interval: Duration,
    /// The agents seen, with how many looks in a row they did not answer.
    peers: BTreeMap<String, (PeerStatus, u32)>,
    /// Per agent, the time of the newest trace entry shown.
    seen: HashMap<String, f64>,
    first: bool,
    /// Whether the line saying that no agent is there was printed since
    /// the last agent was seen.
    said_empty: bool,
}

impl Watch {
    async fn look(&mut self, session: &Session) -> Result<(), CliError> {
        let now: BTreeMap<String, PeerStatus> = session
            .peers()
            .await?
            .into_iter()
            .map(|p| (p.name.clone(), p))
            .collect();
        for (name, peer) in &now {
            match self.peers.get(name) {
                None => self.event("joined", peer),
                Some((old, _)) if old != peer => self.event("changed", peer),
                Some(_) => {}
            }
        }
        // A busy broker can delay a pong past the window: an agent has left
        // only when it missed several looks in a row.
        let mut gone = Vec::new();
        for (name, (peer, missed)) in &mut self.peers {
            if !now.contains_key(name) {
                *missed += 1;
                if *missed >= MISSED_LOOKS {
                    gone.push((name.clone(), peer.clone()));
                }
            }
        }
        for (name, peer) in gone {
            self.left(&name, &peer);
            self.peers.remove(&name);
        }
        for (name, peer) in now {
            self.peers.insert(name, (peer, 0));
        }
        self.say_if_empty();
        // Ask every agent at once, each for at most one interval (1 s at
        // least): one that does not answer must not hold up the others.
        let wait = self.interval.max(Duration::from_secs(1));
        let asks = self.peers.keys().map(|name| async move {
            let query = TraceQuery {
                limit: Some(TRACE_LIMIT),
                category: Some("incoming".to_owned()),
                ..TraceQuery::default()
            };
            match tokio::time::timeout(wait, session.ctx().list_traces(name, &query)).await {
                Ok(Ok(entries)) => Some((name.clone(), entries)),
                Ok(Err(e)) => {
                    tracing::debug!(agent = %name, error = %e, "no traces");
                    None
                }
                Err(_) => {
                    tracing::debug!(agent = %name, "no traces in time");
                    None
                }
            }
        });
        let answers = futures_util::future::join_all(asks).await;
        for (name, entries) in answers.into_iter().flatten() {
            let since = self.seen.get(&name).copied();
            let mut newest = since.unwrap_or(0.0);
            let mut rows = Vec::new();
            for line in entries.iter().filter_map(TraceLine::parse) {
                newest = newest.max(line.time);
                // The first look only sets the mark; agents seen later show what they had.
                let new = match since {
                    Some(since) => line.time > since,
                    None => !self.first,
                };
                if !new || line.involves_cli() {
                    continue;
                }
                if self.json {
                    let mut event = line.to_json();
                    event["event"] = json!("trace");
                    event["agent"] = json!(name);
                    output::print_json_line(&event);
                } else {
                    let mut row = vec![Cell::coloured(&name, Some(Colour::Cyan))];
                    row.extend(line.row());
                    rows.push(row);
                }
            }
            if !rows.is_empty() {
                let mut headers = vec!["AGENT"];
                headers.extend(TRACE_HEADERS);
                output::print(&output::table(&headers, &rows));
            }
            self.seen.insert(name, newest);
        }
        self.first = false;
        Ok(())
    }

    /// With no agent to show, says so once (on the first look, or when the
    /// last one left), rather than nothing at all.
    fn say_if_empty(&mut self) {
        if !self.peers.is_empty() {
            self.said_empty = false;
            return;
        }
        if self.said_empty || self.json {
            return;
        }
        self.said_empty = true;
        let line = if self.first {
            "no agents answered; waiting for agents to join\n"
        } else {
            "no agents left; waiting for agents to join\n"
        };
        output::print(&output::paint(line, Some(Colour::Dim)));
    }

    fn event(&self, what: &str, peer: &PeerStatus) {
        if self.json {
            output::print_json_line(&json!({ "event": what, "peer": peer }));
        } else {
            let sign = if what == "joined" { "+" } else { "~" };
            output::print(&format!(
                "{} {} {} {}  {}\n",
                output::paint(sign, Some(Colour::Bold)),
                output::paint(&peer.name, Some(Colour::Cyan)),
                what,
                output::paint(&peer.state, Colour::of_state(&peer.state)),
                behaviour_summary(peer),
            ));
        }
    }

    fn left(&self, name: &str, peer: &PeerStatus) {
        if self.json {
            output::print_json_line(&json!({ "event": "left", "peer": peer }));
        } else {
            output::print(&format!(
                "{} {} left\n",
                output::paint("-", Some(Colour::Bold)),
                output::paint(name, Some(Colour::Cyan))
            ));
        }
    }
}
