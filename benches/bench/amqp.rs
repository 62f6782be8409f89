//! One-way throughput over RabbitMQ, beside a raw lapin publisher and
//! consumer doing the same work in the same run: the same small JSON body
//! and properties, mandatory publishes with a window of 64 outstanding
//! publisher confirms (the strongest honest baseline), a consumer with the
//! same prefetch acking each delivery after receipt.
//!
//! munggoggo is measured twice: an agent sending message after message
//! from a behaviour to another agent, and a chain in which an agent's
//! handler forwards each message it gets to a third agent (timed to the
//! last arrival, so every message crosses the broker twice).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use munggoggo::agent::{DEFAULT_PREFETCH, DEFAULT_READAHEAD};

use crate::agents::{agents_round, client_round, forward_round, sample, Sample};
use crate::figure::{rate, Better, Figure};

mod backlog;
mod cluster;
mod many;
mod py04;
mod rpc;
mod scale_out;

pub use backlog::backlog_ping;
pub use cluster::cluster;
pub use many::many_agents;
pub use py04::{py04_call, Target};
pub use rpc::rpc;
pub use scale_out::{child as scale_out_child, scale_out};

/// The broker the figures use.
pub fn url() -> String {
    std::env::var("MUNGGOGGO_TEST_URL").unwrap_or_else(|_| munggoggo::runtime::LOCAL_BROKER.to_owned())
}

/// Outstanding confirms of the raw baseline.
const WINDOW: usize = 64;

async fn raw_round(url: &str, n: u64, run: usize, window: usize) -> Duration {
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
    let queue = format!("bench-raw-{}-{run}", std::process::id());
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
    let mut in_flight = VecDeque::with_capacity(window);
    for seq in 0..n {
        let body = serde_json::to_vec(&sample(seq)).expect("encode");
        let properties = properties(&sender, seq);
        let options = BasicPublishOptions {
            mandatory: true,
            ..BasicPublishOptions::default()
        };
        let confirm = publisher
            .basic_publish("".into(), queue.as_str().into(), options, &body, properties)
            .await
            .expect("publish");
        in_flight.push_back(confirm);
        if in_flight.len() >= window {
            if let Some(oldest) = in_flight.pop_front() {
                assert!(oldest.await.expect("confirm").is_ack(), "the broker acks");
            }
        }
    }
    for confirm in in_flight {
        assert!(confirm.await.expect("confirm").is_ack(), "the broker acks");
    }
    let end = receiving.await.expect("consumer");
    let _ = channel
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await;
    let _ = publishing.close(0, "bye".into()).await;
    let _ = consuming.close(0, "bye".into()).await;
    end - start
}

