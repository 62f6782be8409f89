//! The system traffic of the command line's observers, which agents do not
//! trace (looking at an agent must not fill its trace store).

use crate::message;

/// Identities of the `munggoggo` command line's observers start with this.
/// Their system traffic (pings, listings, calls and the replies) is not
/// traced, so that looking at an agent does not fill its trace store.
pub(crate) const OBSERVER_PREFIX: &str = "munggoggo-cli-";

/// Whether a CONTROL or RPC message goes to or comes from a CLI observer.
pub(crate) fn is_observer_traffic(kind: Option<&str>, peer: &str) -> bool {
    matches!(kind, Some(message::CONTROL | message::RPC)) && peer.starts_with(OBSERVER_PREFIX)
}
