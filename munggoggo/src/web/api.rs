//! The JSON API under `/api`, the guard of the changing endpoints, and the
//! error responses.

use std::sync::Arc;

use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::model::{
    AgentView, CallRequest, CallResponse, ErrorBody, ErrorDetail, InfoResponse, ManageResponse,
    PeersResponse, PublishRequest, SendRequest, SentResponse, ShutdownResponse, TraceParams, TraceView,
    TracesResponse,
};
use super::monitor::involves_tool;
use super::Shared;
use crate::bus::Route;
use crate::message::Properties;
use crate::TraceQuery;

type AppState = State<Arc<Shared>>;

/// All routes: reading ones open, changing ones behind the guard.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let changing = Router::new()
        .route(
            "/api/agents/{agent}/behaviours/{behaviour}/start",
            post(start_behaviour),
        )
        .route(
            "/api/agents/{agent}/behaviours/{behaviour}/stop",
            post(stop_behaviour),
        )
        .route("/api/agents/{agent}/messages", post(send))
        .route("/api/agents/{agent}/call", post(call))
        .route("/api/agents/{agent}/shutdown", post(shutdown))
        .route("/api/broadcast", post(broadcast))
        .route("/api/publish", post(publish))
        .route("/jsonrpc", post(super::jsonrpc::handle))
        .route_layer(middleware::from_fn_with_state(Arc::clone(&shared), guard));
    Router::new()
        .route("/", get(super::page::index))
        .route("/app.js", get(super::page::script))
        .route("/style.css", get(super::page::style))
        .route("/openapi.json", get(super::openapi::document))
        .route("/ws", get(super::ws::upgrade))
        .route("/api/info", get(info))
        .route("/api/peers", get(peers))
        .route("/api/peers/{agent}", get(peer))
        .route("/api/agents/{agent}/traces", get(traces))
        .merge(changing)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(Arc::clone(&shared), check_host))
        .layer(DefaultBodyLimit::max(shared.options.body_limit))
        .with_state(shared)
}

/// An error response: a status and a JSON body.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
    pub(crate) known: Vec<String>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            known: Vec::new(),
        }
    }

    fn with_known(mut self, known: Vec<String>) -> Self {
        self.known = known;
        self
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub(crate) fn unknown_agent(agent: &str, known: Vec<String>) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "unknown_agent",
            format!("no agent `{agent}` is on the bus"),
        )
        .with_known(known)
    }

    /// The error of a failed request to agent `agent`.
    pub(crate) fn from_error(shared: &Shared, agent: &str, e: crate::Error) -> Self {
        use crate::Error;
        match e {
            Error::UnknownTarget(_) => Self::unknown_agent(agent, shared.monitor.names()),
            Error::Timeout { .. } => Self::new(StatusCode::GATEWAY_TIMEOUT, "timeout", e.to_string()),
            Error::Remote { ref error, .. } if error.starts_with("unknown method") => {
                Self::new(StatusCode::NOT_FOUND, "unknown_method", e.to_string())
                    .with_known(known_methods(error))
            }
            Error::Remote { ref error, .. } if error.starts_with("bad parameters") => {
                Self::new(StatusCode::BAD_REQUEST, "bad_params", e.to_string())
            }
            Error::Remote { .. } | Error::BadReply { .. } => {
                Self::new(StatusCode::BAD_GATEWAY, "call_failed", e.to_string())
            }
            Error::Encode { .. } => Self::bad_request(e.to_string()),
            Error::QueueFull { .. } => Self::new(StatusCode::SERVICE_UNAVAILABLE, "bus", e.to_string()),
            other => Self::new(StatusCode::BAD_GATEWAY, "bus", other.to_string()),
        }
    }

    fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message.clone(),
                known: self.known.clone(),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

/// The method names of an "unknown method `m` (methods: a, b)" reply.
pub(crate) fn known_methods(error: &str) -> Vec<String> {
    error
        .split_once("(methods:")
        .map(|(_, rest)| rest.trim_end_matches(')'))
        .map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// A body that has to be JSON of type `T`; anything else is a JSON 4xx.
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = read_body(req, state).await?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::bad_request(format!("the body is not the JSON expected: {e}")))
    }
}

/// The raw body, within the size limit.
pub(crate) async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state)
        .await
        .map_err(|e: BytesRejection| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    "the body is larger than the dashboard takes",
                )
            } else {
                ApiError::bad_request(format!("cannot read the body: {e}"))
            }
        })
}

/// Checks the bearer token (when one is set) and the JSON content type of
/// every changing request.
async fn guard(State(shared): AppState, headers: HeaderMap, request: Request, next: Next) -> Response {
    if let Some(token) = &shared.options.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        if !given.is_some_and(|given| same(given.as_bytes(), token.as_bytes())) {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this endpoint wants `Authorization: Bearer <token>` with the dashboard's token",
            )
            .into_response();
        }
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
    if !json {
        return ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send `Content-Type: application/json`",
        )
        .into_response();
    }
    next.run(request).await
}

/// Without a token, answers only requests for `localhost` or an IP
/// address: a page of another site whose host name was rebound to this
/// machine (DNS rebinding) must not read or steer the network.
async fn check_host(State(shared): AppState, headers: HeaderMap, request: Request, next: Next) -> Response {
    if shared.options.token.is_none() {
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        if host.is_some_and(|host| !local_host(host)) {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden_host",
                "without a token the dashboard answers only requests for localhost or an IP address; \
                 set a token to serve it under a host name",
            )
            .into_response();
        }
    }
    next.run(request).await
}

/// Whether a `Host` header names `localhost` or an IP address.
fn local_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok()
}

/// Compares in time independent of where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

/// The dashboard itself.
#[utoipa::path(get, path = "/api/info", tag = "dashboard",
    responses((status = 200, body = InfoResponse)))]
pub(crate) async fn info(State(shared): AppState) -> Json<InfoResponse> {
    Json(InfoResponse {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        identity: shared.monitor.observer.identity().to_owned(),
        auth_required: shared.options.token.is_some(),
        bus: crate::bus::redact(&shared.bus),
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
        .filter(|t| params.tools || !involves_tool(t))
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
    if kind == crate::message::CONTROL || kind == crate::message::RPC {
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
        .unwrap_or_else(|| crate::message::PUBSUB.to_owned());
    if kind != crate::message::PUBSUB {
        check_kind(&kind)?;
    }
    let body = body_bytes(&request.body);
    let bytes = body.len();
    let ctx = shared.monitor.observer.context();
    ctx.emit(
        Route::Topic(request.topic.clone()),
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
) -> crate::Result<Value> {
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
