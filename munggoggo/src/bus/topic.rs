//! Topic-exchange matching as RabbitMQ does it, for the embedded bus and for
//! checking binding keys before they reach a broker; and the hint at a
//! publication that a subscription of the process misses only because its
//! `*` matches one word where `#` would match several ([`NearMisses`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Whether a message published with `routing_key` reaches a queue bound with
/// `binding_key` on a topic exchange, exactly as RabbitMQ decides it.
///
/// Keys are split into words at every `.`: `*` matches exactly one word and
/// `#` zero or more. Words may be empty (`a..b` has three words, `.` has two),
/// but the empty key has none, so `#` matches `""` while `*` and `#.` do not.
/// Words compare byte for byte (case-sensitive); a `*` or `#` inside a longer
/// word is a plain character, and routing-key words are never wildcards.
///
/// The unit tests' table of 102 cases holds the answers of RabbitMQ 3.10.8
/// (`rabbitmqctl version`), recorded with one topic exchange, one queue per
/// binding and one publish per case.
///
/// Runs in O(binding words × routing words) time and does not allocate.
/// (RabbitMQ 3.10.8's own matching is exponential in the number of `#`: a
/// binding of ten `#` against sixty words stalled its channel.)
pub fn topic_matches(binding_key: &str, routing_key: &str) -> bool {
    // The common case, a binding without wildcards: a key matches itself
    // (each of its words, a wildcard or not, matches the same word).
    if binding_key == routing_key {
        return true;
    }
    let mut pattern = Words::new(binding_key);
    let mut words = Words::new(routing_key);
    // The pattern after the last `#` seen, and the routing words that `#` has
    // not swallowed yet. Only the last `#` ever needs to be backtracked into
    // (as in glob matching): earlier ones cannot make a failed tail match.
    let mut backtrack: Option<(Words<'_>, Words<'_>)> = None;
    loop {
        let matched = match pattern.next() {
            Some("#") => {
                backtrack = Some((pattern, words));
                continue;
            }
            Some(expected) => match words.next() {
                Some(word) => expected == "*" || expected == word,
                // More pattern than words: swallowing more cannot help.
                None => return false,
            },
            None if words.is_done() => return true,
            None => false,
        };
        if matched {
            continue;
        }
        // Let the last `#` swallow one more word and retry the rest.
        let Some((after_hash, swallowed)) = backtrack.as_mut() else {
            return false;
        };
        if swallowed.next().is_none() {
            return false;
        }
        pattern = *after_hash;
        words = *swallowed;
    }
}

/// How many distinct routing keys a bus looks at for [`NearMisses`]; past
/// them it looks at none, so a program publishing on ever new keys keeps
/// neither a growing set nor a cost per publication.
const NEAR_MISS_KEYS: usize = 1024;

/// At most this many hints per routing key (one per binding key).
const HINTS_PER_KEY: usize = 4;

/// Hints at a topic publication that no subscription of the process
/// matches while one would with `#` in place of its `*` (`sensors.*`
/// against `sensors.kitchen.temp`): a mistake that otherwise shows
/// nowhere, since a publication that reaches nobody is not an error.
///
/// Each routing key is looked at once (the first time it is published, or
/// on the embedded bus the first time it reaches nobody), for at most
/// [`NEAR_MISS_KEYS`] keys: a publication costs at most a lookup in that
/// set, and nothing once it is full.
#[derive(Default)]
pub(crate) struct NearMisses {
    checked: Mutex<foldhash::HashSet<Box<str>>>,
    full: AtomicBool,
}

impl NearMisses {
    /// Whether `routing_key` is to be looked at: the first time it comes,
    /// while the set of keys looked at has room.
    pub(crate) fn first_time(&self, routing_key: &str) -> bool {
        if self.full.load(Ordering::Relaxed) {
            return false;
        }
        let mut checked = self.checked.lock().unwrap_or_else(|e| e.into_inner());
        if checked.contains(routing_key) {
            return false;
        }
        if checked.len() >= NEAR_MISS_KEYS {
            self.full.store(true, Ordering::Relaxed);
            tracing::debug!(
                keys = NEAR_MISS_KEYS,
                "looked at {NEAR_MISS_KEYS} routing keys for subscriptions that miss them by `*` vs `#`; no more"
            );
            return false;
        }
        checked.insert(routing_key.into());
        true
    }

    /// [`NearMisses::first_time`], then [`hint`] if so.
    pub(crate) fn look<'a>(
        &self,
        routing_key: &str,
        publisher: Option<&str>,
        bindings: impl FnOnce() -> Vec<(&'a str, &'a str)>,
    ) {
        if self.first_time(routing_key) {
            hint(routing_key, publisher, bindings());
        }
    }
}

