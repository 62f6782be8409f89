//! The wire modes on the embedded bus (docs/protocol.md §4): what a typed
//! send, broadcast and publication look like in the compact default and in
//! munggoggo 0.4's wire mode, and that receivers take both.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use munggoggo::message::Received;
use munggoggo::prelude::*;
use munggoggo::{Runtime, WireMode};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, Message, PartialEq)]
struct DemoData {
    message: String,
    date: Option<f64>,
}

type Seen = Arc<Mutex<Vec<Arc<Received>>>>;

/// Keeps what arrives on topic `wire.test`, and what its typed handler decodes.
#[agent(identity = "wire-listener")]
#[derive(Default)]
struct Listener {
    seen: Seen,
}

#[agent]
impl Listener {
    #[on_message(topic = "wire.test")]
    async fn topic(&mut self, msg: Envelope<DemoData>) {
        self.seen.lock().unwrap().push(Arc::new(msg.received().clone()));
    }
}

fn demo() -> DemoData {
    DemoData {
        message: "hi".to_owned(),
        date: Some(1_546_300_800.0),
    }
}

/// Sends, broadcasts and publishes one DemoData in `mode`; returns what
/// the direct receiver, the broadcast receiver and the topic handler got.
async fn exchange(mode: WireMode) -> [Arc<Received>; 3] {
    let rt = Runtime::memory().wire_mode(mode).start().await.unwrap();
    let seen = Seen::default();
    let listener = rt
        .spawn(Listener {
            seen: Arc::clone(&seen),
        })
        .await
        .unwrap();
    let sender = rt.client("wire-sender").await.unwrap();
    let receiver = rt.client("wire-receiver").await.unwrap();
    sender.send("wire-receiver", &demo()).await.unwrap();
    let direct = receiver
        .recv_timeout(Duration::from_secs(10))
        .await
        .expect("direct");
    sender.broadcast(&demo()).await.unwrap();
    let fanout = loop {
        let msg = receiver
            .recv_timeout(Duration::from_secs(10))
            .await
            .expect("broadcast");
        if msg.message_type() == "DemoData" {
            break msg;
        }
    };
    sender.publish("wire.test", &demo()).await.unwrap();
    listener
        .wait_until(|_| !seen.lock().unwrap().is_empty())
        .await
        .unwrap();
    let topic = seen.lock().unwrap()[0].clone();
    rt.shutdown().await;
    [direct, fanout, topic]
}

#[tokio::test]
async fn compact_mode_sends_bare_json_with_the_type_name() {
    for (i, msg) in exchange(WireMode::Compact).await.iter().enumerate() {
        assert_eq!(msg.properties.kind.as_deref(), Some("DemoData"), "message {i}");
        assert_eq!(msg.envelope_type, None, "message {i}");
        assert_eq!(serde_json::from_slice::<DemoData>(&msg.body).unwrap(), demo());
        assert_eq!(msg.properties.user_id, None);
    }
}

#[tokio::test]
async fn the_0_4_mode_sends_envelopes_and_pubsub_on_topics() {
    let [direct, fanout, topic] = exchange(WireMode::Py04).await;
    assert_eq!(direct.properties.kind.as_deref(), Some("DemoData"));
    assert_eq!(fanout.properties.kind.as_deref(), Some("DemoData"));
    assert_eq!(topic.properties.kind.as_deref(), Some("PUBSUB"));
    for msg in [direct, fanout, topic] {
        // What 0.4's SerializableObject reads: c_type and c_data, a string.
        let body: serde_json::Value = serde_json::from_slice(&msg.body).unwrap();
        assert_eq!(body["c_type"], "DemoData");
        let c_data = body["c_data"].as_str().expect("c_data is a string");
        assert_eq!(serde_json::from_str::<DemoData>(c_data).unwrap(), demo());
        // And what a Rust handler routes and decodes by.
        assert_eq!(msg.message_type(), "DemoData");
        assert_eq!(serde_json::from_slice::<DemoData>(&msg.payload).unwrap(), demo());
    }
}
