//! munggoggo 0.4's method queues: the aio-pika RPC pattern on RabbitMQ
//! (docs/protocol.md, "Exposed methods").
//!
//! A queue per method name, shared by every agent that exposes the method
//! (the broker hands calls round-robin to their consumers), declared
//! exactly as aio-pika 6.8 declares it: non-durable, not exclusive, not
//! auto-delete, dead-lettered to the headers exchange `rpc.dlx`
//! (auto-delete). Another flag or argument would make the broker refuse the
//! declaration of whichever side comes second.
//!
//! The queues live on a channel of their own on the consuming connection,
//! with the agent's prefetch. Dropping the stream closes the channel (calls
//! not yet answered go back to the queue for another consumer) and deletes
//! each method queue that no other consumer uses and that holds no call.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use bytes::Bytes;
use futures_util::stream::{SelectAll, Stream, StreamExt};
use lapin::options::{
    BasicConsumeOptions, BasicQosOptions, ExchangeDeclareOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{Channel, Connection, ExchangeKind};

use super::convert::{from_amqp, short};
use super::{lapin_error, AmqpBus};
use crate::bus::{Acker, Consumer, Delivery, Source};
use crate::error::Result;
use crate::message::{DeliveryInfo, Received};

/// The dead-letter exchange of aio-pika's RPC pattern.
pub(crate) const DLX: &str = "rpc.dlx";

impl AmqpBus {
    /// Declares and consumes the method queues of `methods` for `identity`.
    pub(super) async fn expose_methods(
        &self,
        identity: &str,
        methods: &[String],
        prefetch: u16,
    ) -> Result<Consumer> {
        let conn = self.inner.consuming.current();
        let context = |what: &str| format!("exposing the methods of `{identity}`: {what}");
        let channel = conn
            .create_channel()
            .await
            .map_err(|e| lapin_error(e, &context("opening a channel")))?;
        let opened = declare(&channel, identity, methods, prefetch).await;
        let streams = match opened {
            Ok(streams) => streams,
            Err(e) => {
                let _ = channel.close(200, "OK".into()).await;
                return Err(lapin_error(e, &context("declaring the method queues")));
            }
        };
        tracing::debug!(agent = %identity, ?methods, "methods exposed on 0.4's method queues");
        Ok(Box::pin(Exposed {
            streams,
            closer: Some(Closer {
                conn,
                channel,
                queues: methods.to_vec(),
                identity: identity.to_owned(),
            }),
        }))
    }
}

type Deliveries = Pin<Box<dyn Stream<Item = Delivery> + Send>>;

async fn declare(
    channel: &Channel,
    identity: &str,
    methods: &[String],
    prefetch: u16,
) -> lapin::Result<SelectAll<Deliveries>> {
    channel
        .basic_qos(prefetch.max(1), BasicQosOptions { global: false })
        .await?;
    let dlx = ExchangeDeclareOptions {
        auto_delete: true,
        ..ExchangeDeclareOptions::default()
    };
    channel
        .exchange_declare(DLX.into(), ExchangeKind::Headers, dlx, FieldTable::default())
        .await?;
    let mut arguments = FieldTable::default();
    arguments.insert("x-dead-letter-exchange".into(), AMQPValue::LongString(DLX.into()));
    let mut streams = SelectAll::new();
    for method in methods {
        let queue: ShortString = method.as_str().into();
        channel
            .queue_declare(queue.clone(), QueueDeclareOptions::default(), arguments.clone())
            .await?;
        let tag: ShortString = format!("{identity}.{method}").into();
        let consumer = channel
            .basic_consume(
                queue,
                tag.clone(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let source = Source::Direct;
        let stream: Deliveries = Box::pin(consumer.filter_map(move |delivery| {
            let tag = tag.to_string();
            let source = source.clone();
            async move {
                match delivery {
                    Ok(delivery) => Some(map(delivery, tag, source)),
                    Err(e) => {
                        tracing::warn!(consumer = %tag, error = %e, "method queue consumer failed");
                        None
                    }
                }
            }
        }));
        streams.push(stream);
    }
    Ok(streams)
}

fn map(delivery: lapin::message::Delivery, consumer_tag: String, source: Source) -> Delivery {
    let info = DeliveryInfo {
        exchange: delivery.exchange.to_string(),
        routing_key: delivery.routing_key.to_string(),
        redelivered: delivery.redelivered,
        consumer_tag,
        delivery_tag: delivery.delivery_tag,
    };
    Delivery {
        received: Received::new(from_amqp(&delivery.properties), info, Bytes::from(delivery.data)),
        source,
        acker: Acker::Amqp(delivery.acker),
    }
}

/// The deliveries of the method queues; dropping it closes their channel.
struct Exposed {
    streams: SelectAll<Deliveries>,
    closer: Option<Closer>,
}

impl Stream for Exposed {
    type Item = Delivery;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Delivery>> {
        self.streams.poll_next_unpin(cx)
    }
}

impl Drop for Exposed {
    fn drop(&mut self) {
        if let (Some(closer), Ok(runtime)) = (self.closer.take(), tokio::runtime::Handle::try_current()) {
            runtime.spawn(closer.close());
        }
    }
}

struct Closer {
    conn: Arc<Connection>,
    channel: Channel,
    queues: Vec<String>,
    identity: String,
}

impl Closer {
    async fn close(self) {
        let _ = self.channel.close(200, "OK".into()).await;
        // A queue another consumer uses, or that holds calls, stays (0.4
        // leaves its method queues behind for good). A refused delete
        // closes its channel, so each delete gets a channel of its own.
        for queue in &self.queues {
            let Ok(name) = short("queue name", queue) else {
                continue;
            };
            let Ok(channel) = self.conn.create_channel().await else {
                return;
            };
            let unused = QueueDeleteOptions {
                if_unused: true,
                if_empty: true,
                ..QueueDeleteOptions::default()
            };
            match channel.queue_delete(name, unused).await {
                Ok(_) => {
                    tracing::debug!(agent = %self.identity, queue, "method queue deleted");
                    let _ = channel.close(200, "OK".into()).await;
                }
                Err(e) => {
                    tracing::debug!(agent = %self.identity, queue, error = %e, "method queue kept (in use or not empty)")
                }
            }
        }
    }
}
