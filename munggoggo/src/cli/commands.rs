//! The commands of the `munggoggo` binary.

use serde_json::{json, Value};

use super::args::{Command, GlobalArgs};
use super::error::CliError;
use super::output::{self, short_name, Cell, Colour};
use super::session::{names, Session};
use crate::bus::Route;
use crate::message::Properties;
use crate::peers::PeerStatus;
use crate::TraceQuery;

/// Joins the bus, runs `command`, leaves the bus (also when it failed).
pub(crate) async fn run(args: &GlobalArgs, command: &Command) -> Result<(), CliError> {
    #[cfg(feature = "web")]
    if let Command::Dashboard { listen, token } = command {
        return super::dashboard::dashboard(args, *listen, token.clone()).await;
    }
    if let Command::DeadLetters(action) = command {
        return super::dead_letters::run(args, action).await;
    }
    let session = Session::join(args).await?;
    let outcome = if let Command::Watch { interval, duration } = command {
        super::watch::watch(&session, args.json, *interval, *duration).await
    } else {
        execute(&session, args.json, command).await
    };
    session.leave().await;
    outcome
}

async fn execute(session: &Session, json: bool, command: &Command) -> Result<(), CliError> {
    let ctx = session.ctx();
    match command {
        Command::Peers => {
            let peers = session.peers().await?;
            if json {
                output::print_json(&json!({ "peers": peers }));
            } else if peers.is_empty() {
                output::print("no agents answered\n");
            } else {
                output::print(&peers_table(&peers));
            }
        }
        Command::Behaviours { agent } => {
            let peer = session.peer(agent).await?;
            let behaviours = behaviour_rows(session, &peer).await?;
            if json {
                output::print_json(&json!({ "agent": agent, "state": peer.state, "behaviours": behaviours }));
            } else if behaviours.is_empty() {
                output::print(&format!("agent `{agent}` has no behaviours\n"));
            } else {
                let text = |v: &Value| match v {
                    Value::Null => "-".to_owned(),
                    Value::String(s) => s.replace('\n', " "),
                    other => other.to_string(),
                };
                let rows: Vec<Vec<Cell>> = behaviours
                    .iter()
                    .map(|b| {
                        vec![
                            Cell::plain(text(&b["name"])),
                            Cell::state(b["state"].as_str().unwrap_or_default()),
                            Cell::plain(text(&b["runs"])),
                            Cell::plain(text(&b["errors"])),
                            Cell::plain(text(&b["last_error"])),
                        ]
                    })
                    .collect();
                output::print(&output::table(
                    &["BEHAVIOUR", "STATE", "RUNS", "ERRORS", "LAST ERROR"],
                    &rows,
                ));
            }
        }
        Command::Start { agent, behaviour } => manage(session, json, agent, behaviour, "start").await?,
        Command::Stop { agent, behaviour } => manage(session, json, agent, behaviour, "stop").await?,
        Command::Traces {
            agent,
            limit,
            sender,
            category,
        } => {
            session.peer(agent).await?;
            // The agent matches a sender exactly; CLI identities are random,
            // so a sender is matched here, by substring, before the limit.
            let query = TraceQuery {
                limit: if sender.is_some() { None } else { *limit },
                sender: None,
                category: category.clone(),
            };
            let mut traces: Vec<TraceLine> = ctx
                .list_traces(agent, &query)
                .await?
                .iter()
                .filter_map(TraceLine::parse)
                .filter(|t| sender.as_deref().is_none_or(|s| t.sender().contains(s)))
                .collect();
            if let Some(limit) = limit {
                traces.drain(..traces.len().saturating_sub(*limit));
            }
            if json {
                let traces: Vec<Value> = traces.iter().map(TraceLine::to_json).collect();
                output::print_json(&json!({ "agent": agent, "count": traces.len(), "traces": traces }));
            } else {
                let rows: Vec<Vec<Cell>> = traces.iter().map(TraceLine::row).collect();
                if !rows.is_empty() {
                    output::print(&output::table(&TRACE_HEADERS, &rows));
                }
                output::print(&format!("{} entries\n", traces.len()));
            }
        }
        Command::Send { target, kind, body } => {
            if let Err(e) = ctx.send_raw(target, kind, body.clone().into_bytes()).await {
                return Err(match e {
                    crate::Error::UnknownTarget(_) => {
                        CliError::unknown_agent(target, names(&session.peers().await?))
                    }
                    other => other.into(),
                });
            }
            sent(json, "send", Some(target), kind, None, body);
        }
        Command::Broadcast { kind, body } => {
            ctx.broadcast_raw(kind, body.clone().into_bytes()).await?;
            sent(json, "broadcast", None, kind, None, body);
        }
        Command::Publish { topic, body, kind } => {
            let kind = kind.as_deref().unwrap_or(crate::message::PUBSUB);
            ctx.emit(
                Route::Topic(topic.clone()),
                Properties::new(kind, ctx.identity()),
                body.clone().into_bytes().into(),
            )
            .await?;
            sent(json, "publish", None, kind, Some(topic), body);
        }
        Command::Call {
            agent,
            method,
            params,
            exposed,
        } => {
            let params: Value = serde_json::from_str(params).map_err(|e| {
                CliError::failed(format!(
                    "PARAMS_JSON is not JSON ({e}); write an array like '[3, 4]' or an object like '{{\"x\": 3}}'"
                ))
            })?;
            let called = if *exposed {
                let params = if params == json!([]) {
                    json!({})
                } else {
                    params.clone()
                };
                ctx.call_exposed_with_timeout(method, params, session.timeout)
                    .await
            } else {
                session.peer(agent).await?;
                ctx.call_with_timeout(agent, method, &params, session.timeout)
                    .await
            };
            let result: Value = match called {
                Ok(result) => result,
                Err(crate::Error::Remote {
                    code: Some(crate::ErrorCode::UnknownMethod { known }),
                    ..
                }) => {
                    return Err(CliError::not_found(
                        format!(
                            "agent `{agent}` has no method `{method}`; it has: {}",
                            known.join(", ")
                        ),
                        known,
                    ));
                }
                Err(e) => return Err(e.into()),
            };
            if json {
                output::print_json(
                    &json!({ "agent": agent, "method": method, "params": params, "result": result }),
                );
            } else {
                let text = serde_json::to_string_pretty(&result).unwrap_or_default();
                output::print(&format!("{text}\n"));
            }
        }
        Command::Shutdown { agent } => {
            session.peer(agent).await?;
            let result = ctx.shutdown_agent(agent).await?;
            if json {
                output::print_json(&json!({ "agent": agent, "result": result }));
            } else {
                output::print(&format!("{result}\n"));
            }
        }
        Command::Graph => {
            let peers = session.peers().await?;
            let dot = graph(&peers);
            if json {
                output::print_json(&json!({ "peers": peers, "dot": dot }));
            } else {
                output::print(&dot);
            }
        }
        Command::Watch { .. } | Command::DeadLetters(_) => unreachable!("handled by run"),
        #[cfg(feature = "web")]
        Command::Dashboard { .. } => unreachable!("handled by run"),
    }
    Ok(())
}

