//! RPC over RabbitMQ: munggoggo's `#[rpc]` beside a raw lapin
//! request/reply (requests to the server's queue, replies to the caller's
//! queue routed by `app_id` and matched by correlation id, confirms awaited
//! and acks after handling, as munggoggo does).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use tokio::sync::oneshot;

use crate::figure::Figure;
use crate::rpc::{figures, measure, on_munggoggo, Caller};

/// Raw lapin request/reply: requests to the server's queue, replies to the
/// caller's queue routed by `app_id`, matched by correlation id.
#[derive(Clone)]
struct RawLapin {
    channel: Channel,
    me: String,
    server: String,
    pending: Arc<Mutex<HashMap<String, oneshot::Sender<u64>>>>,
    next: Arc<std::sync::atomic::AtomicU64>,
}

fn props(kind: &str, app_id: &str, correlation_id: &str) -> BasicProperties {
    BasicProperties::default()
        .with_type(kind.into())
        .with_app_id(app_id.into())
        .with_correlation_id(correlation_id.into())
        .with_content_type("application/json".into())
        .with_delivery_mode(1)
        .with_timestamp(1)
        .with_headers(FieldTable::default())
}

async fn publish_confirmed(channel: &Channel, to: &str, body: &[u8], properties: BasicProperties) {
    let options = BasicPublishOptions {
        mandatory: true,
        ..BasicPublishOptions::default()
    };
    channel
        .basic_publish("".into(), to.into(), options, body, properties)
        .await
        .expect("publish")
        .await
        .expect("confirm");
}

async fn consume(conn: &Connection, queue: &str) -> (Channel, lapin::Consumer) {
    let channel = conn.create_channel().await.expect("channel");
    channel
        .basic_qos(64, BasicQosOptions { global: false })
        .await
        .expect("qos");
    let exclusive = QueueDeclareOptions {
        exclusive: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare(queue.into(), exclusive, FieldTable::default())
        .await
        .expect("declare");
    let consumer = channel
        .basic_consume(
            queue.into(),
            queue.into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("consume");
    (channel, consumer)
}

impl RawLapin {
    async fn start(url: &str, run: usize) -> (Self, Vec<Connection>) {
        let pid = std::process::id();
        let server = format!("bench-raw-rpc-server-{pid}-{run}");
        let me = format!("bench-raw-rpc-client-{pid}-{run}");
        let publishing = Connection::connect(url, ConnectionProperties::default())
            .await
            .expect("connect");
        let consuming = Connection::connect(url, ConnectionProperties::default())
            .await
            .expect("connect");
        // The server: answer each request, then ack it.
        let server_out = publishing.create_channel().await.expect("channel");
        server_out
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .expect("confirm");
        let (_server_channel, mut requests) = consume(&consuming, &server).await;
        let server_name = server.clone();
        tokio::spawn(async move {
            let _keep = _server_channel;
            while let Some(Ok(delivery)) = requests.next().await {
                let id = delivery
                    .properties
                    .correlation_id()
                    .clone()
                    .map(|s| s.to_string())
                    .unwrap_or_default();
                let to = delivery
                    .properties
                    .app_id()
                    .clone()
                    .map(|s| s.to_string())
                    .unwrap_or_default();
                let request: serde_json::Value = serde_json::from_slice(&delivery.data).expect("request");
                let body = serde_json::to_vec(&serde_json::json!({
                    "c_type": "RpcCall", "c_data": request["c_data"], "request_type": 2
                }))
                .expect("encode");
                publish_confirmed(&server_out, &to, &body, props("RPC", &server_name, &id)).await;
                delivery.ack(BasicAckOptions::default()).await.expect("ack");
            }
        });
        // The client's reply consumer completes pending calls.
        let pending: Arc<Mutex<HashMap<String, oneshot::Sender<u64>>>> = Arc::default();
        let (_client_channel, mut replies) = consume(&consuming, &me).await;
        let waiting = Arc::clone(&pending);
        tokio::spawn(async move {
            let _keep = _client_channel;
            while let Some(Ok(delivery)) = replies.next().await {
                let id = delivery
                    .properties
                    .correlation_id()
                    .clone()
                    .map(|s| s.to_string())
                    .unwrap_or_default();
                let reply: serde_json::Value = serde_json::from_slice(&delivery.data).expect("reply");
                let c_data: serde_json::Value =
                    serde_json::from_str(reply["c_data"].as_str().unwrap_or("{}")).expect("c_data");
                let x = c_data["params"][0].as_u64().unwrap_or(0);
                if let Some(tx) = waiting.lock().unwrap().remove(&id) {
                    let _ = tx.send(x);
                }
                delivery.ack(BasicAckOptions::default()).await.expect("ack");
            }
        });
        let channel = publishing.create_channel().await.expect("channel");
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .expect("confirm");
        let caller = RawLapin {
            channel,
            me,
            server,
            pending,
            next: Arc::default(),
        };
        (caller, vec![publishing, consuming])
    }
}

impl Caller for RawLapin {
    fn call(&self, x: u64) -> Pin<Box<dyn Future<Output = u64> + Send + '_>> {
        Box::pin(async move {
            let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let id = format!("{n:036}");
            let (tx, rx) = oneshot::channel();
            self.pending.lock().unwrap().insert(id.clone(), tx);
            let c_data = serde_json::json!({"method": "echo", "params": [x], "result": null, "error": null});
            let body = serde_json::to_vec(&serde_json::json!({
                "c_type": "RpcCall", "c_data": c_data.to_string(), "request_type": 1
            }))
            .expect("encode");
            publish_confirmed(&self.channel, &self.server, &body, props("RPC", &self.me, &id)).await;
            rx.await.expect("reply")
        })
    }
}

/// `amqp-rpc`.
pub fn rpc(runs: usize) -> Vec<Figure> {
    let url = super::url();
    let rt = crate::tokio();
    let (mut ours, mut raw) = (Vec::new(), Vec::new());
    for run in 0..runs {
        ours.push(rt.block_on(on_munggoggo(&url, run)));
        raw.push(rt.block_on(async {
            let (caller, conns) = RawLapin::start(&url, run).await;
            let figures = measure(caller).await;
            for conn in conns {
                let _ = conn.close(0, "bye".into()).await;
            }
            figures
        }));
        println!(
            "run {}: munggoggo p50 {:?} | raw lapin p50 {:?}",
            run + 1,
            ours[run].p50,
            raw[run].p50
        );
    }
    figures("amqp", &ours, "raw lapin request/reply", &raw)
}
