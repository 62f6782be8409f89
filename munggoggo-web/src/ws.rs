//! `GET /ws`: the live feed. A client first gets a snapshot, then every
//! change as it happens (see [`super::model::Event`]); one that falls
//! behind gets a fresh snapshot instead of the events it missed.

use std::sync::Arc;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use tokio::sync::broadcast::error::RecvError;

use crate::shared::Shared;

/// Upgrades to the WebSocket feed.
#[utoipa::path(get, path = "/ws", tag = "dashboard",
    responses((status = 101, description = "The event feed: JSON text frames, each an `Event`")))]
pub(crate) async fn upgrade(State(shared): State<Arc<Shared>>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| feed(shared, socket))
}

async fn feed(shared: Arc<Shared>, mut socket: WebSocket) {
    let monitor = &shared.monitor;
    // Subscribe before the snapshot, so no change falls between them.
    let mut events = monitor.subscribe();
    if send_snapshot(&shared, &mut socket).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(text) => {
                    if socket.send(Message::Text(Utf8Bytes::from(&*text))).await.is_err() {
                        return;
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    if send_snapshot(&shared, &mut socket).await.is_err() {
                        return;
                    }
                }
                Err(RecvError::Closed) => return,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
            () = monitor.observer.stopped() => return,
        }
    }
}

async fn send_snapshot(shared: &Shared, socket: &mut WebSocket) -> Result<(), axum::Error> {
    let text = serde_json::to_string(&shared.monitor.snapshot()).unwrap_or_else(|_| "{}".to_owned());
    socket.send(Message::Text(Utf8Bytes::from(text))).await
}