/// Starts or stops a behaviour, after checking the agent and the behaviour.
async fn manage(
    session: &Session,
    json: bool,
    agent: &str,
    behaviour: &str,
    command: &str,
) -> Result<(), CliError> {
    let peer = session.peer(agent).await?;
    let known: Vec<String> = peer.behaviours.iter().map(|b| b.name.clone()).collect();
    let unknown = || {
        let short: Vec<String> = known.iter().map(|b| short_name(agent, b).to_owned()).collect();
        CliError::not_found(
            format!(
                "agent `{agent}` has no behaviour `{behaviour}`; it has: {}",
                short.join(", ")
            ),
            short,
        )
    };
    let suffix = format!(".{behaviour}");
    let Some(full) = known
        .iter()
        .find(|b| *b == behaviour)
        .or_else(|| known.iter().find(|b| b.ends_with(&suffix)))
    else {
        return Err(unknown());
    };
    let result = session.ctx().manage_behaviour(agent, behaviour, command).await?;
    if result.starts_with("No behaviour") {
        return Err(unknown());
    }
    // 0.4's texts differ ("… started." but "… stopped: init"): say it one way.
    let text = if result.ends_with("already running.") {
        format!("{full} is already running")
    } else if command == "start" {
        format!("{full} started")
    } else {
        format!("{full} stopped")
    };
    if json {
        output::print_json(&json!({
            "agent": agent,
            "behaviour": full,
            "command": command,
            "result": result,
        }));
    } else {
        output::print(&format!("{text}\n"));
    }
    Ok(())
}

