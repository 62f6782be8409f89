//! An identity taken while its agent was reconnecting (private RabbitMQ
//! node): the agent that lost it stops as `crashed` with `IdentityInUse`
//! (state, `failure()`, `wait_until`, one error line), the newcomer's start
//! is not affected, and no message is consumed by both.
#![cfg(feature = "amqp")]

mod common;

use std::collections::HashSet;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::node::Node;
use common::until;
use munggoggo::prelude::*;
use munggoggo::{AgentOptions, Error, Runtime, State};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, Message)]
struct Job {
    n: u64,
}

/// Records the jobs it handles.
#[agent]
struct Holder {
    handled: Arc<Mutex<HashSet<u64>>>,
}

#[agent]
impl Holder {
    #[on_message]
    async fn job(&mut self, job: Job) {
        self.handled.lock().unwrap().insert(job.n);
    }
}

/// The log lines of this test binary (its only test), kept to be read.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        std::io::stderr().write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn holder(identity: &str, handled: &Arc<Mutex<HashSet<u64>>>) -> (Holder, AgentOptions) {
    let mut options = <Holder as munggoggo::agent::AgentDefaults>::options();
    options.identity = identity.to_owned();
    let agent = Holder {
        handled: Arc::clone(handled),
    };
    (agent, options)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identity_taken_while_its_agent_reconnects_crashes_the_agent_with_identity_in_use() {
    let lines = Lines::default();
    let writer = lines.clone();
    tracing_subscriber::fmt()
        .with_env_filter("munggoggo=info")
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();
    let Some(node) = Node::start_or_skip("identity", None) else {
        return;
    };
    // The original connects as a user of its own, whose password changes
    // while its connections are closed: it cannot reconnect until it is
    // restored, and the newcomer takes the identity meanwhile.
    for args in [
        &["add_user", "original", "first"][..],
        &["set_permissions", "-p", "/", "original", ".*", ".*", ".*"],
    ] {
        assert!(node.ctl(args).status.success(), "rabbitmqctl {args:?}");
    }
    let port = node
        .url()
        .rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let original_url = format!("amqp://original:first@127.0.0.1:{port}/%2f?identity_grace=2s");
    let identity = "holder";

    let original_rt = Runtime::from_url(&original_url).unwrap().start().await.unwrap();
    let by_original = Arc::new(Mutex::new(HashSet::new()));
    let (agent, options) = holder(identity, &by_original);
    let original = original_rt.spawn_with(agent, options).await.unwrap();

    assert!(node
        .ctl(&["change_password", "original", "second"])
        .status
        .success());
    node.close_all_connections();

    let newcomer_rt = Runtime::from_url(&node.url()).unwrap().start().await.unwrap();
    let by_newcomer = Arc::new(Mutex::new(HashSet::new()));
    let (agent, options) = holder(identity, &by_newcomer);
    let newcomer = newcomer_rt
        .spawn_with(agent, options)
        .await
        .expect("the newcomer takes the identity its holder cannot reach");
    let client = newcomer_rt.client("identity-sender").await.unwrap();
    for n in 0..100 {
        client.send(identity, &Job { n }).await.unwrap();
    }

    // The original can connect again, and finds its identity taken.
    assert!(node
        .ctl(&["change_password", "original", "first"])
        .status
        .success());
    tokio::time::timeout(Duration::from_secs(60), original.stopped())
        .await
        .expect("the original stops within its grace and a reconnect");
    assert_eq!(original.state(), State::Crashed);
    assert!(
        matches!(original.failure(), Some(Error::IdentityInUse(ref id)) if id == identity),
        "{:?}",
        original.failure()
    );
    assert!(matches!(
        original.wait_until(|_| false).await,
        Err(Error::IdentityInUse(_))
    ));
    for n in 100..200 {
        client.send(identity, &Job { n }).await.unwrap();
    }
    until("the newcomer handled every job", Duration::from_secs(30), || {
        by_newcomer.lock().unwrap().len() == 200
    })
    .await;
    assert!(
        by_original.lock().unwrap().is_empty(),
        "no job was consumed by both: {:?}",
        by_original.lock().unwrap()
    );
    assert_eq!(newcomer.state(), State::Running, "the newcomer is not affected");

    let log = String::from_utf8_lossy(&lines.0.lock().unwrap()).into_owned();
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("ERROR") && l.contains("took the agent's identity"))
        .collect();
    assert_eq!(errors.len(), 1, "one error line: {errors:?}");
    assert!(errors[0].contains("IdentityInUse"), "{}", errors[0]);
    newcomer_rt.shutdown().await;
    original_rt.shutdown().await;
}
