//! The handlers of the JSON API under `/api`.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use bytes::Bytes;
use serde_json::Value;

use super::error::{ApiError, JsonBody};
use super::model::{
    AgentView, CallRequest, CallResponse, ErrorBody, InfoResponse, ManageResponse, PeersResponse,
    PublishRequest, SendRequest, SentResponse, ShutdownResponse, TraceParams, TraceView, TracesResponse,
};
use super::monitor::tool_request;
use crate::shared::Shared;
use munggoggo::bus::Route;
use munggoggo::message::Properties;
use munggoggo::TraceQuery;

type AppState = State<Arc<Shared>>;

/// The dashboard itself.
#[utoipa::path(get, path = "/api/info", tag = "dashboard",
    responses((status = 200, body = InfoResponse)))]
pub(crate) async fn info(State(shared): AppState) -> Json<InfoResponse> {
    Json(InfoResponse {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        identity: shared.monitor.observer.identity().to_owned(),
        auth_required: shared.options.token.is_some(),
        bus: munggoggo::bus::redact(&shared.bus),
    })
}

/// The agents on the bus with their behaviours, states and counters.
#[utoipa::path(get, path = "/api/peers", tag = "agents",
    responses((status = 200, body = PeersResponse)))]
pub(crate) async fn peers(State(shared): AppState) -> Json<PeersResponse> {
    Json(PeersResponse {
        peers: shared.monitor.peers(),
    })
}

/// One agent.
#[utoipa::path(get, path = "/api/peers/{agent}", tag = "agents",
    params(("agent" = String, Path, description = "The agent's identity")),
    responses((status = 200, body = AgentView), (status = 404, body = ErrorBody)))]
pub(crate) async fn peer(
    State(shared): AppState,
    Path(agent): Path<String>,
) -> Result<Json<AgentView>, ApiError> {
    shared
        .monitor
        .peer(&agent)
        .map(Json)
        .ok_or_else(|| ApiError::unknown_agent(&agent, shared.monitor.names()))
}

/// An agent's recent messages, oldest first.
#[utoipa::path(get, path = "/api/agents/{agent}/traces", tag = "agents",
    params(("agent" = String, Path, description = "The agent's identity"), TraceParams),
    responses((status = 200, body = TracesResponse), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 504, body = ErrorBody)))]
pub(crate) async fn traces(
    State(shared): AppState,
    Path(agent): Path<String>,
    query: Result<Query<TraceParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<TracesResponse>, ApiError> {
    let Query(params) = query.map_err(|e| ApiError::bad_request(format!("bad query: {e}")))?;
    // The tools' traffic is left out after the agent's filter: then the
    // limit applies here, to what is left.
    let query = TraceQuery {
        limit: params.limit.filter(|_| params.tools),
        sender: params.sender.clone(),
        category: params.category.clone(),
    };
    let entries = shared
        .monitor
        .observer
        .context()
        .list_traces(&agent, &query)
        .await
        .map_err(|e| ApiError::from_error(&shared, &agent, e))?;
    let mut traces: Vec<TraceView> = entries
        .iter()
        .filter_map(|e| TraceView::parse(&agent, e))
        .filter(|t| params.tools || !tool_request(t))
        .collect();
    if let Some(limit) = params.limit {
        traces.drain(..traces.len().saturating_sub(limit));
    }
    Ok(Json(TracesResponse { agent, traces }))
}

/// Starts a stopped behaviour of an agent.
#[utoipa::path(post, path = "/api/agents/{agent}/behaviours/{behaviour}/start", tag = "agents",
    params(("agent" = String, Path, description = "The agent's identity"),
        ("behaviour" = String, Path, description = "The behaviour's method or full name")),
    security((), ("bearer" = [])),
    responses((status = 200, body = ManageResponse), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 415, body = ErrorBody), (status = 504, body = ErrorBody)))]
pub(crate) async fn start_behaviour(
    State(shared): AppState,
    Path((agent, behaviour)): Path<(String, String)>,
) -> Result<Json<ManageResponse>, ApiError> {
    manage(&shared, &agent, &behaviour, "start").await.map(Json)
}

