//! [`Observer`]: the dashboard's agent on the bus.

use munggoggo::agent::{Agent, AgentDefaults, AgentOptions, AgentSpec};

/// A participant without behaviours, handlers or methods, behind the
/// dashboard: the runtime answers system requests and collects pongs and
/// replies for it.
pub(crate) struct Observer;

static OBSERVER_SPEC: AgentSpec = AgentSpec {
    name: "MunggoggoObserver",
    behaviours: &[],
    rpcs: &[],
};

impl AgentDefaults for Observer {
    fn options() -> AgentOptions {
        AgentOptions::new("munggoggo-observer")
    }

    fn construct() -> Option<Self> {
        None
    }
}

impl Agent for Observer {
    fn spec() -> &'static AgentSpec {
        &OBSERVER_SPEC
    }
}
