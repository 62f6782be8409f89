//! Support for the code that `munggoggo-macros` generates. Not a public API:
//! it may change in any release.
//!
//! The generated code names these items at the user's spans, so that a
//! type that does not fit is reported where the user wrote it: the
//! `check_*` functions and `decode*`/`rpc_param` take the user's parameter
//! types as turbofish arguments, and the return-type traits
//! ([`HandlerReturn`](crate::__private::HandlerReturn),
//! [`BehaviourReturn`](crate::__private::BehaviourReturn),
//! [`RpcValue`](crate::__private::RpcValue),
//! [`RpcResult`](crate::__private::RpcResult)) are
//! named as `<ReturnType as Trait>`; their `on_unimplemented` messages say
//! what to write instead.

use std::marker::PhantomData;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

pub use crate::agent::{
    unknown_index, Agent, AgentDefaults, AgentOptions, AgentSpec, BehaviourKind, BehaviourSpec, BoxFuture,
    GroupDelivery, HandlerError, HandlerRoute, Registration, RpcSpec,
};
pub use crate::behaviour::Next;
pub use crate::config::{Config, ConfigError};
pub use crate::context::Context;
pub use crate::error::BoxError;
pub use crate::fsm::{Fsm, FsmSpec, Restart, StateSpec};
pub use crate::message::{Envelope, Message, Payload, Raw, Received};
pub use crate::rpc::{CallError, Caller};
pub use crate::runtime::machine::{MachineRegistration, StepFn};
pub use inventory;
pub use serde_json;
pub use std::time::Duration;

/// Decodes a handler's payload `T`.
pub fn decode<T: Payload>(msg: &Arc<Received>) -> Result<T, HandlerError> {
    T::decode(&msg.payload).map_err(|reason| HandlerError::Decode {
        type_name: std::any::type_name::<T>(),
        reason,
    })
}

/// Decodes a handler's `Envelope<T>`.
pub fn decode_envelope<T: Payload>(msg: &Arc<Received>) -> Result<Envelope<T>, HandlerError> {
    decode::<T>(msg).map(|body| Envelope::new(body, Arc::clone(msg)))
}

/// Return types of `#[on_message]`, `#[setup]` and `#[teardown]` methods.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a valid return type for a munggoggo handler",
    label = "return `()` or `Result<(), E>` where `E` converts into a boxed error"
)]
pub trait HandlerReturn {
    /// The handler's outcome.
    fn into_result(self) -> Result<(), BoxError>;
}

impl HandlerReturn for () {
    fn into_result(self) -> Result<(), BoxError> {
        Ok(())
    }
}

impl<E: Into<BoxError>> HandlerReturn for Result<(), E> {
    fn into_result(self) -> Result<(), BoxError> {
        self.map_err(Into::into)
    }
}

/// Return types of `#[behaviour]` methods.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a valid return type for a munggoggo behaviour",
    label = "return `()`, `Result<(), E>`, `Next` or `Result<Next, E>` where `E` converts into a boxed error"
)]
pub trait BehaviourReturn {
    /// The step's outcome: when to run next.
    fn into_step(self) -> Result<Next, BoxError>;
}

impl BehaviourReturn for () {
    fn into_step(self) -> Result<Next, BoxError> {
        Ok(Next::Continue)
    }
}

impl BehaviourReturn for Next {
    fn into_step(self) -> Result<Next, BoxError> {
        Ok(self)
    }
}

impl<E: Into<BoxError>> BehaviourReturn for Result<(), E> {
    fn into_step(self) -> Result<Next, BoxError> {
        self.map(|()| Next::Continue).map_err(Into::into)
    }
}

impl<E: Into<BoxError>> BehaviourReturn for Result<Next, E> {
    fn into_step(self) -> Result<Next, BoxError> {
        self.map_err(Into::into)
    }
}

/// Return types of the methods of an `#[fsm]` machine's states: the
/// state's `<State>To`, or a `Result` of it.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a valid return type for the method of a state that returns `{T}`",
    label = "return `{T}` or `Result<{T}, E>` where `E` converts into a boxed error",
    note = "a state's method is `async fn state(&mut self, ctx: &Context) -> <State>To`"
)]
pub trait StateReturn<T> {
    /// Where the machine goes.
    fn into_next(self) -> Result<T, BoxError>;
}

/// The outcome of a state's method, through [`StateReturn`].
pub fn state_next<T, R: StateReturn<T>>(ret: R) -> Result<T, BoxError> {
    ret.into_next()
}

