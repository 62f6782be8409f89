//! Messages: the [`Message`] trait for payload types, what a receiver sees
//! ([`Envelope`], [`Raw`]) and the properties every message carries.
//! (About 390 lines of code; its unit tests make it a little longer.)

use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
pub use smol_str::SmolStr;

use crate::error::{Error, Result};

pub(crate) mod body;

/// Header table of a message (AMQP headers, as JSON values).
pub type Headers = serde_json::Map<String, serde_json::Value>;

/// The message types the protocol reserves (see `protocol/rules.rs`).
pub use crate::protocol::{is_reserved_type, CONTROL, PUBSUB, RESERVED_TYPES, RPC};

/// A payload type with a wire type name, usually derived with
/// `#[derive(Message)]` (the name defaults to the Rust type name, as
/// munggoggo 0.4 uses the class name).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a munggoggo message type",
    label = "add `#[derive(munggoggo::Message)]` to `{Self}`",
    note = "or name the type explicitly: `#[on_message(type = \"...\")]`"
)]
pub trait Message {
    /// The AMQP `type` this payload travels with.
    const TYPE: &'static str;
    /// Send it in munggoggo 0.4's `{"c_type", "c_data"}` envelope, for Python
    /// receivers that deserialize `SerializableObject`s.
    const ENVELOPE: bool = false;
}

/// A type a handler can receive: anything `serde` can deserialize, or
/// [`Raw`] for the bytes themselves.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be received as a message payload",
    label = "derive `serde::Deserialize` for `{Self}`, or take `Raw` for the bytes",
    note = "payloads are decoded from JSON with serde"
)]
pub trait Payload: Sized + Send + 'static {
    /// Decodes the payload from the message body.
    fn decode(body: &Bytes) -> std::result::Result<Self, String>;
}

impl<T: DeserializeOwned + Send + 'static> Payload for T {
    fn decode(body: &Bytes) -> std::result::Result<Self, String> {
        serde_json::from_slice(body).map_err(|e| e.to_string())
    }
}

/// A message body taken as it is: bytes that need not be JSON.
///
/// A handler of `Raw` (or `Envelope<Raw>`) needs a route that does not come
/// from the payload type: a type name, a topic or the fallback.
///
/// On the embedded bus a small body shares its sender's send buffer (up to
/// 4 KiB) with the bodies sent before and after it: to keep one for long
/// (a cache, a list of the last values), keep a copy
/// (`Bytes::copy_from_slice`) or what it decodes to.
///
/// ```
/// use munggoggo::prelude::*;
///
/// #[agent]
/// #[derive(Default)]
/// struct Logger;
///
/// #[agent]
/// impl Logger {
///     #[on_message(topic = "logs.#")]
///     async fn line(&mut self, msg: Envelope<Raw>) {
///         let text = msg.as_str().unwrap_or("<binary>");
///         println!("{} on {}: {text}", msg.sender(), msg.routing_key());
///     }
/// }
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Raw(pub Bytes);

impl Raw {
    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The body as text, if it is UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    /// Decodes the body as JSON into `T`.
    pub fn json<T: DeserializeOwned>(&self) -> serde_json::Result<T> {
        serde_json::from_slice(&self.0)
    }
}

impl fmt::Debug for Raw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_str() {
            Some(s) => write!(f, "Raw({s:?})"),
            None => write!(f, "Raw({:?})", self.0),
        }
    }
}

impl Payload for Raw {
    fn decode(body: &Bytes) -> std::result::Result<Self, String> {
        Ok(Raw(body.clone()))
    }
}

/// The properties a message travels with (AMQP basic properties).
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Properties {
    /// The AMQP `type`: the message type name, or `CONTROL`, `RPC`, `PUBSUB`.
    pub kind: Option<SmolStr>,
    /// The sender's identity (AMQP `app_id`).
    pub app_id: Option<SmolStr>,
    /// Correlation id (set on CONTROL and RPC messages).
    pub correlation_id: Option<SmolStr>,
    /// A unique id per publish, given when the message is published if
    /// it has none: 32 lower-case hex digits on RabbitMQ (as aiormq, the
    /// AMQP client of munggoggo 0.4, makes them), 16 on the embedded bus
    /// (unique in the process, which is all the bus reaches).
    pub message_id: Option<SmolStr>,
    /// UTC seconds since the epoch when the message was sent.
    pub timestamp: Option<u64>,
    /// User headers.
    pub headers: Headers,
    /// Always `application/json` from munggoggo.
    pub content_type: Option<SmolStr>,
    /// The authenticated user on the broker, when known.
    pub user_id: Option<SmolStr>,
    /// `reply_to`, unused by munggoggo (replies go to `app_id`).
    pub reply_to: Option<SmolStr>,
    /// `expiration` in milliseconds (the calls of exposed methods expire
    /// with their caller's timeout).
    pub expiration: Option<SmolStr>,
    /// The W3C trace context, the `traceparent` and `tracestate` headers
    /// on the wire (see [`crate::tracecontext`]); set when the message is
    /// published if it has none.
    pub trace: Option<crate::traceparent::TraceContext>,
}

