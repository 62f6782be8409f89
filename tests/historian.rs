//! The historian (crate munggoggo-historian) against a temporary database:
//! direct, fanout and topic traffic (typed, untyped and 0.4 envelopes, huge
//! and non-UTF-8 bodies) is stored exactly once with the right fields, and
//! its queries return it. On the embedded bus and on RabbitMQ.
#![cfg(feature = "historian")]

mod common;

use common::unique;
use munggoggo::bus::Route;
use munggoggo::message::Properties;
use munggoggo::prelude::*;
use munggoggo::runtime::Client;
use munggoggo::{AgentHandle, RuntimeHandle};
use munggoggo_historian::{GroupBy, Historian, HistorianConfig, Record};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Debug, Serialize, Deserialize, Message)]
struct Reading {
    n: u64,
}

/// Total messages the historian's two handlers have taken.
fn taken(h: &AgentHandle) -> u64 {
    h.behaviours().iter().map(|b| b.runs + b.errors).sum()
}

/// Waits until the historian stored `n` messages from `sender`, re-checking
/// whenever it has taken another message (never sleeping).
async fn until_stored(h: &AgentHandle, client: &Client, historian: &str, sender: &str, n: u64) {
    let wait = async {
        loop {
            let before = taken(h);
            let stored: u64 = client
                .call(historian, "count", json!({ "sender": sender }))
                .await
                .unwrap();
            assert!(
                stored <= n,
                "{stored} messages stored from {sender}, expected {n}"
            );
            if stored == n {
                return;
            }
            h.wait_until(|h| taken(h) > before).await.unwrap();
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(20), wait)
        .await
        .unwrap_or_else(|_| panic!("the historian did not store {n} messages from {sender}"));
}

async fn start(
    rt: &RuntimeHandle,
    db: &std::path::Path,
    prefix: &str,
    max_body: Option<usize>,
) -> (String, AgentHandle) {
    let identity = unique("historian");
    let config = HistorianConfig {
        database: db.to_path_buf(),
        topics: vec![format!("{prefix}.#")],
        max_body,
        ..HistorianConfig::default()
    };
    let handle = rt.spawn_as(&identity, Historian::new(config)).await.unwrap();
    (identity, handle)
}

fn by_type<'a>(records: &'a [Record], t: &str) -> Vec<&'a Record> {
    records.iter().filter(|r| r.message_type == t).collect()
}

