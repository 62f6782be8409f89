//! Many agents on RabbitMQ in one process: the time to start them (each
//! with a periodic behaviour and a handler, announce on) and then to get
//! one ping answered by each, beside raw lapin doing the least an agent
//! needs (a channel, an exclusive queue and a consumer each, on one shared
//! connection; a responder per queue that answers to the request's
//! `app_id`).

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};

use crate::figure::{Better, Figure};
use crate::scale::Worker;

/// Pings in flight at once.
const CONCURRENCY: usize = 100;

struct Run {
    started: Duration,
    pinged: Duration,
}

async fn on_munggoggo(url: &str, n: usize, run: usize) -> Run {
    let rt = munggoggo::Runtime::from_url(url)
        .expect("URL")
        .start()
        .await
        .expect("broker reachable");
    let pid = std::process::id();
    let ids: Vec<String> = (0..n).map(|i| format!("bench-many-{pid}-{run}-{i}")).collect();
    let start = Instant::now();
    for id in &ids {
        rt.spawn_as(id.clone(), Worker::default())
            .await
            .expect("agent starts");
    }
    let started = start.elapsed();
    let client = rt
        .client(format!("bench-many-pinger-{pid}-{run}"))
        .await
        .expect("client");
    let start = Instant::now();
    for chunk in ids.chunks(CONCURRENCY) {
        let pings = chunk.iter().map(|id| client.ping(id));
        for answer in futures_util::future::join_all(pings).await {
            answer.expect("every agent answers its ping");
        }
    }
    let pinged = start.elapsed();
    client.shutdown().await;
    rt.shutdown().await;
    Run { started, pinged }
}

async fn on_lapin(url: &str, n: usize, run: usize) -> Run {
    let conn = Connection::connect(url, ConnectionProperties::default())
        .await
        .expect("connect");
    let replies = conn.create_channel().await.expect("channel");
    replies
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm mode");
    let pid = std::process::id();
    let exclusive = QueueDeclareOptions {
        exclusive: true,
        ..QueueDeclareOptions::default()
    };
    let declare = |channel: lapin::Channel, queue: String| async move {
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
    let ids: Vec<String> = (0..n).map(|i| format!("bench-rawmany-{pid}-{run}-{i}")).collect();
    let start = Instant::now();
    let mut channels = Vec::with_capacity(n);
    for id in &ids {
        let (channel, mut requests) =
            declare(conn.create_channel().await.expect("channel"), id.clone()).await;
        let out = replies.clone();
        let me = id.clone();
        tokio::spawn(async move {
            while let Some(Ok(delivery)) = requests.next().await {
                let to = delivery
                    .properties
                    .app_id()
                    .clone()
                    .map(|s| s.to_string())
                    .unwrap_or_default();
                let properties = BasicProperties::default()
                    .with_app_id(me.as_str().into())
                    .with_type("RPC".into());
                let _ = out
                    .basic_publish(
                        "".into(),
                        to.as_str().into(),
                        BasicPublishOptions::default(),
                        b"pong",
                        properties,
                    )
                    .await;
                let _ = delivery.ack(BasicAckOptions::default()).await;
            }
        });
        channels.push(channel);
    }
    let started = start.elapsed();
    let pinger = format!("bench-rawmany-pinger-{pid}-{run}");
    let (_pinger_channel, mut answers) =
        declare(conn.create_channel().await.expect("channel"), pinger.clone()).await;
    let start = Instant::now();
    for chunk in ids.chunks(CONCURRENCY) {
        for id in chunk {
            let properties = BasicProperties::default()
                .with_app_id(pinger.as_str().into())
                .with_type("RPC".into());
            replies
                .basic_publish(
                    "".into(),
                    id.as_str().into(),
                    BasicPublishOptions::default(),
                    b"ping",
                    properties,
                )
                .await
                .expect("publish")
                .await
                .expect("confirm");
        }
        for _ in chunk {
            let answer = answers.next().await.expect("an answer").expect("delivery");
            answer.ack(BasicAckOptions::default()).await.expect("ack");
        }
    }
    let pinged = start.elapsed();
    let _ = conn.close(0, "bye".into()).await;
    drop(channels);
    Run { started, pinged }
}

/// `amqp1k`.
pub fn many_agents(n: usize, runs: usize) -> Vec<Figure> {
    let url = super::url();
    let rt = crate::tokio();
    let (mut ours, mut raw) = (Vec::new(), Vec::new());
    for run in 0..runs {
        ours.push(rt.block_on(on_munggoggo(&url, n, run)));
        raw.push(rt.block_on(on_lapin(&url, n, run)));
        println!(
            "run {}: munggoggo started {n} in {:?}, pinged all in {:?} | raw lapin {:?}, {:?}",
            run + 1,
            ours[run].started,
            ours[run].pinged,
            raw[run].started,
            raw[run].pinged
        );
    }
    let ms = |rs: &[Run], f: fn(&Run) -> Duration| rs.iter().map(|r| f(r).as_secs_f64() * 1e3).collect();
    vec![
        Figure::new(
            &format!("amqp start {n} agents"),
            "ms",
            Better::Lower,
            ms(&ours, |r| r.started),
            "raw lapin queue + consumer each",
            ms(&raw, |r| r.started),
        ),
        Figure::new(
            &format!("amqp ping each of {n} agents"),
            "ms",
            Better::Lower,
            ms(&ours, |r| r.pinged),
            "raw lapin request/reply",
            ms(&raw, |r| r.pinged),
        ),
    ]
}
