//! `GET /`: the dashboard page. HTML, CSS and JS are plain files embedded
//! in the binary; no build step, no third-party script.

use axum::http::header;
use axum::response::{Html, IntoResponse};

/// The page.
pub(crate) async fn index() -> Html<&'static str> {
    Html(include_str!("index.html"))
}

/// Its script.
pub(crate) async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("app.js"),
    )
}

/// Its style sheet.
pub(crate) async fn style() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("style.css"),
    )
}
