//! A guard on the byte stream from the broker that makes poison messages
//! harmless before lapin parses them.
//!
//! amq-protocol 10.6, lapin's parser, maps every AMQP short string through
//! `String::from_utf8` and parses field tables recursively. A message whose
//! `type`, `app_id` or another short-string property, or a header name, is
//! not UTF-8 therefore fails to parse, and lapin declares the connection
//! lost for good (the agent's queues vanish, it never receives again); a
//! header table nested a few thousand levels deep overflows the stack of
//! lapin's I/O thread and aborts the process. Anyone who may publish can do
//! either, and sent to the `admin` fanout exchange it hits every munggoggo
//! process on the broker.
//!
//! The guard sits between the socket (above TLS) and lapin and follows the
//! frame stream (type u8, channel u16, size u32, payload, 0xCE). Body
//! frames and heartbeats pass untouched. Method and content-header frames
//! are checked as lapin would parse them:
//!
//! - every short string of a content header's properties and of the
//!   methods that carry broker- or publisher-chosen strings (`basic.deliver`,
//!   `basic.return`, `basic.get-ok`, `basic.cancel`, `channel.close`,
//!   `connection.close`) must be UTF-8: each invalid byte becomes `?`,
//!   which keeps every length;
//! - the `headers` table must be well formed (known field types, lengths
//!   that fit, UTF-8 field names, which are repaired in place) and nested
//!   at most [`MAX_DEPTH`] levels: otherwise it is replaced by an empty
//!   table and the frame size rewritten;
//! - properties that do not parse at all (truncated, trailing bytes) are
//!   replaced by none.
//!
//! The repaired message then reaches the agent as an ordinary delivery and
//! takes the usual bad-input path (a `type` of `?` has no handler, so it is
//! logged, traced and rejected). Each repair is counted
//! ([`repaired_frames`]) and logged as one WARN line naming the connection,
//! channel, queue (the consumer tag, which is the queue name) and fault.
//!
//! The hot path stays cheap: frames complete within one read are checked
//! where they lie; only a frame split across reads, or one whose length
//! changes, is copied.
//!
//! The upstream fix this stands in for: amq-protocol accepting non-UTF-8
//! short strings (as bytes, or lossily) and parsing tables with a depth
//! limit or without recursion.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

mod check;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzz;
mod stream;

use check::{apply, check_content_header, check_method, Faults, Shrink};
pub(crate) use stream::Guarded;

/// The deepest nesting of tables and arrays a `headers` table may have
/// (the table itself is level 1).
pub const MAX_DEPTH: usize = 64;

/// Method and content-header frames larger than this pass unchecked (the
/// broker's `frame_max` is 128 KiB by default).
const MAX_HELD: usize = 16 << 20;
/// Buffers grown past this are shrunk back once drained.
const KEEP: usize = 256 << 10;

const FRAME_HEADER: usize = 7;
const FRAME_END: u8 = 0xCE;
const METHOD: u8 = 1;
const CONTENT_HEADER: u8 = 2;
/// The first byte of `AMQP\0\0\x09\x01`, the protocol header a broker sends
/// back before closing when it refuses the client's version.
const PROTOCOL_HEADER: u8 = b'A';

static REPAIRED: AtomicU64 = AtomicU64::new(0);

/// How many malformed frames the guards of this process have repaired
/// since it started (each logged as one WARN line).
pub fn repaired_frames() -> u64 {
    REPAIRED.load(Ordering::Relaxed)
}

/// One repaired frame.
#[derive(Debug)]
pub(crate) struct Repair {
    /// The channel the frame came on.
    pub(crate) channel: u16,
    /// The frame: `basic.deliver`, `content header`, ...
    pub(crate) frame: &'static str,
    /// The consumer tag (the queue name) of the delivery, when known.
    pub(crate) queue: Option<String>,
    /// What was wrong.
    pub(crate) faults: Faults,
}