impl Properties {
    /// The properties munggoggo puts on every message it sends (the
    /// `message_id` is added when the message is published).
    pub fn new(kind: impl Into<SmolStr>, sender: impl Into<SmolStr>) -> Self {
        Properties {
            kind: Some(kind.into()),
            app_id: Some(sender.into()),
            correlation_id: None,
            message_id: None,
            timestamp: Some(now_secs()),
            headers: Headers::new(),
            content_type: Some(SmolStr::new_static(JSON_CONTENT_TYPE)),
            user_id: None,
            reply_to: None,
            expiration: None,
            trace: None,
        }
    }
}

/// The content type of every message munggoggo sends.
pub const JSON_CONTENT_TYPE: &str = "application/json";

/// A fresh message id for the wire: 32 lower-case hex digits, as aiormq
/// sends. Unique without a random number per send: a random half drawn
/// once per process, then [`local_message_id`]'s counter.
pub(crate) fn message_id() -> SmolStr {
    use std::sync::OnceLock;
    static PROCESS: OnceLock<u64> = OnceLock::new();
    let process = *PROCESS.get_or_init(|| uuid::Uuid::new_v4().as_u64_pair().0);
    let mut text = [0u8; 32];
    hex_digits(process, &mut text[..16]);
    hex_digits(next_message_number(), &mut text[16..]);
    SmolStr::new(std::str::from_utf8(&text).expect("hex digits are ASCII"))
}

/// A fresh message id unique in the process: 16 lower-case hex digits of a
/// counter (the second half of what [`message_id`] would give). Short
/// enough to be kept inline, so the embedded bus allocates nothing for it.
pub(crate) fn local_message_id() -> SmolStr {
    let mut text = [0u8; 16];
    hex_digits(next_message_number(), &mut text);
    SmolStr::new(std::str::from_utf8(&text).expect("hex digits are ASCII"))
}

fn next_message_number() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// Writes `n` as lower-case hex digits into `out` (16 of them for all 64 bits).
fn hex_digits(n: u64, out: &mut [u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let last = out.len() - 1;
    for (i, digit) in out.iter_mut().enumerate() {
        *digit = HEX[((n >> ((last - i) * 4)) & 0xf) as usize];
    }
}

/// Where and how a message was delivered.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct DeliveryInfo {
    /// The exchange it was published to (`""` for direct sends).
    pub exchange: SmolStr,
    /// Its routing key (identity, `admin` or the topic).
    pub routing_key: SmolStr,
    /// Whether the bus delivered it before.
    pub redelivered: bool,
    /// The consumer it was delivered to.
    pub consumer_tag: SmolStr,
    /// The delivery's sequence number on its consumer.
    pub delivery_tag: u64,
}

/// Everything about a received message but its decoded payload.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Received {
    /// The message's properties.
    pub properties: Arc<Properties>,
    /// How it was delivered.
    pub delivery: DeliveryInfo,
    /// The body as it came over the wire.
    pub body: Bytes,
    /// The payload: the body, or `c_data` of a 0.4 envelope.
    pub payload: Bytes,
    /// `c_type` of a 0.4 envelope, which names the type instead of the AMQP `type`.
    pub envelope_type: Option<SmolStr>,
}

impl Received {
    /// Builds the receiver's view of a message, unwrapping a 0.4 envelope.
    pub fn new(properties: impl Into<Arc<Properties>>, delivery: DeliveryInfo, body: Bytes) -> Self {
        let (envelope_type, payload) = match unwrap_envelope(&body) {
            Some((c_type, c_data)) => (Some(c_type), c_data),
            None => (None, body.clone()),
        };
        Received {
            properties: properties.into(),
            delivery,
            body,
            payload,
            envelope_type,
        }
    }

    /// The sender's identity, or `""` when the message carried none.
    pub fn sender(&self) -> &str {
        self.properties.app_id.as_deref().unwrap_or("")
    }