/// Logs (at info) what a subscription misses by `*` vs `#`, when none of
/// `bindings` (binding key, queue) matches `routing_key` and some would
/// with `#` for their `*`; returns the binding keys it named.
pub(crate) fn hint<'a>(
    routing_key: &str,
    publisher: Option<&str>,
    bindings: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Vec<&'a str> {
    let bindings: Vec<(&str, &str)> = bindings.into_iter().collect();
    if bindings
        .iter()
        .any(|(binding, _)| topic_matches(binding, routing_key))
    {
        return Vec::new();
    }
    let mut named: Vec<&str> = Vec::new();
    for (binding, queue) in bindings {
        if named.len() == HINTS_PER_KEY || named.contains(&binding) {
            continue;
        }
        let Some(wider) = star_as_hash(binding) else {
            continue;
        };
        if topic_matches(&wider, routing_key) {
            tracing::info!(
                routing_key,
                binding_key = binding,
                queue,
                publisher,
                "a publication on `{routing_key}` reaches no subscription of this process; `{binding}` \
                 misses it by depth: `*` matches exactly one word, `#` any number (`{wider}` would match)"
            );
            named.push(binding);
        }
    }
    named
}

/// `binding_key` with each `*` word as `#`, if it has one.
fn star_as_hash(binding_key: &str) -> Option<String> {
    let mut any = false;
    let words: Vec<&str> = Words::new(binding_key)
        .map(|word| {
            if word == "*" {
                any = true;
                "#"
            } else {
                word
            }
        })
        .collect();
    any.then(|| words.join("."))
}

/// The words of a topic key, split at `.`, without allocating. The empty
/// key has no words; every other key has one more word than it has dots.
#[derive(Clone, Copy)]
struct Words<'a> {
    /// What is left to split; `None` once the last word was returned.
    rest: Option<&'a str>,
}

impl<'a> Words<'a> {
    fn new(key: &'a str) -> Self {
        Words {
            rest: (!key.is_empty()).then_some(key),
        }
    }

    fn is_done(&self) -> bool {
        self.rest.is_none()
    }
}

