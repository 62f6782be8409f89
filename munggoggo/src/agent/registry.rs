//! The registry of agent types compiled into the binary (`inventory`), so
//! that a launcher can start an agent by its type name.

use super::options::AgentOptions;
use super::spec::AgentSpec;
use super::traits::Agent;
use crate::error::{Error, Result};
use crate::runtime::Runtime;

/// An agent type compiled into the binary, registered by `#[agent]`.
#[derive(Debug, Clone, Copy)]
pub struct Registration {
    /// The agent type's description.
    pub spec: fn() -> &'static AgentSpec,
    /// Its options.
    pub options: fn() -> AgentOptions,
    constructor: fn() -> bool,
    launch: fn(Runtime, Option<String>) -> Runtime,
}

impl Registration {
    /// The registration of `A`.
    pub const fn of<A: Agent>() -> Self {
        Registration {
            spec: A::spec,
            options: A::options,
            constructor: A::has_constructor,
            launch: launch::<A>,
        }
    }

    /// The agent type's name.
    pub fn name(&self) -> &'static str {
        (self.spec)().name
    }

    /// Whether the registry can build one (`Default` or `#[agent(new = ...)]`).
    pub fn has_constructor(&self) -> bool {
        (self.constructor)()
    }

    /// Adds an instance to the runtime, built by its constructor from its
    /// configuration when the runtime starts (see [`Runtime::configured`](crate::Runtime::configured)).
    pub fn add_to(&self, runtime: Runtime, identity: Option<String>) -> Result<Runtime> {
        Ok((self.launch)(runtime, identity))
    }
}

fn launch<A: Agent>(runtime: Runtime, identity: Option<String>) -> Runtime {
    match identity {
        Some(id) => runtime.configured_as::<A>(id),
        None => runtime.configured::<A>(),
    }
}

inventory::collect!(Registration);

/// Every agent type compiled into this binary, sorted by name.
pub fn registered() -> Vec<Registration> {
    let mut all: Vec<Registration> = inventory::iter::<Registration>.into_iter().copied().collect();
    all.sort_by_key(|r| r.name());
    all
}

/// Starting agents by type name lives here, beside the registry, so that
/// the runtime's builder does not depend on it.
impl Runtime {
    /// Adds an agent type of the registry by name (see [`crate::agent::registered`]).
    pub fn agent_named(self, type_name: &str, identity: Option<String>) -> Result<Self> {
        let registered = crate::agent::registered();
        let Some(registration) = registered.iter().find(|r| r.name() == type_name) else {
            return Err(Error::UnknownAgentType {
                name: type_name.to_owned(),
                known: registered.iter().map(|r| r.name().to_owned()).collect(),
            });
        };
        registration.add_to(self, identity)
    }
}
