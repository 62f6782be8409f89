//! Many agents on RabbitMQ in one process: the time to start them (each
//! with a periodic behaviour and a handler, announce on), `STARTS` at a
//! time, and then to get one ping answered by each, beside raw lapin
//! declaring what an agent declares with the same concurrency and the same
//! channel sharing (`SHARE` agents per channel, as the runtime's default
//! `channel_share`): a publish channel in confirm mode on a publishing
//! connection; on a second connection its identity queue and its fanout
//! queue bound to `admin`, consumed, and its control queue, consumed on
//! another channel: the two connections every agent of a runtime shares;
//! and a responder per identity queue that answers to the request's
//! `app_id`. Also printed: the process's memory per agent (RSS delta over
//! the agents, one second after the last start) and the broker's (its
//! total from `rabbitmqctl status`, before and after the start).

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};

use crate::figure::{Better, Figure};
use crate::scale::Worker;

/// Pings in flight at once.
const CONCURRENCY: usize = 100;
/// Agents started at once.
const STARTS: usize = 32;
/// Agents per channel (the runtime's default `channel_share`).
const SHARE: usize = munggoggo::bus::amqp::DEFAULT_CHANNEL_SHARE;

struct Run {
    started: Duration,
    pinged: Duration,
    /// Process memory per agent, in bytes (ours only).
    per_agent: f64,
    /// The broker's memory for them, in bytes (ours only).
    broker: f64,
}

/// The broker's total memory in bytes, from `rabbitmqctl status` (0 if
/// it cannot be read: a remote broker).
fn broker_memory() -> f64 {
    let Ok(out) = std::process::Command::new("rabbitmqctl")
        .args(["status", "--formatter", "json"])
        .output()
    else {
        return 0.0;
    };
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .ok()
        .and_then(|status| status["memory"]["total"]["rss"].as_f64())
        .unwrap_or(0.0)
}

async fn on_munggoggo(url: &str, n: usize, run: usize) -> Run {
    let rt = munggoggo::Runtime::from_url(url)
        .expect("URL")
        .start()
        .await
        .expect("broker reachable");
    let pid = std::process::id();
    let ids: Vec<String> = (0..n).map(|i| format!("bench-many-{pid}-{run}-{i}")).collect();
    let (rss_before, broker_before) = (crate::scale::rss_kb(), broker_memory());
    let start = Instant::now();
    futures_util::stream::iter(&ids)
        .map(|id| rt.spawn_as(id.clone(), Worker::default()))
        .buffer_unordered(STARTS)
        .for_each(|started| async move {
            started.expect("agent starts");
        })
        .await;
    let started = start.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let per_agent = (crate::scale::rss_kb().saturating_sub(rss_before) * 1024) as f64 / n as f64;
    let broker = broker_memory() - broker_before;
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
    Run {
        started,
        pinged,
        per_agent,
        broker,
    }
}

