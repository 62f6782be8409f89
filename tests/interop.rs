//! Interoperability with munggoggo 0.4 (Python) on RabbitMQ.
//!
//! Each test plays a munggoggo 0.4 agent with a raw lapin connection (no
//! munggoggo code on that side): it declares what a 0.4 agent declares and
//! sends the exact bodies and properties of docs/protocol.md (Python's JSON
//! formatting, `headers {}`, `delivery_mode` 1, `priority` 0, `timestamp`,
//! `app_id`, `message_id`, a UUID4 `correlation_id` on CONTROL and RPC)
//! to a Rust agent started in-process on the same broker, and checks what
//! comes back field by field.
//!
//! Run with `cargo test -p munggoggo-workspace --features amqp --test interop`
//! (RabbitMQ at `MUNGGOGGO_TEST_URL`, default the local broker).
#![cfg(feature = "amqp")]

mod common;

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{eventually, next, quiet, unique, Events};
use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{FieldTable, ShortString};
use lapin::uri::AMQPUri;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer, ErrorKind, ExchangeKind};
use munggoggo::prelude::*;
use munggoggo::{AgentDefaults, AgentHandle, RuntimeHandle, State};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// Every receive gives up after this long, so a failure never hangs.
const RECV_TIMEOUT: Duration = Duration::from_secs(10);

/// The interop tests run one at a time: each broadcasts on `admin`, and a
/// Rust agent's trace store should see only its own test's traffic.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// ---------------------------------------------------------------------------
// The Rust side

#[derive(Debug, Serialize, Deserialize, Message)]
struct Greeting {
    text: String,
}

#[derive(Debug, Serialize, Deserialize, Message)]
#[message(type = "custom.count")]
struct Count {
    n: u64,
}

/// munggoggo 0.4's demo payload; travels in the 0.4 envelope.
#[derive(Debug, Serialize, Deserialize, Message)]
#[message(envelope)]
struct DemoData {
    message: String,
    date: f64,
}

/// What the Rust agent broadcasts. Named `Shout` with a `to` field like the
/// agent test suite's message, whose handler ignores shouts not addressed
/// to itself: a broadcast reaches every agent on the broker, and agents of
/// a test suite running at the same time must not react to it.
#[derive(Debug, Serialize, Deserialize, Message)]
struct Shout {
    to: String,
}

/// The Rust agent the raw 0.4 peer talks to.
#[agent]
struct Target {
    events: Events,
}

#[agent]
impl Target {
    #[behaviour(periodic = "1h")]
    async fn idle(&mut self) {}

    #[on_message]
    async fn greeting(&mut self, msg: Envelope<Greeting>) {
        let _ = self
            .events
            .send(format!("greeting {} from {}", msg.text, msg.sender()));
    }

    #[on_message]
    async fn count(&mut self, count: Count) {
        let _ = self.events.send(format!("count {}", count.n));
    }

    #[on_message]
    async fn demo(&mut self, msg: Envelope<DemoData>) {
        let _ = self.events.send(format!(
            "demo {} {} as {}",
            msg.message,
            msg.date,
            msg.received().properties.kind.as_deref().unwrap_or("-")
        ));
    }

    #[on_message(topic = "interop.*.temp")]
    async fn temperature(&mut self, msg: Envelope<Raw>) {
        let text = msg.as_str().unwrap_or("?").to_owned();
        let _ = self.events.send(format!(
            "topic {} {text} {} from {}",
            msg.routing_key(),
            msg.received().properties.kind.as_deref().unwrap_or("-"),
            msg.sender()
        ));
    }
}

/// Starts the runtime on RabbitMQ (or skips) and the Rust agent.
async fn rust_side(prefix: &str) -> Option<(RuntimeHandle, AgentHandle, mpsc::UnboundedReceiver<String>)> {
    let rt = common::buses::amqp().await?;
    let (tx, rx) = mpsc::unbounded_channel();
    let agent = rt
        .spawn_as(unique(prefix), Target { events: tx })
        .await
        .expect("the Rust agent starts");
    Some((rt, agent, rx))
}

// ---------------------------------------------------------------------------
// The raw 0.4 peer

fn broker_url() -> String {
    common::buses::test_url()
}

/// Random bits without a random-number crate.
fn random_u64() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    RandomState::new().hash_one((NEXT.fetch_add(1, Ordering::Relaxed), nanos))
}

fn random_bytes() -> [u8; 16] {
    let mut bytes = [0; 16];
    bytes[..8].copy_from_slice(&random_u64().to_le_bytes());
    bytes[8..].copy_from_slice(&random_u64().to_le_bytes());
    bytes
}

