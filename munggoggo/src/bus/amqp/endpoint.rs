//! One agent's endpoint on the RabbitMQ bus: its publish channel, its
//! consumer units (identity, fanout and control queues; one per topic
//! subscription) and what it does on close.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use lapin::ExchangeKind;

use super::consumer::{self, queue_spec, Closing, Spec, Unit};
use super::publisher::Publisher;
use super::BusInner;
use crate::bus::{
    Confirm, Consumer, Endpoint, EndpointOptions, Lease, Opened, Outgoing, Route, Source, FANOUT_EXCHANGE,
    TOPIC_EXCHANGE,
};
use crate::error::{Error, Result};
use crate::future::BoxFuture;

pub(super) async fn open_endpoint(
    bus: &Arc<BusInner>,
    identity: &str,
    options: &EndpointOptions,
    queues: Vec<consumer::QueueSpec>,
    controls: Vec<consumer::QueueSpec>,
    names: Vec<String>,
) -> Result<Opened> {
    let identity: Arc<str> = identity.into();
    let exchanges = vec![
        (TOPIC_EXCHANGE, ExchangeKind::Topic, false),
        (FANOUT_EXCHANGE, ExchangeKind::Fanout, false),
    ];
    // The control queue first: once the identity queue exists, peers may
    // already send requests that are answered through it.
    let (control_unit, mut control_consumers) = Unit::open(Spec {
        channels: Arc::clone(&bus.channels),
        identity: Arc::clone(&identity),
        mailbox: true,
        prefetch: options.control_prefetch,
        exchanges: Vec::new(),
        queues: controls,
        expiry: bus.options.expiry(),
        identity_grace: bus.options.identity_grace_period(),
    })
    .await?;
    let spec = Spec {
        channels: Arc::clone(&bus.channels),
        identity: Arc::clone(&identity),
        mailbox: true,
        prefetch: options.prefetch,
        exchanges,
        queues,
        expiry: bus.options.expiry(),
        identity_grace: bus.options.identity_grace_period(),
    };
    let (mailbox, consumers) = match Unit::open(spec).await {
        Ok(opened) => opened,
        Err(e) => {
            let _ = control_unit.close(Closing::KeepBacklog).await;
            return Err(e);
        }
    };
    let publisher = match Publisher::open(
        Arc::clone(&bus.publishers),
        Arc::clone(&identity),
        options.publish_window,
        options.send_timeout,
    )
    .await
    {
        Ok(publisher) => publisher,
        Err(e) => {
            let _ = mailbox.close(Closing::KeepBacklog).await;
            let _ = control_unit.close(Closing::KeepBacklog).await;
            return Err(e);
        }
    };
    tracing::debug!(agent = %identity, "endpoint open");
    let control = match control_consumers.len() {
        0 => {
            return Err(Error::bus(format!(
                "no consumer for the control queue of `{identity}`"
            )))
        }
        1 => control_consumers.pop().expect("one consumer"),
        _ => futures_util::StreamExt::boxed(futures_util::stream::select_all(control_consumers)),
    };
    let endpoint = AmqpEndpoint {
        bus: Arc::clone(bus),
        identity,
        prefetch: options.prefetch,
        max_queue: options.max_queue,
        publisher,
        mailbox,
        control: control_unit,
        subscriptions: Mutex::new(HashMap::new()),
        closed: AtomicBool::new(false),
        names,
    };
    Ok(Opened {
        endpoint: Arc::new(endpoint),
        control,
        mailbox: consumers,
    })
}

/// One agent's channels and queues.
struct AmqpEndpoint {
    bus: Arc<BusInner>,
    identity: Arc<str>,
    prefetch: u16,
    max_queue: Option<usize>,
    publisher: Publisher,
    mailbox: Arc<Unit>,
    control: Arc<Unit>,
    subscriptions: Mutex<HashMap<String, Arc<Unit>>>,
    closed: AtomicBool,
    /// The names of its identity, fanout and control queues (a replica's
    /// own and its group's), as claimed in the bus.
    names: Vec<String>,
}

impl AmqpEndpoint {
    fn subscriptions(&self) -> MutexGuard<'_, HashMap<String, Arc<Unit>>> {
        self.subscriptions.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stopped(&self) -> Error {
        Error::AgentStopped(self.identity.to_string())
    }

    fn mailbox_names(&self) -> Vec<&str> {
        self.names.iter().map(String::as_str).collect()
    }
}

