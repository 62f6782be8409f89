//! Agent constructors for the registry: `Default`, `#[agent(new = ...)]`,
//! or none; and the default identity in kebab-case.

use munggoggo::__private::AgentDefaults;
use munggoggo::prelude::*;

#[agent]
#[derive(Default)]
struct PingAgent;

#[agent]
impl PingAgent {}

/// No `Default`: the registry cannot start it, but the runtime can run an instance.
#[agent(identity = "manual")]
struct NeedsConfig {
    url: String,
}

#[agent]
impl NeedsConfig {
    #[behaviour(oneshot)]
    async fn connect(&mut self) {
        let _ = self.url.len();
    }
}

#[agent(new = Configured::from_env)]
struct Configured {
    retries: u32,
}

impl Configured {
    fn from_env() -> Self {
        Configured { retries: 3 }
    }
}

#[agent]
impl Configured {
    #[rpc]
    async fn retries(&mut self) -> u32 {
        self.retries
    }
}

fn build() -> NeedsConfig {
    NeedsConfig {
        url: "amqp://".to_owned(),
    }
}

fn server() -> HTTPServer {
    HTTPServer
}

#[agent(new = server)]
struct HTTPServer;

#[agent]
impl HTTPServer {}

fn main() {
    assert_eq!(PingAgent::options().identity, "ping-agent");
    assert!(PingAgent::construct().is_some());

    assert_eq!(NeedsConfig::options().identity, "manual");
    assert!(NeedsConfig::construct().is_none());
    let _ = build();

    assert_eq!(Configured::options().identity, "configured");
    assert_eq!(Configured::construct().map(|c| c.retries), Some(3));

    assert_eq!(HTTPServer::options().identity, "http-server");
    assert!(HTTPServer::construct().is_some());
}
