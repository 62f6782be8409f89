//! A relay agent for the tracing tests (`tests/otel.rs`,
//! `tests/tracecontext.rs`): it passes every `Hop` on to the next agent,
//! one more each time, and answers `double`. Included with
//! `#[path = "common/relay.rs"] mod relay;` rather than from `common`, so
//! that the other test binaries do not register its agent.

use munggoggo::prelude::*;
use serde::{Deserialize, Serialize};

/// One hop of a chain, numbered.
#[derive(Debug, Serialize, Deserialize, Message)]
pub struct Hop {
    pub n: u64,
}

/// Sends every `Hop` on to `next`, numbered one more.
#[agent]
pub struct Relay {
    pub next: String,
}

#[agent]
impl Relay {
    #[on_message]
    async fn hop(&mut self, ctx: &Context, hop: Hop) -> munggoggo::Result<()> {
        ctx.send(&self.next, &Hop { n: hop.n + 1 }).await
    }

    #[rpc]
    async fn double(&mut self, x: i64) -> i64 {
        2 * x
    }
}