/// An agent's behaviours with state, runs, errors and last error; from a
/// munggoggo 0.4 agent, which does not report counters, names and states
/// only (the counters are `null`).
async fn behaviour_rows(session: &Session, peer: &PeerStatus) -> Result<Vec<Value>, CliError> {
    let agent = peer.name.as_str();
    match session.ctx().behaviour_status(agent).await {
        Ok(status) => Ok(status
            .iter()
            .map(|b| {
                json!({
                    "name": b.name,
                    "state": b.state,
                    "runs": b.runs,
                    "errors": b.errors,
                    "last_error": b.last_error,
                })
            })
            .collect()),
        Err(crate::Error::Remote { .. }) => {
            let names = session.ctx().list_behaviours(agent).await?;
            Ok(names
                .iter()
                .map(|name| {
                    let state = peer
                        .behaviours
                        .iter()
                        .find(|b| &b.name == name)
                        .map_or("unknown", |b| b.state.as_str());
                    json!({ "name": name, "state": state, "runs": null, "errors": null, "last_error": null })
                })
                .collect())
        }
        Err(e) => Err(e.into()),
    }
}

/// Reports a sent message.
fn sent(json: bool, how: &str, to: Option<&str>, kind: &str, topic: Option<&str>, body: &str) {
    if json {
        output::print_json(&json!({
            "sent": how,
            "to": to,
            "topic": topic,
            "type": kind,
            "bytes": body.len(),
        }));
    } else {
        let whom = match (to, topic) {
            (Some(to), _) => format!("to {to}"),
            (None, Some(topic)) => format!("on topic {topic}"),
            (None, None) => "to every agent".to_owned(),
        };
        output::print(&format!("sent {kind} {whom} ({} bytes)\n", body.len()));
    }
}

/// The peers as a table: name, state, behaviours with their states.
pub(crate) fn peers_table(peers: &[PeerStatus]) -> String {
    let rows: Vec<Vec<Cell>> = peers
        .iter()
        .map(|p| {
            vec![
                Cell::coloured(&p.name, Some(Colour::Cyan)),
                Cell::state(&p.state),
                Cell::plain(behaviour_summary(p)),
            ]
        })
        .collect();
    output::table(&["AGENT", "STATE", "BEHAVIOURS"], &rows)
}

/// `ping (running), pong (init)`.
pub(crate) fn behaviour_summary(peer: &PeerStatus) -> String {
    let list: Vec<String> = peer
        .behaviours
        .iter()
        .map(|b| format!("{} ({})", short_name(&peer.name, &b.name), b.state))
        .collect();
    if list.is_empty() {
        "-".to_owned()
    } else {
        list.join(", ")
    }
}