/// A UUID4 as Python's `str(uuid.uuid4())` writes it.
fn uuid4() -> String {
    let mut b = random_bytes();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// A `message_id` as aiormq makes it: 32 lower-case hex characters.
fn message_id() -> String {
    random_bytes().iter().map(|x| format!("{x:02x}")).collect()
}

/// aio-pika's client-side name of a server-named queue: `amq_` + 26
/// lower-case base32 characters.
fn amq_queue_name() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let bits = u128::from_le_bytes(random_bytes());
    let name: String = (0..26)
        .map(|i| ALPHABET[((bits >> (i * 5)) & 31) as usize] as char)
        .collect();
    format!("amq_{name}")
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// `c_data` as a JSON string literal inside an envelope.
fn quoted(c_data: &str) -> String {
    format!("\"{}\"", c_data.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A 0.4 RpcMessage request, formatted as Python's `json.dumps`.
fn rpc_request(c_type: &str, c_data: &str) -> String {
    format!(
        r#"{{"c_type": "{c_type}", "c_data": {}, "request_type": 1}}"#,
        quoted(c_data)
    )
}

/// A 0.4 SerializedObject, formatted as Python's `json.dumps`.
fn serialized(c_type: &str, c_data: &str) -> String {
    format!(r#"{{"c_type": "{c_type}", "c_data": {}}}"#, quoted(c_data))
}

fn text(s: &Option<ShortString>) -> Option<&str> {
    s.as_ref().map(ShortString::as_str)
}

/// A one-line view of a delivery, for failure messages.
fn summary(d: &Delivery) -> String {
    let body = String::from_utf8_lossy(&d.data);
    let body: String = body.chars().take(160).collect();
    format!(
        "[{}→{} type={:?} app_id={:?} corr={:?}] {body}",
        d.exchange,
        d.routing_key,
        text(d.properties.kind()),
        text(d.properties.app_id()),
        text(d.properties.correlation_id()),
    )
}

/// A munggoggo 0.4 agent on a raw lapin connection.
struct RawPeer {
    identity: String,
    fanout_queue: String,
    /// The login user: 0.4 sets `user_id` to it (`guest`).
    user: String,
    conn: Connection,
    channel: Channel,
    direct: Consumer,
    fanout: Consumer,
    /// Queues bound to `topic`, with their consumers.
    topics: Vec<(String, Consumer)>,
}

impl RawPeer {
    /// Connects and declares what a 0.4 agent declares at start (docs/protocol.md
    /// §1-§2): confirm mode, prefetch 1, the exchanges, the exclusive
    /// identity queue, the exclusive fanout queue bound to `admin`, and the
    /// consumers (the identity queue's tagged with the identity).
    async fn start(prefix: &str) -> RawPeer {
        let identity = unique(prefix);
        let fanout_queue = amq_queue_name();
        let uri: AMQPUri = broker_url().parse().expect("a valid broker URL");
        let user = uri.authority.userinfo.username.clone();
        let properties =
            ConnectionProperties::default().with_connection_name(format!("raw 0.4 peer {identity}").into());
        let conn = tokio::time::timeout(RECV_TIMEOUT, Connection::connect_uri(uri, properties))
            .await
            .expect("the raw peer connects within 10 s")
            .expect("the raw peer connects");
        let channel = conn.create_channel().await.expect("channel");
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .expect("confirm.select");
        channel
            .basic_qos(1, BasicQosOptions { global: false })
            .await
            .expect("basic.qos");
        for (name, kind) in [("topic", ExchangeKind::Topic), ("admin", ExchangeKind::Fanout)] {
            channel
                .exchange_declare(
                    name.into(),
                    kind,
                    ExchangeDeclareOptions::default(),
                    FieldTable::default(),
                )
                .await
                .unwrap_or_else(|e| panic!("exchange.declare {name} as 0.4 does: {e}"));
        }
        let exclusive = QueueDeclareOptions {
            exclusive: true,
            ..QueueDeclareOptions::default()
        };
        for queue in [&identity, &fanout_queue] {
            channel
                .queue_declare(queue.as_str().into(), exclusive, FieldTable::default())
                .await
                .unwrap_or_else(|e| panic!("queue.declare {queue}: {e}"));
        }
        channel
            .queue_bind(
                fanout_queue.as_str().into(),
                "admin".into(),
                "admin".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("queue.bind fanout queue → admin");
        let direct = channel
            .basic_consume(
                identity.as_str().into(),
                identity.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("basic.consume identity queue");
        let fanout = channel
            .basic_consume(
                fanout_queue.as_str().into(),
                format!("ctag1.{}", message_id()).into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("basic.consume fanout queue");
        RawPeer {
            identity,
            fanout_queue,
            user,
            conn,
            channel,
            direct,
            fanout,
            topics: Vec::new(),
        }
    }

    /// Subscribes as a 0.4 pub/sub behaviour does:
    /// `<identity>.<Class>.pubsub_queue` bound to `topic` with `key`. Unlike
    /// 0.4's it is exclusive, so a failing test leaves nothing behind.
    async fn subscribe(&mut self, class: &str, key: &str) -> usize {
        let queue = format!("{}.{class}.pubsub_queue", self.identity);
        let exclusive = QueueDeclareOptions {
            exclusive: true,
            ..QueueDeclareOptions::default()
        };
        self.channel
            .queue_declare(queue.as_str().into(), exclusive, FieldTable::default())
            .await
            .expect("queue.declare pubsub queue");
        self.channel
            .queue_bind(
                queue.as_str().into(),
                "topic".into(),
                key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("queue.bind pubsub queue → topic");
        let consumer = self
            .channel
            .basic_consume(
                queue.as_str().into(),
                format!("{}.{class}", self.identity).into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("basic.consume pubsub queue");
        self.topics.push((queue, consumer));
        self.topics.len() - 1
    }

    /// The properties a 0.4 Core puts on every message (docs/protocol.md §3).
    fn properties(&self, kind: &str, correlation_id: Option<&str>) -> (BasicProperties, String) {
        let id = message_id();
        let mut props = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_headers(FieldTable::default())
            .with_delivery_mode(1)
            .with_priority(0)
            .with_message_id(id.as_str().into())
            .with_timestamp(now_secs())
            .with_type(kind.into())
            .with_user_id(self.user.as_str().into())
            .with_app_id(self.identity.as_str().into());
        if let Some(correlation_id) = correlation_id {
            props = props.with_correlation_id(correlation_id.into());
        }
        (props, id)
    }

    /// Publishes (mandatory, as 0.4 does) and waits for the confirm; true
    /// when the broker returned the message as unroutable.
    async fn publish_props(
        &self,
        exchange: &str,
        routing_key: &str,
        props: BasicProperties,
        body: &str,
    ) -> bool {
        let options = BasicPublishOptions {
            mandatory: true,
            immediate: false,
        };
        let confirm = self
            .channel
            .basic_publish(
                exchange.into(),
                routing_key.into(),
                options,
                body.as_bytes(),
                props,
            )
            .await
            .expect("basic.publish");
        let confirmation = tokio::time::timeout(RECV_TIMEOUT, confirm)
            .await
            .expect("publisher confirm within 10 s")
            .expect("publisher confirm");
        assert!(
            confirmation.is_ack(),
            "the broker nacked a publish to {exchange}/{routing_key}"
        );
        confirmation.take_message().is_some()
    }

    /// A direct message (0.4 `direct_send`); returns its `message_id`.
    async fn send(&self, to: &str, kind: &str, body: &str) -> String {
        let (props, id) = self.properties(kind, None);
        let returned = self.publish_props("", to, props, body).await;
        assert!(!returned, "direct message to {to} came back unroutable");
        id
    }

    /// A system RPC request (docs/protocol.md §7); returns (correlation id, message id).
    async fn request(&self, to: &str, c_type: &str, c_data: &str) -> (String, String) {
        let correlation_id = uuid4();
        let (props, id) = self.properties("RPC", Some(&correlation_id));
        let returned = self
            .publish_props("", to, props, &rpc_request(c_type, c_data))
            .await;
        assert!(!returned, "RPC {c_type} to {to} came back unroutable");
        (correlation_id, id)
    }

    /// Sends an RPC request and returns the checked reply: type RPC, routed
    /// to this peer's identity, correlation id copied, sent by `from`, with
    /// the 0.4 property set; and its body's `c_type` and decoded `c_data`.
    async fn call(&mut self, to: &str, c_type: &str, c_data: &str) -> (String, Value, Delivery) {
        let (correlation_id, _) = self.request(to, c_type, c_data).await;
        let reply = self.reply(to, &correlation_id, c_type).await;
        let (reply_type, data) = rpc_reply_body(&reply);
        (reply_type, data, reply)
    }

    /// The reply to request `correlation_id`, checked as for [`Self::call`].
    async fn reply(&mut self, from: &str, correlation_id: &str, what: &str) -> Delivery {
        let me = self.identity.clone();
        let reply = recv_where(&mut self.direct, &format!("reply to {what}"), |d| {
            text(d.properties.kind()) == Some("RPC")
                && text(d.properties.correlation_id()) == Some(correlation_id)
        })
        .await;
        assert_eq!(reply.exchange.as_str(), "", "{what} reply: exchange");
        assert_eq!(
            reply.routing_key.as_str(),
            me,
            "{what} reply: routed by the request's app_id"
        );
        check_properties(&reply, "RPC", from, Some(correlation_id), &self.user);
        reply
    }

    /// Deletes what it declared and closes the connection.
    async fn close(self) {
        let queues = self
            .topics
            .iter()
            .map(|(q, _)| q.clone())
            .chain([self.fanout_queue.clone(), self.identity.clone()]);
        for queue in queues {
            if let Err(e) = self
                .channel
                .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                .await
            {
                eprintln!("raw peer: cannot delete queue {queue}: {e}");
            }
        }
        let _ = self.channel.close(200, "OK".into()).await;
        let _ = self.conn.close(200, "OK".into()).await;
    }
}

/// The next delivery on `consumer` that `wanted` accepts (every delivery is
/// acknowledged, as 0.4 does); fails after [`RECV_TIMEOUT`], listing what
/// was skipped.
async fn recv_where(
    consumer: &mut Consumer,
    what: &str,
    mut wanted: impl FnMut(&Delivery) -> bool,
) -> Delivery {
    let deadline = tokio::time::Instant::now() + RECV_TIMEOUT;
    let mut skipped = Vec::new();
    loop {
        let delivery = match tokio::time::timeout_at(deadline, consumer.next()).await {
            Err(_) => panic!("no {what} within {RECV_TIMEOUT:?}; skipped: {skipped:#?}"),
            Ok(None) => panic!("the consumer ended while waiting for {what}"),
            Ok(Some(Err(e))) => panic!("consumer error while waiting for {what}: {e}"),
            Ok(Some(Ok(delivery))) => delivery,
        };
        delivery
            .acker
            .ack(BasicAckOptions::default())
            .await
            .expect("basic.ack");
        if wanted(&delivery) {
            return delivery;
        }
        skipped.push(summary(&delivery));
    }
}

/// Fails if a delivery that `unwanted` matches arrives within `wait`.
async fn none_within(
    consumer: &mut Consumer,
    wait: Duration,
    what: &str,
    mut unwanted: impl FnMut(&Delivery) -> bool,
) {
    let deadline = tokio::time::Instant::now() + wait;
    while let Ok(item) = tokio::time::timeout_at(deadline, consumer.next()).await {
        let delivery = item.expect("the consumer ended").expect("consumer error");
        delivery
            .acker
            .ack(BasicAckOptions::default())
            .await
            .expect("basic.ack");
        assert!(!unwanted(&delivery), "unexpected {what}: {}", summary(&delivery));
    }
}

/// The body of a delivery as JSON.
fn json_body(d: &Delivery) -> Value {
    serde_json::from_slice(&d.data).unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", summary(d)))
}

/// `c_type` and decoded `c_data` of a 0.4 envelope; `c_data` must be a JSON
/// string (a Python receiver drops anything else).
fn envelope(body: &Value) -> (String, Value) {
    let c_type = body["c_type"]
        .as_str()
        .unwrap_or_else(|| panic!("c_type is not a string: {body}"));
    let c_data = body["c_data"]
        .as_str()
        .unwrap_or_else(|| panic!("c_data must be a JSON string for 0.4: {body}"));
    let data = serde_json::from_str(c_data).unwrap_or_else(|e| panic!("c_data is not JSON ({e}): {c_data}"));
    (c_type.to_owned(), data)
}

/// An RPC reply's `c_type` and `c_data`; checks `request_type` is the
/// integer 2 and there are no other keys.
fn rpc_reply_body(d: &Delivery) -> (String, Value) {
    let body = json_body(d);
    assert_eq!(
        body["request_type"],
        json!(2),
        "a reply has request_type 2: {body}"
    );
    assert!(
        body["request_type"].is_i64(),
        "request_type must be an integer: {body}"
    );
    let keys: Vec<&str> = body
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys.len(),
        3,
        "RpcMessage has c_type, c_data, request_type: {body}"
    );
    envelope(&body)
}

fn is_hex32(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn is_uuid4(s: &str) -> bool {
    let b = s.as_bytes();
    s.len() == 36
        && [8, 13, 18, 23].iter().all(|&i| b[i] == b'-')
        && b[14] == b'4'
        && matches!(b[19], b'8' | b'9' | b'a' | b'b')
        && s.bytes()
            .all(|c| c == b'-' || c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

/// The property set of docs/protocol.md §3, field by field.
/// `correlation_id`: `Some(id)` for a reply that must copy `id`, `Some("")`
/// for a fresh UUID4, `None` when it must be absent.
fn check_properties(d: &Delivery, kind: &str, app_id: &str, correlation_id: Option<&str>, user: &str) {
    let p = &d.properties;
    let what = summary(d);
    let timestamp = p
        .timestamp()
        .unwrap_or_else(|| panic!("timestamp missing (0.4 drops such messages): {what}"));
    let now = now_secs();
    assert!(
        timestamp + 5 >= now && timestamp <= now + 5,
        "timestamp {timestamp} is not UTC epoch seconds near {now}: {what}"
    );
    assert_eq!(text(p.app_id()), Some(app_id), "app_id: {what}");
    assert_eq!(text(p.kind()), Some(kind), "type: {what}");
    assert_eq!(
        text(p.content_type()),
        Some("application/json"),
        "content_type: {what}"
    );
    assert_eq!(*p.delivery_mode(), Some(1), "delivery_mode: {what}");
    assert_eq!(*p.priority(), Some(0), "priority: {what}");
    assert!(
        p.headers().is_some(),
        "headers must be present ({{}} when empty): {what}"
    );
    let id = text(p.message_id()).unwrap_or_else(|| panic!("message_id missing: {what}"));
    assert!(
        is_hex32(id),
        "message_id {id:?} is not 32 lower-case hex chars: {what}"
    );
    match correlation_id {
        None => assert_eq!(
            text(p.correlation_id()),
            None,
            "no correlation_id on plain sends: {what}"
        ),
        Some("") => {
            let id = text(p.correlation_id()).unwrap_or_else(|| panic!("correlation_id missing: {what}"));
            assert!(is_uuid4(id), "correlation_id {id:?} is not a UUID4: {what}");
        }
        Some(expected) => assert_eq!(
            text(p.correlation_id()),
            Some(expected),
            "correlation_id copied: {what}"
        ),
    }
    if let Some(user_id) = text(p.user_id()) {
        assert_eq!(user_id, user, "user_id, when set, is the login user: {what}");
    }
    if let Some(reply_to) = text(p.reply_to()) {
        // Rust requests ask for replies on the sender's control queue.
        let app_id = text(p.app_id()).unwrap_or_default();
        assert_eq!(
            reply_to,
            format!("{app_id}.control"),
            "reply_to is the sender's control queue: {what}"
        );
        assert!(
            matches!(text(p.kind()), Some("CONTROL" | "RPC")),
            "reply_to only on requests: {what}"
        );
    }
    assert_eq!(text(p.content_encoding()), None, "no content_encoding: {what}");
    assert_eq!(text(p.expiration()), None, "no expiration: {what}");
}

/// Checks a PongControl status against the agent's own view.
fn check_status(status: &Value, agent: &AgentHandle) {
    assert_eq!(status["name"], agent.identity(), "{status}");
    assert_eq!(status["state"], "running", "{status}");
    let expected: Vec<Value> = agent
        .behaviours()
        .iter()
        .map(|b| json!({"name": b.name, "state": b.state.as_str()}))
        .collect();
    assert_eq!(status["behaviours"], Value::Array(expected), "{status}");
    for b in status["behaviours"].as_array().unwrap() {
        let name = b["name"].as_str().unwrap();
        assert!(
            name.starts_with(&format!("{}.", agent.identity())),
            "<identity>.<method>: {name}"
        );
        assert_eq!(
            b.as_object().unwrap().len(),
            2,
            "a behaviour has name and state: {b}"
        );
    }
}

/// Whether the broker still has queue `name` (passive declare on a channel
/// of its own: a 404 closes the channel).
async fn queue_exists(conn: &Connection, name: &str) -> bool {
    let channel = conn.create_channel().await.expect("channel");
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    match channel
        .queue_declare(name.into(), passive, FieldTable::default())
        .await
    {
        Ok(_) => {
            let _ = channel.close(200, "OK".into()).await;
            true
        }
        // RESOURCE_LOCKED: it exists, exclusive to another connection.
        Err(e) if matches!(e.kind(), ErrorKind::ProtocolError(p) if p.get_id() == 405) => true,
        Err(e) if matches!(e.kind(), ErrorKind::ProtocolError(p) if p.get_id() == 404) => false,
        Err(e) => panic!("passive queue.declare {name}: {e}"),
    }
}

// ---------------------------------------------------------------------------
// Issue 3: the RabbitMQ bus speaks 0.4

/// A 0.4 agent's PingControl broadcast is answered with a PongControl
/// carrying the agent's status, its behaviours and their states.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_04_ping_control_gets_the_rust_agents_pong() {
    let _serial = SERIAL.lock().await;
    let Some((rt, agent, _rx)) = rust_side("interop-pong").await else {
        return;
    };
    let mut peer = RawPeer::start("py-pinger").await;
    let id = agent.identity().to_owned();

    for round in 0..2 {
        if round == 1 {
            // A stopped behaviour reports 0.4's `init`.
            agent.context().stop_behaviour("idle").await.unwrap();
            assert_eq!(agent.behaviour("idle").unwrap().state, State::Init);
        }
        let correlation_id = uuid4();
        let (props, _) = peer.properties("CONTROL", Some(&correlation_id));
        peer.publish_props(
            "admin",
            "admin",
            props,
            r#"{"c_type": "PingControl", "c_data": "{}"}"#,
        )
        .await;
        // Every agent on the broker answers; take the Rust agent's pong.
        let pong = recv_where(&mut peer.direct, "the Rust agent's PongControl", |d| {
            text(d.properties.app_id()) == Some(id.as_str())
        })
        .await;
        assert_eq!(pong.exchange.as_str(), "", "a pong is a direct message");
        assert_eq!(
            pong.routing_key.as_str(),
            peer.identity,
            "a pong goes to the ping's app_id"
        );
        check_properties(&pong, "CONTROL", &id, Some(&correlation_id), &peer.user);
        let body = json_body(&pong);
        assert_eq!(
            body.as_object().unwrap().len(),
            2,
            "SerializedObject has c_type and c_data: {body}"
        );
        let (c_type, data) = envelope(&body);
        assert_eq!(c_type, "PongControl");
        check_status(&data["status"], &agent);
        let states: Vec<&str> = data["status"]["behaviours"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["state"].as_str().unwrap())
            .collect();
        let expected = if round == 0 { "running" } else { "init" };
        assert_eq!(states[0], expected, "state of {id}.idle in {data}");
    }
    agent.context().start_behaviour("idle").await.unwrap();

    peer.close().await;
    rt.shutdown().await;
}

/// Direct messages of a 0.4 agent reach the handler of their type: by AMQP
/// type with a JSON body, and in the 0.4 envelope by `c_type`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_04_direct_message_reaches_the_handler_of_its_type() {
    let _serial = SERIAL.lock().await;
    let Some((rt, agent, mut rx)) = rust_side("interop-direct").await else {
        return;
    };
    let peer = RawPeer::start("py-sender").await;
    let (to, me) = (agent.identity(), peer.identity.as_str());

    peer.send(to, "Greeting", r#"{"text": "hi"}"#).await;
    assert_eq!(next(&mut rx).await, format!("greeting hi from {me}"));
    peer.send(to, "custom.count", r#"{"n": 7}"#).await;
    assert_eq!(next(&mut rx).await, "count 7");
    // The 0.4 envelope: its c_type decides, whatever the AMQP type.
    peer.send(to, "CUSTOM", &serialized("Greeting", r#"{"text": "old"}"#))
        .await;
    assert_eq!(next(&mut rx).await, format!("greeting old from {me}"));
    // The body the 0.4 ctrl CLI sends (docs/protocol.md §4), verbatim.
    let captured = r#"{"c_type": "DemoData", "c_data": "{\"message\": \"Hallo2\", \"date\": 1546300800.0}"}"#;
    peer.send(to, "CUSTOM", captured).await;
    assert_eq!(next(&mut rx).await, "demo Hallo2 1546300800 as CUSTOM");
    quiet(&mut rx, Duration::from_millis(300)).await;
    assert_eq!(agent.behaviour("greeting").unwrap().runs, 2);
    assert_eq!(agent.behaviour("count").unwrap().runs, 1);
    assert_eq!(agent.behaviour("demo").unwrap().runs, 1);

    peer.close().await;
    rt.shutdown().await;
}

/// A 0.4 topic publication reaches a Rust handler subscribed with a wildcard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_04_topic_publication_reaches_a_wildcard_subscription() {
    let _serial = SERIAL.lock().await;
    let Some((rt, agent, mut rx)) = rust_side("interop-topic").await else {
        return;
    };
    let peer = RawPeer::start("py-publisher").await;
    let word = unique("room").replace('-', "_");

    // `*` is one word: neither of these matches `interop.*.temp`.
    for topic in [
        format!("interop.{word}.humidity"),
        format!("interop.{word}.x.temp"),
    ] {
        let (props, _) = peer.properties("PUBSUB", None);
        peer.publish_props("topic", &topic, props, "20").await;
    }
    let topic = format!("interop.{word}.temp");
    let (props, _) = peer.properties("PUBSUB", None);
    let returned = peer.publish_props("topic", &topic, props, "21").await;
    assert!(
        !returned,
        "the Rust agent's subscription queue is bound to `topic`"
    );
    assert_eq!(
        next(&mut rx).await,
        format!("topic {topic} 21 PUBSUB from {}", peer.identity)
    );
    quiet(&mut rx, Duration::from_millis(300)).await;
    assert_eq!(agent.behaviour("temperature").unwrap().runs, 1);

    peer.close().await;
    rt.shutdown().await;
}

/// What the Rust agent sends directly, by fanout and by topic reaches a 0.4
/// agent with the properties docs/protocol.md §3 lists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_04_agent_receives_rust_messages_with_04_properties() {
    let _serial = SERIAL.lock().await;
    let Some((rt, agent, _rx)) = rust_side("interop-sender").await else {
        return;
    };
    let mut peer = RawPeer::start("py-receiver").await;
    let (from, me) = (agent.identity().to_owned(), peer.identity.clone());
    let ctx = agent.context();
    let key = format!("interop.{}.reading", unique("r").replace('-', "_"));
    let spy = peer.subscribe("SubscribeBehav", &key).await;

    // Direct, with the type name as AMQP type.
    ctx.send(&me, &Greeting { text: "hallo".into() }).await.unwrap();
    let d = recv_where(&mut peer.direct, "the direct Greeting", |d| {
        text(d.properties.app_id()) == Some(from.as_str())
    })
    .await;
    assert_eq!((d.exchange.as_str(), d.routing_key.as_str()), ("", me.as_str()));
    check_properties(&d, "Greeting", &from, None, &peer.user);
    assert_eq!(json_body(&d), json!({"text": "hallo"}));

    // Direct, with an explicit type name.
    ctx.send(&me, &Count { n: 3 }).await.unwrap();
    let d = recv_where(&mut peer.direct, "the direct Count", |d| {
        text(d.properties.app_id()) == Some(from.as_str())
    })
    .await;
    check_properties(&d, "custom.count", &from, None, &peer.user);
    assert_eq!(json_body(&d), json!({"n": 3}));

    // Direct, in the 0.4 envelope a Python SerializableObject decodes.
    ctx.send(
        &me,
        &DemoData {
            message: "Hallo2".into(),
            date: 1_546_300_800.0,
        },
    )
    .await
    .unwrap();
    let d = recv_where(&mut peer.direct, "the direct DemoData", |d| {
        text(d.properties.app_id()) == Some(from.as_str())
    })
    .await;
    check_properties(&d, "DemoData", &from, None, &peer.user);
    let body = json_body(&d);
    assert_eq!(body.as_object().unwrap().len(), 2, "{body}");
    let (c_type, data) = envelope(&body);
    assert_eq!(c_type, "DemoData");
    assert_eq!(data, json!({"message": "Hallo2", "date": 1_546_300_800.0}));

    // Raw direct send: the caller's type, the body verbatim.
    ctx.send_raw(&me, "CUSTOM", "hello 0.4").await.unwrap();
    let d = recv_where(&mut peer.direct, "the raw direct message", |d| {
        text(d.properties.app_id()) == Some(from.as_str())
    })
    .await;
    check_properties(&d, "CUSTOM", &from, None, &peer.user);
    assert_eq!(&d.data[..], b"hello 0.4");

    // Fanout: on the raw peer's fanout queue, from `admin`.
    ctx.broadcast(&Shout { to: me.clone() }).await.unwrap();
    let d = recv_where(&mut peer.fanout, "the broadcast", |d| {
        text(d.properties.app_id()) == Some(from.as_str()) && text(d.properties.kind()) == Some("Shout")
    })
    .await;
    assert_eq!((d.exchange.as_str(), d.routing_key.as_str()), ("admin", "admin"));
    check_properties(&d, "Shout", &from, None, &peer.user);
    assert_eq!(json_body(&d), json!({"to": me}));

    // Topic: typed publications carry the type name, raw ones PUBSUB.
    ctx.publish(
        &key,
        &Greeting {
            text: "on topic".into(),
        },
    )
    .await
    .unwrap();
    let d = recv_where(&mut peer.topics[spy].1, "the typed publication", |_| true).await;
    assert_eq!(
        (d.exchange.as_str(), d.routing_key.as_str()),
        ("topic", key.as_str())
    );
    check_properties(&d, "Greeting", &from, None, &peer.user);
    assert_eq!(json_body(&d), json!({"text": "on topic"}));
    ctx.publish_raw(&key, "1").await.unwrap();
    let d = recv_where(&mut peer.topics[spy].1, "the raw publication", |_| true).await;
    assert_eq!(
        (d.exchange.as_str(), d.routing_key.as_str()),
        ("topic", key.as_str())
    );
    check_properties(&d, "PUBSUB", &from, None, &peer.user);
    assert_eq!(&d.data[..], b"1");

    peer.close().await;
    rt.shutdown().await;
}

// ---------------------------------------------------------------------------
// Issue 4: system RPC and peers with 0.4

/// The Python formatting of `ManageBehav`'s request `c_data`.
fn manage(behav: &str, command: &str) -> String {
    format!(r#"{{"behav": "{behav}", "command": "{command}", "result": ""}}"#)
}

/// The 22 fields of a 0.4 trace record, in 0.4's order (docs/protocol.md §7).
const RECORD_FIELDS: [&str; 22] = [
    "body",
    "body_size",
    "headers",
    "content_type",
    "content_encoding",
    "delivery_mode",
    "priority",
    "correlation_id",
    "reply_to",
    "expiration",
    "message_id",
    "timestamp",
    "type",
    "user_id",
    "app_id",
    "target",
    "cluster_id",
    "consumer_tag",
    "delivery_tag",
    "exchange",
    "redelivered",
    "routing_key",
];

/// The ListTraceStore reply's `traces`, checked for 0.4's shape:
/// `[<float epoch>, <record>, <category>]`, oldest first, every record with
/// the 0.4 fields in 0.4's order.
fn traces_of(reply: &Delivery, request: &Value) -> Vec<Value> {
    let (c_type, data) = rpc_reply_body(reply);
    assert_eq!(c_type, "ListTraceStore");
    for key in ["limit", "app_id", "category"] {
        assert_eq!(data[key], request[key], "{key} is echoed: {data}");
    }
    // The field order, read off the raw c_data text.
    let raw = json_body(reply)["c_data"].as_str().unwrap().to_owned();
    let first_record = raw.find("{\"body\"");
    if let Some(mut at) = first_record {
        for field in RECORD_FIELDS {
            let needle = format!("\"{field}\":");
            let found = raw[at..]
                .find(&needle)
                .unwrap_or_else(|| panic!("field {field} missing or out of 0.4's order: {raw}"));
            at += found + needle.len();
        }
    }
    let traces = data["traces"]
        .as_array()
        .unwrap_or_else(|| panic!("traces is a list: {data}"))
        .clone();
    let mut last = 0.0;
    for entry in &traces {
        let entry = entry
            .as_array()
            .unwrap_or_else(|| panic!("an entry is a list: {entry}"));
        assert_eq!(entry.len(), 3, "[time, record, category]: {entry:?}");
        let time = entry[0]
            .as_f64()
            .unwrap_or_else(|| panic!("time is a float: {entry:?}"));
        assert!(
            (time - now_secs() as f64).abs() < 60.0,
            "time is epoch seconds: {time}"
        );
        assert!(time >= last, "oldest first: {traces:?}");
        last = time;
        let record = entry[1]
            .as_object()
            .unwrap_or_else(|| panic!("record is an object: {entry:?}"));
        for field in RECORD_FIELDS {
            assert!(record.contains_key(field), "record lacks {field}: {record:?}");
        }
        assert!(entry[2].is_string(), "category is a string: {entry:?}");
    }
    traces
}

/// The ListTraceStore `c_data` of a request, in Python's formatting.
fn list_traces(limit: Option<u32>, app_id: Option<&str>, category: Option<&str>) -> (String, Value) {
    let py = |v: Option<String>| v.unwrap_or_else(|| "null".to_owned());
    let c_data = format!(
        r#"{{"limit": {}, "app_id": {}, "category": {}, "traces": []}}"#,
        py(limit.map(|l| l.to_string())),
        py(app_id.map(|a| format!("\"{a}\""))),
        py(category.map(|c| format!("\"{c}\""))),
    );
    let value = serde_json::from_str(&c_data).unwrap();
    (c_data, value)
}

/// The exact 0.4 system requests (ping, list behaviours, manage behaviour,
/// list trace store, shutdown) get 0.4's answers with the right properties.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_04_system_requests_get_04_replies() {
    let _serial = SERIAL.lock().await;
    let Some((rt, agent, mut rx)) = rust_side("interop-rpc").await else {
        return;
    };
    let mut peer = RawPeer::start("py-ctrl").await;
    let id = agent.identity().to_owned();
    let me = peer.identity.clone();
    let mut sent = Vec::new();

    // Ping.
    let (correlation_id, message_id) = peer.request(&id, "Ping", r#"{"ping": "ping"}"#).await;
    sent.push(message_id);
    let reply = peer.reply(&id, &correlation_id, "Ping").await;
    assert_eq!(
        rpc_reply_body(&reply),
        ("Pong".to_owned(), json!({"pong": "pong"}))
    );

    // ListBehav: `<identity>.<method>` names.
    let (correlation_id, message_id) = peer.request(&id, "ListBehav", r#"{"behavs": []}"#).await;
    sent.push(message_id);
    let reply = peer.reply(&id, &correlation_id, "ListBehav").await;
    let names: Vec<String> = agent.behaviours().into_iter().map(|b| b.name).collect();
    assert_eq!(
        names,
        ["idle", "greeting", "count", "demo", "temperature"].map(|m| format!("{id}.{m}"))
    );
    assert_eq!(
        rpc_reply_body(&reply),
        ("ListBehav".to_owned(), json!({ "behavs": names }))
    );

    // ManageBehav, with 0.4's result strings.
    let full_name = format!("{id}.idle");
    let cases = [
        ("idle", "stop", format!("{id}.idle stopped: init")),
        ("idle", "start", format!("{id}.idle started.")),
        (full_name.as_str(), "start", format!("{id}.idle already running.")),
        ("idle", "bogus", "Unknown command bogus.".to_owned()),
        ("Nope", "stop", "No behaviour Nope".to_owned()),
    ];
    for (behav, command, result) in cases {
        let (correlation_id, message_id) = peer.request(&id, "ManageBehav", &manage(behav, command)).await;
        sent.push(message_id);
        let reply = peer.reply(&id, &correlation_id, "ManageBehav").await;
        let expected = json!({"behav": behav, "command": command, "result": result});
        assert_eq!(rpc_reply_body(&reply), ("ManageBehav".to_owned(), expected));
        if command == "stop" && behav == "idle" {
            assert_eq!(agent.behaviour("idle").unwrap().state, State::Init);
        }
    }
    assert_eq!(agent.behaviour("idle").unwrap().state, State::Running);

    // A user message, for the per-behaviour trace category.
    let greeting_id = peer.send(&id, "Greeting", r#"{"text": "traced"}"#).await;
    sent.push(greeting_id.clone());
    assert_eq!(next(&mut rx).await, format!("greeting traced from {me}"));

    // ListTraceStore --limit 2: the newest two, oldest first.
    let (c_data, request) = list_traces(Some(2), None, None);
    let (correlation_id, message_id) = peer.request(&id, "ListTraceStore", &c_data).await;
    sent.push(message_id.clone());
    let reply = peer.reply(&id, &correlation_id, "ListTraceStore").await;
    let traces = traces_of(&reply, &request);
    assert_eq!(traces.len(), 2, "{traces:?}");
    let this = traces
        .iter()
        .find(|t| t[1]["message_id"] == message_id.as_str())
        .unwrap_or_else(|| panic!("the request itself is among the newest two: {traces:?}"));
    let record = &this[1];
    assert_eq!(this[2], "incoming");
    assert_eq!(record["body"], rpc_request("ListTraceStore", &c_data));
    assert_eq!(record["body_size"], rpc_request("ListTraceStore", &c_data).len());
    assert_eq!(record["headers"], json!({}));
    assert_eq!(record["content_type"], "application/json");
    assert_eq!(record["delivery_mode"], 1);
    assert_eq!(record["priority"], 0);
    assert_eq!(record["correlation_id"], correlation_id.as_str());
    assert!(record["timestamp"].is_f64(), "timestamp is a float: {record}");
    assert_eq!(record["type"], "RPC");
    assert_eq!(record["user_id"], peer.user.as_str());
    assert_eq!(record["app_id"], me.as_str());
    assert_eq!(record["consumer_tag"], id.as_str());
    assert_eq!(record["exchange"], "");
    assert_eq!(record["redelivered"], false);
    assert_eq!(record["routing_key"], id.as_str());
    assert!(record["delivery_tag"].as_u64().unwrap() > 0, "{record}");
    // The other one: the greeting's handling, or an answer to a peer's
    // keepalive ping from another test on the broker.
    let other = traces
        .iter()
        .find(|t| t[1]["message_id"] != message_id.as_str())
        .unwrap();
    if other[1]["type"] != "CONTROL" {
        assert_eq!(other[1]["message_id"], greeting_id.as_str(), "{traces:?}");
        assert_eq!(other[2], format!("{id}.greeting"), "{traces:?}");
    }

    // ListTraceStore --sender: every message of this peer, oldest first.
    let (c_data, request) = list_traces(None, Some(&me), None);
    let (correlation_id, message_id) = peer.request(&id, "ListTraceStore", &c_data).await;
    sent.push(message_id);
    let reply = peer.reply(&id, &correlation_id, "ListTraceStore").await;
    let traces = traces_of(&reply, &request);
    assert!(traces.iter().all(|t| t[1]["app_id"] == me.as_str()), "{traces:?}");
    let incoming: Vec<&str> = traces
        .iter()
        .filter(|t| t[2] == "incoming")
        .map(|t| t[1]["message_id"].as_str().unwrap())
        .collect();
    assert_eq!(incoming, sent, "every message of this peer, oldest first");
    let handled: Vec<&Value> = traces.iter().filter(|t| t[2] != "incoming").collect();
    assert_eq!(handled.len(), 1, "one handled message: {handled:?}");
    assert_eq!(handled[0][2], format!("{id}.greeting"));

    // ListTraceStore with a category (the probe's request of docs/protocol.md §7).
    let (c_data, request) = list_traces(Some(1), None, Some("incoming"));
    let (correlation_id, message_id) = peer.request(&id, "ListTraceStore", &c_data).await;
    sent.push(message_id.clone());
    let reply = peer.reply(&id, &correlation_id, "ListTraceStore").await;
    let traces = traces_of(&reply, &request);
    assert_eq!(traces.len(), 1, "{traces:?}");
    assert_eq!(traces[0][2], "incoming");
    if traces[0][1]["type"] != "CONTROL" {
        assert_eq!(traces[0][1]["message_id"], message_id.as_str(), "{traces:?}");
    }
    // ... and the behaviour's own category.
    let category = format!("{id}.greeting");
    let (c_data, request) = list_traces(None, None, Some(&category));
    let (correlation_id, _) = peer.request(&id, "ListTraceStore", &c_data).await;
    let reply = peer.reply(&id, &correlation_id, "ListTraceStore").await;
    let traces = traces_of(&reply, &request);
    assert_eq!(traces.len(), 1, "{traces:?}");
    assert_eq!(traces[0][1]["message_id"], greeting_id.as_str());
    assert_eq!(traces[0][1]["app_id"], me.as_str());

    // Shutdown: the reply first, then the agent stops and its queues go.
    let (correlation_id, _) = peer.request(&id, "Shutdown", r#"{"result": ""}"#).await;
    let reply = peer.reply(&id, &correlation_id, "Shutdown").await;
    assert_eq!(
        rpc_reply_body(&reply),
        (
            "Shutdown".to_owned(),
            json!({"result": format!("Shutdown of {id} initiated.")})
        )
    );
    tokio::time::timeout(RECV_TIMEOUT, agent.stopped())
        .await
        .expect("the agent stops after Shutdown");
    assert_eq!(agent.state(), State::Shutdown);
    for queue in [
        id.clone(),
        format!("{id}.fanout"),
        format!("{id}.temperature.pubsub_queue"),
    ] {
        assert!(
            !queue_exists(&peer.conn, &queue).await,
            "queue {queue} is gone after Shutdown"
        );
    }
    let (props, _) = peer.properties("Greeting", None);
    let returned = peer.publish_props("", &id, props, r#"{"text": "anyone?"}"#).await;
    assert!(
        returned,
        "a mandatory direct publish to the stopped agent comes back"
    );

    peer.close().await;
    rt.shutdown().await;
}

/// An unknown request gets an RpcError with request_type 2; an RpcError
/// (0.4 sends them as requests, Q1) and a stray reply are never answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_requests_get_an_rpc_error_and_rpc_errors_no_answer() {
    let _serial = SERIAL.lock().await;
    let Some((rt, agent, _rx)) = rust_side("interop-rpcerror").await else {
        return;
    };
    let mut peer = RawPeer::start("py-odd").await;
    let id = agent.identity().to_owned();

    let (c_type, data, _) = peer.call(&id, "DemoObj", r#"{"message": "x"}"#).await;
    assert_eq!(c_type, "RpcError");
    let error = data["error"]
        .as_str()
        .unwrap_or_else(|| panic!("error is a string: {data}"));
    assert!(
        error.starts_with("Unknown RPC request") && error.contains("DemoObj"),
        "{error}"
    );

    // What a 0.4 agent answers to an unknown request: an RpcError sent as a request.
    let (correlation_id, _) = peer
        .request(
            &id,
            "RpcError",
            r#"{"error": "Unknown RPC request: <class 'messages.DemoObj'>"}"#,
        )
        .await;
    // A reply nobody waits for.
    let stray = uuid4();
    let (props, _) = peer.properties("RPC", Some(&stray));
    peer.publish_props(
        "",
        &id,
        props,
        r#"{"c_type": "Pong", "c_data": "{\"pong\": \"pong\"}", "request_type": 2}"#,
    )
    .await;
    none_within(
        &mut peer.direct,
        Duration::from_millis(1500),
        "answer to an RpcError or a reply",
        |d| {
            let corr = text(d.properties.correlation_id());
            corr == Some(correlation_id.as_str()) || corr == Some(stray.as_str())
        },
    )
    .await;
    // Still answering.
    let (c_type, _, _) = peer.call(&id, "Ping", r#"{"ping": "ping"}"#).await;
    assert_eq!(c_type, "Pong");
    assert_eq!(agent.state(), State::Running);

    peer.close().await;
    rt.shutdown().await;
}

/// A 0.4 agent answers the Rust agent's PingControl, and the Rust peer table
/// lists it with its behaviours.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_peer_table_lists_a_04_agent() {
    let _serial = SERIAL.lock().await;
    let Some(rt) = common::buses::amqp().await else {
        return;
    };
    let mut peer = RawPeer::start("py-peer").await;
    let (tx, _rx) = mpsc::unbounded_channel();
    // Without the announcement at start: exactly one ping to answer.
    let mut options = Target::options();
    options.identity = unique("interop-peers");
    options.announce = false;
    let agent = rt.spawn_with(Target { events: tx }, options).await.unwrap();
    let id = agent.identity().to_owned();
    let me = peer.identity.clone();
    agent.context().ping_peers().await.unwrap();

    // Answer the Rust agent's ping as a 0.4 agent does.
    let status = format!(
        r#"{{"status": {{"name": "{me}", "state": "running", "behaviours": [{{"name": "{me}.PingBehav", "state": "running"}}, {{"name": "{me}.SubscribeBehav", "state": "init"}}]}}}}"#
    );
    let pong_body = serialized("PongControl", &status);
    {
        let ping = recv_where(&mut peer.fanout, "the Rust agent's PingControl", |d| {
            text(d.properties.app_id()) == Some(id.as_str()) && text(d.properties.kind()) == Some("CONTROL")
        })
        .await;
        assert_eq!(
            (ping.exchange.as_str(), ping.routing_key.as_str()),
            ("admin", "admin")
        );
        check_properties(&ping, "CONTROL", &id, Some(""), &peer.user);
        let body = json_body(&ping);
        assert_eq!(body.as_object().unwrap().len(), 2, "{body}");
        assert_eq!(envelope(&body), ("PingControl".to_owned(), json!({})));
        let correlation_id = text(ping.properties.correlation_id()).unwrap().to_owned();
        let (props, _) = peer.properties("CONTROL", Some(&correlation_id));
        let returned = peer.publish_props("", &id, props, &pong_body).await;
        assert!(!returned, "the pong reaches the Rust agent");
    }

    eventually("the 0.4 agent in the Rust peer table", || {
        agent.context().peers().iter().any(|p| p.status.name == me)
    })
    .await;
    let peers = agent.context().peers();
    let listed = peers.iter().find(|p| p.status.name == me).unwrap();
    assert_eq!(listed.status.state, "running");
    let behaviours: Vec<(&str, &str)> = listed
        .status
        .behaviours
        .iter()
        .map(|b| (b.name.as_str(), b.state.as_str()))
        .collect();
    let (ping, sub) = (format!("{me}.PingBehav"), format!("{me}.SubscribeBehav"));
    assert_eq!(behaviours, [(ping.as_str(), "running"), (sub.as_str(), "init")]);
    assert!(listed.last_seen < Duration::from_secs(10));
    // The agent answered its own ping too (0.4's Q6).
    eventually("the Rust agent in its own peer table", || {
        agent.context().peers().iter().any(|p| p.status.name == id)
    })
    .await;

    peer.close().await;
    rt.shutdown().await;
}

/// Exposes a method on 0.4's method queues, as a Python agent's RPC
/// subsystem would.
#[agent]
#[derive(Default)]
struct Exposer;

#[agent]
impl Exposer {
    #[rpc]
    async fn interop_cached_multiply(&mut self, x: i64, y: i64) -> i64 {
        x * y
    }
}

/// `ctx.call` to a 0.4 agent: the first call finds it one (its control
/// queue bounces, it answers a ping on its identity queue) and the runtime
/// remembers that, so later calls go straight to the method it exposes.
/// The raw peer answers one ping only: a second ping would leave the
/// second call waiting for a pong until its timeout. (0.4's RPC routes by
/// method name; a Rust agent's exposed method plays the Python side.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_to_a_04_agent_ping_it_once_then_go_straight_to_its_method() {
    let _serial = SERIAL.lock().await;
    let Some(rt) = common::buses::amqp().await else {
        return;
    };
    let mut peer = RawPeer::start("py-callee").await;
    let mut options = Exposer::options().exposing();
    options.identity = unique("interop-exposer");
    let exposer = rt.spawn_with(Exposer, options).await.unwrap();
    let client = std::sync::Arc::new(rt.client(unique("interop-caller")).await.unwrap());
    let callee = peer.identity.clone();
    let method = "interop_cached_multiply";

    let first = {
        let (client, callee) = (std::sync::Arc::clone(&client), callee.clone());
        tokio::spawn(async move { client.call::<i64>(&callee, method, json!({"x": 2, "y": 3})).await })
    };
    let ping = recv_where(&mut peer.direct, "the caller's ping", |d| {
        text(d.properties.kind()) == Some("RPC") && envelope(&json_body(d)).0 == "Ping"
    })
    .await;
    let correlation_id = text(ping.properties.correlation_id()).unwrap().to_owned();
    let caller = text(ping.properties.app_id()).unwrap().to_owned();
    let (props, _) = peer.properties("RPC", Some(&correlation_id));
    let pong = r#"{"c_type": "Pong", "c_data": "{\"pong\": \"pong\"}", "request_type": 2}"#;
    assert!(
        !peer.publish_props("", &caller, props, pong).await,
        "the pong reaches the caller"
    );
    assert_eq!(first.await.unwrap().unwrap(), 6);

    for n in 1..=3i64 {
        let product: i64 = client
            .call(&callee, method, json!({"x": n, "y": 7}))
            .await
            .expect("a later call needs no ping");
        assert_eq!(product, n * 7);
    }
    // The first call tried the 0.4 agent's (missing) control queue twice,
    // with the call and with the ping; the later ones not at all.
    let control = format!("{callee}.control");
    let bounced = client
        .handle()
        .traces()
        .sent(None)
        .iter()
        .filter(|e| e.record.delivery.routing_key == control)
        .count();
    assert_eq!(bounced, 2, "the control queue was tried by the first call only");

    client.shutdown().await;
    exposer.shutdown().await;
    peer.close().await;
    rt.shutdown().await;
}