/// Where the scanner is in the frame stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a frame header (`head_len` bytes of it so far).
    Head,
    /// Passing the rest of an unchecked frame.
    Pass(u64),
    /// Collecting the rest of a checked frame in `held`.
    Hold(usize),
    /// The stream no longer makes sense as frames (a frame did not end
    /// with 0xCE): everything passes, lapin reports the error.
    Lost,
}

/// Follows the frame stream from the broker and repairs malformed frames.
/// Independent of I/O: [`Scanner::feed`] takes each chunk as it is read.
pub(crate) struct Scanner {
    state: State,
    head: [u8; FRAME_HEADER],
    head_len: usize,
    held: Vec<u8>,
    /// The consumer tag of the last delivery per channel.
    tags: HashMap<u16, Vec<u8>>,
    repairs: Vec<Repair>,
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner {
            state: State::Head,
            head: [0; FRAME_HEADER],
            head_len: 0,
            held: Vec::new(),
            tags: HashMap::new(),
            repairs: Vec::new(),
        }
    }
}

/// Whether frames of this type are checked.
fn checked(frame_type: u8) -> bool {
    frame_type == METHOD || frame_type == CONTENT_HEADER
}

/// The whole length of a frame from its header.
fn frame_len(head: &[u8]) -> u64 {
    if head[0] == PROTOCOL_HEADER {
        return 8;
    }
    let size = u32::from_be_bytes([head[3], head[4], head[5], head[6]]);
    FRAME_HEADER as u64 + u64::from(size) + 1
}

impl Scanner {
    /// Takes the next `chunk` read from the broker, repairing it in place.
    /// Returns how many leading bytes of `chunk` are ready for lapin as
    /// they are; the rest of the chunk, as far as it is ready, was appended
    /// to `out` (to be given to lapin after them), and a frame not yet
    /// complete stays in the scanner.
    pub(crate) fn feed(&mut self, chunk: &mut [u8], out: &mut Vec<u8>) -> usize {
        let len = chunk.len();
        // Once set, chunk[..kept] stays in place and everything after it
        // goes through `out`.
        let mut kept: Option<usize> = None;
        let mut i = 0;
        while i < len {
            match self.state {
                State::Lost => {
                    if kept.is_some() {
                        out.extend_from_slice(&chunk[i..]);
                    }
                    i = len;
                }
                State::Pass(left) => {
                    let n = left.min((len - i) as u64) as usize;
                    if kept.is_some() {
                        out.extend_from_slice(&chunk[i..i + n]);
                    }
                    i += n;
                    self.state = match left - n as u64 {
                        0 => State::Head,
                        left => State::Pass(left),
                    };
                }
                State::Hold(left) => {
                    kept.get_or_insert(i);
                    let n = left.min(len - i);
                    self.held.extend_from_slice(&chunk[i..i + n]);
                    i += n;
                    if n == left {
                        self.state = State::Head;
                        self.finish_held(out);
                    } else {
                        self.state = State::Hold(left - n);
                    }
                }
                State::Head if self.head_len == 0 && len - i >= FRAME_HEADER => {
                    let rest = &chunk[i..];
                    let total = frame_len(rest);
                    let frame_type = rest[0];
                    if !checked(frame_type) || total > MAX_HELD as u64 {
                        if (rest.len() as u64) >= total {
                            let end = i + total as usize;
                            if kept.is_some() {
                                out.extend_from_slice(&chunk[i..end]);
                            }
                            i = end;
                        } else {
                            if kept.is_some() {
                                out.extend_from_slice(rest);
                            }
                            self.state = State::Pass(total - rest.len() as u64);
                            i = len;
                        }
                        continue;
                    }
                    let total = total as usize;
                    if rest.len() >= total {
                        let end = i + total;
                        if kept.is_none() {
                            // The frame lies whole in this chunk: check it there.
                            match self.check(&mut chunk[i..end]) {
                                None => {
                                    i = end;
                                    continue;
                                }
                                Some(shrink) => {
                                    kept = Some(i);
                                    self.held.clear();
                                    self.held.extend_from_slice(&chunk[i..end]);
                                    apply(&mut self.held, shrink);
                                    out.extend_from_slice(&self.held);
                                    self.trim();
                                    i = end;
                                    continue;
                                }
                            }
                        }
                        self.held.clear();
                        self.held.extend_from_slice(&chunk[i..end]);
                        self.finish_held(out);
                        i = end;
                    } else {
                        kept.get_or_insert(i);
                        self.held.clear();
                        self.held.extend_from_slice(rest);
                        self.state = State::Hold(total - rest.len());
                        i = len;
                    }
                }
                State::Head => {
                    // A frame header split across reads.
                    let n = (FRAME_HEADER - self.head_len).min(len - i);
                    self.head[self.head_len..self.head_len + n].copy_from_slice(&chunk[i..i + n]);
                    let frame_type = self.head[0];
                    if checked(frame_type) {
                        kept.get_or_insert(i);
                    } else if kept.is_some() {
                        out.extend_from_slice(&chunk[i..i + n]);
                    }
                    i += n;
                    self.head_len += n;
                    if self.head_len < FRAME_HEADER {
                        continue;
                    }
                    self.head_len = 0;
                    let total = frame_len(&self.head);
                    if !checked(frame_type) {
                        self.state = State::Pass(total - FRAME_HEADER as u64);
                    } else if total > MAX_HELD as u64 {
                        out.extend_from_slice(&self.head);
                        self.state = State::Pass(total - FRAME_HEADER as u64);
                    } else {
                        self.held.clear();
                        self.held.extend_from_slice(&self.head);
                        self.state = State::Hold(total as usize - FRAME_HEADER);
                    }
                }
            }
        }
        kept.unwrap_or(len)
    }

