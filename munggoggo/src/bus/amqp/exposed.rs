//! munggoggo 0.4's method queues: the aio-pika RPC pattern on RabbitMQ
//! (docs/protocol.md, "Exposed methods").
//!
//! A queue per method name, shared by every agent that exposes the method
//! (the broker hands calls round-robin to their consumers), declared
//! exactly as aio-pika 6.8 declares it: non-durable, not exclusive, not
//! auto-delete, dead-lettered to the headers exchange `rpc.dlx`
//! (auto-delete). Another flag or argument would make the broker refuse the
//! declaration of whichever side comes second.
//!
//! The queues form a consumer unit of their own (`consumer.rs`): a channel
//! on the consuming connection with the agent's prefetch, rebuilt after a
//! lost connection like the agent's other queues. Dropping the stream
//! closes the unit (calls not yet answered go back to the queue for another
//! consumer) and deletes each method queue that no other consumer uses and
//! that holds no call.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use futures_util::stream::{SelectAll, Stream, StreamExt};
use lapin::ExchangeKind;

use super::consumer::{method_queue_spec, Closing, Spec, Unit};
use super::AmqpBus;
use crate::bus::{Consumer, Delivery};
use crate::error::Result;

/// The dead-letter exchange of aio-pika's RPC pattern.
pub(crate) const DLX: &str = "rpc.dlx";

impl AmqpBus {
    /// Declares and consumes the method queues of `methods` for `identity`.
    pub(super) async fn expose_methods(
        &self,
        identity: &str,
        methods: &[String],
        prefetch: u16,
    ) -> Result<Consumer> {
        let queues = methods
            .iter()
            .map(|method| method_queue_spec(method, identity, DLX))
            .collect::<Result<Vec<_>>>()?;
        let (unit, consumers) = Unit::open(Spec {
            channels: Arc::clone(&self.inner.channels),
            identity: identity.into(),
            mailbox: false,
            prefetch,
            exchanges: vec![(DLX, ExchangeKind::Headers, true)],
            queues,
            expiry: None,
            identity_grace: self.inner.options.identity_grace_period(),
        })
        .await?;
        tracing::debug!(agent = %identity, ?methods, "methods exposed on 0.4's method queues");
        let mut streams = SelectAll::new();
        for consumer in consumers {
            streams.push(consumer);
        }
        Ok(Box::pin(Exposed {
            streams,
            unit: Some(unit),
        }))
    }
}

/// The deliveries of the method queues; dropping it closes their unit.
struct Exposed {
    streams: SelectAll<Consumer>,
    unit: Option<Arc<Unit>>,
}

impl Stream for Exposed {
    type Item = Delivery;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Delivery>> {
        self.streams.poll_next_unpin(cx)
    }
}

impl Drop for Exposed {
    fn drop(&mut self) {
        if let (Some(unit), Ok(runtime)) = (self.unit.take(), tokio::runtime::Handle::try_current()) {
            // A queue another consumer uses, or that holds calls, stays
            // (0.4 leaves its method queues behind for good).
            runtime.spawn(async move {
                let _ = unit.close(Closing::KeepBacklog).await;
            });
        }
    }
}
