//! The guards: the bearer token and content type of changing requests,
//! and the host names answered without a token.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use crate::shared::Shared;

/// Checks the bearer token (when one is set) and the JSON content type of
/// every changing request.
pub(crate) async fn guard(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
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
pub(crate) async fn check_host(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
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
