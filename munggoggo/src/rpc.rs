//! Request/reply between agents: the 0.4 system requests (ping, list
//! behaviours, manage behaviour, list traces, shutdown) and calls of
//! `#[rpc]` methods, with correlation ids and timeouts.
//!
//! On the wire every request and reply is a message of type `RPC` routed by
//! identity, with a body in munggoggo 0.4's RpcMessage envelope:
//! `{"c_type": ..., "c_data": "<JSON string>", "request_type": 1 | 2}`.
//! Replies go to the request's `app_id` and complete the pending call
//! directly, never through the caller's mailbox.
//!
//! Here: the error of a call ([`CallError`]) and what can make calls
//! ([`Caller`]). The calls themselves are methods of [`Context`] (in
//! `context/calls.rs`); the envelopes are in `protocol/`, the pending
//! calls in `runtime/calls.rs` and the answering side in
//! `runtime/system.rs`.

use crate::context::Context;

pub use crate::error::CallError;
pub use crate::trace::TraceQuery;

/// What can make calls: a handler's [`Context`], a test
/// [`Client`](crate::runtime::Client) or an [`AgentHandle`](crate::AgentHandle).
/// The typed clients that `#[agent]` generates take any of them:
///
/// ```
/// use munggoggo::prelude::*;
///
/// #[agent]
/// #[derive(Default)]
/// struct Calc;
///
/// #[agent]
/// impl Calc {
///     #[rpc]
///     async fn multiply(&mut self, x: i64, y: i64) -> i64 {
///         x * y
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> munggoggo::Result<()> {
/// let rt = munggoggo::Runtime::memory().agent(Calc).start().await?;
/// let client = rt.client("tester").await?;
/// // Checked at compile time: `multiply` takes two `i64` and returns one.
/// assert_eq!(Calc::client(&client).multiply(3, 2).await?, 6);
/// // The string form, for other languages and the command line:
/// assert_eq!(client.call::<i64>("calc", "multiply", (3, 2)).await?, 6);
/// rt.shutdown().await;
/// # Ok(()) }
/// ```
pub trait Caller {
    /// The context the calls are made from.
    fn context(&self) -> &Context;
}

impl Caller for Context {
    fn context(&self) -> &Context {
        self
    }
}