    /// Who sent it, for log lines: the sender's identity, or what the
    /// message does carry when it names none (an aio-pika caller sets only
    /// `reply_to` and `correlation_id`).
    pub(crate) fn origin(&self) -> std::borrow::Cow<'_, str> {
        let p = &self.properties;
        match (
            p.app_id.as_deref(),
            p.reply_to.as_deref(),
            p.correlation_id.as_deref(),
        ) {
            (Some(app_id), ..) if !app_id.is_empty() => app_id.into(),
            (_, Some(reply_to), _) => format!("(no app_id; reply_to {reply_to})").into(),
            (_, None, Some(id)) => format!("(no app_id; correlation_id {id})").into(),
            _ => "(unknown: no app_id, reply_to or correlation_id)".into(),
        }
    }

    /// The type used for dispatch, or `""`.
    pub fn message_type(&self) -> &str {
        self.envelope_type
            .as_deref()
            .or(self.properties.kind.as_deref())
            .unwrap_or("")
    }
}

/// A received payload together with its sender, type and delivery details.
///
/// Take `Envelope<T>` instead of `T` in an `#[on_message]` handler to see who
/// sent the message and how; it derefs to the payload.
///
/// ```
/// use munggoggo::prelude::*;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, Message)]
/// struct Order { item: String }
///
/// #[agent]
/// #[derive(Default)]
/// struct Shop;
///
/// #[agent]
/// impl Shop {
///     #[on_message]
///     async fn order(&mut self, ctx: &Context, order: Envelope<Order>) -> munggoggo::Result<()> {
///         println!("{} wants {} ({})", order.sender(), order.item, order.message_type());
///         ctx.send(order.sender(), &Order { item: format!("receipt for {}", order.item) }).await
///     }
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Envelope<T> {
    body: T,
    meta: Arc<Received>,
}

impl<T> Envelope<T> {
    /// Wraps a decoded payload with what was received.
    pub fn new(body: T, meta: Arc<Received>) -> Self {
        Envelope { body, meta }
    }

    /// The decoded payload.
    pub fn body(&self) -> &T {
        &self.body
    }

    /// Takes the payload out.
    pub fn into_body(self) -> T {
        self.body
    }

    /// The sender's identity (`app_id`), or `""`.
    pub fn sender(&self) -> &str {
        self.meta.sender()
    }

    /// The message type used for dispatch.
    pub fn message_type(&self) -> &str {
        self.meta.message_type()
    }

    /// The correlation id, if any.
    pub fn correlation_id(&self) -> Option<&str> {
        self.meta.properties.correlation_id.as_deref()
    }

    /// The routing key: the receiver's identity, `admin` or the topic.
    pub fn routing_key(&self) -> &str {
        &self.meta.delivery.routing_key
    }

    /// The user headers.
    pub fn headers(&self) -> &Headers {
        &self.meta.properties.headers
    }

    /// The W3C trace context it carries (see [`crate::tracecontext`]).
    pub fn trace(&self) -> Option<&crate::traceparent::TraceContext> {
        self.meta.properties.trace.as_ref()
    }

    /// When it was sent, in UTC seconds since the epoch.
    pub fn timestamp(&self) -> Option<u64> {
        self.meta.properties.timestamp
    }

    /// Whether the bus delivered it before.
    pub fn redelivered(&self) -> bool {
        self.meta.delivery.redelivered
    }

    /// All properties and delivery details.
    pub fn received(&self) -> &Received {
        &self.meta
    }
}

impl<T> std::ops::Deref for Envelope<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.body
    }
}

/// UTC seconds since the epoch.
pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Encodes a typed payload into the body it travels with, in 0.4's
/// envelope when `in_envelope` is set.
pub(crate) fn encode_as<M: Message + Serialize + ?Sized>(msg: &M, in_envelope: bool) -> Result<Bytes> {
    let encode_error = |source| Error::Encode {
        type_name: M::TYPE.to_owned(),
        source,
    };
    if !in_envelope {
        return body::json(msg).map_err(encode_error);
    }
    let json = serde_json::to_vec(msg).map_err(encode_error)?;
    let c_data = String::from_utf8(json).map_err(|e| Error::Bus {
        reason: format!("the JSON of a `{}` message is not UTF-8", M::TYPE),
        source: Some(Box::new(e)),
    })?;
    envelope(M::TYPE, &c_data)
}