/// Stops a behaviour of an agent.
#[utoipa::path(post, path = "/api/agents/{agent}/behaviours/{behaviour}/stop", tag = "agents",
    params(("agent" = String, Path, description = "The agent's identity"),
        ("behaviour" = String, Path, description = "The behaviour's method or full name")),
    security((), ("bearer" = [])),
    responses((status = 200, body = ManageResponse), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 415, body = ErrorBody), (status = 504, body = ErrorBody)))]
pub(crate) async fn stop_behaviour(
    State(shared): AppState,
    Path((agent, behaviour)): Path<(String, String)>,
) -> Result<Json<ManageResponse>, ApiError> {
    manage(&shared, &agent, &behaviour, "stop").await.map(Json)
}

async fn manage(
    shared: &Shared,
    agent: &str,
    behaviour: &str,
    command: &str,
) -> Result<ManageResponse, ApiError> {
    let monitor = &shared.monitor;
    let result = monitor
        .observer
        .context()
        .manage_behaviour(agent, behaviour, command)
        .await
        .map_err(|e| ApiError::from_error(shared, agent, e))?;
    if result.starts_with("No behaviour") {
        let known = monitor
            .peer(agent)
            .map(|p| p.behaviours.iter().map(|b| b.method.clone()).collect())
            .unwrap_or_default();
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_behaviour",
            format!("agent `{agent}` has no behaviour `{behaviour}`"),
        )
        .with_known(known));
    }
    // The full name leads the answer: `agent1.ping stopped: init`.
    let full = result.split_whitespace().next().unwrap_or(behaviour).to_owned();
    monitor.refresh_agent(agent).await;
    let state = monitor
        .peer(agent)
        .and_then(|p| p.behaviour(&full).map(|b| b.state.clone()))
        .unwrap_or_else(|| "unknown".to_owned());
    Ok(ManageResponse {
        agent: agent.to_owned(),
        behaviour: full,
        command: command.to_owned(),
        result,
        state,
    })
}

/// The body's bytes: a JSON string as its text, anything else as JSON.
fn body_bytes(body: &Value) -> Bytes {
    match body {
        Value::String(text) => Bytes::from(text.clone()),
        other => Bytes::from(other.to_string()),
    }
}

fn check_kind(kind: &str) -> Result<(), ApiError> {
    if kind.trim().is_empty() {
        return Err(ApiError::bad_request("the message `type` must not be empty"));
    }
    if kind == munggoggo::message::CONTROL || kind == munggoggo::message::RPC {
        return Err(ApiError::bad_request(format!(
            "the message type `{kind}` is reserved for system messages"
        )));
    }
    Ok(())
}