/// The raw baseline of the forwarding chain: a publisher (window of 64
/// confirms) to a first queue, a forwarder that publishes each delivery to
/// a second queue (window of 64) and acks it once that publish is
/// confirmed, and a consumer of the second queue. The consumers get the
/// broker prefetch munggoggo's agents get (prefetch + read-ahead), which
/// the forwarder needs to keep its window full.
async fn raw_forward_round(url: &str, n: u64, run: usize) -> Duration {
    let conn = |_| Connection::connect(url, ConnectionProperties::default());
    let (publishing, consuming) = (conn(0).await.expect("connect"), conn(1).await.expect("connect"));
    let declare = |channel: Channel, queue: String| async move {
        channel
            .basic_qos(
                DEFAULT_PREFETCH + DEFAULT_READAHEAD,
                BasicQosOptions { global: false },
            )
            .await
            .expect("qos");
        let exclusive = QueueDeclareOptions {
            exclusive: true,
            ..QueueDeclareOptions::default()
        };
        channel
            .queue_declare(queue.as_str().into(), exclusive, FieldTable::default())
            .await
            .expect("declare");
        let consumer = channel
            .basic_consume(
                queue.as_str().into(),
                queue.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("consume");
        (channel, consumer)
    };
    let pid = std::process::id();
    let (first, second) = (
        format!("bench-rawf1-{pid}-{run}"),
        format!("bench-rawf2-{pid}-{run}"),
    );
    let (c1, mut from_first) =
        declare(consuming.create_channel().await.expect("channel"), first.clone()).await;
    let (c2, mut from_second) =
        declare(consuming.create_channel().await.expect("channel"), second.clone()).await;
    let confirming = || async {
        let channel = publishing.create_channel().await.expect("channel");
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .expect("confirm mode");
        channel
    };
    let (producer, forwarder) = (confirming().await, confirming().await);
    let start = Instant::now();
    let receiving = tokio::spawn(async move {
        let mut seen = 0;
        while let Some(delivery) = from_second.next().await {
            let delivery = delivery.expect("delivery");
            let _: Sample = serde_json::from_slice(&delivery.data).expect("decode");
            delivery.ack(BasicAckOptions::default()).await.expect("ack");
            seen += 1;
            if seen == n {
                break;
            }
        }
        Instant::now()
    });
    let forwarding = {
        let second = second.clone();
        tokio::spawn(async move {
            let mut in_flight = VecDeque::with_capacity(WINDOW);
            let mut forwarded = 0;
            while let Some(delivery) = from_first.next().await {
                let delivery = delivery.expect("delivery");
                let sample: Sample = serde_json::from_slice(&delivery.data).expect("decode");
                let body = serde_json::to_vec(&sample).expect("encode");
                let confirm = forwarder
                    .basic_publish(
                        "".into(),
                        second.as_str().into(),
                        BasicPublishOptions {
                            mandatory: true,
                            ..BasicPublishOptions::default()
                        },
                        &body,
                        properties(&format!("bench-rawf-{pid}"), sample.seq),
                    )
                    .await
                    .expect("publish");
                in_flight.push_back((confirm, delivery.acker));
                forwarded += 1;
                while in_flight.len() >= WINDOW || (forwarded == n && !in_flight.is_empty()) {
                    if let Some((confirm, acker)) = in_flight.pop_front() {
                        assert!(confirm.await.expect("confirm").is_ack(), "the broker acks");
                        acker.ack(BasicAckOptions::default()).await.expect("ack");
                    }
                }
                if forwarded == n {
                    break;
                }
            }
        })
    };
    let mut in_flight = VecDeque::with_capacity(WINDOW);
    for seq in 0..n {
        let body = serde_json::to_vec(&sample(seq)).expect("encode");
        let options = BasicPublishOptions {
            mandatory: true,
            ..BasicPublishOptions::default()
        };
        let confirm = producer
            .basic_publish(
                "".into(),
                first.as_str().into(),
                options,
                &body,
                properties(&format!("bench-rawp-{pid}"), seq),
            )
            .await
            .expect("publish");
        in_flight.push_back(confirm);
        if in_flight.len() >= WINDOW {
            if let Some(oldest) = in_flight.pop_front() {
                assert!(oldest.await.expect("confirm").is_ack(), "the broker acks");
            }
        }
    }
    for confirm in in_flight {
        assert!(confirm.await.expect("confirm").is_ack(), "the broker acks");
    }
    forwarding.await.expect("forwarder");
    let end = receiving.await.expect("consumer");
    for (channel, queue) in [(&c1, &first), (&c2, &second)] {
        let _ = channel
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
    let _ = publishing.close(0, "bye".into()).await;
    let _ = consuming.close(0, "bye".into()).await;
    end - start
}

/// The properties munggoggo sets on a direct send.
fn properties(sender: &str, seq: u64) -> BasicProperties {
    BasicProperties::default()
        .with_type("Sample".into())
        .with_app_id(sender.into())
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
        .with_headers(FieldTable::default())
}

/// A message id as long as the SDK's (32 hex chars).
fn uuid_like(seq: u64) -> String {
    format!("{:032x}", u128::from(seq) * 0x9e37_79b9_7f4a_7c15)
}

/// `amqp-one-way`.
pub fn one_way(n: u64, runs: usize) -> Vec<Figure> {
    let url = url();
    let rt = crate::tokio();
    let (mut ours, mut forward, mut raw, mut rawf) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut client = Vec::new();
    for run in 0..runs {
        let (d, f, c) = rt.block_on(async {
            let handle = munggoggo::Runtime::from_url(&url)
                .expect("URL")
                .start()
                .await
                .expect("broker reachable");
            let d = agents_round(&handle, n, &run.to_string()).await;
            let f = forward_round(&handle, n, &run.to_string()).await;
            let c = client_round(&handle, n, &run.to_string()).await;
            handle.shutdown().await;
            (d, f, c)
        });
        ours.push(rate(n, d));
        forward.push(rate(n, f));
        client.push(rate(n, c));
        raw.push(rate(n, rt.block_on(raw_round(&url, n, run, WINDOW))));
        rawf.push(rate(n, rt.block_on(raw_forward_round(&url, n, run))));
        println!(
            "run {}: munggoggo {:>6.0}/s forwarded {:>6.0}/s client {:>6.0}/s | raw lapin: window {WINDOW} {:>6.0}/s, forwarded {:>6.0}/s",
            run + 1,
            ours[run],
            forward[run],
            client[run],
            raw[run],
            rawf[run],
        );
    }
    vec![
        Figure::new(
            "amqp one-way",
            "msg/s",
            Better::Higher,
            ours,
            "raw lapin, 64 confirms in flight",
            raw.clone(),
        ),
        Figure::new(
            "amqp one-way, Client pipelined",
            "msg/s",
            Better::Higher,
            client,
            "raw lapin, 64 confirms in flight",
            raw,
        ),
        Figure::new(
            "amqp forwarding chain",
            "msg/s",
            Better::Higher,
            forward,
            "raw lapin chain, 64 in flight",
            rawf,
        ),
    ]
}
