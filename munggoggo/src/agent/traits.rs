//! The traits `#[agent]` implements: [`AgentDefaults`] (on the struct) and
//! [`Agent`] (on the impl block).

use super::options::AgentOptions;
use super::spec::{AgentSpec, HandlerError};
use crate::behaviour::Next;
use crate::context::Context;
use crate::error::BoxError;
use crate::future::BoxFuture;
use crate::message::Received;

/// The agent-level options of an agent type: implemented by `#[agent]` on
/// the struct.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no agent options",
    label = "add `#[agent]` to the struct `{Self}` as well as to its impl block"
)]
pub trait AgentDefaults: Sized {
    /// The options given on the struct (identity defaults to the type name in kebab-case).
    fn options() -> AgentOptions;
    /// Builds an instance for the registry (`Default` or `#[agent(new = ...)]`;
    /// with `#[agent(config = ...)]`, from the configuration's defaults).
    fn construct() -> Option<Self>;
    /// Whether the registry can build one: `Default`, or `new = ...` (with
    /// `config = ...`, from the configuration), without building it.
    fn has_constructor() -> bool {
        true
    }

    /// Builds the instance `identity` from its configuration through every
    /// layer of `config` (agents with `#[agent(config = ...)]`); others are
    /// built by [`construct`](Self::construct). `Ok(None)`: no constructor.
    fn configured(
        config: &crate::config::Config,
        identity: &str,
    ) -> Result<Option<Self>, crate::config::ConfigError> {
        let _ = (config, identity);
        Ok(Self::construct())
    }

    /// The name of the configuration type, for agents with `#[agent(config = ...)]`.
    fn config_type() -> Option<&'static str> {
        None
    }
}

/// An agent: implemented by `#[agent]` on the impl block; not written by hand.
pub trait Agent: AgentDefaults + Send + 'static {
    /// The static description of this agent type.
    fn spec() -> &'static AgentSpec;

    /// The `#[setup]` method; none by default.
    fn setup<'a>(&'a mut self, ctx: &'a Context) -> BoxFuture<'a, Result<(), BoxError>> {
        let _ = ctx;
        Box::pin(std::future::ready(Ok(())))
    }

    /// The `#[teardown]` method; none by default.
    fn teardown<'a>(&'a mut self, ctx: &'a Context) -> BoxFuture<'a, Result<(), BoxError>> {
        let _ = ctx;
        Box::pin(std::future::ready(Ok(())))
    }

    /// Runs one step of the behaviour at `index` of [`AgentSpec::behaviours`]
    /// (an error by default: no behaviours).
    fn run<'a>(&'a mut self, ctx: &'a Context, index: usize) -> BoxFuture<'a, Result<Next, BoxError>> {
        let _ = ctx;
        unknown_index("behaviour", index)
    }

    /// Hands a message to the handler at `index` of [`AgentSpec::behaviours`]
    /// (an error by default: no handlers).
    fn handle<'a>(
        &'a mut self,
        ctx: &'a Context,
        index: usize,
        msg: &'a std::sync::Arc<Received>,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        let _ = (ctx, msg);
        unknown_index("handler", index)
    }

    /// Calls the `#[rpc]` method at `index` of [`AgentSpec::rpcs`] with JSON
    /// parameters (an error by default: no methods).
    fn call<'a>(
        &'a mut self,
        ctx: &'a Context,
        index: usize,
        params: serde_json::Value,
    ) -> BoxFuture<'a, Result<serde_json::Value, crate::rpc::CallError>> {
        let _ = (ctx, params);
        unknown_index("rpc method", index)
    }
}

/// The future for an index no method has (never reached from generated
/// code: the runtime calls only the indices of the agent's spec).
#[doc(hidden)]
pub fn unknown_index<'a, T: Send + 'a, E: From<BoxError> + Send + 'a>(
    what: &'static str,
    index: usize,
) -> BoxFuture<'a, Result<T, E>> {
    Box::pin(async move { Err(E::from(format!("no {what} with index {index}").into())) })
}
