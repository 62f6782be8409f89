//! The W3C trace context value (`traceparent`, `tracestate`): its ids,
//! parsing and formatting, and its header forms (message headers, AMQP
//! headers). A leaf: it imports nothing of the crate, so that messages and
//! the bus may carry it. What the runtime does with it (the context of a
//! run, stamping what it sends, the spans of `otel`) is in
//! [`crate::tracecontext`], which re-exports [`TraceContext`].

use std::cell::Cell;
use std::fmt;
use std::sync::Arc;

/// The headers of a message ([`crate::message::Headers`], the same type).
type Headers = serde_json::Map<String, serde_json::Value>;

/// The header naming the trace and the parent span of a message.
pub const TRACEPARENT: &str = "traceparent";
/// The header of vendor-specific trace state, passed on unchanged.
pub const TRACESTATE: &str = "tracestate";

/// Longest `traceparent` read (version 00 is 55 characters; later versions
/// may append fields): longer ones are ignored as oversized.
const MAX_TRACEPARENT: usize = 256;
/// Longest `tracestate` passed on (the W3C recommendation's 512 characters);
/// a longer one is dropped, the trace itself kept.
const MAX_TRACESTATE: usize = 512;

/// Where a message or a run stands in a trace: the trace id, the span id
/// that becomes the parent of what it starts, the trace flags and the
/// vendor trace state.
#[derive(Clone, PartialEq, Eq)]
pub struct TraceContext {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    flags: u8,
    state: Option<Arc<str>>,
}

impl TraceContext {
    /// A context from its parts; `None` when the trace id or the span id
    /// is all zeros (invalid in W3C trace context).
    pub fn new(trace_id: [u8; 16], span_id: [u8; 8], flags: u8) -> Option<Self> {
        (trace_id != [0; 16] && span_id != [0; 8]).then_some(TraceContext {
            trace_id,
            span_id,
            flags,
            state: None,
        })
    }

    /// A new trace (sampled), as a message sent outside any run starts one.
    pub fn root() -> Self {
        let (hi, lo) = (random_u64(), random_u64());
        let mut trace_id = [0; 16];
        trace_id[..8].copy_from_slice(&hi.to_be_bytes());
        trace_id[8..].copy_from_slice(&lo.to_be_bytes());
        TraceContext {
            trace_id,
            span_id: random_u64().to_be_bytes(),
            flags: SAMPLED,
            state: None,
        }
    }

    /// The same trace with a new span id: a run that continues this context.
    pub fn child(&self) -> Self {
        TraceContext {
            span_id: random_u64().to_be_bytes(),
            ..self.clone()
        }
    }

    /// Parses a `traceparent` header (and a `tracestate`, kept when it is
    /// not too long). Version 00 must be exactly 55 characters; a later
    /// version may carry more fields after a `-`; version `ff` is invalid.
    pub fn parse(traceparent: &str, tracestate: Option<&str>) -> Result<Self, &'static str> {
        if traceparent.len() > MAX_TRACEPARENT {
            return Err("oversized");
        }
        let b = traceparent.as_bytes();
        if b.len() < 55 || b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
            return Err("not version-traceid-parentid-flags");
        }
        let version = hex::<1>(&b[..2]).ok_or("version is not lower-case hex")?[0];
        match version {
            0xff => return Err("version ff is invalid"),
            0 if b.len() != 55 => return Err("version 00 with extra characters"),
            _ if b.len() > 55 && b[55] != b'-' => return Err("fields after the flags without a `-`"),
            _ => {}
        }
        let trace_id = hex::<16>(&b[3..35]).ok_or("trace id is not 32 lower-case hex digits")?;
        let span_id = hex::<8>(&b[36..52]).ok_or("parent id is not 16 lower-case hex digits")?;
        let flags = hex::<1>(&b[53..55]).ok_or("flags are not lower-case hex")?[0];
        let mut context = TraceContext::new(trace_id, span_id, flags).ok_or("an id is all zeros")?;
        context.state = tracestate
            .map(str::trim)
            .filter(|s| !s.is_empty() && s.len() <= MAX_TRACESTATE)
            .map(Arc::from);
        Ok(context)
    }

    /// Reads the context of a message's headers: `None` without a
    /// `traceparent`, or with one that does not parse (logged at debug
    /// level, never an error).
    pub fn from_headers(headers: &Headers) -> Option<Self> {
        let value = headers.get(TRACEPARENT)?;
        let state = headers.get(TRACESTATE).and_then(|v| v.as_str());
        let parsed = match value.as_str() {
            Some(text) => TraceContext::parse(text, state),
            None => Err("not a string"),
        };
        match parsed {
            Ok(context) => {
                if state.is_some_and(|s| s.len() > MAX_TRACESTATE) {
                    tracing::debug!(len = state.map_or(0, str::len), "oversized tracestate dropped");
                }
                Some(context)
            }
            Err(reason) => {
                let shown: String = value.to_string().chars().take(80).collect();
                tracing::debug!(traceparent = %shown, len = value.to_string().len(), reason, "malformed traceparent ignored: a new trace starts");
                None
            }
        }
    }

    /// The trace id.
    pub fn trace_id(&self) -> [u8; 16] {
        self.trace_id
    }

    /// The span id (the parent of what this context starts).
    pub fn span_id(&self) -> [u8; 8] {
        self.span_id
    }

    /// The trace flags (bit 0: sampled).
    pub fn flags(&self) -> u8 {
        self.flags
    }

    /// The vendor trace state passed on with the trace, if any.
    pub fn trace_state(&self) -> Option<&str> {
        self.state.as_deref()
    }

    /// Sets the vendor trace state passed on with the trace.
    pub fn with_trace_state(mut self, state: Option<&str>) -> Self {
        self.state = state.filter(|s| !s.is_empty()).map(Arc::from);
        self
    }

    /// The `traceparent` header's value (version 00).
    pub fn traceparent(&self) -> String {
        let mut text = String::with_capacity(55);
        text.push_str("00-");
        push_hex(&mut text, &self.trace_id);
        text.push('-');
        push_hex(&mut text, &self.span_id);
        text.push('-');
        push_hex(&mut text, &[self.flags]);
        text
    }

    /// Writes `traceparent` (and `tracestate` when there is one) into headers.
    pub fn inject(&self, headers: &mut Headers) {
        headers.insert(TRACEPARENT.to_owned(), self.traceparent().into());
        if let Some(state) = &self.state {
            headers.insert(TRACESTATE.to_owned(), state.to_string().into());
        }
    }
}

