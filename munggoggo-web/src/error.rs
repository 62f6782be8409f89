//! Error responses: a status and a JSON body, for every bad request.

use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::model::{ErrorBody, ErrorDetail};
use crate::shared::Shared;

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

    pub(crate) fn with_known(mut self, known: Vec<String>) -> Self {
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
    pub(crate) fn from_error(shared: &Shared, agent: &str, e: munggoggo::Error) -> Self {
        use munggoggo::{Error, ErrorCode};
        match e {
            Error::UnknownTarget(_) => Self::unknown_agent(agent, shared.monitor.names()),
            Error::Timeout { .. } => Self::new(StatusCode::GATEWAY_TIMEOUT, "timeout", e.to_string()),
            Error::Remote {
                code: Some(ErrorCode::UnknownMethod { ref known }),
                ..
            } => {
                let known = known.clone();
                Self::new(StatusCode::NOT_FOUND, "unknown_method", e.to_string()).with_known(known)
            }
            Error::Remote {
                code: Some(ErrorCode::BadParams),
                ..
            } => Self::new(StatusCode::BAD_REQUEST, "bad_params", e.to_string()),
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
