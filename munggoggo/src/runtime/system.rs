//! System messages (CONTROL and RPC), answered by the agent's task from
//! shared status without waiting for the agent's handlers.
//!
//! A request is answered to its `reply_to` when it has one (Rust callers
//! set their control queue there), else to its `app_id`, as munggoggo 0.4
//! does.

use bytes::Bytes;
use futures_util::future::Either;
use serde::Serialize;

use super::calls::{IncomingCall, Reply};
use super::core::Core;
use crate::bus::{Delivery, Route};
use crate::message::{self, Properties, Received};
use crate::peers::PongControl;
use crate::protocol::{self, ListTraceStore, ManageBehav, RpcCall, RpcMessage, Serialized};
use crate::rpc::CallError;

/// Handles one system message and acknowledges it (rejects what cannot be
/// read, with a log line and a trace entry).
pub(crate) async fn handle(core: &std::sync::Arc<Core>, delivery: Delivery) {
    let Delivery { received, acker, .. } = delivery;
    let answer = async {
        match received.properties.kind.as_deref() {
            Some(message::CONTROL) => control(core, &received).await,
            _ => rpc(core, &received).await,
        }
    };
    // Answers continue the request's trace; an `#[rpc]` call takes it along.
    let outcome = match crate::tracecontext::incoming(&received) {
        Some(request) => crate::tracecontext::scope(request, answer).await,
        None => answer.await,
    };
    match outcome {
        Ok(()) => {
            if let Err(e) = acker.ack().await {
                tracing::warn!(agent = %core.identity, error = %e, "cannot acknowledge a system message");
            }
        }
        Err(reason) => {
            core.reject_with(&received, acker, reason).await;
        }
    }
}

async fn control(core: &Core, msg: &Received) -> Result<(), String> {
    let env: Serialized = serde_json::from_slice(&msg.body)
        .map_err(|e| format!("CONTROL body is not a c_type/c_data envelope: {e}"))?;
    match env.c_type.as_str() {
        "PingControl" => {
            let Some(to) = answer_to(msg) else {
                return Err("PingControl without app_id: nobody to answer".to_owned());
            };
            if core.peers.is_local(msg.sender()) {
                // The pinger shares this agent's runtime and lists it
                // without a pong (see `crate::peers`).
                return Ok(());
            }
            let pong = PongControl {
                status: core.status(),
            };
            let c_data = serde_json::to_string(&pong).map_err(|e| e.to_string())?;
            let body = protocol::serialized("PongControl", c_data).map_err(|e| e.to_string())?;
            let mut properties = Properties::new(message::CONTROL, core.identity.clone());
            properties.correlation_id = msg.properties.correlation_id.clone();
            core.publish_detached(Route::Direct(to.into()), properties, body.clone(), body)
                .await;
            Ok(())
        }
        "PongControl" => {
            let pong: PongControl =
                serde_json::from_str(&env.c_data).map_err(|e| format!("PongControl does not decode: {e}"))?;
            if !core.peers.remote.update(msg.sender(), pong.status) {
                tracing::debug!(agent = %core.identity, sender = %msg.origin(), "PongControl for another agent ignored");
            }
            Ok(())
        }
        other => {
            tracing::info!(agent = %core.identity, c_type = other, sender = %msg.origin(), "unknown CONTROL message ignored");
            Ok(())
        }
    }
}

async fn rpc(core: &std::sync::Arc<Core>, msg: &Received) -> Result<(), String> {
    let env: RpcMessage = serde_json::from_slice(&msg.body)
        .map_err(|e| format!("RPC body is not an RpcMessage envelope: {e}"))?;
    let correlation_id = msg.properties.correlation_id.clone().unwrap_or_default();
    if env.request_type == protocol::REPLY || env.c_type == "RpcError" {
        // A reply; an RpcError is never answered (0.4's ping-pong, Q1).
        let reply = Reply {
            c_type: env.c_type,
            c_data: env.c_data,
        };
        if !core.pending.complete(&correlation_id, reply) {
            tracing::warn!(
                agent = %core.identity,
                sender = %msg.origin(),
                %correlation_id,
                "reply for no waiting call (late or unknown correlation id) dropped"
            );
        }
        return Ok(());
    }
    let Some(to) = answer_to(msg) else {
        return Err("RPC request without app_id: nobody to answer".to_owned());
    };
    if matches!(env.c_type.as_str(), "ManageBehav" | "ListTraceStore" | "Shutdown")
        && !core.options.may_control(msg.sender())
    {
        tracing::warn!(agent = %core.identity, sender = %msg.origin(), request = %env.c_type, "control request refused: sender not in control_from");
        let error = format!(
            "`{}` may not send {} to agent `{}`",
            msg.sender(),
            env.c_type,
            core.identity
        );
        reply(
            core,
            &to,
            &correlation_id,
            "RpcError",
            json(&serde_json::json!({ "error": error })),
        )
        .await;
        return Ok(());
    }
    let (c_type, c_data) = match env.c_type.as_str() {
        "Ping" => ("Pong".to_owned(), r#"{"pong":"pong"}"#.to_owned()),
        "ListBehav" => {
            // A machine's state follows its name, as text 0.4's ctrl.py shows.
            let behavs: Vec<String> = core
                .behaviours
                .iter()
                .map(|b| match b.status().machine {
                    Some(m) => format!("{}{}{})", b.name, crate::fsm::LIST_SUFFIX, m.text()),
                    None => b.name.to_string(),
                })
                .collect();
            (env.c_type, json(&serde_json::json!({ "behavs": behavs })))
        }
        "BehavStatus" => {
            let behaviours: Vec<_> = core.behaviours.iter().map(|b| b.status()).collect();
            (env.c_type, json(&serde_json::json!({ "behaviours": behaviours })))
        }
        "ManageBehav" => {
            let mut req: ManageBehav = decode(&env.c_data)?;
            req.result = manage(core, &req.behav, &req.command);
            (env.c_type, json(&req))
        }
        crate::introspect::DESCRIBE_AGENT => (env.c_type, json(&crate::introspect::describe(core))),
        "ListTraceStore" => {
            let req: ListTraceStore = decode(&env.c_data)?;
            (env.c_type, list_traces(core, &req))
        }
        "Shutdown" => {
            let result = format!("Shutdown of {} initiated.", core.identity);
            reply(
                core,
                &to,
                &correlation_id,
                "Shutdown",
                json(&serde_json::json!({ "result": result })),
            )
            .await;
            core.request_shutdown();
            return Ok(());
        }
        "RpcCall" => {
            let call: RpcCall = decode(&env.c_data)?;
            answer_call(core, to, correlation_id.to_string(), call).await;
            return Ok(());
        }
        other => (
            "RpcError".to_owned(),
            json(&serde_json::json!({ "error": format!("Unknown RPC request: {other}") })),
        ),
    };
    reply(core, &to, &correlation_id, &c_type, c_data).await;
    Ok(())
}

impl IncomingCall {
    /// Sends the method's result (or error) to the caller. A call from
    /// inside the process is answered at once, a hand-over with nothing to
    /// wait for; the answer of a call over the bus is a boxed future, as it
    /// is kilobytes large and the agent's task awaits it.
    pub(crate) fn answer<'a>(
        mut self,
        core: &'a Core,
        result: Result<serde_json::Value, CallError>,
    ) -> impl std::future::Future<Output = ()> + 'a {
        if self.local.is_some() {
            self.answer_local((&core.identity, &core.traces), result);
            return Either::Left(std::future::ready(()));
        }
        self.call.set_outcome(result);
        Either::Right(Box::pin(async move {
            reply(core, &self.to, &self.correlation_id, "RpcCall", json(&self.call)).await;
        }))
    }
}

