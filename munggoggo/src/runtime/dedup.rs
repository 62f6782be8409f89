//! The recent-ids filter of an agent with [`AgentOptions::dedup`]: the
//! message ids it handled last, to drop a message delivered again.
//!
//! [`AgentOptions::dedup`]: crate::agent::AgentOptions::dedup

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use crate::message::SmolStr;

/// The last `capacity` message ids seen, oldest first out.
pub(crate) struct RecentIds {
    inner: Mutex<Ids>,
}

struct Ids {
    seen: HashSet<SmolStr>,
    order: VecDeque<SmolStr>,
    capacity: usize,
}

impl RecentIds {
    /// A filter of `capacity` ids; `None` for 0 (no filter).
    pub(crate) fn new(capacity: usize) -> Option<Box<RecentIds>> {
        (capacity > 0).then(|| {
            Box::new(RecentIds {
                inner: Mutex::new(Ids {
                    seen: HashSet::new(),
                    order: VecDeque::new(),
                    capacity,
                }),
            })
        })
    }

    /// Records `id`; whether it was new (else the message is a duplicate).
    pub(crate) fn first_time(&self, id: &SmolStr) -> bool {
        let mut ids = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if !ids.seen.insert(id.clone()) {
            return false;
        }
        ids.order.push_back(id.clone());
        if ids.order.len() > ids.capacity {
            if let Some(oldest) = ids.order.pop_front() {
                ids.seen.remove(&oldest);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_the_last_ids_only() {
        assert!(RecentIds::new(0).is_none());
        let ids = RecentIds::new(2).unwrap();
        let (a, b, c) = (SmolStr::new("a"), SmolStr::new("b"), SmolStr::new("c"));
        assert!(ids.first_time(&a));
        assert!(!ids.first_time(&a));
        assert!(ids.first_time(&b));
        assert!(ids.first_time(&c)); // a is forgotten
        assert!(!ids.first_time(&b) && !ids.first_time(&c));
        assert!(ids.first_time(&a));
    }
}