/// A machine's step that cannot run: its agent is not the one it was
/// registered for, or the state has no method (a final state).
pub fn machine_misrouted<'a>(
    machine: &'static str,
    state: usize,
) -> BoxFuture<'a, Result<Option<usize>, BoxError>> {
    Box::pin(std::future::ready(Err(format!(
        "state machine `{machine}`: no method to run for state #{state}"
    )
    .into())))
}

/// Return types of `#[rpc]` methods that are plain values.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a valid return type for an `#[rpc]` method",
    label = "return a value that implements `serde::Serialize`, or a `Result` of one",
    note = "the result is sent back to the caller as JSON"
)]
pub trait RpcValue {
    /// The value as JSON.
    fn into_value(self) -> Result<serde_json::Value, CallError>;
}

impl<T: Serialize> RpcValue for T {
    fn into_value(self) -> Result<serde_json::Value, CallError> {
        serde_json::to_value(self).map_err(|e| CallError::Failed(format!("cannot encode the result: {e}")))
    }
}

/// Return types of `#[rpc]` methods that are `Result`s.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a valid return type for an `#[rpc]` method",
    label = "return `Result<T, E>` where `T` implements `serde::Serialize` and `E` implements `Display`",
    note = "the value is sent back to the caller as JSON, the error as its message"
)]
pub trait RpcResult {
    /// The value as JSON, or the error's message.
    fn into_value(self) -> Result<serde_json::Value, CallError>;
}

impl<T: Serialize, E: std::fmt::Display> RpcResult for Result<T, E> {
    fn into_value(self) -> Result<serde_json::Value, CallError> {
        match self {
            Ok(value) => value.into_value(),
            Err(e) => Err(CallError::Failed(format!("{e:#}"))),
        }
    }
}

/// The shape of an `#[rpc]` method's return type, proven by the type
/// itself rather than by how it is spelled: a `Result` under another name
/// (`type Res<T> = Result<T, MyError>`) is still a `Result`.
///
/// Autoref specialisation: `(&Shape::of(&value)).rpc_shape()` finds
/// [`ResultShape::rpc_shape`] on `&Shape<Result<T, E>>` before it takes the
/// reference that [`ValueShape::rpc_shape`] needs, so it returns
/// [`ResultOut`] for a `Result` and [`ValueOut`] for anything else.
pub struct Shape<R>(PhantomData<fn() -> R>);

impl<R> Shape<R> {
    /// The shape of `value`'s type.
    pub fn of(_value: &R) -> Self {
        Shape(PhantomData)
    }

    /// The shape of `R`.
    pub fn new() -> Self {
        Shape(PhantomData)
    }
}

impl<R> Default for Shape<R> {
    fn default() -> Self {
        Self::new()
    }
}

/// Picks [`ResultOut`] for a return type that is a `Result` (see [`Shape`]).
pub trait ResultShape {
    /// The return type is a `Result`.
    fn rpc_shape(&self) -> ResultOut {
        ResultOut
    }
}

impl<T, E> ResultShape for Shape<Result<T, E>> {}

/// Picks [`ValueOut`] for any other return type (see [`Shape`]).
pub trait ValueShape {
    /// The return type is a plain value.
    fn rpc_shape(&self) -> ValueOut {
        ValueOut
    }
}

impl<R> ValueShape for &Shape<R> {}

/// An `#[rpc]` method returns a `Result`: its value goes out, its error as
/// the error's message.
#[derive(Debug, Clone, Copy)]
pub struct ResultOut;

impl ResultOut {
    /// The method's outcome as JSON.
    pub fn into_value<R: RpcResult>(self, result: R) -> Result<serde_json::Value, CallError> {
        result.into_value()
    }

    /// What the typed client returns: the return type itself, always `Ok`
    /// (an error comes back as [`crate::Error::Remote`]).
    pub fn client_decode<T: DeserializeOwned, E>(
        self,
        target: &str,
        method: &str,
        value: serde_json::Value,
    ) -> crate::Result<Result<T, E>> {
        client_decode(target, method, value).map(Ok)
    }
}

/// An `#[rpc]` method returns a plain value.
#[derive(Debug, Clone, Copy)]
pub struct ValueOut;

impl ValueOut {
    /// The method's value as JSON.
    pub fn into_value<R: RpcValue>(self, value: R) -> Result<serde_json::Value, CallError> {
        value.into_value()
    }

    /// What the typed client returns: the value.
    pub fn client_decode<R: ClientOutput>(
        self,
        target: &str,
        method: &str,
        value: serde_json::Value,
    ) -> crate::Result<R> {
        client_decode(target, method, value)
    }
}

