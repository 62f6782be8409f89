//! `GET /metrics`: the dashboard's runtime's metrics in Prometheus' text
//! format (feature `metrics`), read-only and, like the rest of the
//! dashboard, answered only for an expected `Host`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::error::ApiError;
use crate::shared::Shared;

/// The `/metrics` route, to merge into the dashboard's.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            super::guard::check_host,
        ))
        .with_state(shared)
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    match &shared.metrics {
        Some(metrics) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, munggoggo::metrics::CONTENT_TYPE)],
            metrics.encode(),
        )
            .into_response(),
        None => ApiError::new(
            StatusCode::NOT_FOUND,
            "metrics_off",
            "this dashboard's runtime collects no metrics: start it with `.metrics(...)` or `.metrics_listener(...)`",
        )
        .into_response(),
    }
}