impl fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceContext")
            .field("traceparent", &self.traceparent())
            .field("tracestate", &self.state)
            .finish()
    }
}

impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.traceparent())
    }
}

/// The sampled flag.
const SAMPLED: u8 = 1;

fn hex<const N: usize>(digits: &[u8]) -> Option<[u8; N]> {
    fn value(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = value(digits[2 * i])? << 4 | value(digits[2 * i + 1])?;
    }
    Some(out)
}

fn push_hex(text: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        text.push(HEX[usize::from(b >> 4)] as char);
        text.push(HEX[usize::from(b & 0xf)] as char);
    }
}

/// A non-zero random number: splitmix64 on a per-thread state seeded from
/// the system's random source, so ids cost no lock and no system call.
fn random_u64() -> u64 {
    thread_local! {
        static STATE: Cell<u64> = Cell::new(uuid::Uuid::new_v4().as_u64_pair().0);
    }
    STATE.with(|state| loop {
        let s = state.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        state.set(s);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        if z != 0 {
            return z;
        }
    })
}

/// The context the headers of a message from the wire carry.
pub(crate) fn from_wire(headers: &Headers) -> Option<TraceContext> {
    if headers.is_empty() {
        return None;
    }
    TraceContext::from_headers(headers)
}

/// Writes the context into the AMQP headers of a message to publish.
#[cfg(feature = "amqp")]
pub(crate) fn to_table(context: Option<&TraceContext>, table: &mut lapin::types::FieldTable) {
    use lapin::types::{AMQPValue, LongString};
    let Some(context) = context else { return };
    let text = |s: &str| AMQPValue::LongString(LongString::from(s.as_bytes()));
    table.insert(TRACEPARENT.into(), text(&context.traceparent()));
    if let Some(state) = context.trace_state() {
        table.insert(TRACESTATE.into(), text(state));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_and_formats_the_w3c_example() {
        let c = TraceContext::parse(EXAMPLE, Some("rojo=00f067aa0ba902b7")).unwrap();
        assert_eq!(c.traceparent(), EXAMPLE);
        assert_eq!(c.flags(), 1);
        assert_eq!(c.trace_state(), Some("rojo=00f067aa0ba902b7"));
        let mut headers = Headers::new();
        c.inject(&mut headers);
        assert_eq!(TraceContext::from_headers(&headers), Some(c.clone()));
        let child = c.child();
        assert_eq!(child.trace_id(), c.trace_id());
        assert_ne!(child.span_id(), c.span_id());
        assert_eq!(child.trace_state(), c.trace_state());
    }

    #[test]
    fn malformed_and_oversized_values_are_refused() {
        let bad = [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        ];
        for text in bad {
            assert!(TraceContext::parse(text, None).is_err(), "{text:?}");
        }
        let long = format!(
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-{}",
            "a".repeat(300)
        );
        assert_eq!(TraceContext::parse(&long, None), Err("oversized"));
        // A later version may append fields.
        let later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future";
        assert!(TraceContext::parse(later, None).is_ok());
        let mut headers = Headers::new();
        headers.insert(TRACEPARENT.into(), serde_json::json!(42));
        assert_eq!(TraceContext::from_headers(&headers), None);
        let state = "k=".to_owned() + &"v".repeat(600);
        let c = TraceContext::parse(EXAMPLE, Some(&state)).unwrap();
        assert_eq!(c.trace_state(), None, "an oversized tracestate is dropped");
    }

    #[test]
    fn roots_are_new_traces() {
        let (a, b) = (TraceContext::root(), TraceContext::root());
        assert_ne!(a.trace_id(), b.trace_id());
        assert_eq!(TraceContext::parse(&a.traceparent(), None), Ok(a));
    }
}
