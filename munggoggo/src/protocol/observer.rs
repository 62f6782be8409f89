//! The system traffic of the command line's observers, which agents do not
//! trace (looking at an agent must not fill its trace store).

use crate::message;

/// Identities of the `munggoggo` command line's observers start with this.
/// Their system traffic (pings, listings, calls and the replies) is not
/// traced, so that looking at an agent does not fill its trace store.
pub(crate) const OBSERVER_PREFIX: &str = "munggoggo-cli-";

/// Identities of dashboards start with this.
#[cfg_attr(not(any(feature = "amqp", feature = "web")), allow(dead_code))]
pub(crate) const DASHBOARD_PREFIX: &str = "munggoggo-dashboard-";

/// Identities of munggoggo's own tools (dashboards, the CLI) start with one
/// of these: they never come back under the same identity, so their queues
/// go with them, and their traffic is left out of peer lists and message
/// feeds.
#[cfg_attr(not(any(feature = "amqp", feature = "web")), allow(dead_code))]
const TOOL_PREFIXES: [&str; 2] = [DASHBOARD_PREFIX, OBSERVER_PREFIX];

/// Whether `identity` is one of munggoggo's tools.
#[cfg_attr(not(any(feature = "amqp", feature = "web")), allow(dead_code))]
pub(crate) fn is_tool(identity: &str) -> bool {
    TOOL_PREFIXES.iter().any(|prefix| identity.starts_with(prefix))
}

/// Whether a CONTROL or RPC message goes to or comes from a CLI observer.
pub(crate) fn is_observer_traffic(kind: Option<&str>, peer: &str) -> bool {
    matches!(kind, Some(message::CONTROL | message::RPC)) && peer.starts_with(OBSERVER_PREFIX)
}
