//! The commands of the `munggoggo` binary.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::args::{Command, GlobalArgs};
use super::error::CliError;
use super::output::{self, behaviour_state, short_name, Cell};
use super::session::{names, Session};
use super::tables::{graph, peers_table, TraceLine, TRACE_HEADERS};
use munggoggo::bus::Route;
use munggoggo::fsm::{MachineDescription, MachineStatus};
use munggoggo::message::Properties;
use munggoggo::PeerStatus;
use munggoggo::TraceQuery;

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
                        let count = |name: &str| b[name].as_u64().unwrap_or(0);
                        let ran = count("runs") + count("errors") > 0;
                        let state = b["state"].as_str().unwrap_or_default();
                        // A state machine's behaviour shows its current state.
                        let name = match b["machine"]["state"].as_str() {
                            Some(current) => format!("{} [{current}]", text(&b["name"])),
                            None => text(&b["name"]),
                        };
                        vec![
                            Cell::plain(name),
                            Cell::state(behaviour_state(state, &peer.state, ran)),
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
                output::print(&machine_lines(&behaviours));
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
            if let Err(e) = ctx.send_raw(target, kind, on_the_wire(kind, body)?).await {
                return Err(match e {
                    munggoggo::Error::UnknownTarget(_) => {
                        CliError::unknown_agent(target, names(&session.peers().await?))
                    }
                    other => other.into(),
                });
            }
            sent(json, "send", Some(target), kind, None, body);
        }
        Command::Broadcast { kind, body } => {
            ctx.broadcast_raw(kind, on_the_wire(kind, body)?).await?;
            sent(json, "broadcast", None, kind, None, body);
        }
        Command::Publish { topic, body, kind } => {
            let kind = kind.as_deref().unwrap_or(munggoggo::message::PUBSUB);
            ctx.emit(
                Route::Topic(topic.into()),
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
            // The method's parameters, when the agent describes itself.
            let mut declared = None;
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
                declared = signature(session, agent, method).await?;
                if let Some(declared) = &declared {
                    check_params(agent, method, declared, &params)?;
                }
                ctx.call_with_timeout(agent, method, &params, session.timeout)
                    .await
            };
            let result: Value = match called {
                Ok(result) => result,
                Err(munggoggo::Error::Remote {
                    code: Some(munggoggo::ErrorCode::UnknownMethod { known }),
                    ..
                }) => return Err(unknown_method(agent, method, known)),
                Err(
                    e @ munggoggo::Error::Remote {
                        code: Some(munggoggo::ErrorCode::BadParams),
                        ..
                    },
                ) => {
                    // Too few parameters (or of the wrong type) for the
                    // agent: with the method's parameters when known.
                    return Err(match &declared {
                        Some(declared) => CliError::failed(format!(
                            "{e}; `{}` takes {}, given {params}",
                            shape(method, declared),
                            count(declared.len()),
                        )),
                        None => e.into(),
                    });
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
            let machines = machines_of(session, &peers).await;
            let dot = graph(&peers, &machines);
            if json {
                output::print_json(&json!({ "peers": peers, "machines": machines, "dot": dot }));
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

/// The parameter names of `agent`'s method `method`, as the agent
/// describes itself; `None` when it does not (a munggoggo 0.4 agent, or no
/// answer in time): then the call goes out unchecked. An error when the
/// agent has no such method.
async fn signature(session: &Session, agent: &str, method: &str) -> Result<Option<Vec<String>>, CliError> {
    let description = match session.ctx().describe_agent(agent).await {
        Ok(description) => description,
        Err(e) => {
            tracing::debug!(agent, error = %e, "no description: the call goes out unchecked");
            return Ok(None);
        }
    };
    match description.methods.iter().find(|m| m.name == method) {
        Some(found) => Ok(Some(found.params.clone())),
        None => Err(unknown_method(
            agent,
            method,
            description.methods.into_iter().map(|m| m.name).collect(),
        )),
    }
}

/// Refuses parameters the method does not declare: more positional ones
/// than it has, or names it does not know (the agent would drop them).
/// Fewer are the agent's to judge: an `Option` parameter may be left out.
fn check_params(agent: &str, method: &str, declared: &[String], params: &Value) -> Result<(), CliError> {
    let refuse = |what: String| {
        Err(CliError::failed(format!(
            "`{}` of agent `{agent}` {what}; given {params}",
            shape(method, declared),
        )))
    };
    match params {
        Value::Array(given) if given.len() > declared.len() => {
            refuse(format!("takes {}, not {}", count(declared.len()), given.len()))
        }
        Value::Object(given) => {
            let unknown: Vec<String> = given
                .keys()
                .filter(|name| !declared.contains(name))
                .map(|name| format!("`{name}`"))
                .collect();
            match unknown.len() {
                0 => Ok(()),
                1 => refuse(format!("has no parameter {}", unknown[0])),
                _ => refuse(format!("has no parameters {}", unknown.join(", "))),
            }
        }
        Value::Null | Value::Array(_) => Ok(()),
        // A single value is the first parameter.
        _ if declared.is_empty() => refuse("takes no parameters".to_owned()),
        _ => Ok(()),
    }
}

/// `multiply(x, y)`.
fn shape(method: &str, params: &[String]) -> String {
    format!("{method}({})", params.join(", "))
}

/// `no parameters`, `1 parameter`, `2 parameters`.
fn count(n: usize) -> String {
    match n {
        0 => "no parameters".to_owned(),
        1 => "1 parameter".to_owned(),
        n => format!("{n} parameters"),
    }
}

/// Agent `agent` has no method `method`; `known` are the ones it has.
fn unknown_method(agent: &str, method: &str, known: Vec<String>) -> CliError {
    let none = format!("{agent} exposes no methods");
    not_among(agent, "method", method, known, &none)
}

/// Agent `agent` has no `kind` named `name`: the ones it has (`known`), or
/// `none` when it has none.
fn not_among(agent: &str, kind: &str, name: &str, known: Vec<String>, none: &str) -> CliError {
    let message = if known.is_empty() {
        format!("agent `{agent}` has no {kind} `{name}`: {none}")
    } else {
        format!(
            "agent `{agent}` has no {kind} `{name}`; it has: {}",
            known.join(", ")
        )
    };
    CliError::not_found(message, known)
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
        not_among(agent, "behaviour", behaviour, short, "it has no behaviours")
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
                let mut row = json!({
                    "name": b.name,
                    "state": b.state,
                    "runs": b.runs,
                    "errors": b.errors,
                    "last_error": b.last_error,
                });
                // A state machine's state, entry time and transitions.
                if let Some(machine) = &b.machine {
                    row["machine"] = json!(machine);
                }
                row
            })
            .collect()),
        Err(munggoggo::Error::Remote { .. }) => {
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

/// The state machines of the agents, by behaviour name, as the agents
/// describe them (all asked at once); an agent that does not describe
/// itself (munggoggo 0.4) or does not answer in time has none.
async fn machines_of(session: &Session, peers: &[PeerStatus]) -> HashMap<String, MachineDescription> {
    let with_machines = peers.iter().filter(|p| !p.behaviours.is_empty());
    let asks = with_machines.map(|p| session.ctx().describe_agent(&p.name));
    let mut machines = HashMap::new();
    for described in futures_util::future::join_all(asks).await {
        match described {
            Ok(agent) => machines.extend(
                agent
                    .behaviours
                    .into_iter()
                    .filter_map(|b| Some((b.name, b.machine?))),
            ),
            Err(e) => tracing::debug!(error = %e, "no description, no state machines drawn"),
        }
    }
    machines
}

/// Under the behaviours table, one line per state machine: its state,
/// since when and its transitions
/// (`agent1.session: in Reserved since 2026-12-07T16:30:01Z, 3 transitions`).
fn machine_lines(behaviours: &[Value]) -> String {
    behaviours
        .iter()
        .filter_map(|b| {
            let machine: MachineStatus = serde_json::from_value(b.get("machine")?.clone()).ok()?;
            let name = b["name"].as_str().unwrap_or_default();
            Some(format!("{name}: {}\n", machine.text()))
        })
        .collect()
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

/// The body a `send` or `broadcast` puts on the wire: as given, or with
/// `MUNGGOGGO_WIRE=0.4` in 0.4's `{"c_type", "c_data"}` envelope (unless
/// it is one already), as a 0.4 agent's `SerializableObject` reads it.
fn on_the_wire(kind: &str, body: &str) -> munggoggo::Result<bytes::Bytes> {
    let body = bytes::Bytes::from(body.to_owned());
    if !munggoggo::WireMode::from_env()?.envelope() || munggoggo::message::unwrap_envelope(&body).is_some() {
        return Ok(body);
    }
    let c_data = std::str::from_utf8(&body).unwrap_or_default();
    munggoggo::message::envelope(kind, c_data)
}
