//! W3C trace context, without any feature, on both buses (on RabbitMQ in
//! the `traceparent` and `tracestate` headers): a handler's sends continue
//! the trace of the message that started it with a span id of their own,
//! a reply continues the request's trace, and a malformed or oversized
//! `traceparent` from outside is ignored (the message is handled, in a new
//! trace).

mod common;
#[path = "common/relay.rs"]
mod relay;

use common::unique;
use munggoggo::bus::Route;
use munggoggo::message::Properties;
use munggoggo::prelude::*;
use munggoggo::tracecontext::{TraceContext, TRACEPARENT, TRACESTATE};
use relay::{Hop, Relay};

const SENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// A `Hop` from `client` to `to` with these headers.
async fn hop_with(client: &Context, to: &str, headers: &[(&str, String)]) {
    let mut properties = Properties::new("Hop", client.identity());
    for (k, v) in headers {
        properties.headers.insert((*k).to_owned(), v.clone().into());
    }
    let route = Route::Direct(to.into());
    client
        .emit(route, properties, br#"{"n":0}"#.to_vec().into())
        .await
        .expect("sent");
}

/// The trace context of the next message the client receives.
async fn next_context(client: &munggoggo::runtime::Client) -> TraceContext {
    let msg = client
        .recv_timeout(std::time::Duration::from_secs(10))
        .await
        .expect("the relay forwards");
    msg.properties.trace.clone().expect("a trace context")
}

on_both_buses! {
    async fn a_relay_continues_the_trace_with_a_span_of_its_own(rt) {
        let client = rt.client(unique("tc-client")).await.unwrap();
        let relay = unique("tc-relay");
        rt.spawn_as(&relay, Relay { next: client.identity().to_owned() }).await.unwrap();
        let state = "rojo=00f067aa0ba902b7".to_owned();
        hop_with(&client, &relay, &[(TRACEPARENT, SENT.to_owned()), (TRACESTATE, state.clone())]).await;
        let sent = TraceContext::parse(SENT, None).unwrap();
        let got = next_context(&client).await;
        assert_eq!(got.trace_id(), sent.trace_id(), "the same trace");
        assert_ne!(got.span_id(), sent.span_id(), "the relay's own span");
        assert_eq!(got.flags(), sent.flags());
        assert_eq!(got.trace_state(), Some(state.as_str()), "tracestate passed on");
    }

    async fn a_send_outside_any_run_starts_a_trace(rt) {
        let client = rt.client(unique("tc-client")).await.unwrap();
        let relay = unique("tc-relay");
        rt.spawn_as(&relay, Relay { next: client.identity().to_owned() }).await.unwrap();
        client.send(&relay, &Hop { n: 0 }).await.unwrap();
        let first = next_context(&client).await;
        client.send(&relay, &Hop { n: 0 }).await.unwrap();
        let second = next_context(&client).await;
        assert_ne!(first.trace_id(), second.trace_id(), "one trace per send");
    }

    async fn a_malformed_or_oversized_traceparent_is_ignored(rt) {
        let client = rt.client(unique("tc-client")).await.unwrap();
        let relay = unique("tc-relay");
        let handle = rt.spawn_as(&relay, Relay { next: client.identity().to_owned() }).await.unwrap();
        let sent = TraceContext::parse(SENT, None).unwrap();
        let oversized = format!("{SENT}-{}", "a".repeat(4000)).replacen("00-", "01-", 1);
        for bad in ["garbage".to_owned(), SENT.to_uppercase(), oversized] {
            hop_with(&client, &relay, &[(TRACEPARENT, bad)]).await;
            let got = next_context(&client).await;
            assert_ne!(got.trace_id(), sent.trace_id());
        }
        let status = handle.behaviour("hop").unwrap();
        assert_eq!(status.errors, 0, "handled, not failed: {status:?}");
    }

    async fn a_reply_continues_the_request_trace(rt) {
        let client = rt.client(unique("tc-client")).await.unwrap();
        let relay = unique("tc-relay");
        let handle = rt.spawn_as(&relay, Relay { next: client.identity().to_owned() }).await.unwrap();
        let doubled: i64 = client.call(&relay, "double", serde_json::json!({ "x": 21 })).await.unwrap();
        assert_eq!(doubled, 42);
        // The request: the client's trace; the reply (sent on the bus only
        // between processes or on RabbitMQ): the method's span in it.
        let request = handle
            .traces()
            .received(None)
            .into_iter()
            .find(|e| e.record.properties.kind.as_deref() == Some("RPC"));
        let reply = handle
            .traces()
            .sent(None)
            .into_iter()
            .find(|e| e.record.properties.kind.as_deref() == Some("RPC"));
        let context = |e: Option<munggoggo::trace::TraceEntry>| {
            let e = e.expect("the call is traced");
            e.record.properties.trace.clone()
        };
        match (context(request), context(reply)) {
            (Some(request), Some(reply)) => {
                assert_eq!(reply.trace_id(), request.trace_id());
                assert_ne!(reply.span_id(), request.span_id());
            }
            // A call inside an embedded-bus runtime sends no message: its
            // trace entries carry no headers.
            (None, None) => {}
            other => panic!("only one of request and reply carries a trace: {other:?}"),
        }
    }
}

/// On RabbitMQ the context travels as the two headers, in their W3C form.
#[cfg(feature = "amqp")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_rabbitmq_the_context_travels_in_the_headers() {
    let Some(rt) = common::buses::amqp().await else {
        return;
    };
    let client = rt.client(unique("tc-client")).await.unwrap();
    let relay = unique("tc-relay");
    rt.spawn_as(
        &relay,
        Relay {
            next: client.identity().to_owned(),
        },
    )
    .await
    .unwrap();
    hop_with(
        &client,
        &relay,
        &[(TRACEPARENT, SENT.to_owned()), (TRACESTATE, "k=v".to_owned())],
    )
    .await;
    let msg = client
        .recv_timeout(std::time::Duration::from_secs(10))
        .await
        .expect("forwarded");
    let trace = msg.properties.trace.clone().expect("read from the headers");
    assert_eq!(msg.properties.headers[TRACEPARENT], trace.traceparent());
    assert_eq!(msg.properties.headers[TRACESTATE], "k=v");
    assert!(trace
        .traceparent()
        .starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
    rt.shutdown().await;
}

/// A raw AMQP publisher's malformed or oversized `traceparent` is ignored
/// by the receiver: the message is handled, in a new trace.
#[cfg(feature = "amqp")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_rabbitmq_a_foreign_malformed_traceparent_is_ignored() {
    use lapin::options::BasicPublishOptions;
    use lapin::types::{AMQPValue, FieldTable, LongString};
    use lapin::{BasicProperties, Connection, ConnectionProperties};

    let Some(rt) = common::buses::amqp().await else {
        return;
    };
    let client = rt.client(unique("tc-client")).await.unwrap();
    let relay = unique("tc-relay");
    let handle = rt
        .spawn_as(
            &relay,
            Relay {
                next: client.identity().to_owned(),
            },
        )
        .await
        .unwrap();
    let url = munggoggo_test_support::broker_url().expect("the test vhost");
    let uri: lapin::uri::AMQPUri = url.parse().expect("a valid broker URL");
    let conn = Connection::connect_uri(uri, ConnectionProperties::default())
        .await
        .expect("raw connection");
    let channel = conn.create_channel().await.expect("channel");
    let sent = TraceContext::parse(SENT, None).unwrap();
    let oversized = format!("{SENT}{}", "-a".repeat(3000)).replacen("00-", "01-", 1);
    for bad in [format!("garbage-{relay}"), oversized] {
        let mut headers = FieldTable::default();
        headers.insert(
            TRACEPARENT.into(),
            AMQPValue::LongString(LongString::from(bad.as_bytes())),
        );
        let props = BasicProperties::default()
            .with_headers(headers)
            .with_type("Hop".into())
            .with_app_id("raw-peer".into())
            .with_timestamp(1_800_000_000);
        channel
            .basic_publish(
                "".into(),
                relay.as_str().into(),
                BasicPublishOptions::default(),
                br#"{"n":0}"#,
                props,
            )
            .await
            .expect("published");
        let got = next_context(&client).await;
        assert_ne!(got.trace_id(), sent.trace_id());
    }
    assert_eq!(handle.behaviour("hop").unwrap().errors, 0, "handled, not failed");
    let _ = conn.close(0, "done".into()).await;
    rt.shutdown().await;
}
