//! `POST /jsonrpc`: JSON-RPC 2.0 calls of agents' `#[rpc]` methods, named
//! `<agent>.<method>`. Batches and notifications are supported.
//!
//! HTTP statuses follow the errors: 400 for a parse error, an invalid
//! request or bad parameters, 404 for an unknown agent or method, 504 for
//! a timeout, 502 when the method failed; 200 otherwise (and for batches).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use super::api::call_agent;
use super::error::{read_body, ApiError};
use crate::shared::Shared;

/// Invalid JSON.
pub const PARSE_ERROR: i64 = -32700;
/// Not a valid request object.
pub const INVALID_REQUEST: i64 = -32600;
/// No such agent or method.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// Parameters the method does not take.
pub const INVALID_PARAMS: i64 = -32602;
/// The agent did not answer in time.
pub const TIMEOUT: i64 = -32000;
/// The method returned an error, or the bus failed.
pub const CALL_FAILED: i64 = -32001;

/// The largest batch taken.
const MAX_BATCH: usize = 100;

/// A JSON-RPC error with the HTTP status it gets when alone.
struct RpcError {
    status: StatusCode,
    code: i64,
    message: String,
    data: Option<Value>,
}

impl RpcError {
    fn new(status: StatusCode, code: i64, message: impl Into<String>) -> Self {
        RpcError {
            status,
            code,
            message: message.into(),
            data: None,
        }
    }

    fn to_json(&self, id: &Value) -> Value {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(data) = &self.data {
            error["data"] = data.clone();
        }
        json!({ "jsonrpc": "2.0", "error": error, "id": id })
    }
}

/// JSON-RPC 2.0: `{"jsonrpc": "2.0", "method": "calc.multiply", "params": [3, 4], "id": 1}`.
#[utoipa::path(post, path = "/jsonrpc", tag = "json-rpc",
    request_body(content = Object, description = "A JSON-RPC 2.0 request (or a batch): method `<agent>.<method>`"),
    security((), ("bearer" = [])),
    responses((status = 200, description = "The JSON-RPC response", body = Object),
        (status = 204, description = "Only notifications were sent"),
        (status = 400, description = "Parse error, invalid request or bad params", body = Object),
        (status = 404, description = "Unknown agent or method", body = Object),
        (status = 502, description = "The method failed", body = Object),
        (status = 504, description = "The agent did not answer in time", body = Object)))]
pub(crate) async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let body = match read_body(request, &()).await {
        Ok(body) => body,
        Err(e) => return e.into_response(),
    };
    let parsed: Value = match serde_json::from_slice(&body) {
        Ok(value) => value,
        Err(e) => {
            let error = RpcError::new(StatusCode::BAD_REQUEST, PARSE_ERROR, format!("Parse error: {e}"));
            return (error.status, Json(error.to_json(&Value::Null))).into_response();
        }
    };
    match parsed {
        Value::Array(batch) => {
            if batch.is_empty() || batch.len() > MAX_BATCH {
                let error = RpcError::new(
                    StatusCode::BAD_REQUEST,
                    INVALID_REQUEST,
                    format!("Invalid Request: a batch holds 1 to {MAX_BATCH} requests"),
                );
                return (error.status, Json(error.to_json(&Value::Null))).into_response();
            }
            let answers = futures_util::future::join_all(batch.into_iter().map(|r| one(&shared, r))).await;
            let answers: Vec<Value> = answers.into_iter().flatten().map(|(_, v)| v).collect();
            if answers.is_empty() {
                StatusCode::NO_CONTENT.into_response()
            } else {
                Json(Value::Array(answers)).into_response()
            }
        }
        single => match one(&shared, single).await {
            Some((status, answer)) => (status, Json(answer)).into_response(),
            None => StatusCode::NO_CONTENT.into_response(),
        },
    }
}

/// Answers one request; `None` for a notification.
async fn one(shared: &Shared, request: Value) -> Option<(StatusCode, Value)> {
    let Value::Object(request) = request else {
        let error = RpcError::new(
            StatusCode::BAD_REQUEST,
            INVALID_REQUEST,
            "Invalid Request: not an object",
        );
        return Some((error.status, error.to_json(&Value::Null)));
    };
    let id = request.get("id").cloned();
    let reply_id = id.clone().unwrap_or(Value::Null);
    let outcome = match checked(&request) {
        Ok((agent, method, params)) => run(shared, agent, method, params).await,
        Err(e) => Err(e),
    };
    // A notification (no id) gets no answer, whatever happened.
    id.as_ref()?;
    Some(match outcome {
        Ok(result) => (
            StatusCode::OK,
            json!({ "jsonrpc": "2.0", "result": result, "id": reply_id }),
        ),
        Err(e) => (e.status, e.to_json(&reply_id)),
    })
}

/// The agent, method and parameters of a valid request.
fn checked(request: &Map<String, Value>) -> Result<(&str, &str, Value), RpcError> {
    let invalid = |why: &str| {
        RpcError::new(
            StatusCode::BAD_REQUEST,
            INVALID_REQUEST,
            format!("Invalid Request: {why}"),
        )
    };
    if request.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(invalid("`jsonrpc` must be \"2.0\""));
    }
    if let Some(id) = request.get("id") {
        if !(id.is_string() || id.is_number() || id.is_null()) {
            return Err(invalid("`id` must be a string, a number or null"));
        }
    }
    let Some(name) = request.get("method").and_then(Value::as_str) else {
        return Err(invalid("`method` must be a string"));
    };
    let params = match request.get("params") {
        None | Some(Value::Null) => Value::Array(Vec::new()),
        Some(params @ (Value::Array(_) | Value::Object(_))) => params.clone(),
        Some(_) => return Err(invalid("`params` must be an array or an object")),
    };
    let Some((agent, method)) = name
        .rsplit_once('.')
        .filter(|(a, m)| !a.is_empty() && !m.is_empty())
    else {
        return Err(RpcError::new(
            StatusCode::NOT_FOUND,
            METHOD_NOT_FOUND,
            format!("Method not found: `{name}`; name it `<agent>.<method>`"),
        ));
    };
    Ok((agent, method, params))
}

/// Calls the method and maps the outcome to JSON-RPC.
async fn run(shared: &Shared, agent: &str, method: &str, params: Value) -> Result<Value, RpcError> {
    call_agent(shared, agent, method, params).await.map_err(|e| {
        let api = ApiError::from_error(shared, agent, e);
        let (code, prefix) = match api.code {
            "unknown_agent" => (METHOD_NOT_FOUND, "Method not found"),
            "unknown_method" => (METHOD_NOT_FOUND, "Method not found"),
            "bad_params" => (INVALID_PARAMS, "Invalid params"),
            "timeout" => (TIMEOUT, "Timeout"),
            _ => (CALL_FAILED, "Call failed"),
        };
        let data = match api.code {
            "unknown_agent" => Some(json!({ "agents": api.known })),
            "unknown_method" => Some(json!({ "methods": api.known })),
            _ => None,
        };
        RpcError {
            status: api.status,
            code,
            message: format!("{prefix}: {}", api.message),
            data,
        }
    })
}
