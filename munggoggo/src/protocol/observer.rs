//! The identities of munggoggo's tools (the `munggoggo` command line, the
//! dashboard) and the system traffic of the command line's observers,
//! which agents do not trace (looking at an agent must not fill its trace
//! store). A convention of the wire, so it holds between processes: a tool
//! is known by its identity's prefix. Public through [`crate::runtime`],
//! for tools of one's own.

use crate::message;

/// Identities of the `munggoggo` command line's observers start with this.
/// Their system traffic (pings, listings, calls and the replies) is not
/// traced, so that looking at an agent does not fill its trace store; like
/// every tool's, their queues go with them and they are left out of peer
/// lists and message feeds (see [`is_tool`]).
pub const OBSERVER_PREFIX: &str = "munggoggo-cli-";

/// Identities of dashboards start with this (see [`is_tool`]).
pub const DASHBOARD_PREFIX: &str = "munggoggo-dashboard-";

/// Identities of munggoggo's own tools (dashboards, the CLI) start with one
/// of these: they never come back under the same identity, so their queues
/// go with them, and their traffic is left out of peer lists and message
/// feeds.
const TOOL_PREFIXES: [&str; 2] = [DASHBOARD_PREFIX, OBSERVER_PREFIX];

/// Whether `identity` is one of munggoggo's tools: it starts with
/// [`DASHBOARD_PREFIX`] or [`OBSERVER_PREFIX`].
pub fn is_tool(identity: &str) -> bool {
    TOOL_PREFIXES.iter().any(|prefix| identity.starts_with(prefix))
}

/// Whether a CONTROL or RPC message goes to or comes from a CLI observer.
pub(crate) fn is_observer_traffic(kind: Option<&str>, peer: &str) -> bool {
    matches!(kind, Some(message::CONTROL | message::RPC)) && peer.starts_with(OBSERVER_PREFIX)
}