/// The agents and their behaviours as a Graphviz digraph.
pub(crate) fn graph(peers: &[PeerStatus]) -> String {
    fn fill(state: &str) -> &'static str {
        match state {
            "running" => "#c6efce",
            "init" | "stopping" => "#ffeb9c",
            "crashed" => "#ffc7ce",
            _ => "#e0e0e0",
        }
    }
    fn escape(text: &str) -> String {
        text.replace('\\', "\\\\").replace('"', "\\\"")
    }
    fn quote(text: &str) -> String {
        format!("\"{}\"", escape(text))
    }
    // Two lines: the name, then the state.
    fn label(name: &str, state: &str) -> String {
        format!("\"{}\\n{}\"", escape(name), escape(state))
    }
    let mut dot =
        String::from("digraph munggoggo {\n  rankdir=LR;\n  node [fontname=\"Helvetica\", style=filled];\n");
    for peer in peers {
        dot.push_str(&format!(
            "  {} [shape=box, fillcolor={}, label={}];\n",
            quote(&peer.name),
            quote(fill(&peer.state)),
            label(&peer.name, &peer.state),
        ));
        for b in &peer.behaviours {
            dot.push_str(&format!(
                "  {} [shape=ellipse, fillcolor={}, label={}];\n  {} -> {};\n",
                quote(&b.name),
                quote(fill(&b.state)),
                label(short_name(&peer.name, &b.name), &b.state),
                quote(&peer.name),
                quote(&b.name),
            ));
        }
    }
    dot.push_str("}\n");
    dot
}

/// Column headers of trace tables.
pub(crate) const TRACE_HEADERS: [&str; 6] =
    ["TIME (UTC)", "CATEGORY", "TYPE", "FROM/TO", "ROUTING KEY", "BODY"];

/// One trace entry as 0.4 sends it: `[epoch seconds, record, category]`.
pub(crate) struct TraceLine {
    pub(crate) time: f64,
    pub(crate) category: String,
    pub(crate) record: Value,
}

impl TraceLine {
    /// Reads a wire entry; `None` when it is not one.
    pub(crate) fn parse(entry: &Value) -> Option<TraceLine> {
        let entry = entry.as_array()?;
        Some(TraceLine {
            time: entry.first()?.as_f64()?,
            record: entry.get(1)?.clone(),
            category: entry.get(2)?.as_str()?.to_owned(),
        })
    }

    fn field(&self, name: &str) -> &str {
        self.record.get(name).and_then(Value::as_str).unwrap_or_default()
    }

    /// Whether the record was sent by the agent (0.4 leaves `app_id` empty then).
    fn outgoing(&self) -> bool {
        self.field("app_id").is_empty() && !self.field("target").is_empty()
    }

    /// The other side: `<- sender` or `-> target`.
    pub(crate) fn peer(&self) -> String {
        if self.outgoing() {
            format!("-> {}", self.field("target"))
        } else {
            format!("<- {}", self.field("app_id"))
        }
    }

    /// Who sent it (empty for what the agent sent).
    pub(crate) fn sender(&self) -> &str {
        self.field("app_id")
    }

    /// Whether a CLI observer (this one or another) sent or receives it.
    pub(crate) fn involves_cli(&self) -> bool {
        let cli = |s: &str| s.starts_with(super::session::CLI_PREFIX);
        cli(self.field("app_id")) || cli(self.field("target")) || cli(self.field("routing_key"))
    }

    /// The JSON form of `--json`.
    pub(crate) fn to_json(&self) -> Value {
        json!({ "time": self.time, "category": self.category, "record": self.record })
    }

    /// A row under [`TRACE_HEADERS`].
    pub(crate) fn row(&self) -> Vec<Cell> {
        // The body is shortened, the reason of a rejection never.
        let mut body = output::shorten(self.field("body"), 72);
        if let Some(reason) = self.record.get("reason").and_then(Value::as_str) {
            body = format!("{body}  [{}]", reason.replace(['\n', '\r'], " "));
        }
        let category_colour = match self.category.as_str() {
            "rejected" => Some(Colour::Red),
            "incoming" | "outgoing" => None,
            _ => Some(Colour::Cyan),
        };
        vec![
            Cell::coloured(output::clock(self.time), Some(Colour::Dim)),
            Cell::coloured(&self.category, category_colour),
            Cell::plain(self.field("type")),
            Cell::plain(self.peer()),
            Cell::plain(self.field("routing_key")),
            Cell::plain(body),
        ]
    }
}
