//! The compact wire mode (the default) next to munggoggo 0.4's wire mode
//! (`WireMode::Py04`: every typed message in the `{"c_type", "c_data"}`
//! envelope, `user_id` set), measured in the same run on the same path:
//! one agent sending typed messages to another's handler (encode, bus,
//! dispatch, unwrap, decode, ack). Rounds of the two modes alternate.
//!
//! Run it with `cargo bench -p munggoggo-bench --features amqp --bench wire_mode` (optional
//! arguments: messages per round on the embedded bus, default 100000, and
//! on RabbitMQ, default 20000; RabbitMQ at `MUNGGOGGO_URL`, else the local
//! broker, is skipped with a message when unreachable). Prints the median
//! of 3 rounds per mode and bus.

#[allow(dead_code)]
#[path = "bench/agents.rs"]
mod agents;
#[allow(dead_code)]
#[path = "bench/figure.rs"]
mod figure;

use agents::agents_round;
use figure::{median, rate};
use munggoggo::{Runtime, WireMode};

fn measure(rt: &tokio::runtime::Runtime, bus: &str, url: &str, n: u64) {
    let (mut compact, mut py04) = (Vec::new(), Vec::new());
    for round in 0..3 {
        for (mode, rates) in [(WireMode::Compact, &mut compact), (WireMode::Py04, &mut py04)] {
            let d = rt.block_on(async {
                let handle = Runtime::from_url(url)
                    .expect("URL")
                    .wire_mode(mode)
                    .start()
                    .await
                    .expect("runtime");
                let d = agents_round(&handle, n, &format!("wire-{mode:?}-{round}")).await;
                handle.shutdown().await;
                d
            });
            rates.push(rate(n, d));
        }
        println!(
            "{bus} round {}: compact {:>9.0} msg/s   0.4 envelope {:>9.0} msg/s",
            round + 1,
            compact[round],
            py04[round]
        );
    }
    let (compact, py04) = (median(compact), median(py04));
    println!("{bus}, {n} messages, median of 3:");
    println!("  compact (default)  : {compact:>9.0} msg/s");
    println!("  0.4 wire mode      : {py04:>9.0} msg/s");
    println!("  compact / 0.4      : {:.2}", compact / py04);
}

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let embedded: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let amqp: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    measure(&rt, "embedded bus", "memory://", embedded);
    let url = std::env::var("MUNGGOGGO_URL").unwrap_or_else(|_| munggoggo::runtime::LOCAL_BROKER.to_owned());
    let reachable = rt.block_on(async { Runtime::from_url(&url).expect("URL").start().await });
    match reachable {
        Ok(handle) => {
            rt.block_on(handle.shutdown());
            measure(&rt, "RabbitMQ", &url, amqp);
        }
        Err(e) => println!("RabbitMQ skipped: {e}"),
    }
}
