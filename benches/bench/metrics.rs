//! `embedded-one-way-metrics` and `amqp-one-way-metrics`: the cost of
//! metrics (feature `metrics`) on the one-way path of either bus, rounds
//! with metrics on and off interleaved in the same run, so that both see
//! the same machine.

use std::time::Duration;

use crate::agents::agents_round;
use crate::bus::OnBus;
use crate::figure::{rate, Better, Figure};

/// One round of one-way on `bus`, with or without a metrics registry.
async fn round(bus: OnBus, n: u64, run: usize, metrics: bool) -> Duration {
    let runtime = bus.runtime();
    let runtime = if metrics {
        runtime.metrics(munggoggo::metrics::Metrics::new())
    } else {
        runtime
    };
    let handle = runtime.start().await.expect("runtime");
    let tag = format!("{}-{run}", if metrics { "m" } else { "p" });
    let d = agents_round(&handle, n, &tag).await;
    if let Some(metrics) = handle.metrics() {
        // The counts are there: what was measured is what a scrape reads.
        assert!(metrics.encode().contains(&format!("type=\"Sample\"}} {n}")));
    }
    handle.shutdown().await;
    d
}

/// Messages per second with metrics on beside metrics off.
pub fn one_way(bus: OnBus, n: u64, runs: usize) -> Vec<Figure> {
    let rt = crate::tokio();
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for run in 0..runs {
        off.push(rate(n, rt.block_on(round(bus, n, run, false))));
        on.push(rate(n, rt.block_on(round(bus, n, run, true))));
        println!(
            "run {}: metrics on {:>10.0} msg/s   metrics off {:>10.0} msg/s   ({:.3}x)",
            run + 1,
            on[run],
            off[run],
            on[run] / off[run]
        );
    }
    vec![Figure::new(
        &format!("{} one-way, metrics on", bus.word()),
        "msg/s",
        Better::Higher,
        on,
        "metrics off",
        off,
    )]
}