impl Endpoint for AmqpEndpoint {
    fn publish(&self, msg: Outgoing) -> BoxFuture<'_, Result<Confirm>> {
        if let Route::Topic(key) = &msg.route {
            self.bus.look_at_topic(key, msg.properties.app_id.as_deref());
        }
        Box::pin(self.publisher.publish(msg))
    }

    fn subscribe<'a>(
        &'a self,
        queue: &'a str,
        binding_keys: &'a [&'a str],
        shared: bool,
    ) -> BoxFuture<'a, Result<Consumer>> {
        Box::pin(async move {
            if self.closed.load(Ordering::SeqCst) {
                return Err(self.stopped());
            }
            let bindings: Vec<(&'static str, &str)> =
                binding_keys.iter().map(|k| (TOPIC_EXCHANGE, *k)).collect();
            let mut spec = queue_spec(
                queue,
                Source::Topic(queue.into()),
                &bindings,
                self.max_queue,
                &self.bus.options,
            )?;
            let claimed = if shared {
                spec = spec.shared_by(&self.identity)?;
                self.bus.claim_all(&[], &[queue]).is_ok()
            } else {
                self.bus.claim(&[queue])
            };
            if !claimed {
                return Err(Error::bus(format!(
                    "queue `{queue}` is already in use by an agent of this process"
                )));
            }
            let opened = Unit::open(Spec {
                channels: Arc::clone(&self.bus.channels),
                identity: Arc::clone(&self.identity),
                mailbox: false,
                prefetch: self.prefetch,
                exchanges: vec![(TOPIC_EXCHANGE, ExchangeKind::Topic, false)],
                queues: vec![spec],
                expiry: self.bus.options.expiry(),
                identity_grace: self.bus.options.identity_grace_period(),
            })
            .await;
            let (unit, mut consumers) = match opened {
                Ok(opened) => opened,
                Err(e) => {
                    self.bus.release(&[queue]);
                    return Err(e);
                }
            };
            self.subscriptions().insert(queue.to_owned(), Arc::clone(&unit));
            self.bus.bind(queue, binding_keys);
            if self.closed.load(Ordering::SeqCst) {
                // close() ran meanwhile and did not see this subscription.
                self.subscriptions().remove(queue);
                let _ = unit.close(Closing::KeepBacklog).await;
                self.bus.release(&[queue]);
                return Err(self.stopped());
            }
            tracing::debug!(agent = %self.identity, queue, keys = ?binding_keys, "subscribed");
            consumers
                .pop()
                .ok_or_else(|| Error::bus(format!("no consumer for queue `{queue}`")))
        })
    }

    fn keeps_dead_letters(&self) -> bool {
        self.bus.dead_letters
    }

    fn unsubscribe<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let unit = self.subscriptions().remove(queue);
            let Some(unit) = unit else {
                return Ok(());
            };
            let result = unit.close(Closing::Delete).await;
            self.bus.release(&[queue]);
            tracing::debug!(agent = %self.identity, queue, "unsubscribed");
            result
        })
    }

    fn close(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            if self.closed.swap(true, Ordering::SeqCst) {
                return Ok(());
            }
            self.publisher.close().await;
            let subscriptions: Vec<(String, Arc<Unit>)> = self.subscriptions().drain().collect();
            // Queues another connection took are its now: only those nobody
            // consumes go.
            let closing = if self.lost().is_some() {
                Closing::Abandon
            } else {
                Closing::KeepBacklog
            };
            let mut result = self.mailbox.close(closing).await;
            result = result.and(self.control.close(closing).await);
            self.bus.release(&self.mailbox_names());
            for (queue, unit) in subscriptions {
                let closed = unit.close(Closing::KeepBacklog).await;
                self.bus.release(&[&queue]);
                result = result.and(closed);
            }
            tracing::debug!(agent = %self.identity, "endpoint closed");
            result
        })
    }

    fn user(&self) -> Option<&str> {
        Some(&self.bus.user)
    }

    fn lost(&self) -> Option<Error> {
        (self.mailbox.is_taken() || self.control.is_taken())
            .then(|| Error::IdentityInUse(self.identity.to_string()))
    }

    fn lease<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Lease>> {
        let lease = if self.closed.load(Ordering::SeqCst) {
            Err(self.stopped())
        } else {
            super::lease::lease(
                Arc::clone(&self.bus.consuming),
                name,
                &self.identity,
                // Classic, and transient with quorum queues: see
                // AmqpOptions::queue_type.
                self.bus.options.process_queues_durable(),
                self.bus.options.expiry(),
            )
        };
        Box::pin(std::future::ready(lease))
    }
}

impl Drop for AmqpEndpoint {
    fn drop(&mut self) {
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        // Dropped without close(): delete the queues in the background.
        let mut units: Vec<(Option<String>, Arc<Unit>)> = vec![
            (None, Arc::clone(&self.mailbox)),
            (None, Arc::clone(&self.control)),
        ];
        units.extend(self.subscriptions().drain().map(|(q, u)| (Some(q), u)));
        let bus = Arc::clone(&self.bus);
        let names = self.names.clone();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            for (queue, unit) in units {
                let _ = unit.close(Closing::KeepBacklog).await;
                if let Some(queue) = queue {
                    bus.release(&[&queue]);
                }
            }
            bus.release(&names.iter().map(String::as_str).collect::<Vec<_>>());
        });
    }
}
