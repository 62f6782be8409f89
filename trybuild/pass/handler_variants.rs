//! The shapes handler parameters and return types may take: with and
//! without `ctx`, `T` and `Envelope<T>`, `()` and `Result` with `anyhow`, a
//! hand-written error type and `munggoggo::Error`, `Next`, and `#[rpc]`
//! results.

use std::fmt;

use munggoggo::__private::Agent;
use munggoggo::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, Message)]
struct Job {
    id: u32,
}

/// An error type as `thiserror` would write it.
#[derive(Debug)]
enum JobError {
    Rejected(u32),
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobError::Rejected(id) => write!(f, "job {id} rejected"),
        }
    }
}

impl std::error::Error for JobError {}

#[derive(Debug, Serialize)]
struct Summary {
    done: usize,
}

#[agent]
#[derive(Default)]
struct Worker {
    done: Vec<u32>,
}

#[agent]
impl Worker {
    #[setup]
    async fn prepare(&mut self) -> Result<(), JobError> {
        Ok(())
    }

    #[teardown]
    async fn finish(&mut self, ctx: &Context) -> Result<(), munggoggo::Error> {
        let _ = ctx;
        Ok(())
    }

    #[on_message]
    async fn plain(&mut self, job: Job) {
        self.done.push(job.id);
    }

    #[on_message(type = "JobWithCtx")]
    async fn with_ctx(&mut self, ctx: &Context, job: Job) -> anyhow::Result<()> {
        ctx.publish("jobs.done", &job).await?;
        Ok(())
    }

    #[on_message(type = "JobEnvelope")]
    async fn enveloped(&mut self, job: Envelope<Job>) -> Result<(), JobError> {
        if job.id == 0 {
            return Err(JobError::Rejected(job.id));
        }
        let _ = (
            job.sender(),
            job.correlation_id(),
            job.routing_key(),
            job.timestamp(),
        );
        self.done.push(job.into_body().id);
        Ok(())
    }

    #[on_message(topic = "jobs.#")]
    async fn enveloped_with_ctx(
        &mut self,
        ctx: &Context,
        job: munggoggo::Envelope<Job>,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let _ = (ctx, job.body());
        Ok(())
    }

    #[behaviour(cyclic)]
    async fn step(&mut self) -> anyhow::Result<Next> {
        Ok(if self.done.is_empty() {
            Next::After(std::time::Duration::from_secs(1))
        } else {
            Next::Stop
        })
    }

    #[behaviour(oneshot)]
    async fn fallible(&mut self, _ctx: &Context) -> Result<(), JobError> {
        Ok(())
    }

    #[rpc]
    async fn summary(&mut self) -> Summary {
        Summary {
            done: self.done.len(),
        }
    }

    #[rpc]
    async fn check(&mut self, ctx: &Context, id: u32) -> anyhow::Result<bool> {
        let _ = ctx;
        anyhow::ensure!(id > 0, "ids start at 1");
        Ok(self.done.contains(&id))
    }

    #[rpc]
    async fn reject(&mut self, r#type: String, mut id: u32) -> Result<(), JobError> {
        id += 1;
        let _ = r#type;
        Err(JobError::Rejected(id))
    }

    #[rpc]
    async fn reset(&mut self) {
        self.done.clear();
    }
}

fn main() {
    let spec = Worker::spec();
    assert_eq!(spec.behaviours.len(), 6);
    let rpc = spec.rpcs.iter().find(|r| r.method == "reject").unwrap();
    assert_eq!(rpc.params, ["type", "id"]);
}
