//! What a query of the store takes and returns: [`Filter`], [`GroupBy`]
//! and the stored [`Record`].

use serde::{Deserialize, Serialize};

/// One stored message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Row id, in the order of arrival.
    pub id: i64,
    /// When the historian received it: milliseconds since the Unix epoch (UTC).
    pub time_ms: i64,
    /// The sender's `timestamp` property (seconds), if it had one.
    pub sent: Option<i64>,
    /// The sender's identity (`app_id`), or `""`.
    pub sender: String,
    /// The message type: `c_type` of a 0.4 envelope, else the AMQP `type`.
    #[serde(rename = "type")]
    pub message_type: String,
    /// The routing key: the topic, the receiver's identity, or `admin`.
    pub routing_key: String,
    /// The exchange: `topic`, `admin` (fanout) or `""` (direct).
    pub exchange: String,
    /// The correlation id, if any.
    pub correlation_id: Option<String>,
    /// The body as text when it is UTF-8, else lossily decoded.
    pub body: String,
    /// The length of the body as received, in bytes.
    pub size: i64,
    /// Whether the stored body was cut to `max_body`.
    pub truncated: bool,
}

/// Which messages a query takes; every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Filter {
    /// Only from this sender.
    pub sender: Option<String>,
    /// Only of this type.
    #[serde(rename = "type")]
    pub message_type: Option<String>,
    /// Only with this routing key (topic).
    pub topic: Option<String>,
    /// Only on this exchange (`topic`, `admin`, `""`).
    pub exchange: Option<String>,
    /// Only received at or after this time (ms since the epoch).
    pub since: Option<i64>,
    /// Only received before this time (ms since the epoch).
    pub until: Option<i64>,
}

/// What `count_by` groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// The sender's identity.
    Sender,
    /// The message type.
    Type,
    /// The routing key.
    Topic,
    /// The exchange.
    Exchange,
}

impl GroupBy {
    /// The column of the `messages` table it groups by.
    pub(crate) fn column(self) -> &'static str {
        match self {
            GroupBy::Sender => "sender",
            GroupBy::Type => "type",
            GroupBy::Topic => "routing_key",
            GroupBy::Exchange => "exchange",
        }
    }
}
