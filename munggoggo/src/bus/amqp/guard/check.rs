//! The checks and repairs of one whole frame, mirroring how amq-protocol
//! parses it.

use std::fmt;
use std::ops::Range;

use super::{FRAME_HEADER, MAX_DEPTH};

/// What was wrong with a frame, as a set of flags.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Faults(u32);

impl Faults {
    const NAMES: [&'static str; 18] = [
        "content_type not UTF-8",
        "content_encoding not UTF-8",
        "correlation_id not UTF-8",
        "reply_to not UTF-8",
        "expiration not UTF-8",
        "message_id not UTF-8",
        "type not UTF-8",
        "user_id not UTF-8",
        "app_id not UTF-8",
        "cluster_id not UTF-8",
        "header name not UTF-8",
        "headers nested too deep",
        "headers malformed",
        "properties malformed",
        "consumer tag not UTF-8",
        "exchange not UTF-8",
        "routing key not UTF-8",
        "reply text not UTF-8",
    ];
    const HEADER_NAME: Faults = Faults(1 << 10);
    const TOO_DEEP: Faults = Faults(1 << 11);
    const HEADERS: Faults = Faults(1 << 12);
    const PROPERTIES: Faults = Faults(1 << 13);
    const CONSUMER_TAG: Faults = Faults(1 << 14);
    const EXCHANGE: Faults = Faults(1 << 15);
    const ROUTING_KEY: Faults = Faults(1 << 16);
    const REPLY_TEXT: Faults = Faults(1 << 17);

    /// The fault of a short-string property, by its flag bit.
    fn property(bit: u32) -> Faults {
        let index = match bit {
            15 => 0,
            14 => 1,
            10 => 2,
            9 => 3,
            8 => 4,
            7 => 5,
            5 => 6,
            4 => 7,
            3 => 8,
            2 => 9,
            _ => return Faults::PROPERTIES,
        };
        Faults(1 << index)
    }

    pub(super) fn is_empty(self) -> bool {
        self.0 == 0
    }

    fn add(&mut self, other: Faults) {
        self.0 |= other.0;
    }

    /// Whether parts of the frame were dropped (rather than only bytes
    /// replaced).
    pub(super) fn dropped(self) -> bool {
        self.0 & (Self::TOO_DEEP.0 | Self::HEADERS.0 | Self::PROPERTIES.0) != 0
    }
}

impl fmt::Display for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (i, name) in Self::NAMES.iter().enumerate() {
            if self.0 & (1 << i) != 0 {
                if !first {
                    f.write_str(", ")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Faults({self})")
    }
}

/// A part of a frame to cut out and replace, which changes its length.
pub(super) struct Shrink {
    range: Range<usize>,
    with: &'static [u8],
}

/// Checks the short strings of the methods that carry strings chosen by
/// publishers or the broker. Returns the faults, the method's name and,
/// for a delivery, where its consumer tag is.
pub(super) fn check_method(payload: &mut [u8]) -> (Faults, &'static str, Option<Range<usize>>) {
    use Field::{Skip, Str};
    if payload.len() < 4 {
        return (Faults::default(), "method", None);
    }
    let class = u16::from_be_bytes([payload[0], payload[1]]);
    let method = u16::from_be_bytes([payload[2], payload[3]]);
    let (name, fields): (&'static str, &[Field]) = match (class, method) {
        (60, 60) => (
            "basic.deliver",
            &[
                Str(Faults::CONSUMER_TAG),
                Skip(9),
                Str(Faults::EXCHANGE),
                Str(Faults::ROUTING_KEY),
            ],
        ),
        (60, 50) => (
            "basic.return",
            &[
                Skip(2),
                Str(Faults::REPLY_TEXT),
                Str(Faults::EXCHANGE),
                Str(Faults::ROUTING_KEY),
            ],
        ),
        (60, 71) => (
            "basic.get-ok",
            &[Skip(9), Str(Faults::EXCHANGE), Str(Faults::ROUTING_KEY)],
        ),
        (60, 30) => ("basic.cancel", &[Str(Faults::CONSUMER_TAG)]),
        (20, 40) => ("channel.close", &[Skip(2), Str(Faults::REPLY_TEXT)]),
        (10, 50) => ("connection.close", &[Skip(2), Str(Faults::REPLY_TEXT)]),
        _ => return (Faults::default(), "method", None),
    };
    let mut faults = Faults::default();
    let mut tag = None;
    let mut at = 4;
    for (index, field) in fields.iter().enumerate() {
        match *field {
            Skip(n) => at += n,
            Str(fault) => {
                let Some(&n) = payload.get(at) else { break };
                let range = at + 1..at + 1 + usize::from(n);
                let Some(text) = payload.get_mut(range.clone()) else {
                    break;
                };
                if repair_utf8(text) {
                    faults.add(fault);
                }
                if index == 0 && (class, method) == (60, 60) {
                    tag = Some(range.clone());
                }
                at = range.end;
            }
        }
    }
    (faults, name, tag)
}

/// A field of a checked method.
enum Field {
    /// Fixed-size fields to step over.
    Skip(usize),
    /// A short string, and the fault it is.
    Str(Faults),
}

/// Cuts `shrink.range` out of the whole frame in `frame`, puts
/// `shrink.with` in its place and rewrites the frame size.
pub(super) fn apply(frame: &mut Vec<u8>, shrink: Shrink) {
    frame.splice(shrink.range, shrink.with.iter().copied());
    let size = (frame.len() - FRAME_HEADER - 1) as u32;
    frame[3..FRAME_HEADER].copy_from_slice(&size.to_be_bytes());
}

/// Checks a whole content-header frame the way amq-protocol parses it:
/// class, weight, body size, one 16-bit flag word, the properties it
/// flags, and nothing after them.
pub(super) fn check_content_header(frame: &mut [u8]) -> (Faults, Option<Shrink>) {
    const FLAGS: usize = FRAME_HEADER + 12;
    const PROPS: usize = FLAGS + 2;
    let end = frame.len() - 1;
    let mut faults = Faults::default();
    if end < PROPS {
        // Too short to repair; lapin reports the error.
        return (faults, None);
    }
    let flags = u16::from_be_bytes([frame[FLAGS], frame[FLAGS + 1]]);
    let mut shrink = None;
    let mut at = PROPS;
    let mut malformed = false;
    for bit in (2..=15u32).rev() {
        if flags & (1 << bit) == 0 {
            continue;
        }
        match bit {
            13 => {
                let Some(len) = read_u32(&frame[..end], at) else {
                    malformed = true;
                    break;
                };
                let start = at + 4;
                let Some(stop) = start.checked_add(len).filter(|&s| s <= end) else {
                    malformed = true;
                    break;
                };
                if let Err(bad) = check_table(&mut frame[start..stop], 1, &mut faults) {
                    faults.add(bad);
                    shrink = Some(Shrink {
                        range: at..stop,
                        with: &[0, 0, 0, 0],
                    });
                }
                at = stop;
            }
            12 | 11 => at += 1,
            6 => at += 8,
            _ => {
                let Some(&n) = frame[..end].get(at) else {
                    malformed = true;
                    break;
                };
                let range = at + 1..at + 1 + usize::from(n);
                let Some(text) = frame[..end].get_mut(range.clone()) else {
                    malformed = true;
                    break;
                };
                if repair_utf8(text) {
                    faults.add(Faults::property(bit));
                }
                at = range.end;
            }
        }
        if at > end {
            malformed = true;
            break;
        }
    }
    if malformed || at != end {
        faults.add(Faults::PROPERTIES);
        shrink = Some(Shrink {
            range: FLAGS..end,
            with: &[0, 0],
        });
    }
    (faults, shrink)
}

fn read_u32(buf: &[u8], at: usize) -> Option<usize> {
    let bytes = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize)
}

