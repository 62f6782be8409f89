//! RPC round trips: latency p50/p99 of sequential calls and throughput at
//! 1, 10 and 100 concurrent callers, for `#[rpc]` calls through munggoggo
//! on the embedded bus (next to a raw tokio mpsc + oneshot request/reply)
//! and over RabbitMQ (next to a raw lapin request/reply with correlation ids,
//! confirms awaited and acks after handling, as munggoggo does), all in the
//! same run.
//!
//! Run it with `cargo bench --features amqp --bench rpc_latency` (broker at
//! `MUNGGOGGO_TEST_URL`, default: the local broker). Prints medians of 3 rounds.

mod common;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::median;
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use munggoggo::prelude::*;
use tokio::sync::{mpsc, oneshot};

const SEQUENTIAL: usize = 2_000;
const CONCURRENT_CALLS: usize = 4_000;

#[agent]
#[derive(Default)]
struct Echo;

#[agent]
impl Echo {
    #[rpc]
    async fn echo(&mut self, x: u64) -> u64 {
        x
    }
}

/// One request/reply implementation under test.
trait Caller: Clone + Send + Sync + 'static {
    fn call(&self, x: u64) -> Pin<Box<dyn Future<Output = u64> + Send + '_>>;
}

#[derive(Clone)]
struct Munggoggo(munggoggo::Context, String);

impl Caller for Munggoggo {
    fn call(&self, x: u64) -> Pin<Box<dyn Future<Output = u64> + Send + '_>> {
        Box::pin(async move { self.0.call::<u64>(&self.1, "echo", (x,)).await.expect("call") })
    }
}

type Request = (u64, oneshot::Sender<u64>);

#[derive(Clone)]
struct TokioOneshot(mpsc::UnboundedSender<Request>);

impl TokioOneshot {
    fn start() -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<Request>();
        tokio::spawn(async move {
            while let Some((x, reply)) = rx.recv().await {
                let _ = reply.send(x);
            }
        });
        TokioOneshot(tx)
    }
}

impl Caller for TokioOneshot {
    fn call(&self, x: u64) -> Pin<Box<dyn Future<Output = u64> + Send + '_>> {
        Box::pin(async move {
            let (tx, rx) = oneshot::channel();
            self.0.send((x, tx)).expect("server");
            rx.await.expect("reply")
        })
    }
}

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
    async fn start(url: &str, round: usize) -> (Self, Vec<Connection>) {
        let pid = std::process::id();
        let server = format!("bench-raw-rpc-server-{pid}-{round}");
        let me = format!("bench-raw-rpc-client-{pid}-{round}");
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

struct Figures {
    p50: Duration,
    p99: Duration,
    /// Calls per second at 1, 10 and 100 concurrent callers.
    throughput: [f64; 3],
}

async fn measure(caller: impl Caller) -> Figures {
    let mut latencies = Vec::with_capacity(SEQUENTIAL);
    for i in 0..SEQUENTIAL as u64 {
        let start = Instant::now();
        assert_eq!(caller.call(i).await, i);
        latencies.push(start.elapsed());
    }
    latencies.sort();
    let mut throughput = [0.0; 3];
    for (slot, callers) in [1usize, 10, 100].into_iter().enumerate() {
        let start = Instant::now();
        let tasks: Vec<_> = (0..callers)
            .map(|c| {
                let caller = caller.clone();
                tokio::spawn(async move {
                    for i in 0..(CONCURRENT_CALLS / callers) as u64 {
                        let x = c as u64 * 1_000_000 + i;
                        assert_eq!(caller.call(x).await, x);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("caller");
        }
        throughput[slot] = CONCURRENT_CALLS as f64 / start.elapsed().as_secs_f64();
    }
    Figures {
        p50: latencies[latencies.len() / 2],
        p99: latencies[latencies.len() * 99 / 100],
        throughput,
    }
}

async fn on_munggoggo(url: &str, round: usize) -> Figures {
    let rt = munggoggo::Runtime::from_url(url)
        .expect("URL")
        .start()
        .await
        .expect("bus");
    let server = format!("bench-echo-{}-{round}", std::process::id());
    rt.spawn_as(server.clone(), Echo).await.expect("echo agent");
    let client = rt
        .client(format!("bench-caller-{}-{round}", std::process::id()))
        .await
        .expect("client");
    let figures = measure(Munggoggo(client.handle().context().clone(), server)).await;
    rt.shutdown().await;
    figures
}

fn report(name: &str, rounds: Vec<Figures>) -> Figures {
    let pick = |f: &dyn Fn(&Figures) -> f64| median(rounds.iter().map(f).collect());
    let figures = Figures {
        p50: Duration::from_secs_f64(pick(&|f| f.p50.as_secs_f64())),
        p99: Duration::from_secs_f64(pick(&|f| f.p99.as_secs_f64())),
        throughput: [0, 1, 2].map(|i| pick(&|f| f.throughput[i])),
    };
    println!(
        "  {name:<24} p50 {:>9.1?}  p99 {:>9.1?}  calls/s @1 {:>8.0}  @10 {:>8.0}  @100 {:>8.0}",
        figures.p50, figures.p99, figures.throughput[0], figures.throughput[1], figures.throughput[2]
    );
    figures
}

fn main() {
    let url =
        std::env::var("MUNGGOGGO_TEST_URL").unwrap_or_else(|_| munggoggo::runtime::LOCAL_BROKER.to_owned());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    let (mut mem, mut oneshots, mut amqp, mut lapin) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..3 {
        mem.push(rt.block_on(on_munggoggo("memory://", round)));
        oneshots.push(rt.block_on(async { measure(TokioOneshot::start()).await }));
        amqp.push(rt.block_on(on_munggoggo(&url, round)));
        lapin.push(rt.block_on(async {
            let (caller, conns) = RawLapin::start(&url, round).await;
            let figures = measure(caller).await;
            for conn in conns {
                let _ = conn.close(0, "bye".into()).await;
            }
            figures
        }));
        println!("round {} done", round + 1);
    }
    println!("RPC round trips ({SEQUENTIAL} sequential; {CONCURRENT_CALLS} calls per concurrency level), median of 3:");
    println!("embedded bus:");
    let m = report("munggoggo #[rpc]", mem);
    let o = report("tokio mpsc + oneshot", oneshots);
    println!(
        "  p50 ratio (munggoggo / tokio): {:.1}",
        m.p50.as_secs_f64() / o.p50.as_secs_f64()
    );
    println!("RabbitMQ:");
    let a = report("munggoggo #[rpc]", amqp);
    let l = report("raw lapin req/reply", lapin);
    println!(
        "  p50 ratio (munggoggo / raw lapin): {:.2}",
        a.p50.as_secs_f64() / l.p50.as_secs_f64()
    );
}