/// Wraps `c_data` (a payload's JSON text) in 0.4's `{"c_type", "c_data"}`
/// envelope, as [`WireMode::Py04`](crate::WireMode::Py04) writes typed
/// messages: for tools that send bodies of their own to 0.4 agents.
///
/// ```
/// let body = munggoggo::message::envelope("Ping", r#"{"n":1}"#)?;
/// let (c_type, c_data) = munggoggo::message::unwrap_envelope(&body).expect("an envelope");
/// assert_eq!((c_type.as_str(), &c_data[..]), ("Ping", &br#"{"n":1}"#[..]));
/// # Ok::<(), munggoggo::Error>(())
/// ```
pub fn envelope(c_type: &str, c_data: &str) -> Result<Bytes> {
    #[derive(Serialize)]
    struct Envelope04<'a> {
        c_type: &'a str,
        c_data: &'a str,
    }
    body::json(&Envelope04 { c_type, c_data }).map_err(|source| Error::Encode {
        type_name: c_type.to_owned(),
        source,
    })
}

/// Recognises munggoggo 0.4's envelope (an object with a string `c_type` and
/// a string `c_data`) and returns the type and the inner payload.
pub fn unwrap_envelope(body: &Bytes) -> Option<(SmolStr, Bytes)> {
    #[derive(Deserialize)]
    struct Envelope04 {
        c_type: SmolStr,
        c_data: String,
    }
    // Built once: a finder's set-up costs more than searching a small body.
    static C_DATA: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\"c_data\""));
    let first = body.iter().find(|b| !b.is_ascii_whitespace())?;
    if *first != b'{' || C_DATA.find(body).is_none() {
        return None;
    }
    let env: Envelope04 = serde_json::from_slice(body).ok()?;
    Some((env.c_type, Bytes::from(env.c_data)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_origin_of_a_message_without_app_id_is_what_it_carries() {
        let origin = |f: fn(&mut Properties)| {
            let mut props = Properties::default();
            f(&mut props);
            let r = Received::new(props, DeliveryInfo::default(), Bytes::new());
            r.origin().into_owned()
        };
        assert_eq!(origin(|p| p.app_id = Some("agent1".into())), "agent1");
        assert_eq!(
            origin(|p| {
                p.reply_to = Some("amq.gen-x".into());
                p.correlation_id = Some("c1".into());
            }),
            "(no app_id; reply_to amq.gen-x)"
        );
        assert_eq!(
            origin(|p| p.correlation_id = Some("c1".into())),
            "(no app_id; correlation_id c1)"
        );
        assert!(origin(|_| ()).starts_with("(unknown"));
    }

    #[test]
    fn message_ids_are_32_hex_digits_and_differ() {
        let (a, b) = (message_id(), message_id());
        assert_eq!(a.len(), 32);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
        assert_eq!(a[..16], b[..16], "one random half per process");
        let local = local_message_id();
        assert_eq!(local.len(), 16);
        assert!(!local.is_heap_allocated());
        assert!(local
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        let c = message_id();
        assert!(
            b[16..] < *local && *local < c[16..],
            "one counter: {b} {local} {c}"
        );
    }

    #[test]
    fn envelope_is_unwrapped_only_when_both_fields_are_strings() {
        let body = Bytes::from_static(br#"{"c_type": "DemoData", "c_data": "{\"n\": 1}"}"#);
        let (t, data) = unwrap_envelope(&body).unwrap();
        assert_eq!(t, "DemoData");
        assert_eq!(&data[..], br#"{"n": 1}"#);
        let object_data = Bytes::from_static(br#"{"c_type": "X", "c_data": {"n": 1}}"#);
        assert!(unwrap_envelope(&object_data).is_none());
        assert!(unwrap_envelope(&Bytes::from_static(b"1")).is_none());
        assert!(unwrap_envelope(&Bytes::from_static(br#"{"c_data": "x"}"#)).is_none());
    }

    #[test]
    fn received_takes_type_from_envelope_else_property() {
        let props = Properties::new("CUSTOM", "probe");
        let r = Received::new(
            props.clone(),
            DeliveryInfo::default(),
            Bytes::from_static(br#"{"c_type": "DemoData", "c_data": "{}"}"#),
        );
        assert_eq!(r.message_type(), "DemoData");
        let r = Received::new(props, DeliveryInfo::default(), Bytes::from_static(b"{}"));
        assert_eq!(r.message_type(), "CUSTOM");
        assert_eq!(r.sender(), "probe");
    }
}
