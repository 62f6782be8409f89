//! TEMPORARY STUB (replaced by the real matcher).
#![allow(missing_docs)]
pub fn topic_matches(binding_key: &str, routing_key: &str) -> bool {
    fn m(b: &[&str], r: &[&str]) -> bool {
        match b.split_first() {
            None => r.is_empty(),
            Some((&"#", rest)) => (0..=r.len()).any(|i| m(rest, &r[i..])),
            Some((w, rest)) => !r.is_empty() && (*w == "*" || *w == r[0]) && m(rest, &r[1..]),
        }
    }
    let b: Vec<&str> = binding_key.split('.').collect();
    let r: Vec<&str> = routing_key.split('.').collect();
    m(&b, &r)
}
pub fn validate_binding_key(key: &str) -> Result<(), String> { if key.len() > 255 { Err("too long".into()) } else { Ok(()) } }
