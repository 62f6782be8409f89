//! `embedded-one-way-tracing` and `amqp-one-way-tracing`: the cost of
//! exporting spans (feature `otel`) on the one-way path of either bus, rounds with the OpenTelemetry
//! layer on and off interleaved in the same run, so that both see the
//! same machine.
//!
//! On: every handler run is a span joined to its message's trace, handed
//! to the SDK's batch processor and exported to an exporter that drops the
//! batches (what an OTLP exporter costs beyond that is the collector's
//! network, not the agents'). Off: the same subscriber with the layer
//! filtered out. Both carry the W3C headers, which are always on.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use munggoggo::otel::opentelemetry_sdk::error::OTelSdkResult;
use munggoggo::otel::opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Layer;

use crate::agents::agents_round;
use crate::bus::OnBus;
use crate::figure::{rate, Better, Figure};

/// Whether the OpenTelemetry layer takes spans.
static ON: AtomicBool = AtomicBool::new(false);

/// Drops what it is given, counting the spans.
#[derive(Debug)]
struct Discard(Arc<AtomicU64>);

impl SpanExporter for Discard {
    fn export(&self, batch: Vec<SpanData>) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        self.0.fetch_add(batch.len() as u64, Ordering::Relaxed);
        std::future::ready(Ok(()))
    }
}

/// The process's subscriber (once): munggoggo's layer behind the switch.
fn install() -> &'static (SdkTracerProvider, Arc<AtomicU64>) {
    static PROVIDER: OnceLock<(SdkTracerProvider, Arc<AtomicU64>)> = OnceLock::new();
    PROVIDER.get_or_init(|| {
        let exported = Arc::new(AtomicU64::new(0));
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(Discard(Arc::clone(&exported)))
            .build();
        let switch = tracing_subscriber::filter::dynamic_filter_fn(|_, _| ON.load(Ordering::Relaxed));
        let subscriber =
            tracing_subscriber::registry().with(munggoggo::otel::layer(&provider).with_filter(switch));
        tracing::subscriber::set_global_default(subscriber).expect("no subscriber yet");
        (provider, exported)
    })
}

/// One round of `embedded-one-way`, with the layer on or off; the spans
/// exported in it.
async fn round(bus: OnBus, n: u64, run: usize, on: bool) -> (Duration, u64) {
    let (provider, exported) = install();
    ON.store(on, Ordering::Relaxed);
    let before = exported.load(Ordering::Relaxed);
    let handle = bus.runtime().start().await.expect("runtime");
    let tag = format!("{}-{run}", if on { "t" } else { "p" });
    let d = agents_round(&handle, n, &tag).await;
    handle.shutdown().await;
    let _ = provider.force_flush();
    ON.store(false, Ordering::Relaxed);
    (d, exported.load(Ordering::Relaxed) - before)
}

/// Messages per second with tracing on beside tracing off.
pub fn one_way(bus: OnBus, n: u64, runs: usize) -> Vec<Figure> {
    let rt = crate::tokio();
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for run in 0..runs {
        let (d, _) = rt.block_on(round(bus, n, run, false));
        off.push(rate(n, d));
        let (d, spans) = rt.block_on(round(bus, n, run, true));
        on.push(rate(n, d));
        println!(
            "run {}: tracing on {:>10.0} msg/s ({spans} of {} spans exported)   tracing off {:>10.0} msg/s   ({:.3}x)",
            run + 1,
            on[run],
            n + 1,
            off[run],
            on[run] / off[run]
        );
    }
    vec![Figure::new(
        &format!("{} one-way, tracing on", bus.word()),
        "msg/s",
        Better::Higher,
        on,
        "tracing off",
        off,
    )]
}