    /// The stream ended: whatever part of a frame is held goes to `out` as
    /// it is (lapin sees a truncated frame, then the end).
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>) {
        if self.head_len > 0 && checked(self.head[0]) {
            out.extend_from_slice(&self.head[..self.head_len]);
        }
        if let State::Hold(_) = self.state {
            out.extend_from_slice(&self.held);
        }
        self.head_len = 0;
        self.held.clear();
        self.state = State::Head;
    }

    /// Takes the repairs made since the last call.
    pub(crate) fn take_repairs(&mut self) -> Vec<Repair> {
        std::mem::take(&mut self.repairs)
    }

    /// Whether repairs are waiting to be taken.
    pub(crate) fn has_repairs(&self) -> bool {
        !self.repairs.is_empty()
    }

    /// Checks the complete frame in `held` and appends it to `out`.
    fn finish_held(&mut self, out: &mut Vec<u8>) {
        let mut held = std::mem::take(&mut self.held);
        if let Some(shrink) = self.check(&mut held) {
            apply(&mut held, shrink);
        }
        out.extend_from_slice(&held);
        self.held = held;
        self.trim();
    }

    fn trim(&mut self) {
        if self.held.capacity() > KEEP {
            self.held = Vec::new();
        }
    }

    /// Checks one whole method or content-header frame, repairing what can
    /// be repaired in place; returns the cut that the rest needs.
    fn check(&mut self, frame: &mut [u8]) -> Option<Shrink> {
        let end = frame.len() - 1;
        if frame[end] != FRAME_END {
            self.state = State::Lost;
            return None;
        }
        let channel = u16::from_be_bytes([frame[1], frame[2]]);
        let (faults, shrink, name) = if frame[0] == METHOD {
            let payload = &mut frame[FRAME_HEADER..end];
            let (faults, name, tag) = check_method(payload);
            if let Some(range) = tag {
                let tag = self.tags.entry(channel).or_default();
                tag.clear();
                tag.extend_from_slice(&payload[range]);
            }
            (faults, None, name)
        } else {
            let (faults, shrink) = check_content_header(frame);
            (faults, shrink, "content header")
        };
        if !faults.is_empty() {
            REPAIRED.fetch_add(1, Ordering::Relaxed);
            let queue = self
                .tags
                .get(&channel)
                .map(|tag| String::from_utf8_lossy(tag).into_owned());
            self.repairs.push(Repair {
                channel,
                frame: name,
                queue,
                faults,
            });
        }
        shrink
    }
}

#[cfg(test)]
mod tests;
