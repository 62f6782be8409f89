//! What the dashboard tests share: agents, a stand-in for a munggoggo 0.4
//! agent on the embedded bus, unique identities.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use munggoggo::bus::{control_queue, EndpointOptions, Opened, Outgoing, Route};
use munggoggo::message::Properties;
use munggoggo::prelude::*;
use munggoggo::RuntimeHandle;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// A job for a [`Worker`].
#[derive(Debug, Serialize, Deserialize, Message)]
pub struct Job {
    pub n: u64,
}

/// Takes jobs directly and on the topic `jobs.#`; ticks once an hour.
#[agent(identity = "worker")]
#[derive(Default)]
pub struct Worker {
    pub done: u64,
}

#[agent]
impl Worker {
    #[behaviour(periodic = "1h")]
    async fn tick(&mut self) {}

    #[on_message]
    async fn job(&mut self, job: Job) -> anyhow::Result<()> {
        anyhow::ensure!(job.n != 13, "job 13 is unlucky");
        self.done += job.n;
        Ok(())
    }

    #[on_message(topic = "jobs.#")]
    async fn jobs(&mut self, _msg: Envelope<Raw>) {}
}

/// Multiplies, fails, or takes its time.
#[agent(identity = "calc")]
#[derive(Default)]
pub struct Calc;

#[agent]
impl Calc {
    #[rpc]
    async fn multiply(&mut self, x: i64, y: i64) -> Result<i64, String> {
        Ok(x * y)
    }

    #[rpc]
    async fn fail(&mut self) -> Result<(), String> {
        Err("it broke".to_owned())
    }

    #[rpc]
    async fn slow(&mut self) -> Result<(), String> {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok(())
    }
}

/// Switches a [`Lamp`].
#[derive(Debug, Serialize, Deserialize, Message)]
pub struct Toggle {}

/// A lamp: a state machine switched by messages.
#[agent(identity = "lamp")]
#[derive(Default)]
pub struct Lamp {
    toggles: u32,
}

/// Off until toggled; back off by itself after an hour.
#[fsm(agent = Lamp)]
pub enum Light {
    #[state(initial, to = [On])]
    Off,
    #[state(to = [Off], timeout("1h" => Off))]
    On,
}

#[agent]
impl Lamp {
    #[on_message]
    async fn toggle(&mut self, _msg: Toggle) {
        self.toggles += 1;
    }

    async fn off(&mut self, _ctx: &Context) -> OffTo {
        if std::mem::take(&mut self.toggles) > 0 {
            OffTo::On
        } else {
            OffTo::Stay
        }
    }

    async fn on(&mut self, _ctx: &Context) -> OnTo {
        if std::mem::take(&mut self.toggles) > 0 {
            OnTo::Off
        } else {
            OnTo::Stay
        }
    }
}

/// A name no other test uses: `<prefix>-<pid>-<n>`.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs `future`, failing the test (instead of hanging) when it never ends.
pub async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(180), future).await {
        Ok(value) => value,
        Err(_) => panic!("{what}: did not happen within three minutes"),
    }
}

/// Endpoint options for the tests' hand-made participants (a 0.4 stand-in,
/// a raw caller): small windows, the default send timeout.
pub fn raw_endpoint() -> EndpointOptions {
    EndpointOptions {
        prefetch: 16,
        control_prefetch: 16,
        max_queue: None,
        publish_window: 64,
        send_timeout: Duration::from_secs(10),
        group: None,
    }
}

/// A stand-in for a munggoggo 0.4 agent: it answers the keepalive ping
/// with a pong listing one behaviour, `ManageBehav` as 0.4 does, and any
/// other RPC request with an `RpcError`. Returns the state of its
/// behaviour, which `ManageBehav` changes.
pub async fn legacy_agent(runtime: &RuntimeHandle, identity: &str) -> Arc<Mutex<String>> {
    let options = raw_endpoint();
    let Opened {
        endpoint,
        control,
        mailbox,
    } = runtime
        .bus()
        .open(identity, &options)
        .await
        .expect("the 0.4 stand-in opens its queues");
    // A munggoggo 0.4 agent has no control queue: requests come to its identity.
    drop(control);
    endpoint
        .unsubscribe(&control_queue(identity))
        .await
        .expect("the control queue is deleted");
    let consumers = mailbox;
    let state = Arc::new(Mutex::new("running".to_owned()));
    let behaviour = format!("{identity}.PingBehav");
    let identity = identity.to_owned();
    let shared = Arc::clone(&state);
    tokio::spawn(async move {
        let mut deliveries = futures_util::stream::select_all(consumers);
        while let Some(delivery) = deliveries.next().await {
            let received = delivery.received;
            let _ = delivery.acker.ack().await;
            let Some(to) = received.properties.app_id.clone() else {
                continue;
            };
            let Ok(body) = serde_json::from_slice::<Value>(&received.body) else {
                continue;
            };
            let c_type = body["c_type"].as_str().unwrap_or_default().to_owned();
            let c_data: Value = body["c_data"]
                .as_str()
                .and_then(|d| serde_json::from_str(d).ok())
                .unwrap_or(Value::Null);
            let (kind, c_type, c_data) = match (received.properties.kind.as_deref(), c_type.as_str()) {
                (Some("CONTROL"), "PingControl") => {
                    let state = shared.lock().unwrap().clone();
                    let status = json!({ "status": { "name": identity, "state": "running",
                        "behaviours": [{ "name": behaviour, "state": state }] } });
                    ("CONTROL", "PongControl", status)
                }
                (Some("RPC"), "ManageBehav") => {
                    let mut reply = c_data.clone();
                    let command = c_data["command"].as_str().unwrap_or_default();
                    let result = if behaviour.ends_with(c_data["behav"].as_str().unwrap_or("?")) {
                        let new = if command == "stop" { "init" } else { "running" };
                        *shared.lock().unwrap() = new.to_owned();
                        format!("{behaviour} {command}: {new}")
                    } else {
                        format!("No behaviour {}", c_data["behav"])
                    };
                    reply["result"] = json!(result);
                    ("RPC", "ManageBehav", reply)
                }
                (Some("RPC"), _) if body["request_type"] == json!(1) => (
                    "RPC",
                    "RpcError",
                    json!({ "error": format!("Unknown RPC request: {c_type}") }),
                ),
                _ => continue,
            };
            let mut envelope = json!({ "c_type": c_type, "c_data": c_data.to_string() });
            if kind == "RPC" {
                envelope["request_type"] = json!(2);
            }
            let mut properties = Properties::new(kind, &identity);
            properties.correlation_id = received.properties.correlation_id.clone();
            let sent = endpoint
                .publish(Outgoing {
                    route: Route::Direct(to),
                    properties: Arc::new(properties),
                    body: envelope.to_string().into(),
                })
                .await;
            if let Ok(confirm) = sent {
                let _ = confirm.wait().await;
            }
        }
    });
    state
}