/// Checks the entries of a field table (without its length), repairing
/// field names in place. `Err` says why the table must go.
fn check_table(buf: &mut [u8], depth: usize, faults: &mut Faults) -> Result<(), Faults> {
    if depth > MAX_DEPTH {
        return Err(Faults::TOO_DEEP);
    }
    let mut at = 0;
    while at < buf.len() {
        let n = usize::from(buf[at]);
        let name = buf.get_mut(at + 1..at + 1 + n).ok_or(Faults::HEADERS)?;
        if repair_utf8(name) {
            faults.add(Faults::HEADER_NAME);
        }
        at += 1 + n;
        check_value(buf, &mut at, depth, faults)?;
    }
    Ok(())
}

/// Checks the values of a field array (without its length).
fn check_array(buf: &mut [u8], depth: usize, faults: &mut Faults) -> Result<(), Faults> {
    if depth > MAX_DEPTH {
        return Err(Faults::TOO_DEEP);
    }
    let mut at = 0;
    while at < buf.len() {
        check_value(buf, &mut at, depth, faults)?;
    }
    Ok(())
}

/// Checks one typed value at `*at` and steps over it, with the types and
/// sizes amq-protocol (and RabbitMQ) use.
fn check_value(buf: &mut [u8], at: &mut usize, depth: usize, faults: &mut Faults) -> Result<(), Faults> {
    let kind = *buf.get(*at).ok_or(Faults::HEADERS)?;
    *at += 1;
    let size = match kind {
        b'V' => 0,
        b't' | b'b' | b'B' => 1,
        b's' | b'U' | b'u' => 2,
        b'I' | b'i' | b'f' => 4,
        b'D' => 5,
        b'L' | b'l' | b'd' | b'T' => 8,
        b'S' | b'x' | b'F' | b'A' => {
            let len = read_u32(buf, *at).ok_or(Faults::HEADERS)?;
            let start = *at + 4;
            let stop = start
                .checked_add(len)
                .filter(|&s| s <= buf.len())
                .ok_or(Faults::HEADERS)?;
            match kind {
                b'F' => check_table(&mut buf[start..stop], depth + 1, faults)?,
                b'A' => check_array(&mut buf[start..stop], depth + 1, faults)?,
                _ => {}
            }
            4 + len
        }
        _ => return Err(Faults::HEADERS),
    };
    *at = at
        .checked_add(size)
        .filter(|&s| s <= buf.len())
        .ok_or(Faults::HEADERS)?;
    Ok(())
}

/// Replaces every byte of an invalid UTF-8 sequence with `?`; returns
/// whether anything changed.
pub(super) fn repair_utf8(text: &mut [u8]) -> bool {
    let mut changed = false;
    let mut from = 0;
    while let Err(e) = std::str::from_utf8(&text[from..]) {
        let bad = from + e.valid_up_to();
        let n = e.error_len().unwrap_or(text.len() - bad);
        text[bad..bad + n].fill(b'?');
        changed = true;
        from = bad + n;
    }
    changed
}
