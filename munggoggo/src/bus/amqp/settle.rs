//! Settling RabbitMQ deliveries (ack, reject, requeue) within a bounded time.

use lapin::options::{BasicAckOptions, BasicRejectOptions};

use std::time::Duration;

use super::lapin_error;
use crate::error::{Error, Result};

/// How long settling a delivery may take. lapin 4.12 can leave the ack of
/// a delivery whose connection died unanswered for good (its recovery is
/// off, see `link.rs`), which would stall the agent's task; past this the
/// delivery counts as unsettled, and the broker delivers it again. (The fix
/// upstream: fail pending acks when their channel's connection is gone.)
const SETTLE_TIMEOUT: Duration = Duration::from_secs(5);

/// Settles a delivery within [`SETTLE_TIMEOUT`].
async fn settle(settling: impl std::future::Future<Output = lapin::Result<bool>>, what: &str) -> Result<()> {
    match tokio::time::timeout(SETTLE_TIMEOUT, settling).await {
        Ok(Ok(true)) => Ok(()),
        Ok(Ok(false)) | Err(_) => Err(unackable()),
        Ok(Err(e)) => Err(lapin_error(e, what)),
    }
}

/// A RabbitMQ delivery's acknowledgement handle ([`crate::bus::Acker::Amqp`]).
///
/// A delivery dropped without being settled goes back to its queue: its
/// channel may be shared with other agents and stay open, so its close
/// would not requeue it (a handler task aborted as its agent stops, for
/// example).
pub struct AmqpAcker(Option<lapin::Acker>);

impl AmqpAcker {
    pub(super) fn new(acker: lapin::Acker) -> AmqpAcker {
        AmqpAcker(Some(acker))
    }

    fn take(mut self) -> lapin::Acker {
        self.0.take().expect("an acker until settled")
    }
}

impl Drop for AmqpAcker {
    fn drop(&mut self) {
        let Some(acker) = self.0.take() else { return };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = requeue(acker).await {
                    tracing::debug!(error = %e, "cannot requeue a delivery dropped unsettled");
                }
            });
        }
    }
}

impl std::fmt::Debug for AmqpAcker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpAcker").finish_non_exhaustive()
    }
}

/// Acknowledges a RabbitMQ delivery.
pub(crate) async fn ack(acker: AmqpAcker) -> Result<()> {
    let acker = acker.take();
    settle(
        acker.ack(BasicAckOptions::default()),
        "acknowledging a delivery failed",
    )
    .await
}

/// Rejects a RabbitMQ delivery without requeueing it.
pub(crate) async fn reject(acker: AmqpAcker) -> Result<()> {
    let acker = acker.take();
    settle(
        acker.reject(BasicRejectOptions { requeue: false }),
        "rejecting a delivery failed",
    )
    .await
}

/// Requeues a RabbitMQ delivery.
pub(crate) async fn release(acker: AmqpAcker) -> Result<()> {
    requeue(acker.take()).await
}

async fn requeue(acker: lapin::Acker) -> Result<()> {
    settle(
        acker.reject(BasicRejectOptions { requeue: true }),
        "requeueing a delivery failed",
    )
    .await
}

fn unackable() -> Error {
    Error::connection_lost(
        "the delivery's channel closed before it was settled; the broker delivers it again",
    )
}
