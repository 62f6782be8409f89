//! Scaling out: replicas of one worker share its jobs, and a singleton job
//! runs on one of them at a time.
//!
//! Run each in its own terminal (RabbitMQ on localhost):
//!
//! ```sh
//! export MUNGGOGGO_URL=amqp://guest:guest@127.0.0.1:5672/%2f
//! cargo run --features amqp --example scale_out -- worker     # a replica
//! cargo run --features amqp --example scale_out -- worker     # another replica
//! cargo run --features amqp --example scale_out -- producer   # jobs, and a call now and then
//! ```
//!
//! Each job goes to one replica (they print which); the singleton
//! `report` runs on one replica only, the other shows it in standby
//! (`munggoggo behaviours worker@...`). Stop the replica that reports
//! (Ctrl-C) and the other takes the report over at once, with the jobs it
//! had not handled yet; kill it instead (`kill -9`) and the broker gives
//! its unacknowledged jobs to the other just the same.

use std::time::Duration;

use munggoggo::prelude::*;
use serde::{Deserialize, Serialize};

/// Work for any replica.
#[derive(Debug, Serialize, Deserialize, Message)]
pub struct Job {
    n: u64,
}

#[agent(identity = "worker", replicated)]
#[derive(Default)]
struct Worker {
    done: u64,
}

#[agent]
impl Worker {
    #[on_message]
    async fn job(&mut self, ctx: &Context, job: Job) {
        self.done += 1;
        println!("{}: job {}", ctx.identity(), job.n);
    }

    /// Once every 5 s on one replica of the group, whichever holds it.
    #[behaviour(periodic = "5s", initial_delay = "0s", singleton)]
    async fn report(&mut self, ctx: &Context) {
        println!(
            "{}: the report runs here ({} jobs done here)",
            ctx.identity(),
            self.done
        );
    }

    #[rpc]
    async fn done(&mut self, ctx: &Context) -> String {
        format!("{} did {} jobs", ctx.identity(), self.done)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Logs to stderr; `RUST_LOG` decides what.
    munggoggo::init_logging();
    let role = std::env::args().nth(1).unwrap_or_default();
    let runtime = munggoggo::Runtime::from_env()?;
    match role.as_str() {
        "worker" => runtime.agent(Worker::default()).run_until_signal().await?,
        "producer" => {
            let rt = runtime.start().await?;
            let client = rt.client("producer").await?;
            let produce = async {
                for n in 0.. {
                    client.send("worker", &Job { n }).await?;
                    if n % 10 == 9 {
                        let answer: String = client.call("worker", "done", ()).await?;
                        println!("producer: sent {} jobs; asked the group: {answer}", n + 1);
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Ok::<(), munggoggo::Error>(())
            };
            tokio::select! {
                produced = produce => produced?,
                _ = tokio::signal::ctrl_c() => {}
            }
            rt.shutdown().await;
        }
        _ => anyhow::bail!("say `worker` or `producer`"),
    }
    Ok(())
}