/// Sends a message to one agent.
#[utoipa::path(post, path = "/api/agents/{agent}/messages", tag = "messages",
    params(("agent" = String, Path, description = "The receiver's identity")),
    request_body = SendRequest, security((), ("bearer" = [])),
    responses((status = 200, body = SentResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub(crate) async fn send(
    State(shared): AppState,
    Path(agent): Path<String>,
    JsonBody(request): JsonBody<SendRequest>,
) -> Result<Json<SentResponse>, ApiError> {
    check_kind(&request.kind)?;
    let body = body_bytes(&request.body);
    let bytes = body.len();
    shared
        .monitor
        .observer
        .context()
        .send_raw(&agent, &request.kind, body)
        .await
        .map_err(|e| ApiError::from_error(&shared, &agent, e))?;
    Ok(Json(SentResponse {
        sent: "send".to_owned(),
        to: Some(agent),
        topic: None,
        kind: request.kind,
        bytes,
    }))
}

/// Sends a message to every agent (fanout).
#[utoipa::path(post, path = "/api/broadcast", tag = "messages",
    request_body = SendRequest, security((), ("bearer" = [])),
    responses((status = 200, body = SentResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub(crate) async fn broadcast(
    State(shared): AppState,
    JsonBody(request): JsonBody<SendRequest>,
) -> Result<Json<SentResponse>, ApiError> {
    check_kind(&request.kind)?;
    let body = body_bytes(&request.body);
    let bytes = body.len();
    shared
        .monitor
        .observer
        .context()
        .broadcast_raw(&request.kind, body)
        .await
        .map_err(|e| ApiError::from_error(&shared, "fanout", e))?;
    Ok(Json(SentResponse {
        sent: "broadcast".to_owned(),
        to: None,
        topic: None,
        kind: request.kind,
        bytes,
    }))
}

/// Publishes a message on a topic.
#[utoipa::path(post, path = "/api/publish", tag = "messages",
    request_body = PublishRequest, security((), ("bearer" = [])),
    responses((status = 200, body = SentResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub(crate) async fn publish(
    State(shared): AppState,
    JsonBody(request): JsonBody<PublishRequest>,
) -> Result<Json<SentResponse>, ApiError> {
    if request.topic.trim().is_empty() {
        return Err(ApiError::bad_request("the `topic` must not be empty"));
    }
    let kind = request
        .kind
        .clone()
        .unwrap_or_else(|| munggoggo::message::PUBSUB.to_owned());
    if kind != munggoggo::message::PUBSUB {
        check_kind(&kind)?;
    }
    let body = body_bytes(&request.body);
    let bytes = body.len();
    let ctx = shared.monitor.observer.context();
    ctx.emit(
        Route::Topic(request.topic.as_str().into()),
        Properties::new(&kind, ctx.identity()),
        body,
    )
    .await
    .map_err(|e| ApiError::from_error(&shared, "topic", e))?;
    Ok(Json(SentResponse {
        sent: "publish".to_owned(),
        to: None,
        topic: Some(request.topic),
        kind,
        bytes,
    }))
}

/// Calls an `#[rpc]` method of an agent.
#[utoipa::path(post, path = "/api/agents/{agent}/call", tag = "agents",
    params(("agent" = String, Path, description = "The agent's identity")),
    request_body = CallRequest, security((), ("bearer" = [])),
    responses((status = 200, body = CallResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 502, body = ErrorBody), (status = 504, body = ErrorBody)))]
pub(crate) async fn call(
    State(shared): AppState,
    Path(agent): Path<String>,
    JsonBody(request): JsonBody<CallRequest>,
) -> Result<Json<CallResponse>, ApiError> {
    let params = match request.params {
        Value::Null => Value::Array(Vec::new()),
        params @ (Value::Array(_) | Value::Object(_)) => params,
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_params",
                "`params` must be an array (positional) or an object (named)",
            ))
        }
    };
    let result = call_agent(&shared, &agent, &request.method, params)
        .await
        .map_err(|e| ApiError::from_error(&shared, &agent, e))?;
    Ok(Json(CallResponse {
        agent,
        method: request.method,
        result,
    }))
}

/// Calls method `method` of `agent` within the dashboard's call timeout.
pub(crate) async fn call_agent(
    shared: &Shared,
    agent: &str,
    method: &str,
    params: Value,
) -> munggoggo::Result<Value> {
    shared
        .monitor
        .observer
        .context()
        .call_with_timeout(agent, method, params, shared.options.call_timeout)
        .await
}

/// Asks an agent to shut down gracefully.
#[utoipa::path(post, path = "/api/agents/{agent}/shutdown", tag = "agents",
    params(("agent" = String, Path, description = "The agent's identity")),
    security((), ("bearer" = [])),
    responses((status = 200, body = ShutdownResponse), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 504, body = ErrorBody)))]
pub(crate) async fn shutdown(
    State(shared): AppState,
    Path(agent): Path<String>,
) -> Result<Json<ShutdownResponse>, ApiError> {
    let result = shared
        .monitor
        .observer
        .context()
        .shutdown_agent(&agent)
        .await
        .map_err(|e| ApiError::from_error(&shared, &agent, e))?;
    shared.monitor.wake();
    Ok(Json(ShutdownResponse { agent, result }))
}
