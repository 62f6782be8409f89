//! Attribute and derive macros of munggoggo.
//!
//! Use them through the `munggoggo` crate (`use munggoggo::prelude::*;`),
//! which re-exports them and provides the runtime the generated code calls.
//! Every macro runs the same pipeline: parse the arguments and the item,
//! check them into a model (collecting every mistake as a spanned error),
//! then expand the model into code that names only
//! `::munggoggo::__private::...` (or the path `crate = "..."` gives),
//! `::core::...` and `::std::...`.

use proc_macro::TokenStream;

use crate::method_attr::MethodAttr;

mod agent;
mod args;
mod errors;
mod fsm;
mod krate;
mod message;
mod method_attr;
/// munggoggo's protocol rules, the runtime's `protocol/rules.rs` (a symlink).
#[allow(dead_code)]
mod protocol_rules;
mod stray;

/// Makes a struct an agent (agent-level options) and its impl block the
/// agent's behaviours, message handlers and RPC methods.
///
/// `#[agent]` goes twice on an agent type: on the struct and on its one
/// inherent impl block.
///
/// # On the struct
///
/// All arguments are optional:
///
/// | argument | meaning | default |
/// | --- | --- | --- |
/// | `identity = "pinger"` | the identity an instance gets unless the runtime names another | the type name in kebab-case (`PingAgent` -> `ping-agent`) |
/// | `prefetch = 64` | deliveries that may be in flight into the agent's task (`u16`, at least 1) | 64 |
/// | `max_queue = 1000` | maximum length of the agent's queues on the embedded bus | unbounded |
/// | `trace_size = 1000` | entries the agent's trace store keeps | 1000 |
/// | `peer_interval = "10s"` | interval of the keepalive ping to peers | only at start |
/// | `call_timeout = "3s"` | default timeout of calls the agent makes | 3 s |
/// | `dedup = 10000` | drop a message whose id is one of the last this many handled (delivery is at least once) | off |
/// | `new = path::to::fn` | constructor `fn() -> Self` for starting the agent by name | `Default::default` if the type implements `Default` |
/// | `crate = "my_reexport::munggoggo"` | the path of munggoggo in the generated code, for code that reaches it through a re-export or under another name (also a bare path: `crate = mg`) | `::munggoggo` |
///
/// Durations are written as [`humantime`](https://docs.rs/humantime) does:
/// `"5s"`, `"250ms"`, `"1m 30s"`. The struct must not be generic.
///
/// # On the impl block
///
/// Only `crate = "..."`, as on the struct (each of the two needs it); the
/// methods' attributes may then also be named under that path
/// (`#[my_reexport::munggoggo::rpc]`). Its methods marked with these
/// attributes become the agent's parts (methods without them are left
/// alone):
///
/// | attribute | what the method is |
/// | --- | --- |
/// | `#[setup]` | runs once before everything else (at most one) |
/// | `#[teardown]` | runs once at stop (at most one) |
/// | `#[behaviour(periodic = "5s")]` | runs every period, first one period after start (add `initial_delay = "0s"` to start at once) |
/// | `#[behaviour(oneshot)]` | runs once after setup |
/// | `#[behaviour(delay = "10s")]` | runs once after the delay |
/// | `#[behaviour(cyclic)]` | runs again and again; may return a `Next` to say when |
/// | `#[on_message]` | handles direct and fanout messages of its payload type's `Message::TYPE` |
/// | `#[on_message(type = "Ping")]` | handles messages of this type name |
/// | `#[on_message(topic = "ping.#")]` | handles every message on a topic subscription; several binding keys: `topic = ["a.*", "b.#"]` |
/// | `#[on_message(fallback)]` | handles direct and fanout messages no other handler takes (at most one) |
/// | `#[rpc]` | callable by name with its parameters (decoded from JSON) |
///
/// Every such method is `async` and takes `&mut self`, then optionally
/// `ctx: &Context`. An `#[on_message]` handler then takes its payload, `T`
/// or `Envelope<T>` (`T: Deserialize`, or `Raw` for the bytes); an `#[rpc]`
/// method takes its parameters as ordinary arguments (`x: i64`).
/// Handlers, `#[setup]` and `#[teardown]` return `()` or `Result<(), E>`;
/// behaviours may also return `Next` or `Result<Next, E>`; an `#[rpc]`
/// method returns any `Serialize` value or a `Result` of one.
///
/// # The typed client
///
/// An impl block with `#[rpc]` methods also gets `<Agent>Client<'a>` (a
/// struct beside the agent type, so that name must be free) and the
/// associated functions `client` and `client_for`: a client of its `#[rpc]`
/// methods with the same names, parameters and visibility, each returning
/// `munggoggo::Result<T>` (the `T` of a `Result<T, E>` return type), so the
/// compiler checks a call's types: `Pinger::client(&ctx).multiply(3, 2).await?`
/// calls the agent with the type's identity, `Pinger::client_for(&ctx, "p2")`
/// another one. `ctx` may be a handler's `Context`, a test `Client` or an
/// `AgentHandle`. A method whose parameters are not `Serialize` (or whose
/// result is not `Deserialize`) is still callable by name,
/// `ctx.call("pinger", "method", params)`; the client method reports it
/// only when called.
///
/// # Example
///
/// ```
/// use munggoggo::prelude::*;
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize, Message)]
/// # struct Ping { n: u64 }
/// # #[derive(Serialize, Deserialize, Message)]
/// # struct Pong { n: u64 }
///
/// #[agent(identity = "pinger", peer_interval = "10s")]
/// #[derive(Default)]
/// struct Pinger { sent: u64 }
///
/// #[agent]
/// impl Pinger {
///     #[behaviour(periodic = "1s")]
///     async fn ping(&mut self, ctx: &Context) -> anyhow::Result<()> {
///         self.sent += 1;
///         ctx.publish("ping", &Ping { n: self.sent }).await?;
///         Ok(())
///     }
///
///     #[on_message]
///     async fn pong(&mut self, msg: Envelope<Pong>) {
///         println!("pong {} from {}", msg.n, msg.sender());
///     }
///
///     #[rpc]
///     async fn multiply(&mut self, x: i64, y: i64) -> i64 {
///         x * y
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> munggoggo::Result<()> {
/// let rt = munggoggo::Runtime::memory().agent(Pinger::default()).start().await?;
/// let client = rt.client("tester").await?;
/// assert_eq!(Pinger::client(&client).multiply(6, 7).await?, 42);
/// rt.shutdown().await;
/// # Ok(()) }
/// ```
#[proc_macro_attribute]
pub fn agent(args: TokenStream, input: TokenStream) -> TokenStream {
    agent::expand(args.into(), input.into()).into()
}

/// Marks a method of an `#[agent]` impl block as a behaviour: periodic,
/// oneshot, delayed or cyclic. See [`macro@agent`].
///
/// ```
/// # use munggoggo::prelude::*;
/// # #[agent] struct Doc;
/// # #[agent]
/// # impl Doc {
/// #[behaviour(periodic = "5s", initial_delay = "0s")]
/// async fn tick(&mut self, ctx: &Context) -> anyhow::Result<()> { Ok(()) }
///
/// #[behaviour(cyclic)]
/// async fn poll(&mut self) -> Next { Next::After(std::time::Duration::from_millis(100)) }
/// # }
/// # fn main() {}
/// ```
#[proc_macro_attribute]
pub fn behaviour(args: TokenStream, input: TokenStream) -> TokenStream {
    stray::expand(MethodAttr::Behaviour, args.into(), input.into()).into()
}

/// Marks a method of an `#[agent]` impl block as a message handler. See
/// [`macro@agent`].
///
/// ```
/// # use munggoggo::prelude::*;
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize, Message)]
/// # struct Pong { n: u64 }
/// # #[agent] struct Doc;
/// # #[agent]
/// # impl Doc {
/// #[on_message]                              // type from the payload: Pong::TYPE
/// async fn pong(&mut self, msg: Envelope<Pong>) {}
///
/// #[on_message(type = "Tick")]               // type by name
/// async fn tick(&mut self, tick: serde_json::Value) {}
///
/// #[on_message(topic = ["ping.#", "*.pong"])] // topic subscription
/// async fn seen(&mut self, msg: Envelope<Raw>) {}
///
/// #[on_message(fallback)]                    // whatever no other handler takes
/// async fn other(&mut self, msg: Envelope<Raw>) {}
/// # }
/// # fn main() {}
/// ```
#[proc_macro_attribute]
pub fn on_message(args: TokenStream, input: TokenStream) -> TokenStream {
    stray::expand(MethodAttr::OnMessage, args.into(), input.into()).into()
}

