//! [`Observer`]: the agent behind the CLI and the dashboard.

use std::sync::Arc;

use crate::agent::{Agent, AgentDefaults, AgentOptions, AgentSpec, BoxFuture, HandlerError};
use crate::behaviour::Next;
use crate::error::BoxError;
use crate::message::Received;
use crate::rpc::CallError;
use crate::Context;

/// A participant without behaviours, handlers or methods, behind the CLI
/// and the dashboard: the runtime answers system requests and collects
/// pongs and replies for it.
pub(crate) struct Observer;

static OBSERVER_SPEC: AgentSpec = AgentSpec {
    name: "MunggoggoObserver",
    behaviours: &[],
    rpcs: &[],
};

impl AgentDefaults for Observer {
    fn options() -> AgentOptions {
        AgentOptions::new("munggoggo-observer")
    }

    fn construct() -> Option<Self> {
        None
    }
}

impl Agent for Observer {
    fn spec() -> &'static AgentSpec {
        &OBSERVER_SPEC
    }

    fn setup<'a>(&'a mut self, _: &'a Context) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async { Ok(()) })
    }

    fn teardown<'a>(&'a mut self, _: &'a Context) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async { Ok(()) })
    }

    fn run<'a>(&'a mut self, _: &'a Context, _: usize) -> BoxFuture<'a, Result<Next, BoxError>> {
        Box::pin(async { Ok(Next::Stop) })
    }

    fn handle<'a>(
        &'a mut self,
        _: &'a Context,
        _: usize,
        _: &'a Arc<Received>,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async { Err(HandlerError::Failed("an observer takes no messages".into())) })
    }

    fn call<'a>(
        &'a mut self,
        _: &'a Context,
        _: usize,
        _: serde_json::Value,
    ) -> BoxFuture<'a, Result<serde_json::Value, CallError>> {
        Box::pin(async {
            Err(CallError::UnknownMethod {
                method: String::new(),
                known: Vec::new(),
            })
        })
    }
}
