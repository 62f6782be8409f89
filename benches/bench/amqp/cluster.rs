//! `amqp-cluster`: what quorum queues cost. The one-way and forwarding
//! rounds of `amqp-one-way`, on a 3-node cluster of private RabbitMQ nodes
//! with `queue_type=quorum` (every message replicated to the three nodes'
//! disks before its confirm), beside classic durable queues on a private
//! single node (one disk write), rounds interleaved in the same run. The
//! nodes are the test suite's (`tests/common/node.rs`): own names, ports
//! and folders, gone when the program ends; the shared broker is not used.

use std::time::Duration;

use crate::agents::{agents_round, forward_round};
use crate::figure::{rate, Better, Figure};

#[allow(dead_code)] // the fault tests' helpers: stop, kill, cut off, ...
#[path = "../../../tests/common/node.rs"]
mod node;

/// One runtime on `url`: a one-way round and a forwarding round.
async fn rounds(url: &str, n: u64, tag: &str) -> (Duration, Duration) {
    let handle = munggoggo::Runtime::from_url(url)
        .expect("URL")
        .start()
        .await
        .expect("the private broker is reachable");
    let one_way = agents_round(&handle, n, tag).await;
    let forwarded = forward_round(&handle, n, tag).await;
    handle.shutdown().await;
    (one_way, forwarded)
}

/// `amqp-cluster`.
pub fn cluster(n: u64, runs: usize) -> Vec<Figure> {
    println!("starting a 3-node cluster and a single node (private, own ports)...");
    let cluster = node::Cluster::start("bench-cluster");
    let single = node::Node::start("bench-single", None);
    let quorum = format!("{}?queue_type=quorum", cluster.url());
    let classic = format!("{}?durable=true", single.url());
    let rt = crate::tokio();
    let (mut q, mut qf, mut c, mut cf) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        // Alternating which goes first, so that neither always meets a
        // machine the other just warmed up or loaded.
        let (quorum_rounds, classic_rounds) = if run % 2 == 0 {
            let a = rt.block_on(rounds(&quorum, n, &format!("q{run}")));
            (a, rt.block_on(rounds(&classic, n, &format!("c{run}"))))
        } else {
            let b = rt.block_on(rounds(&classic, n, &format!("c{run}")));
            (rt.block_on(rounds(&quorum, n, &format!("q{run}"))), b)
        };
        q.push(rate(n, quorum_rounds.0));
        qf.push(rate(n, quorum_rounds.1));
        c.push(rate(n, classic_rounds.0));
        cf.push(rate(n, classic_rounds.1));
        println!(
            "run {}: quorum, 3 nodes {:>6.0}/s forwarded {:>6.0}/s | classic durable, one node {:>6.0}/s forwarded {:>6.0}/s | ratios {:.2}, {:.2}",
            run + 1,
            q[run],
            qf[run],
            c[run],
            cf[run],
            q[run] / c[run],
            qf[run] / cf[run],
        );
    }
    vec![
        Figure::new(
            "amqp one-way, quorum, 3 nodes",
            "msg/s",
            Better::Higher,
            q,
            "classic durable, one node",
            c,
        ),
        Figure::new(
            "amqp forwarding, quorum, 3 nodes",
            "msg/s",
            Better::Higher,
            qf,
            "classic durable chain, one node",
            cf,
        ),
    ]
}