/// Marks the method of an `#[agent]` impl block that runs once when the
/// agent starts, before its behaviours and handlers. See [`macro@agent`].
///
/// ```
/// # use munggoggo::prelude::*;
/// # #[agent] struct Doc;
/// # #[agent]
/// # impl Doc {
/// #[setup]
/// async fn setup(&mut self, ctx: &Context) -> anyhow::Result<()> { Ok(()) }
/// # }
/// # fn main() {}
/// ```
#[proc_macro_attribute]
pub fn setup(args: TokenStream, input: TokenStream) -> TokenStream {
    stray::expand(MethodAttr::Setup, args.into(), input.into()).into()
}

/// Marks the method of an `#[agent]` impl block that runs once when the
/// agent stops. See [`macro@agent`].
///
/// ```
/// # use munggoggo::prelude::*;
/// # #[agent] struct Doc;
/// # #[agent]
/// # impl Doc {
/// #[teardown]
/// async fn teardown(&mut self) {}
/// # }
/// # fn main() {}
/// ```
#[proc_macro_attribute]
pub fn teardown(args: TokenStream, input: TokenStream) -> TokenStream {
    stray::expand(MethodAttr::Teardown, args.into(), input.into()).into()
}

/// Marks a method of an `#[agent]` impl block as callable by name, with its
/// parameters by position or by name. See [`macro@agent`].
///
/// ```
/// # use munggoggo::prelude::*;
/// # #[derive(Debug)] struct MyError;
/// # impl std::fmt::Display for MyError {
/// #     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("no") }
/// # }
/// # #[agent] struct Doc;
/// # #[agent]
/// # impl Doc {
/// #[rpc]
/// async fn multiply(&mut self, x: i64, y: i64) -> Result<i64, MyError> { Ok(x * y) }
/// # }
/// # fn main() {}
/// ```
#[proc_macro_attribute]
pub fn rpc(args: TokenStream, input: TokenStream) -> TokenStream {
    stray::expand(MethodAttr::Rpc, args.into(), input.into()).into()
}

