//! The routes of the whole dashboard: the page, the JSON API, JSON-RPC,
//! OpenAPI and the WebSocket, the changing ones behind the guard.

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{Method, StatusCode};
use axum::middleware;
use axum::routing::{get, post, MethodRouter};
use axum::Router;

use crate::api::{
    broadcast, call, info, peer, peers, publish, send, shutdown, start_behaviour, stop_behaviour, traces,
};
use crate::error::ApiError;
use crate::guard::{check_host, guard};
use crate::shared::Shared;

/// All routes: reading ones open, changing ones behind the guard.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let guarded = |route| guarded(&shared, route);
    Router::new()
        .route("/", get(crate::page::index))
        .route("/app.js", get(crate::page::script))
        .route("/style.css", get(crate::page::style))
        .route("/openapi.json", get(crate::openapi::document))
        .route("/ws", get(crate::ws::upgrade))
        .route("/api/info", get(info))
        .route("/api/peers", get(peers))
        .route("/api/peers/{agent}", get(peer))
        .route("/api/agents/{agent}/traces", get(traces))
        .route(
            "/api/agents/{agent}/behaviours/{behaviour}/start",
            guarded(post(start_behaviour)),
        )
        .route(
            "/api/agents/{agent}/behaviours/{behaviour}/stop",
            guarded(post(stop_behaviour)),
        )
        .route("/api/agents/{agent}/messages", guarded(post(send)))
        .route("/api/agents/{agent}/call", guarded(post(call)))
        .route("/api/agents/{agent}/shutdown", guarded(post(shutdown)))
        .route("/api/broadcast", guarded(post(broadcast)))
        .route("/api/publish", guarded(post(publish)))
        .route("/jsonrpc", guarded(post(crate::jsonrpc::handle)))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(Arc::clone(&shared), check_host))
        .layer(DefaultBodyLimit::max(shared.options.body_limit))
        .with_state(shared)
}

/// The route of a changing endpoint, its handlers behind the guard. The guard wraps the
/// handlers and not the route, so that a request with a method the route
/// does not take gets its 405 (with `Allow`) rather than the guard's 401
/// or 415.
fn guarded(shared: &Arc<Shared>, route: MethodRouter<Arc<Shared>>) -> MethodRouter<Arc<Shared>> {
    route.route_layer(middleware::from_fn_with_state(Arc::clone(shared), guard))
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

/// A known path with a method it does not take; axum adds the `Allow`
/// header with the methods it does take.
async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("this endpoint does not take {method}; see the `Allow` header"),
    )
}
