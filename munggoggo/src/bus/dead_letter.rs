//! Dead letters: messages an agent could not handle (a body that does not
//! decode, a type nobody handles, a handler error or panic), kept on
//! RabbitMQ in the durable queue [`DEAD_LETTER_QUEUE`] with headers naming
//! the agent, the handler, the error and the attempts, so that nothing an
//! agent rejects disappears. `munggoggo dead-letters list|show|replay|purge`
//! looks at them and sends them again to where they first went.
//!
//! On the embedded bus a rejected message stays in the agent's trace store
//! (category `rejected`) with the same reason.

use bytes::Bytes;
use serde::Serialize;

use super::{Outgoing, Route};
use crate::message::{Properties, Received, SmolStr};

/// The queue that keeps dead letters (durable, shared by every agent of a
/// virtual host, bounded at [`DEAD_LETTER_LIMIT`] messages).
pub const DEAD_LETTER_QUEUE: &str = "munggoggo.dead-letters";

/// How many dead letters the queue keeps; past it the broker refuses new
/// ones, and the agent logs the loss as an error.
pub const DEAD_LETTER_LIMIT: usize = 100_000;

/// The headers a dead letter carries besides the original message's.
pub mod header {
    /// The identity of the agent that could not handle it.
    pub const AGENT: &str = "x-munggoggo-agent";
    /// The handler that failed (absent when no handler took it).
    pub const HANDLER: &str = "x-munggoggo-handler";
    /// Why: the error, the panic message or the routing failure.
    pub const ERROR: &str = "x-munggoggo-error";
    /// How often the agent got it: 1, or 2 when the broker delivered it
    /// again (it may have been more).
    pub const ATTEMPTS: &str = "x-munggoggo-attempts";
    /// The exchange it was first published to (`""` for direct sends).
    pub const EXCHANGE: &str = "x-munggoggo-exchange";
    /// The routing key it was first published with.
    pub const ROUTING_KEY: &str = "x-munggoggo-routing-key";
    /// When it became a dead letter, in UTC seconds since the epoch.
    pub const DEAD_AT: &str = "x-munggoggo-dead-at";
}

/// A message an agent could not handle, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct DeadLetter {
    /// The agent that rejected it.
    pub agent: String,
    /// The handler that failed, if one took it.
    pub handler: Option<String>,
    /// Why it was rejected.
    pub error: String,
    /// How often the agent got it.
    pub attempts: u32,
    /// Where it was first published: exchange and routing key.
    pub exchange: String,
    /// The routing key it was first published with.
    pub routing_key: String,
    /// When it became a dead letter (UTC epoch seconds).
    pub dead_at: Option<u64>,
    /// The message type (`type` property).
    pub kind: Option<String>,
    /// The original sender (`app_id`).
    pub sender: Option<String>,
    /// The original message id.
    pub message_id: Option<String>,
    /// The body, as sent.
    #[serde(skip)]
    pub body: Bytes,
}

impl DeadLetter {
    /// The dead letter of `msg`, rejected by `agent` (in `handler`, if one
    /// took it) for `error`.
    pub fn of(msg: &Received, agent: &str, handler: Option<&str>, error: &str) -> DeadLetter {
        DeadLetter {
            agent: agent.to_owned(),
            handler: handler.map(str::to_owned),
            error: error.to_owned(),
            attempts: if msg.delivery.redelivered { 2 } else { 1 },
            exchange: msg.delivery.exchange.to_string(),
            routing_key: msg.delivery.routing_key.to_string(),
            dead_at: Some(crate::message::now_secs()),
            kind: msg.properties.kind.as_ref().map(SmolStr::to_string),
            sender: msg.properties.app_id.as_ref().map(SmolStr::to_string),
            message_id: msg.properties.message_id.as_ref().map(SmolStr::to_string),
            body: msg.body.clone(),
        }
    }

    /// The message that carries it to [`DEAD_LETTER_QUEUE`]: the original
    /// properties and body, plus the [`header`]s.
    pub fn outgoing(&self, original: &Properties) -> Outgoing {
        let mut properties = original.clone();
        let headers = &mut properties.headers;
        headers.insert(header::AGENT.to_owned(), self.agent.clone().into());
        if let Some(handler) = &self.handler {
            headers.insert(header::HANDLER.to_owned(), handler.clone().into());
        }
        headers.insert(header::ERROR.to_owned(), self.error.clone().into());
        headers.insert(header::ATTEMPTS.to_owned(), self.attempts.into());
        headers.insert(header::EXCHANGE.to_owned(), self.exchange.clone().into());
        headers.insert(header::ROUTING_KEY.to_owned(), self.routing_key.clone().into());
        if let Some(at) = self.dead_at {
            headers.insert(header::DEAD_AT.to_owned(), at.into());
        }
        Outgoing {
            route: Route::Direct(SmolStr::new_static(DEAD_LETTER_QUEUE)),
            properties: std::sync::Arc::new(properties),
            body: self.body.clone(),
        }
    }

    /// Reads a dead letter back from a message of [`DEAD_LETTER_QUEUE`];
    /// `None` when it lacks the headers.
    pub fn from_received(msg: &Received) -> Option<DeadLetter> {
        let headers = &msg.properties.headers;
        let text = |name: &str| headers.get(name).and_then(|v| v.as_str()).map(str::to_owned);
        Some(DeadLetter {
            agent: text(header::AGENT)?,
            handler: text(header::HANDLER),
            error: text(header::ERROR).unwrap_or_default(),
            attempts: headers
                .get(header::ATTEMPTS)
                .and_then(|v| v.as_u64())
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(1),
            exchange: text(header::EXCHANGE).unwrap_or_default(),
            routing_key: text(header::ROUTING_KEY).unwrap_or_default(),
            dead_at: headers.get(header::DEAD_AT).and_then(|v| v.as_u64()),
            kind: msg.properties.kind.as_ref().map(SmolStr::to_string),
            sender: msg.properties.app_id.as_ref().map(SmolStr::to_string),
            message_id: msg.properties.message_id.as_ref().map(SmolStr::to_string),
            body: msg.body.clone(),
        })
    }

    /// The original message, to send again: its properties without the
    /// dead-letter headers, its body, and where it first went.
    pub fn replay(&self, stored: &Properties) -> Outgoing {
        let mut properties = stored.clone();
        for name in [
            header::AGENT,
            header::HANDLER,
            header::ERROR,
            header::ATTEMPTS,
            header::EXCHANGE,
            header::ROUTING_KEY,
            header::DEAD_AT,
        ] {
            properties.headers.remove(name);
        }
        let route = match self.exchange.as_str() {
            super::FANOUT_EXCHANGE => Route::Fanout,
            super::TOPIC_EXCHANGE => Route::Topic(self.routing_key.as_str().into()),
            _ => Route::Direct(self.routing_key.as_str().into()),
        };
        Outgoing {
            route,
            properties: std::sync::Arc::new(properties),
            body: self.body.clone(),
        }
    }
}