fn client_decode<R: DeserializeOwned>(
    target: &str,
    method: &str,
    value: serde_json::Value,
) -> crate::Result<R> {
    serde_json::from_value(value).map_err(|e| crate::Error::BadReply {
        target: target.to_owned(),
        reason: format!("the result of `{method}` does not decode: {e}"),
    })
}

/// Types an `#[rpc]` parameter can have: anything `serde` can deserialize.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an `#[rpc]` parameter",
    label = "derive `serde::Deserialize` for `{Self}`",
    note = "`#[rpc]` parameters are decoded from JSON with serde"
)]
pub trait RpcParam: DeserializeOwned {}

impl<T: DeserializeOwned> RpcParam for T {}

/// Takes parameter `index` (named `name`) of an `#[rpc]` call from a
/// positional array or a named object.
pub fn rpc_param<T: RpcParam>(params: &serde_json::Value, index: usize, name: &str) -> Result<T, CallError> {
    let value = match params {
        serde_json::Value::Array(items) => items.get(index),
        serde_json::Value::Object(map) => map.get(name),
        serde_json::Value::Null => None,
        other if index == 0 => Some(other),
        _ => None,
    };
    let Some(value) = value.cloned() else {
        // Absent: fine for an `Option`, else say so (not "invalid type: null").
        return serde_json::from_value(serde_json::Value::Null)
            .map_err(|_| CallError::BadParams(format!("missing parameter `{name}` (#{})", index + 1)));
    };
    serde_json::from_value(value)
        .map_err(|e| CallError::BadParams(format!("parameter `{name}` (#{}): {e}", index + 1)))
}

/// Parameter types of a typed client's methods (see `#[agent]`).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be sent by the typed client of an `#[rpc]` method",
    label = "derive `serde::Serialize` for `{Self}`, or call the method by name: `ctx.call(...)`",
    note = "the typed client sends the parameters as JSON"
)]
pub trait ClientArg: Serialize {}

impl<T: Serialize> ClientArg for T {}

/// Result types of a typed client's methods (see `#[agent]`).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be received by the typed client of an `#[rpc]` method",
    label = "derive `serde::Deserialize` for `{Self}`, or call the method by name: `ctx.call(...)`",
    note = "the typed client decodes the result from JSON"
)]
pub trait ClientOutput: DeserializeOwned {}

impl<T: DeserializeOwned> ClientOutput for T {}

/// Types that `#[agent(config = ...)]` can name: anything `serde` can deserialize.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an agent configuration",
    label = "derive `serde::Deserialize` for `{Self}`",
    note = "the configuration is read from a file, the environment and code with serde"
)]
pub trait AgentConfig: DeserializeOwned {}

impl<T: DeserializeOwned> AgentConfig for T {}

/// Configuration layers with nothing in them: only the defaults of the type.
pub fn defaults_only() -> Config {
    Config::new().vars(::std::iter::empty::<(String, String)>())
}

/// Loads the configuration `T` of `identity` through every layer.
pub fn load_config<T: AgentConfig>(
    config: &Config,
    identity: &str,
    agent_type: &'static str,
) -> Result<T, ConfigError> {
    config.load::<T>(identity, agent_type)
}

/// Asserts at the user's span that `T` can be received.
pub fn check_payload<T: Payload>() {}

/// Asserts at the user's span that `T` can be an `#[rpc]` parameter.
pub fn check_rpc_param<T: RpcParam>() {}

impl From<BoxError> for HandlerError {
    fn from(e: BoxError) -> Self {
        HandlerError::Failed(e)
    }
}

/// Autoref-specialised constructor: `Default` when the type has it, else none.
pub struct Construct<T>(PhantomData<T>);

impl<T> Construct<T> {
    /// A probe for `T`.
    pub const fn new() -> Self {
        Construct(PhantomData)
    }
}

impl<T> Default for Construct<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// Picked when the agent type implements `Default`.
pub trait ViaDefault<T> {
    /// Builds the agent.
    fn construct(&self) -> Option<T>;
    /// Whether [`ViaDefault::construct`] builds one.
    fn exists(&self) -> bool;
}

impl<T: Default> ViaDefault<T> for Construct<T> {
    fn construct(&self) -> Option<T> {
        Some(T::default())
    }

    fn exists(&self) -> bool {
        true
    }
}

/// Picked otherwise.
pub trait ViaNothing<T> {
    /// No constructor.
    fn construct(&self) -> Option<T>;
    /// Always false.
    fn exists(&self) -> bool;
}

impl<T> ViaNothing<T> for &Construct<T> {
    fn construct(&self) -> Option<T> {
        None
    }

    fn exists(&self) -> bool {
        false
    }
}