/// Makes an enum a state machine that an agent runs as one behaviour,
/// named after the enum in snake case (`Session` -> `<identity>.session`).
///
/// `#[fsm(agent = MyAgent)]` goes on the enum (before any `derive`);
/// `restart = "initial"` makes `start` after a `stop` begin again in the
/// initial state instead of carrying on in the state it was in;
/// `crate = "my_reexport::munggoggo"` names munggoggo for the generated
/// code, as in `#[agent]`. Each variant is a state, with `#[state(...)]`:
///
/// | argument | meaning |
/// | --- | --- |
/// | `initial` | the state the machine starts in (exactly one) |
/// | `to = [A, B]` | the states its method may go to |
/// | `timeout("30s" => A)` | after this long in the state, go to `A` (without running the method) |
/// | `final` | reaching it finishes the machine (its behaviour reports `shutdown`) |
///
/// For every state that is not final the macro emits `<State>To`, an enum
/// of `Stay` and the states of its `to`, and the agent has the state's
/// method, named after the variant in snake case:
/// `async fn reserved(&mut self, ctx: &Context) -> ReservedTo` (or
/// `Result<ReservedTo, E>`). It runs when the state is entered and again
/// whenever the agent handled something else (a message, a call, another
/// behaviour's run) while it stays. The compiler rejects a transition that
/// was not declared (`ReservedTo` has no such variant), a state without
/// its method, a target that is not a state and a state that cannot be
/// reached.
///
/// ```
/// use munggoggo::prelude::*;
///
/// #[agent]
/// #[derive(Default)]
/// struct Door { open_requested: bool }
///
/// #[fsm(agent = Door)]
/// enum Doorway {
///     #[state(initial, to = [Open])]
///     Closed,
///     #[state(to = [Closed], timeout("10s" => Closed))]
///     Open,
/// }
///
/// #[agent]
/// impl Door {
///     #[rpc]
///     async fn request_open(&mut self) { self.open_requested = true; }
///
///     async fn closed(&mut self, _ctx: &Context) -> ClosedTo {
///         if std::mem::take(&mut self.open_requested) { ClosedTo::Open } else { ClosedTo::Stay }
///     }
///
///     async fn open(&mut self, _ctx: &Context) -> OpenTo { OpenTo::Stay }
/// }
/// # fn main() {}
/// ```
#[proc_macro_attribute]
pub fn fsm(args: TokenStream, input: TokenStream) -> TokenStream {
    fsm::expand(args.into(), input.into()).into()
}

/// Implements `munggoggo::Message`: the wire type name of a payload type.
///
/// The name is the type's name unless `#[message(type = "...")]` gives
/// another; `#[message(envelope)]` sends it in munggoggo 0.4's
/// `{"c_type", "c_data"}` envelope for Python receivers;
/// `#[message(crate = "my_reexport::munggoggo")]` names munggoggo for the
/// generated impl, as in `#[agent]`. The names `CONTROL`, `RPC` and
/// `PUBSUB` are reserved by the protocol.
///
/// ```
/// use munggoggo::Message;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, Message)]
/// struct Ping { n: u64 }                      // TYPE = "Ping"
///
/// #[derive(Serialize, Deserialize, Message)]
/// #[message(type = "DemoData", envelope)]
/// struct Demo { value: String }
///
/// assert_eq!(Ping::TYPE, "Ping");
/// assert_eq!(Demo::TYPE, "DemoData");
/// ```
#[proc_macro_derive(Message, attributes(message))]
pub fn derive_message(input: TokenStream) -> TokenStream {
    message::expand(syn::parse_macro_input!(input as syn::DeriveInput)).into()
}
