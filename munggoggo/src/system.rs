//! System messages (CONTROL and RPC), answered by the runtime from shared
//! status without waiting for the agent's handlers.

use crate::bus::Delivery;
use crate::context::Core;

/// Handles one system message and acknowledges it.
pub(crate) async fn handle(core: &Core, delivery: Delivery) {
    tracing::debug!(
        agent = %core.identity,
        sender = delivery.received.sender(),
        kind = delivery.received.message_type(),
        "system message not handled yet"
    );
    let _ = delivery.acker.ack().await;
}
