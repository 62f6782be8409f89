//! The dashboard's WebSocket feed, on a real listener and the embedded bus:
//! a snapshot first, then each change as one push, to every client.
//!
//! Run with `cargo test -p munggoggo-web --test web_ws`.

mod web_common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use std::future::IntoFuture;

use futures_util::StreamExt;
use munggoggo::{Runtime, State};
use munggoggo_web::{Dashboard, DashboardOptions};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use tower::ServiceExt;
use web_common::{unique, within, Job, Worker};

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next JSON event of the feed.
async fn next_event(socket: &mut Socket) -> Value {
    loop {
        let frame = within("a push", socket.next())
            .await
            .expect("the feed stays open")
            .expect("a frame");
        match frame {
            Message::Text(text) => return serde_json::from_str(&text).expect("events are JSON"),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

#[tokio::test]
async fn clients_see_a_behaviour_stop_in_the_next_push_and_new_messages() {
    let worker_id = unique("worker");
    let runtime = Runtime::memory()
        .agent_as(&worker_id, Worker::default())
        .start()
        .await
        .expect("the worker starts");
    let worker = runtime.agent(&worker_id).expect("the worker runs");
    let options = DashboardOptions::default().refresh(Duration::from_millis(50));
    let dashboard = Dashboard::start(&runtime, options)
        .await
        .expect("the dashboard starts");
    within(
        "the dashboard sees the worker",
        dashboard.wait_until(|peers| peers.iter().any(|p| p.name == worker_id)),
    )
    .await;
    let router = dashboard.router();
    let listener = munggoggo_web::bind("127.0.0.1:0".parse().unwrap())
        .await
        .expect("a port");
    let address = listener.local_addr().expect("an address");
    tokio::spawn(axum::serve(listener, router.clone()).into_future());

    let url = format!("ws://{address}/ws");
    let mut clients = Vec::new();
    for _ in 0..3 {
        let (mut socket, _) = within("connect", tokio_tungstenite::connect_async(&url))
            .await
            .expect("the WebSocket opens");
        let snapshot = next_event(&mut socket).await;
        assert_eq!(snapshot["event"], "snapshot", "{snapshot}");
        let me = snapshot["peers"]
            .as_array()
            .expect("peers")
            .iter()
            .find(|p| p["name"] == worker_id.as_str())
            .cloned()
            .expect("the worker is in the snapshot");
        let tick = me["behaviours"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["method"] == "tick")
            .cloned()
            .unwrap();
        assert_eq!(tick["state"], "running");
        clients.push(socket);
    }

    let stop = Request::post(format!("/api/agents/{worker_id}/behaviours/tick/stop"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::empty())
        .unwrap();
    let response = within("stop", router.clone().oneshot(stop)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(worker.behaviour("tick").expect("tick").state, State::Init);

    for socket in &mut clients {
        let event = next_event(socket).await;
        assert_eq!(event["event"], "peer", "{event}");
        assert_eq!(event["peer"]["name"], worker_id.as_str());
        let tick = event["peer"]["behaviours"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["method"] == "tick")
            .cloned()
            .unwrap();
        assert_eq!(tick["state"], "init", "the stop is in the next push: {event}");
    }

    // A message an agent receives is pushed as well (and moves a counter).
    let sender = runtime.client(unique("sender")).await.expect("a client");
    sender.send(&worker_id, &Job { n: 7 }).await.expect("sent");
    let socket = &mut clients[0];
    let traces = loop {
        let event = next_event(socket).await;
        if event["event"] == "traces" {
            break event;
        }
        assert_eq!(event["event"], "peer", "{event}");
    };
    let entry = &traces["traces"][0];
    assert_eq!(entry["from"], sender.identity());
    assert_eq!(entry["to"], worker_id.as_str());
    assert_eq!(entry["type"], "Job");
    assert_eq!(entry["body"], r#"{"n":7}"#);

    for mut socket in clients {
        socket.close(None).await.expect("closes");
    }
}

#[tokio::test]
async fn many_clients_connect_and_leave_while_agents_change() {
    let runtime = Runtime::memory().start().await.expect("a runtime");
    let options = DashboardOptions::default().refresh(Duration::from_millis(50));
    let dashboard = Dashboard::start(&runtime, options)
        .await
        .expect("the dashboard starts");
    let listener = munggoggo_web::bind("127.0.0.1:0".parse().unwrap())
        .await
        .expect("a port");
    let address = listener.local_addr().expect("an address");
    tokio::spawn(axum::serve(listener, dashboard.router()).into_future());
    let url = format!("ws://{address}/ws");

    let mut sockets = Vec::new();
    for _ in 0..10 {
        let (mut socket, _) = within("connect", tokio_tungstenite::connect_async(&url))
            .await
            .expect("opens");
        assert_eq!(next_event(&mut socket).await["event"], "snapshot");
        sockets.push(socket);
    }
    // Half of them leave; the others still get the news of a new agent.
    for mut socket in sockets.drain(..5) {
        socket.close(None).await.expect("closes");
    }
    let worker_id = unique("worker");
    let worker = runtime
        .spawn_as(&worker_id, Worker::default())
        .await
        .expect("the worker starts");
    for socket in &mut sockets {
        let event = next_event(socket).await;
        assert_eq!(event["event"], "peer", "{event}");
        assert_eq!(event["peer"]["name"], worker_id.as_str());
    }
    // And that it left (after changing its state on the way out, perhaps).
    worker.shutdown().await;
    for socket in &mut sockets {
        loop {
            let event = next_event(socket).await;
            if event["event"] == "left" {
                assert_eq!(event["name"], worker_id.as_str());
                break;
            }
            assert_eq!(event["event"], "peer", "{event}");
            assert_eq!(event["peer"]["name"], worker_id.as_str());
        }
    }
}
