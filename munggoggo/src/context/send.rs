//! Sending: direct, broadcast and topic messages, typed and raw.

use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;

use super::Context;
use crate::bus::Route;
use crate::error::Result;
use crate::message::{self, Message, Properties, SmolStr};

impl Context {
    /// Sends `msg` to the agent with identity `to`. Fails with
    /// [`Error::UnknownTarget`](crate::Error::UnknownTarget) when no agent has that identity.
    ///
    /// Inside a handler or a behaviour run the send returns once the
    /// message is on its way: the runtime waits for the broker's confirms
    /// of the run's sends before it acknowledges the run's input, and a
    /// send the broker refuses (or returns: unknown identity) fails the run
    /// (error count, trace entry, log line; its input is rejected). Call
    /// [`Context::flush`] to learn the outcome in the handler itself.
    /// Elsewhere (setup, a spawned task, a [`crate::runtime::Client`]) the send
    /// waits for its confirm.
    ///
    /// ```no_run
    /// # use munggoggo::prelude::*;
    /// # use serde::{Deserialize, Serialize};
    /// #[derive(Serialize, Deserialize, Message)]
    /// struct Pong { n: u64 }
    ///
    /// # async fn f(ctx: &Context) -> munggoggo::Result<()> {
    /// ctx.send("pinger", &Pong { n: 1 }).await?; // type "Pong", to the agent `pinger`
    /// # Ok(()) }
    /// ```
    pub async fn send<M: Message + Serialize>(&self, to: &str, msg: &M) -> Result<()> {
        let body = self.core.encode(msg)?;
        self.emit_as(Route::Direct(to.into()), SmolStr::new_static(M::TYPE), body)
            .await
    }

    /// Sends `msg` to every agent (this one included).
    pub async fn broadcast<M: Message + Serialize>(&self, msg: &M) -> Result<()> {
        let body = self.core.encode(msg)?;
        self.emit_as(Route::Fanout, SmolStr::new_static(M::TYPE), body)
            .await
    }

    /// Publishes `msg` on `topic` to every matching subscription
    /// (`#[on_message(topic = "sensors.*")]` handlers, on any agent).
    ///
    /// ```no_run
    /// # use munggoggo::prelude::*;
    /// # use serde::{Deserialize, Serialize};
    /// #[derive(Serialize, Deserialize, Message)]
    /// struct Reading { celsius: f64 }
    ///
    /// # async fn f(ctx: &Context) -> munggoggo::Result<()> {
    /// ctx.publish("sensors.kitchen", &Reading { celsius: 21.5 }).await?;
    /// # Ok(()) }
    /// ```
    pub async fn publish<M: Message + Serialize>(&self, topic: &str, msg: &M) -> Result<()> {
        let body = self.core.encode(msg)?;
        let kind = SmolStr::new_static(self.core.publish_type::<M>());
        self.emit_as(Route::Topic(topic.into()), kind, body).await
    }

    /// Sends a body of any type name to `to`, as 0.4's `direct_send` does.
    pub async fn send_raw(&self, to: &str, kind: &str, body: impl Into<Bytes>) -> Result<()> {
        self.emit_as(Route::Direct(to.into()), kind.into(), body.into())
            .await
    }

    /// Broadcasts a body of any type name, as 0.4's `fanout_send` does.
    pub async fn broadcast_raw(&self, kind: &str, body: impl Into<Bytes>) -> Result<()> {
        self.emit_as(Route::Fanout, kind.into(), body.into()).await
    }

    /// Publishes an untyped body on `topic` (type `PUBSUB`), as 0.4's `publish` does.
    pub async fn publish_raw(&self, topic: &str, body: impl Into<Bytes>) -> Result<()> {
        let kind = SmolStr::new_static(message::PUBSUB);
        self.emit_as(Route::Topic(topic.into()), kind, body.into()).await
    }

    /// Sends a message of type `kind` with this agent's properties.
    async fn emit_as(&self, route: Route, kind: SmolStr, body: Bytes) -> Result<()> {
        let properties = Arc::new(Properties::new(kind, self.core.sender().clone()));
        self.core.emit(route, properties, body).await
    }

    /// Publishes a message with properties of your own (`app_id`,
    /// `timestamp` and `message_id` are filled in when missing).
    pub async fn emit(&self, route: Route, mut properties: Properties, body: Bytes) -> Result<()> {
        if properties.app_id.is_none() {
            properties.app_id = Some(self.core.identity.clone());
        }
        if properties.timestamp.is_none() {
            properties.timestamp = Some(message::now_secs());
        }
        self.core.emit(route, Arc::new(properties), body).await
    }

    /// Waits for the confirms of every message this handler or behaviour
    /// run has sent so far; the first failure (such as
    /// [`Error::UnknownTarget`](crate::Error::UnknownTarget)) is the result. Outside a run sends wait for
    /// their confirm themselves, and this returns at once.
    ///
    /// ```no_run
    /// # use munggoggo::prelude::*;
    /// # #[derive(serde::Serialize, serde::Deserialize, Message)] struct Order;
    /// # async fn f(ctx: &Context) -> munggoggo::Result<()> {
    /// ctx.send("billing", &Order).await?;
    /// ctx.send("shipping", &Order).await?;
    /// ctx.flush().await?; // both reached their queues
    /// # Ok(()) }
    /// ```
    pub async fn flush(&self) -> Result<()> {
        crate::runtime::invocation::flush().await
    }

    /// Runs `sends` with its sends pipelined, as inside a handler: each
    /// returns once its message is on its way (in the publish window, or in
    /// the outbox while the broker is away), and the broker's confirms are
    /// awaited together at the end. The outcome is the first failure, of
    /// `sends` itself or of a confirm (such as
    /// [`Error::UnknownTarget`](crate::Error::UnknownTarget)).
    ///
    /// Outside a handler or behaviour run (a [`crate::runtime::Client`], a
    /// spawned task, setup) each send waits for its own confirm, a round
    /// trip to the broker each; a loop of sends in `pipelined` keeps up to
    /// the publish window in flight instead. Inside a run, where sends are
    /// pipelined already, it just runs `sends`.
    ///
    /// ```no_run
    /// # use munggoggo::prelude::*;
    /// # #[derive(serde::Serialize, serde::Deserialize, Message)] struct Reading { n: u64 }
    /// # async fn f(client: &munggoggo::runtime::Client) -> munggoggo::Result<()> {
    /// client
    ///     .pipelined(async {
    ///         for n in 0..10_000 {
    ///             client.send("recorder", &Reading { n }).await?;
    ///         }
    ///         Ok(())
    ///     })
    ///     .await?; // every reading reached the recorder's queue
    /// # Ok(()) }
    /// ```
    pub async fn pipelined<T>(&self, sends: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        crate::runtime::invocation::pipelined(sends).await
    }
}
