//! Agent-to-agent one-way throughput over RabbitMQ, next to a raw lapin
//! publisher/consumer doing the same work in the same run: the same small
//! JSON body and properties, a confirm awaited per publish (mandatory),
//! a consumer with the same prefetch acking each delivery after receipt.
//!
//! Run it with `cargo bench --bench amqp_throughput` against the broker at
//! `MUNGGOGGO_TEST_URL` (default: the local broker); optional argument:
//! messages per round, default 20000. Prints the median of 3 rounds.

mod common;

use std::time::{Duration, Instant};

use common::{agents_round, median, rate, sample, Sample};
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use munggoggo::agent::DEFAULT_PREFETCH;

async fn raw_round(url: &str, n: u64, round: usize) -> Duration {
    let publishing = Connection::connect(url, ConnectionProperties::default())
        .await
        .expect("connect");
    let consuming = Connection::connect(url, ConnectionProperties::default())
        .await
        .expect("connect");
    let publisher = publishing.create_channel().await.expect("channel");
    publisher
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm mode");
    let channel = consuming.create_channel().await.expect("channel");
    channel
        .basic_qos(DEFAULT_PREFETCH, BasicQosOptions { global: false })
        .await
        .expect("qos");
    let queue = format!("bench-raw-{}-{round}", std::process::id());
    let exclusive = QueueDeclareOptions {
        exclusive: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare(queue.as_str().into(), exclusive, FieldTable::default())
        .await
        .expect("declare");
    let mut consumer = channel
        .basic_consume(
            queue.as_str().into(),
            queue.as_str().into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("consume");
    let start = Instant::now();
    let receiving = tokio::spawn(async move {
        let mut seen = 0;
        while let Some(delivery) = consumer.next().await {
            let delivery = delivery.expect("delivery");
            let sample: Sample = serde_json::from_slice(&delivery.data).expect("decode");
            debug_assert!(sample.seq < n);
            delivery.ack(BasicAckOptions::default()).await.expect("ack");
            seen += 1;
            if seen == n {
                break;
            }
        }
        Instant::now()
    });
    let sender = format!("bench-raw-producer-{}", std::process::id());
    for seq in 0..n {
        let body = serde_json::to_vec(&sample(seq)).expect("encode");
        let properties = BasicProperties::default()
            .with_type("Sample".into())
            .with_app_id(sender.as_str().into())
            .with_content_type("application/json".into())
            .with_delivery_mode(1)
            .with_priority(0)
            .with_timestamp(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0),
            )
            .with_message_id(uuid_like(seq).into())
            .with_headers(FieldTable::default());
        let options = BasicPublishOptions {
            mandatory: true,
            ..BasicPublishOptions::default()
        };
        let confirm = publisher
            .basic_publish("".into(), queue.as_str().into(), options, &body, properties)
            .await
            .expect("publish");
        let confirmation = confirm.await.expect("confirm");
        assert!(confirmation.is_ack(), "the broker acks");
    }
    let end = receiving.await.expect("consumer");
    let _ = channel
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await;
    let _ = publishing.close(0, "bye".into()).await;
    let _ = consuming.close(0, "bye".into()).await;
    end - start
}

/// A message id as long as the SDK's (32 hex chars).
fn uuid_like(seq: u64) -> String {
    format!("{:032x}", u128::from(seq) * 0x9e37_79b9_7f4a_7c15)
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let url =
        std::env::var("MUNGGOGGO_TEST_URL").unwrap_or_else(|_| munggoggo::runtime::LOCAL_BROKER.to_owned());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    let (mut ours, mut raw) = (Vec::new(), Vec::new());
    for round in 0..3 {
        let d = rt.block_on(async {
            let handle = munggoggo::Runtime::from_url(&url)
                .expect("URL")
                .start()
                .await
                .expect("broker reachable");
            let d = agents_round(&handle, n, &round.to_string()).await;
            handle.shutdown().await;
            d
        });
        ours.push(rate(n, d));
        raw.push(rate(n, rt.block_on(raw_round(&url, n, round))));
        println!(
            "round {}: munggoggo {:>8.0} msg/s   raw lapin {:>8.0} msg/s",
            round + 1,
            ours[round],
            raw[round]
        );
    }
    let (ours, raw) = (median(ours), median(raw));
    println!("RabbitMQ, {n} messages, prefetch {DEFAULT_PREFETCH}, a confirm per publish, median of 3:");
    println!("  munggoggo agent -> agent : {ours:>8.0} msg/s");
    println!("  raw lapin                : {raw:>8.0} msg/s");
    println!("  ratio                    : {:.2}", ours / raw);
}
