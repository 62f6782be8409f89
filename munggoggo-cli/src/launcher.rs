//! The launcher of a user's binary: `list` and `run`, beside the control commands.

use serde_json::{json, Value};

use super::args::{LauncherArgs, LauncherCommand};
use super::error::{CliError, ErrorKind};
use super::output::{self, Cell, Colour};
use munggoggo::agent::{registered, BehaviourKind, HandlerRoute, Registration};
use munggoggo::Runtime;

/// Runs one launcher command.
pub(crate) async fn run(args: &LauncherArgs) -> Result<(), CliError> {
    match &args.command {
        LauncherCommand::List => {
            list(args.global.json);
            Ok(())
        }
        LauncherCommand::Run { .. } => launch(args).await,
        LauncherCommand::Control(command) => super::commands::run(&args.global, command).await,
    }
}

/// How `list` marks a type that `run` cannot start by name.
const NO_CONSTRUCTOR: &str =
    "[no constructor: `run` skips it; derive `Default` or add `#[agent(new = ...)]`]";

/// Prints the agent types compiled in.
fn list(json: bool) {
    let types = registered();
    if json {
        let agents: Vec<Value> = types.iter().map(describe).collect();
        output::print_json(&json!({ "agents": agents }));
        return;
    }
    if types.is_empty() {
        output::print("no agent types are compiled into this binary\n");
        return;
    }
    let mut text = String::new();
    for r in &types {
        let spec = (r.spec)();
        let options = (r.options)();
        let no_constructor = if r.has_constructor() {
            String::new()
        } else {
            format!("  {}", output::paint(NO_CONSTRUCTOR, Some(Colour::Yellow)))
        };
        text.push_str(&format!(
            "{}  {}{no_constructor}\n",
            output::paint(spec.name, Some(Colour::Bold)),
            output::paint(&format!("(identity: {})", options.identity), Some(Colour::Dim))
        ));
        let mut rows: Vec<Vec<Cell>> = spec
            .behaviours
            .iter()
            .map(|b| {
                vec![
                    Cell::plain("  behaviour"),
                    Cell::coloured(b.method, Some(Colour::Cyan)),
                    Cell::plain(b.kind.text()),
                ]
            })
            .collect();
        rows.extend(spec.rpcs.iter().map(|rpc| {
            vec![
                Cell::plain("  rpc"),
                Cell::coloured(rpc.method, Some(Colour::Cyan)),
                Cell::plain(format!("({})", rpc.params.join(", "))),
            ]
        }));
        if rows.is_empty() {
            text.push_str("  (no behaviours, handlers or rpc methods)\n");
        } else {
            // The table's header row is dropped: the rows name what they are.
            let table = output::table(&["", "", ""], &rows);
            for line in table.lines().skip(1) {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    output::print(&text);
}

/// The JSON description of an agent type.
fn describe(r: &Registration) -> Value {
    let spec = (r.spec)();
    let options = (r.options)();
    let behaviours: Vec<Value> = spec
        .behaviours
        .iter()
        .map(|b| json!({ "name": b.method, "kind": b.kind.word(), "detail": b.kind.text() }))
        .collect();
    let messages: Vec<&str> = spec
        .behaviours
        .iter()
        .filter_map(|b| match b.kind {
            BehaviourKind::Handler(HandlerRoute::Type(t)) => Some(t),
            _ => None,
        })
        .collect();
    let topics: Vec<&str> = spec
        .behaviours
        .iter()
        .filter_map(|b| match b.kind {
            BehaviourKind::Handler(HandlerRoute::Topic(keys)) => Some(keys),
            _ => None,
        })
        .flatten()
        .copied()
        .collect();
    let rpcs: Vec<Value> = spec
        .rpcs
        .iter()
        .map(|rpc| json!({ "method": rpc.method, "params": rpc.params }))
        .collect();
    json!({
        "name": spec.name,
        "identity": options.identity,
        "constructor": r.has_constructor(),
        "behaviours": behaviours,
        "messages": messages,
        "topics": topics,
        "rpc": rpcs,
    })
}

/// Finds a registered type by type name (any case) or default identity.
fn find(name: &str) -> Result<Registration, CliError> {
    let types = registered();
    types
        .iter()
        .find(|r| r.name() == name)
        .or_else(|| types.iter().find(|r| r.name().eq_ignore_ascii_case(name)))
        .or_else(|| types.iter().find(|r| (r.options)().identity == name))
        .copied()
        .ok_or_else(|| {
            let known: Vec<String> = types.iter().map(|r| r.name().to_owned()).collect();
            CliError::not_found(
                format!(
                    "no agent type `{name}` is compiled in; known: {}",
                    known.join(", ")
                ),
                known,
            )
        })
}

/// What `run` starts: the runtime with its agents, and per agent its type
/// and identity; the types left out of a bare `run` for want of a constructor.
struct Plan {
    runtime: Runtime,
    started: Vec<Value>,
    skipped: Vec<String>,
}

impl LauncherArgs {
    /// The runtime that `run` starts, with its agents and configuration,
    /// not started yet; `None` for the other commands.
    pub fn runtime(&self) -> Result<Option<Runtime>, CliError> {
        Ok(self.plan()?.map(|plan| plan.runtime))
    }

    fn plan(&self) -> Result<Option<Plan>, CliError> {
        let LauncherCommand::Run {
            agents,
            identities,
            config,
            ..
        } = &self.command
        else {
            return Ok(None);
        };
        let mut skipped = Vec::new();
        let chosen: Vec<(Registration, Option<String>)> = if agents.is_empty() {
            let (startable, without): (Vec<_>, Vec<_>) =
                registered().into_iter().partition(Registration::has_constructor);
            skipped = without.iter().map(|r| r.name().to_owned()).collect();
            startable.into_iter().map(|r| (r, None)).collect()
        } else {
            agents.iter().map(|a| parse_agent(a)).collect::<Result<_, _>>()?
        };
        if chosen.is_empty() {
            return Err(CliError::failed(if skipped.is_empty() {
                "no agent types are compiled into this binary".to_owned()
            } else {
                format!(
                    "no agent type can be started by name ({} without a constructor): derive `Default` or add `#[agent(new = ...)]`",
                    skipped.join(", ")
                )
            }));
        }
        if identities.len() > chosen.len() {
            return Err(CliError::failed(format!(
                "{} identities for {} agents: give one --identity per AGENT, in order",
                identities.len(),
                chosen.len()
            )));
        }
        let mut runtime = match self.global.url.as_deref() {
            Some(url) => Runtime::from_url(url)?,
            None => Runtime::memory(),
        };
        if let Some(path) = config {
            runtime = runtime.config_file(path)?;
        }
        // MUNGGOGGO_METRICS=127.0.0.1:9464: a `/metrics` listener beside the agents.
        #[cfg(feature = "metrics")]
        {
            runtime = runtime.metrics_from_env()?;
        }
        let mut started = Vec::new();
        for (i, (r, at)) in chosen.iter().enumerate() {
            let identity = match (at, identities.get(i)) {
                (Some(at), Some(flag)) if at != flag => {
                    return Err(CliError::failed(format!(
                        "agent {} has two identities, `{at}` (after @) and `{flag}` (--identity): give one",
                        i + 1
                    )))
                }
                (Some(id), _) | (None, Some(id)) => Some(id.clone()),
                (None, None) => None,
            };
            started.push(json!({
                "type": r.name(),
                "identity": identity.clone().unwrap_or_else(|| (r.options)().identity),
            }));
            runtime = r.add_to(runtime, identity)?;
        }
        Ok(Some(Plan {
            runtime,
            started,
            skipped,
        }))
    }
}

/// `TYPE` or `TYPE@IDENTITY`.
fn parse_agent(text: &str) -> Result<(Registration, Option<String>), CliError> {
    match text.split_once('@') {
        Some((_, "")) | Some(("", _)) => Err(CliError::failed(format!(
            "`{text}`: write an agent as `TYPE` or `TYPE@IDENTITY`, e.g. `sensor@kitchen`"
        ))),
        Some((name, identity)) => Ok((find(name)?, Some(identity.to_owned()))),
        None => Ok((find(text)?, None)),
    }
}

/// Starts the agents and runs until a signal or until they all stopped.
async fn launch(args: &LauncherArgs) -> Result<(), CliError> {
    let Some(Plan {
        runtime,
        started,
        skipped,
    }) = args.plan()?
    else {
        return Ok(());
    };
    let json = args.global.json;
    let url = args.global.url.as_deref();
    let bus = url.map_or_else(|| "the embedded bus".to_owned(), munggoggo::bus::redact);
    let handle = runtime.start().await.map_err(|e| {
        match &e {
            munggoggo::Error::IdentityInUse(identity) => {
                return CliError::failed(format!(
                    "identity `{identity}` is already in use by another agent; give this one its own with TYPE@ID or --identity ID"
                ))
            }
            munggoggo::Error::DuplicateIdentity { identity, .. } => {
                return CliError::failed(format!(
                    "two agents would have the identity `{identity}`; give them their own with TYPE@ID or --identity ID, once per AGENT in order; no agent was started"
                ))
            }
            _ => {}
        }
        let err = CliError::from(e);
        match err.kind() {
            ErrorKind::Connect if !err.message().contains(&bus) => CliError::new(
                ErrorKind::Connect,
                format!("cannot connect to `{bus}`: {}", err.message()),
            ),
            _ => err,
        }
    })?;
    if json {
        output::print_json(&json!({ "running": started, "skipped": skipped, "bus": bus }));
    } else {
        if !skipped.is_empty() {
            output::note(&format!(
                "skipped {}: no constructor (derive `Default` or add `#[agent(new = ...)]`)",
                skipped.join(", ")
            ));
        }
        let names: Vec<String> = started
            .iter()
            .map(|s| {
                format!(
                    "{} ({})",
                    s["identity"].as_str().unwrap_or_default(),
                    s["type"].as_str().unwrap_or_default()
                )
            })
            .collect();
        output::note(&format!("running {} on {bus}; Ctrl-C to stop", names.join(", ")));
    }
    #[cfg(feature = "web")]
    if let LauncherCommand::Run {
        dashboard: Some(listen),
        ..
    } = &args.command
    {
        let options = munggoggo_web::DashboardOptions::from_env();
        let outcome = tokio::select! {
            () = handle.wait() => Ok(()),
            served = super::dashboard::serve(&handle, *listen, options, json) => served,
        };
        handle.shutdown().await;
        return outcome;
    }
    handle.run_until_signal().await;
    Ok(())
}
