//! Singleton behaviours' leases: a task per singleton behaviour of a
//! replica asks the bus for its lease and tells the agent's task whenever
//! the replica gets or loses it (see [`crate::bus::Endpoint::lease`]).

use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument;

use super::core::Core;
use crate::context::Context;

/// Asks for the lease of singleton behaviour `i` in a task of the agent's
/// ([`hold_lease`]), which `Core::give_up_lease` aborts.
pub(crate) fn ask_lease(ctx: &Context, i: usize) {
    let core = &ctx.core;
    let span = tracing::info_span!("agent", agent = %core.identity);
    let task = ctx.spawn(hold_lease(Arc::clone(core), i).instrument(span));
    if let Some(old) = core.lease_task(i, Some(task.abort_handle())) {
        old.abort();
    }
}

/// Asks for the lease of singleton behaviour `i` and tells the agent's
/// task whenever this replica gets or loses it, for the agent's life (the
/// lease goes with this task when the agent stops).
async fn hold_lease(core: Arc<Core>, i: usize) {
    let name = core.lease_name(i);
    let mut delay = Duration::from_millis(100);
    let mut lease = loop {
        match core.endpoint.lease(&name).await {
            Ok(lease) => break lease,
            Err(e) => {
                tracing::warn!(agent = %core.identity, lease = %name, error = %e, "cannot ask for the singleton's lease; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    };
    loop {
        let gained = lease.until(true).await;
        if !gained || !core.lease_changed(i, true).await {
            return;
        }
        let kept = !lease.until(false).await;
        if !core.lease_changed(i, false).await || kept {
            return;
        }
    }
}