on_both_buses! {
    async fn stores_direct_fanout_and_topic_traffic_once(rt) {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("history.db");
        let prefix = unique("hist");
        let (historian, h) = start(&rt, &db, &prefix, Some(64)).await;
        let sender = unique("sender");
        let client = rt.client(&sender).await.unwrap();

        client.send(&historian, &Reading { n: 1 }).await.unwrap();
        client.broadcast(&Reading { n: 2 }).await.unwrap();
        client.publish(&format!("{prefix}.kitchen"), &Reading { n: 3 }).await.unwrap();
        client.publish(&format!("other-{prefix}.kitchen"), &Reading { n: 4 }).await.unwrap(); // not subscribed
        client.publish_raw(&format!("{prefix}.raw"), "plain text").await.unwrap();
        // A 0.4 agent's direct send: a JSON envelope whose c_type names the type.
        client
            .send_raw(&historian, "DemoData", r#"{"c_type": "DemoData", "c_data": "{\"x\": 1}"}"#)
            .await
            .unwrap();
        let mut properties = Properties::new("Tagged", &sender);
        properties.correlation_id = Some("corr-1".into());
        client.emit(Route::Direct(historian.as_str().into()), properties, b"{}".to_vec().into()).await.unwrap();
        client.send_raw(&historian, "Huge", vec![b'x'; 1000]).await.unwrap();
        client.send_raw(&historian, "Binary", vec![0xff, 0xfe, 0x00, 0x01]).await.unwrap();
        // 63 ASCII bytes, then a two-byte character across the cut at 64.
        client.send_raw(&historian, "Accented", format!("{}é tail", "a".repeat(63))).await.unwrap();

        until_stored(&h, &client, &historian, &sender, 9).await;
        let records: Vec<Record> = client
            .call(&historian, "list", json!({ "sender": sender }))
            .await
            .unwrap();
        assert_eq!(records.len(), 9, "{records:#?}");

        let readings = by_type(&records, "Reading");
        let mut seen: Vec<(&str, &str, &str)> = readings
            .iter()
            .map(|r| (r.exchange.as_str(), r.routing_key.as_str(), r.body.as_str()))
            .collect();
        seen.sort_unstable();
        let topic = format!("{prefix}.kitchen");
        let mut expected = vec![
            ("", historian.as_str(), r#"{"n":1}"#),
            ("admin", "admin", r#"{"n":2}"#),
            ("topic", topic.as_str(), r#"{"n":3}"#),
        ];
        expected.sort_unstable();
        assert_eq!(seen, expected);
        for r in &readings {
            assert_eq!(r.sender, sender);
            assert!(r.sent.is_some(), "the sender's timestamp is kept");
            assert!(!r.truncated);
        }

        let raw = by_type(&records, "PUBSUB");
        assert_eq!(raw.len(), 1);
        assert_eq!((raw[0].routing_key.as_str(), raw[0].body.as_str()), (format!("{prefix}.raw").as_str(), "plain text"));

        let demo = by_type(&records, "DemoData");
        assert_eq!(demo.len(), 1);
        assert_eq!(demo[0].body, r#"{"c_type": "DemoData", "c_data": "{\"x\": 1}"}"#, "stored as received");

        assert_eq!(by_type(&records, "Tagged")[0].correlation_id.as_deref(), Some("corr-1"));

        let huge = by_type(&records, "Huge");
        assert_eq!((huge[0].size, huge[0].truncated, huge[0].body.len()), (1000, true, 64));

        let binary = by_type(&records, "Binary");
        assert_eq!((binary[0].size, binary[0].truncated), (4, false));

        // Text is cut at a character boundary, so it stays text.
        let accented = by_type(&records, "Accented");
        assert_eq!((accented[0].body.as_str(), accented[0].truncated), ("a".repeat(63).as_str(), true));

        // Queries by type, topic and time.
        let count = |filter: Value| {
            let client = &client;
            let historian = &historian;
            async move { client.call::<u64>(historian, "count", filter).await.unwrap() }
        };
        assert_eq!(count(json!({ "sender": sender, "type": "Reading" })).await, 3);
        assert_eq!(count(json!({ "sender": sender, "topic": topic })).await, 1);
        let first = records.iter().map(|r| r.time_ms).min().unwrap();
        let last = records.iter().map(|r| r.time_ms).max().unwrap();
        assert_eq!(count(json!({ "sender": sender, "since": first, "until": last + 1 })).await, 9);
        assert_eq!(count(json!({ "sender": sender, "until": first })).await, 0);
        let limited: Vec<Record> = client
            .call(&historian, "list", json!({ "sender": sender, "limit": 2 }))
            .await
            .unwrap();
        assert_eq!(limited.iter().map(|r| r.id).collect::<Vec<_>>(), records[..2].iter().map(|r| r.id).collect::<Vec<_>>());

        let per_sender: Vec<(String, u64)> = client
            .call(&historian, "count_by", json!({ "by": GroupBy::Sender }))
            .await
            .unwrap();
        assert!(per_sender.contains(&(sender.clone(), 9)), "{per_sender:?}");
        let per_type: Vec<(String, u64)> = client
            .call(&historian, "count_by", json!(["type"]))
            .await
            .unwrap();
        assert!(per_type.contains(&("Reading".to_owned(), 3)), "{per_type:?}");

        // Nothing was rejected, and the file holds the rows after a stop.
        assert!(h.behaviours().iter().all(|b| b.errors == 0), "{:?}", h.behaviours());
        client.shutdown().await;
        h.shutdown().await;
        let conn = munggoggo_historian::rusqlite::Connection::open(&db).unwrap();
        let stored: i64 = conn
            .query_row("SELECT COUNT(*) FROM messages WHERE sender = ?", [&sender], |row| row.get(0))
            .unwrap();
        assert_eq!(stored, 9);
    }
}

/// Only what the configuration asks for: here direct messages, no
/// broadcasts, no topics. On a private embedded bus, so that every message
/// the historian takes is one of the test's.
#[tokio::test]
async fn configured_kinds_only() {
    let rt = munggoggo::Runtime::memory().start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let identity = unique("historian");
    let config = HistorianConfig {
        database: dir.path().join("direct-only.db"),
        topics: Vec::new(),
        fanout: false,
        ..HistorianConfig::default()
    };
    let h = rt.spawn_as(&identity, Historian::new(config)).await.unwrap();
    let sender = unique("sender");
    let client = rt.client(&sender).await.unwrap();
    client.broadcast(&Reading { n: 1 }).await.unwrap();
    client.publish("anything", &Reading { n: 2 }).await.unwrap();
    client.send(&identity, &Reading { n: 3 }).await.unwrap();
    // The broadcast reaches the historian's fallback handler too, which skips it.
    h.wait_until(|h| h.behaviour("messages").is_some_and(|b| b.runs >= 2))
        .await
        .unwrap();
    let records: Vec<Record> = client
        .call(&identity, "list", json!({ "sender": sender }))
        .await
        .unwrap();
    assert_eq!(
        records.iter().map(|r| r.body.as_str()).collect::<Vec<_>>(),
        [r#"{"n":3}"#]
    );
    client.shutdown().await;
    rt.shutdown().await;
}

#[tokio::test]
async fn a_bad_database_fails_setup_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing-dir").join("h.db");
    let rt = munggoggo::Runtime::memory().start().await.unwrap();
    let config = HistorianConfig {
        database: path.clone(),
        ..HistorianConfig::default()
    };
    let err = rt
        .spawn_as(unique("historian"), Historian::new(config))
        .await
        .unwrap_err();
    assert!(err.to_string().contains(&path.display().to_string()), "{err}");
}

/// A munggoggo 0.4 agent, played by a raw lapin connection with 0.4's exact
/// properties and bodies (docs/protocol.md §3 and §4), talks on RabbitMQ: the
/// historian stores its direct, fanout and topic messages with its identity
/// and the envelope's type.
#[cfg(feature = "amqp")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_the_traffic_of_a_04_agent() {
    use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
    use lapin::types::FieldTable;
    use lapin::{BasicProperties, Connection, ConnectionProperties};

    let Some(rt) = common::buses::amqp().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("hist04");
    let (historian, h) = start(&rt, &dir.path().join("04.db"), &prefix, None).await;
    let client = rt.client(unique("asker")).await.unwrap();

    let url = common::buses::test_url();
    let conn = Connection::connect(&url, ConnectionProperties::default())
        .await
        .unwrap();
    let channel = conn.create_channel().await.unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let python = unique("agent2");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let demo = r#"{"c_type": "DemoData", "c_data": "{\"message\": \"Hallo2\", \"date\": 1546300800.0}"}"#;
    let sends = [
        ("", historian.as_str(), "CUSTOM", demo),
        ("admin", "admin", "CUSTOM", "hello all"),
        ("topic", &format!("{prefix}.x.y"), "PUBSUB", "1"),
    ];
    for (exchange, routing_key, kind, body) in sends {
        let props = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_headers(FieldTable::default())
            .with_delivery_mode(1)
            .with_priority(0)
            .with_timestamp(now)
            .with_type(kind.into())
            .with_user_id("guest".into())
            .with_app_id(python.as_str().into());
        let options = BasicPublishOptions {
            mandatory: true,
            immediate: false,
        };
        channel
            .basic_publish(
                exchange.into(),
                routing_key.into(),
                options,
                body.as_bytes(),
                props,
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }

    until_stored(&h, &client, &historian, &python, 3).await;
    let records: Vec<Record> = client
        .call(&historian, "list", json!({ "sender": python }))
        .await
        .unwrap();
    let mut seen: Vec<(&str, &str, &str, &str, Option<i64>)> = records
        .iter()
        .map(|r| {
            (
                r.exchange.as_str(),
                r.routing_key.as_str(),
                r.message_type.as_str(),
                r.body.as_str(),
                r.sent,
            )
        })
        .collect();
    seen.sort_unstable();
    let topic = format!("{prefix}.x.y");
    let sent = i64::try_from(now).ok();
    let mut expected = vec![
        ("", historian.as_str(), "DemoData", demo, sent),
        ("admin", "admin", "CUSTOM", "hello all", sent),
        ("topic", topic.as_str(), "PUBSUB", "1", sent),
    ];
    expected.sort_unstable();
    assert_eq!(seen, expected);
    let _ = conn.close(200, "done".into()).await;
    client.shutdown().await;
    rt.shutdown().await;
}