/// Hands an `#[rpc]` call to the agent's task without waiting for it;
/// an unknown method or a stopping or busy agent is answered at once.
async fn answer_call(core: &Core, to: String, correlation_id: String, call: RpcCall) {
    // Boxed: the inbox keeps small entries.
    let incoming = Box::new(IncomingCall {
        index: usize::MAX,
        call,
        to,
        correlation_id,
        local: None,
        trace: None,
        parent: crate::tracecontext::current(),
    });
    if let Err((incoming, refused)) = core.offer_call(incoming) {
        incoming.answer(core, Err(refused)).await;
    }
}

/// The 0.4 result text of a ManageBehav request.
fn manage(core: &Core, behav: &str, command: &str) -> String {
    let Some(i) = core.find_behaviour(behav) else {
        return format!("No behaviour {behav}");
    };
    let name = &core.behaviours[i].name;
    match command {
        // Answered at once: this runs in the agent's task, which must not
        // wait for itself.
        "start" => match core.start_behaviour(i) {
            Ok(Some(_)) => format!("{name} started."),
            Ok(None) => format!("{name} already running."),
            Err(e) => format!("{name} not started: {e}"),
        },
        "stop" => match core.stop_behaviour(i) {
            Ok(_) => format!("{name} stopped: {}", core.behaviours[i].state.get()),
            Err(e) => format!("{name} not stopped: {e}"),
        },
        other => format!("Unknown command {other}."),
    }
}

/// The ListTraceStore reply: the request with `traces` filled, in 0.4's shape.
fn list_traces(core: &Core, req: &ListTraceStore) -> String {
    let entries = core
        .traces
        .filter(req.limit, req.app_id.as_deref(), req.category.as_deref());
    let traces: Vec<String> = entries.iter().map(|e| e.to_wire_json()).collect();
    format!(
        r#"{{"limit":{},"app_id":{},"category":{},"traces":[{}]}}"#,
        json(&req.limit),
        json(&req.app_id),
        json(&req.category),
        traces.join(",")
    )
}

async fn reply(core: &Core, to: &str, correlation_id: &str, c_type: &str, c_data: String) {
    let body = match protocol::rpc_body(c_type, c_data, protocol::REPLY) {
        Ok(body) => body,
        Err(e) => {
            tracing::error!(agent = %core.identity, error = %e, "cannot encode a reply");
            return;
        }
    };
    let mut properties = Properties::new(message::RPC, core.identity.clone());
    properties.correlation_id = Some(correlation_id.into());
    let traced = if c_type == "ListTraceStore" {
        Bytes::from_static(
            br#"{"c_type": "ListTraceStore", "c_data": "(trace listing omitted)", "request_type": 2}"#,
        )
    } else {
        body.clone()
    };
    core.publish_detached(Route::Direct(to.into()), properties, body, traced)
        .await;
}

/// Where to answer a request: its `reply_to`, else its `app_id`.
fn answer_to(msg: &Received) -> Option<String> {
    let props = &msg.properties;
    props
        .reply_to
        .as_deref()
        .filter(|s| !s.is_empty())
        .or_else(|| props.app_id.as_deref().filter(|s| !s.is_empty()))
        .map(str::to_owned)
}

fn decode<T: serde::de::DeserializeOwned>(c_data: &str) -> Result<T, String> {
    serde_json::from_str(c_data).map_err(|e| format!("c_data does not decode: {e}"))
}

fn json<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}