async fn on_lapin(url: &str, n: usize, run: usize) -> Run {
    let conn = Connection::connect(url, ConnectionProperties::default())
        .await
        .expect("connect");
    // Publish channels on a connection of their own, as a runtime has
    // (one connection allows 2,047 channels).
    let publishing = Connection::connect(url, ConnectionProperties::default())
        .await
        .expect("connect");
    let replies = conn.create_channel().await.expect("channel");
    replies
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm mode");
    let pid = std::process::id();
    let plain = QueueDeclareOptions::default();
    let exclusive = QueueDeclareOptions {
        exclusive: true,
        ..QueueDeclareOptions::default()
    };
    let consume = |channel: lapin::Channel, queue: String| async move {
        channel
            .basic_consume(
                queue.as_str().into(),
                queue.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("consume")
    };
    let declare = |channel: lapin::Channel, queue: String| async move {
        channel
            .queue_declare(queue.as_str().into(), exclusive, FieldTable::default())
            .await
            .expect("declare");
        let consumer = consume(channel.clone(), queue).await;
        (channel, consumer)
    };
    // The channels of each `SHARE` agents, opened by the first of them.
    let groups: Vec<tokio::sync::OnceCell<[lapin::Channel; 3]>> = (0..n.div_ceil(SHARE))
        .map(|_| tokio::sync::OnceCell::new())
        .collect();
    let channels_of = |i: usize| {
        let (conn, publishing, groups) = (&conn, &publishing, &groups);
        async move {
            groups[i / SHARE]
                .get_or_init(|| async {
                    let publish = publishing.create_channel().await.expect("channel");
                    publish
                        .confirm_select(ConfirmSelectOptions::default())
                        .await
                        .expect("confirm mode");
                    let mailbox = conn.create_channel().await.expect("channel");
                    let controls = conn.create_channel().await.expect("channel");
                    [publish, mailbox, controls]
                })
                .await
                .clone()
        }
    };
    // What an agent declares: see the module's header.
    let agent = |(i, id): (usize, String)| {
        let channels_of = &channels_of;
        async move {
            let [publish, mailbox, controls] = channels_of(i).await;
            let fanout = format!("{id}.fanout");
            let control = format!("{id}.control");
            for queue in [&id, &fanout] {
                mailbox
                    .queue_declare(queue.as_str().into(), plain, FieldTable::default())
                    .await
                    .expect("declare");
            }
            mailbox
                .queue_bind(
                    fanout.as_str().into(),
                    "admin".into(),
                    "admin".into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .expect("bind");
            let requests = consume(mailbox.clone(), id.clone()).await;
            let broadcasts = consume(mailbox.clone(), fanout).await;
            controls
                .queue_declare(control.as_str().into(), plain, FieldTable::default())
                .await
                .expect("declare");
            let control = consume(controls.clone(), control).await;
            (id, [publish, mailbox, controls], requests, (broadcasts, control))
        }
    };
    let ids: Vec<String> = (0..n).map(|i| format!("bench-rawmany-{pid}-{run}-{i}")).collect();
    let start = Instant::now();
    let declared: Vec<_> = futures_util::stream::iter(ids.clone().into_iter().enumerate())
        .map(agent)
        .buffer_unordered(STARTS)
        .collect()
        .await;
    let mut channels = Vec::with_capacity(n);
    for (me, agent_channels, mut requests, idle) in declared {
        let out = replies.clone();
        tokio::spawn(async move {
            let _idle = idle;
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
        channels.push(agent_channels);
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
    drop(groups);
    // The queues are not exclusive (an agent's are not): delete them.
    let cleanup = conn.create_channel().await.expect("channel");
    for id in &ids {
        for queue in [id.clone(), format!("{id}.fanout"), format!("{id}.control")] {
            let _ = cleanup
                .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                .await;
        }
    }
    drop(channels);
    let _ = conn.close(0, "bye".into()).await;
    let _ = publishing.close(0, "bye".into()).await;
    Run {
        started,
        pinged,
        per_agent: 0.0,
        broker: 0.0,
    }
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
            "run {}: munggoggo started {n} in {:?}, pinged all in {:?}, {:.0} B per agent, broker +{:.1} MB | raw lapin {:?}, {:?}",
            run + 1,
            ours[run].started,
            ours[run].pinged,
            ours[run].per_agent,
            ours[run].broker / 1e6,
            raw[run].started,
            raw[run].pinged
        );
    }
    let per_agent = crate::figure::median(ours.iter().map(|r| r.per_agent).collect());
    let broker = crate::figure::median(ours.iter().map(|r| r.broker).collect());
    println!(
        "memory for {n} agents (medians): {per_agent:.0} B per agent in this process; the broker's grew by {:.1} MB ({:.0} B per agent)",
        broker / 1e6,
        broker / n as f64
    );
    let ms = |rs: &[Run], f: fn(&Run) -> Duration| rs.iter().map(|r| f(r).as_secs_f64() * 1e3).collect();
    vec![
        Figure::new(
            &format!("amqp start {n} agents"),
            "ms",
            Better::Lower,
            ms(&ours, |r| r.started),
            "raw lapin, an agent's queues, bindings, consumers, channels shared alike",
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