impl<'a> Iterator for Words<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let rest = self.rest?;
        match rest.split_once('.') {
            Some((word, tail)) => {
                self.rest = Some(tail);
                Some(word)
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(binding key, routing key, RabbitMQ 3.10.8's answer)`, each recorded
    /// on the broker: a queue bound with the binding key to a fresh topic
    /// exchange, one message published with the routing key.
    const RABBITMQ_3_10_8: &[(&str, &str, bool)] = &[
        ("a", "a", true),
        ("a", "b", false),
        ("a", "A", false),
        ("A.b", "a.b", false),
        ("a.b", "a.b", true),
        ("*", "a", true),
        ("*", "a.b", false),
        ("*", "", false),
        ("*", ".", false),
        ("*", "*", true),
        ("#", "", true),
        ("#", "a", true),
        ("#", "a.b.c", true),
        ("#", ".", true),
        ("#", "#", true),
        ("#", "..", true),
        ("", "", true),
        ("", "a", false),
        ("", ".", false),
        ("a.#", "a", true),
        ("a.#", "a.b", true),
        ("a.#", "a.b.c", true),
        ("a.#", "b.a", false),
        ("a.#", "", false),
        ("a.#", "a.", true),
        ("#.a", "a", true),
        ("#.a", "x.y.a", true),
        ("#.a", "a.x", false),
        ("#.a", ".a", true),
        ("a.#.b", "a.b", true),
        ("a.#.b", "a.x.b", true),
        ("a.#.b", "a.x.y.b", true),
        ("a.#.b", "a.x.y.c", false),
        ("a.#.b", "a.b.b", true),
        ("a.#.b", "a..b", true),
        ("a.b", "a..b", false),
        ("a..b", "a..b", true),
        ("a.*.b", "a..b", true),
        ("a.*.b", "a.b", false),
        ("#.#", "", true),
        ("#.#", "a", true),
        ("#.#", "a.b.c", true),
        ("*.#.*", "", false),
        ("*.#.*", "a", false),
        ("*.#.*", "a.b", true),
        ("*.#.*", "a.b.c.d", true),
        ("*.#.*", ".", true),
        ("a.*", "a", false),
        ("a.*", "a.b", true),
        ("a.*", "a.b.c", false),
        ("a.*", "a.", true),
        ("*.*", "a.b", true),
        ("*.*", "a", false),
        ("*.*", ".", true),
        ("a.", "a.", true),
        ("a.", "a", false),
        (".a", ".a", true),
        ("*.a", ".a", true),
        (".", ".", true),
        (".", "", false),
        ("#.", "a.", true),
        ("#.", "", false),
        ("#.", ".", true),
        ("#.", "a", false),
        ("#.*", "", false),
        ("#.*", "a", true),
        ("#.*", "a.b.c", true),
        ("a.#.#.b", "a.b", true),
        ("a.#.#.b", "a.x.y.b", true),
        ("#.b.#", "b", true),
        ("#.b.#", "a.b.c", true),
        ("#.b.#", "a.c", false),
        ("a.*.#", "a", false),
        ("a.*.#", "a.b", true),
        ("a.*.#", "a.b.c", true),
        ("a#", "a.b", false),
        ("a#", "a#", true),
        ("a*", "ab", false),
        ("a*", "a*", true),
        ("a", "*", false),
        ("a", "#", false),
        ("a.#.c.#.e", "a.b.c.d.e", true),
        ("a.#.c.#.e", "a.c.e", true),
        ("a.#.c.#.e", "a.e", false),
        ("#.a.#.a", "a.a", true),
        ("#.a.#.a", "a", false),
        ("#.a.#.a", "x.a.x.a", true),
        ("#.a.#.a", "a.a.x", false),
        (" a", "a", false),
        ("a", "a ", false),
        ("ä.#", "ä.b", true),
        ("ä", "a", false),
        ("#.*.#", "", false),
        ("#.*.#", "x", true),
        ("#.*.#", "x.y.z", true),
        ("#.#.#.#.x", "y.y.y.y.y.y.y.y.y.y.y.y", false),
        ("#.#.#.#.x", "y.y.y.y.y.y.y.y.y.y.y.y.x", true),
        ("*.*.*", "a.b.c", true),
        ("*.*.*", "a.b.c.d", false),
        ("ping", "ping", true),
        ("x.y", "x.y", true),
        ("x.y", "x.y.z", false),
    ];

    #[test]
    fn matches_like_rabbitmq() {
        let wrong: Vec<_> = RABBITMQ_3_10_8
            .iter()
            .filter(|(binding, routing, expected)| topic_matches(binding, routing) != *expected)
            .collect();
        assert!(wrong.is_empty(), "differs from RabbitMQ: {wrong:?}");
    }

    #[test]
    fn words_of_keys() {
        let words = |key| Words::new(key).collect::<Vec<_>>();
        assert!(words("").is_empty());
        assert_eq!(words("a"), ["a"]);
        assert_eq!(words("."), ["", ""]);
        assert_eq!(words("a..b"), ["a", "", "b"]);
        assert_eq!(words("a."), ["a", ""]);
    }

    #[test]
    fn near_misses_are_a_star_where_a_hash_would_match() {
        let bindings = [("sensors.*", "q1"), ("sensors.*.temp", "q2"), ("other.#", "q3")];
        assert_eq!(
            hint(
                "sensors.kitchen.temp",
                None,
                [("sensors.*", "q1"), ("other.#", "q3")]
            ),
            ["sensors.*"]
        );
        // One subscription matches: no hint.
        assert!(hint("sensors.kitchen.temp", None, bindings).is_empty());
        assert_eq!(
            hint("sensors.a.b.temp", None, bindings),
            ["sensors.*", "sensors.*.temp"]
        );
        // One subscription matches: no hint.
        assert!(hint("sensors.kitchen", None, bindings).is_empty());
        // Nothing close: no hint; `#` never misses by depth.
        assert!(hint("weather.today", None, bindings).is_empty());
        assert!(hint("x.y", None, [("x", "q"), ("x.#.z", "q")]).is_empty());
        // A `*` inside a word is a plain character.
        assert_eq!(star_as_hash("a*.*"), Some("a*.#".to_owned()));
        assert_eq!(star_as_hash("a.#"), None);
        // Fewer words than the stars ask for.
        assert_eq!(hint("a", None, [("*.*", "q")]), ["*.*"]);
    }

    #[test]
    fn near_misses_look_at_each_key_once_and_a_bounded_number_of_keys() {
        let misses = NearMisses::default();
        assert!(misses.first_time("a.b"));
        assert!(!misses.first_time("a.b"));
        for i in 1..NEAR_MISS_KEYS {
            assert!(misses.first_time(&format!("k{i}")));
        }
        assert!(!misses.first_time("one.too.many"));
        assert!(!misses.first_time("another"));
        assert_eq!(misses.checked.lock().unwrap().len(), NEAR_MISS_KEYS);
    }

    #[test]
    fn many_hashes_are_not_exponential() {
        let binding = ["#"; 100].join(".") + ".x";
        let routing = ["y"; 250].join(".");
        assert!(!topic_matches(&binding, &routing));
        assert!(topic_matches(&binding, &(routing.clone() + ".x")));
        let alternating = ["#", "a"].repeat(60).join(".") + ".b";
        assert!(!topic_matches(&alternating, &["a"; 120].join(".")));
    }
}
