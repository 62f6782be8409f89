//! The guard's invariants, checked on any input. The fuzz targets of
//! `munggoggo/fuzz/` call these (feature `fuzzing`, as
//! `bus::amqp::__fuzz`), and a unit test replays the committed seed
//! corpus through them on every `cargo test`. Each function panics when
//! an invariant fails.
//!
//! [`bytes()`] takes arbitrary bytes as the stream from the broker and checks
//! what holds for any stream: the frames keep their boundaries, types and
//! channels; what is not checked passes untouched; a method keeps its
//! length and only gains `?`s; a checked content header parses as lapin
//! parses it; every changed frame is reported and nothing else; the
//! result is the same however the stream is split into reads; and the
//! output is a fixed point (guarding it again changes nothing).
//!
//! [`frames()`] builds a well-formed frame sequence (with `arbitrary`) whose
//! only faults are those the guard repairs (non-UTF-8 short strings,
//! header tables too deep or with an unknown field type, trailing bytes
//! after the properties), computes the repaired sequence independently,
//! and requires the guard's output to be exactly that, to parse whole
//! with amq-protocol and to come with one report per repaired frame
//! naming its channel, frame and queue.

use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use amq_protocol::frame::parse_frame;
use arbitrary::{Result, Unstructured};
use futures_io::AsyncRead;

use super::{Guarded, Scanner, CONTENT_HEADER, FRAME_END, FRAME_HEADER, MAX_DEPTH, METHOD, PROTOCOL_HEADER};

/// A repair as compared here: channel, frame, queue and faults.
type Report = (u16, &'static str, Option<String>, String);

/// Runs a fresh scanner over `stream` cut into reads of `sizes` (cycled;
/// the whole stream at once when empty) and returns what lapin would read
/// and the repairs.
fn scan(stream: &[u8], sizes: &[usize]) -> (Vec<u8>, Vec<Report>) {
    let mut scanner = Scanner::default();
    let mut seen = Vec::with_capacity(stream.len());
    let mut out = Vec::new();
    let mut repairs = Vec::new();
    let mut rest = stream;
    let mut sizes = sizes.iter().copied().cycle();
    while !rest.is_empty() {
        let n = sizes.next().unwrap_or(rest.len()).clamp(1, rest.len());
        let mut chunk = rest[..n].to_vec();
        rest = &rest[n..];
        let ready = scanner.feed(&mut chunk, &mut out);
        assert!(ready <= n, "feed reported {ready} ready bytes of a chunk of {n}");
        seen.extend_from_slice(&chunk[..ready]);
        seen.append(&mut out);
        let taken = scanner.take_repairs();
        repairs.extend(
            taken
                .into_iter()
                .map(|r| (r.channel, r.frame, r.queue, r.faults.to_string())),
        );
        assert!(!scanner.has_repairs());
    }
    scanner.finish(&mut out);
    seen.append(&mut out);
    (seen, repairs)
}

/// A broker that returns `stream` in reads of `sizes` (cycled).
struct Broker<'a> {
    rest: &'a [u8],
    sizes: &'a [usize],
    at: usize,
}

impl AsyncRead for Broker<'_> {
    fn poll_read(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut [u8]) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let size = match this.sizes {
            [] => usize::MAX,
            sizes => sizes[this.at % sizes.len()],
        };
        this.at += 1;
        let n = size.max(1).min(buf.len()).min(this.rest.len());
        buf[..n].copy_from_slice(&this.rest[..n]);
        this.rest = &this.rest[n..];
        Poll::Ready(Ok(n))
    }
}

/// Reads `stream` through a [`Guarded`] stream, as lapin does, with read
/// buffers of `reads` bytes (cycled) from a broker that returns reads of
/// `chunks` bytes.
fn read_guarded(stream: &[u8], chunks: &[usize], reads: &[usize]) -> Vec<u8> {
    let broker = Broker {
        rest: stream,
        sizes: chunks,
        at: 0,
    };
    let mut guarded = Guarded::new(broker, "fuzz");
    let mut cx = Context::from_waker(Waker::noop());
    let mut seen = Vec::with_capacity(stream.len());
    let mut buf = vec![0; 1 << 16];
    // Every read returns at least a byte until the end: a bound on the
    // reads turns a hang into a failure.
    for i in 0..=2 * stream.len() + 2 {
        let size = match reads {
            [] => buf.len(),
            reads => reads[i % reads.len()].clamp(1, buf.len()),
        };
        match Pin::new(&mut guarded).poll_read(&mut cx, &mut buf[..size]) {
            Poll::Ready(Ok(0)) => return seen,
            Poll::Ready(Ok(n)) => {
                assert!(n <= size);
                seen.extend_from_slice(&buf[..n]);
            }
            other => panic!("the guarded stream returned {other:?} from a broker always ready"),
        }
    }
    panic!(
        "the guarded stream did not end after {} reads",
        2 * stream.len() + 3
    )
}

/// The frames of a stream as the guard delimits them.
struct Split<'a> {
    frames: Vec<&'a [u8]>,
    /// What follows the last whole frame: an incomplete frame, or
    /// everything from a checked frame without its end byte on.
    rest: &'a [u8],
    /// Whether `rest` starts with a checked frame without its end byte.
    lost: bool,
}

/// Delimits the frames of `stream`: type, channel, size, payload, end
/// byte; `AMQP` and four bytes for a protocol header.
fn split(stream: &[u8]) -> Split<'_> {
    let mut frames = Vec::new();
    let mut at = 0;
    while stream.len() - at >= FRAME_HEADER {
        let head = &stream[at..];
        let total = if head[0] == PROTOCOL_HEADER {
            8
        } else {
            let size = u32::from_be_bytes([head[3], head[4], head[5], head[6]]);
            FRAME_HEADER as u64 + u64::from(size) + 1
        };
        if (head.len() as u64) < total {
            break;
        }
        let frame = &head[..total as usize];
        let checked = frame[0] == METHOD || frame[0] == CONTENT_HEADER;
        if checked && frame[frame.len() - 1] != FRAME_END {
            return Split {
                frames,
                rest: head,
                lost: true,
            };
        }
        frames.push(frame);
        at += frame.len();
    }
    Split {
        frames,
        rest: &stream[at..],
        lost: false,
    }
}

/// The invariants of the guard on any byte stream (see the module doc).
/// The first byte, when there is one, sets how the stream is cut into
/// reads.
pub fn bytes(data: &[u8]) {
    let Some((&plan, stream)) = data.split_first() else {
        return;
    };
    let (whole, repairs) = scan(stream, &[]);

    // However the stream is cut into reads, by the scanner or the stream
    // lapin reads.
    let sizes: Vec<usize> = (0..5).map(|i| 1 + (usize::from(plan) >> i) % 23).collect();
    let (cut, again) = scan(stream, &sizes);
    assert!(cut == whole, "the output depends on the reads ({sizes:?})");
    assert_eq!(again, repairs, "the repairs depend on the reads ({sizes:?})");
    assert!(
        read_guarded(stream, &sizes, &[]) == whole,
        "the guarded stream differs"
    );
    assert!(
        read_guarded(stream, &[], &sizes) == whole,
        "the guarded stream differs with small reads"
    );

    // Frame by frame.
    let input = split(stream);
    let output = split(&whole);
    assert_eq!(
        input.frames.len(),
        output.frames.len(),
        "frames appeared or vanished"
    );
    assert_eq!(input.lost, output.lost);
    assert!(
        input.rest == output.rest,
        "what follows the last whole frame changed"
    );
    let mut changed = Vec::new();
    for (index, (before, after)) in input.frames.iter().zip(&output.frames).enumerate() {
        assert_eq!(before[..3], after[..3], "frame {index}: type or channel changed");
        match before[0] {
            _ if before == after => {}
            METHOD => {
                assert_eq!(
                    before.len(),
                    after.len(),
                    "frame {index}: a method changed length"
                );
                for (b, a) in before.iter().zip(after.iter()) {
                    assert!(
                        a == b || (*a == b'?' && *b >= 0x80),
                        "frame {index}: {b:#x} became {a:#x}"
                    );
                }
            }
            CONTENT_HEADER => {
                let fixed = FRAME_HEADER + 12;
                assert!(
                    before.len() > fixed + 2,
                    "frame {index}: a content header too short to check changed"
                );
                assert_eq!(
                    before[7..fixed],
                    after[7..fixed],
                    "frame {index}: class, weight or body size changed"
                );
            }
            kind => panic!("frame {index}: a frame of type {kind} changed"),
        }
        if before[0] == CONTENT_HEADER && before.len() >= FRAME_HEADER + 15 {
            // A checked content header is one that lapin parses.
            if let Err(e) = parse_frame(*after) {
                panic!("frame {index}: lapin cannot parse the guarded content header: {e:?}\n{after:?}");
            }
        }
        if before != after {
            changed.push(index);
        }
    }
    // Reported: each changed frame, once, and nothing else.
    assert_eq!(
        changed.len(),
        repairs.len(),
        "changed frames {changed:?}, repairs {repairs:?}"
    );
    for (&index, (channel, frame, _, faults)) in changed.iter().zip(&repairs) {
        let before = input.frames[index];
        assert_eq!(
            *channel,
            u16::from_be_bytes([before[1], before[2]]),
            "frame {index}"
        );
        let expected = if before[0] == CONTENT_HEADER {
            "content header"
        } else {
            *frame
        };
        assert_eq!(*frame, expected, "frame {index}");
        assert!(!faults.is_empty(), "frame {index}: a repair without a fault");
    }

    // Guarding the output again changes nothing.
    let (twice, more) = scan(&whole, &[]);
    assert!(twice == whole, "guarding the output again changed it");
    assert!(more.is_empty(), "guarding the output again repaired {more:?}");
}

/// The invariants of the guard on a well-formed frame sequence whose
/// faults are all of the kinds it repairs (see the module doc); `data`
/// is decoded with `arbitrary`.
pub fn frames(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(specs) = specs(&mut u) else {
        return;
    };
    let plan = u.take_rest();
    let chunks: Vec<usize> = plan.iter().step_by(2).map(|&b| usize::from(b) + 1).collect();
    let reads: Vec<usize> = plan
        .iter()
        .skip(1)
        .step_by(2)
        .map(|&b| usize::from(b) + 1)
        .collect();

    let mut stream = Vec::new();
    let mut expected = Vec::new();
    let mut reports = Vec::new();
    let mut tags = std::collections::HashMap::new();
    for spec in &specs {
        let sent = spec.encode(false);
        let repaired = spec.encode(true);
        if let Spec::Deliver { channel, tag, .. } = spec {
            tags.insert(*channel, String::from_utf8(repair(tag)).expect("repaired"));
        }
        if repaired != sent {
            let channel = u16::from_be_bytes([sent[1], sent[2]]);
            reports.push((channel, spec.name(), tags.get(&channel).cloned(), spec.faults()));
        }
        stream.extend(sent);
        expected.extend(repaired);
    }

    let (whole, repairs) = scan(&stream, &[]);
    assert!(
        whole == expected,
        "the guard's output is not the repaired sequence"
    );
    assert_eq!(repairs.len(), reports.len(), "{repairs:?}");
    for (got, want) in repairs.iter().zip(&reports) {
        assert_eq!(got.0, want.0, "channel of {got:?}");
        assert_eq!(got.1, want.1, "frame of {got:?}");
        assert_eq!(got.2, want.2, "queue of {got:?}");
        for fault in &want.3 {
            assert!(got.3.contains(fault), "{got:?} lacks the fault {fault:?}");
        }
    }
    let (cut, again) = scan(&stream, &chunks);
    assert!(cut == expected, "the output depends on the reads ({chunks:?})");
    assert_eq!(again, repairs, "the repairs depend on the reads ({chunks:?})");
    assert!(
        read_guarded(&stream, &chunks, &reads) == expected,
        "the guarded stream differs"
    );

    // lapin parses all of it.
    let mut rest = &whole[..];
    for (index, spec) in specs.iter().enumerate() {
        match parse_frame(rest) {
            Ok((next, _)) => rest = next,
            Err(e) => panic!("frame {index} ({}): lapin cannot parse it: {e:?}", spec.name()),
        }
    }
    assert!(rest.is_empty());
    let (twice, more) = scan(&whole, &[]);
    assert!(
        twice == whole && more.is_empty(),
        "guarding the output again changed it"
    );
}

/// Replaces each byte of an invalid UTF-8 sequence with `?` (the model of
/// the repair, written apart from the guard's).
fn repair(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for chunk in text.utf8_chunks() {
        out.extend_from_slice(chunk.valid().as_bytes());
        out.extend(std::iter::repeat_n(b'?', chunk.invalid().len()));
    }
    out
}

fn is_utf8(text: &[u8]) -> bool {
    std::str::from_utf8(text).is_ok()
}

/// At most this many frames in a sequence.
const MAX_FRAMES: usize = 24;

fn specs(u: &mut Unstructured<'_>) -> Result<Vec<Spec>> {
    let n = u.int_in_range(1..=MAX_FRAMES)?;
    (0..n).map(|_| Spec::generate(u)).collect()
}

fn text(u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
    let n = u.int_in_range(0..=255u8)?;
    let n = usize::from(n).min(u.len());
    Ok(u.bytes(n)?.to_vec())
}

fn short(out: &mut Vec<u8>, text: &[u8], fix: bool) {
    out.push(text.len() as u8);
    if fix {
        out.extend(repair(text));
    } else {
        out.extend_from_slice(text);
    }
}

fn long(out: &mut Vec<u8>, content: &[u8]) {
    out.extend_from_slice(&(content.len() as u32).to_be_bytes());
    out.extend_from_slice(content);
}

fn frame(kind: u8, channel: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![kind];
    f.extend_from_slice(&channel.to_be_bytes());
    long(&mut f, payload);
    f.push(FRAME_END);
    f
}

/// One frame of a generated sequence.
#[derive(Debug)]
enum Spec {
    Deliver {
        channel: u16,
        tag: Vec<u8>,
        delivery: [u8; 9],
        exchange: Vec<u8>,
        key: Vec<u8>,
    },
    Return {
        channel: u16,
        code: u16,
        text: Vec<u8>,
        exchange: Vec<u8>,
        key: Vec<u8>,
    },
    GetOk {
        channel: u16,
        delivery: [u8; 9],
        exchange: Vec<u8>,
        key: Vec<u8>,
        count: u32,
    },
    Cancel {
        channel: u16,
        tag: Vec<u8>,
        no_wait: u8,
    },
    /// `channel.close` (class 20) or `connection.close` (class 10, channel 0).
    Close {
        class: u16,
        channel: u16,
        code: u16,
        text: Vec<u8>,
        method: [u8; 4],
    },
    /// `basic.ack`: a method the guard does not look into.
    Ack {
        channel: u16,
        fields: [u8; 9],
    },
    Header {
        channel: u16,
        fixed: [u8; 12],
        /// The flag word's two bits that flag no property.
        spare: u16,
        props: Vec<(u32, Prop)>,
        trailing: Vec<u8>,
    },
    Body {
        channel: u16,
        data: Vec<u8>,
    },
    Heartbeat,
    ProtocolHeader,
}

/// A property of a content header.
#[derive(Debug)]
enum Prop {
    Short(Vec<u8>),
    Headers(Vec<(Vec<u8>, Value)>),
    Fixed(Vec<u8>),
}

/// A field value of a header table.
#[derive(Debug)]
enum Value {
    /// A fixed-size value: its type and bytes.
    Fixed(u8, Vec<u8>),
    /// A long string (`S`) or byte array (`x`).
    Long(u8, Vec<u8>),
    Table(Vec<(Vec<u8>, Value)>),
    Array(Vec<Value>),
    /// The value inside `levels` tables of one entry each.
    Nested(u8, Box<Value>),
    /// A type no parser knows, and some bytes.
    Unknown(u8, Vec<u8>),
}

const FIXED_TYPES: [(u8, usize); 15] = [
    (b't', 1),
    (b'b', 1),
    (b'B', 1),
    (b's', 2),
    (b'U', 2),
    (b'u', 2),
    (b'I', 4),
    (b'i', 4),
    (b'f', 4),
    (b'D', 5),
    (b'L', 8),
    (b'l', 8),
    (b'd', 8),
    (b'T', 8),
    (b'V', 0),
];

impl Value {
    fn generate(u: &mut Unstructured<'_>, budget: usize) -> Result<Value> {
        let choice = if budget == 0 {
            u.int_in_range(0..=1)?
        } else {
            u.int_in_range(0..=5)?
        };
        Ok(match choice {
            0 => {
                let (kind, size) = *u.choose(&FIXED_TYPES)?;
                Value::Fixed(kind, (0..size).map(|_| u.arbitrary()).collect::<Result<_>>()?)
            }
            1 => {
                let kind = *u.choose(b"Sx")?;
                let n = u.int_in_range(0..=64usize)?.min(u.len());
                Value::Long(kind, u.bytes(n)?.to_vec())
            }
            2 => Value::Table(table(u, budget - 1)?),
            3 => {
                let n = u.int_in_range(0..=3)?;
                Value::Array(
                    (0..n)
                        .map(|_| Value::generate(u, budget - 1))
                        .collect::<Result<_>>()?,
                )
            }
            4 => Value::Nested(u.arbitrary()?, Box::new(Value::generate(u, budget - 1)?)),
            _ => {
                let kind = u.arbitrary::<u8>()?;
                if b"tbBsUuIifDLldTVSxFA".contains(&kind) {
                    return Value::generate(u, budget - 1);
                }
                let n = u.int_in_range(0..=8usize)?.min(u.len());
                Value::Unknown(kind, u.bytes(n)?.to_vec())
            }
        })
    }

    fn encode(&self, out: &mut Vec<u8>, fix: bool) {
        match self {
            Value::Fixed(kind, bytes) => {
                out.push(*kind);
                out.extend_from_slice(bytes);
            }
            Value::Long(kind, bytes) => {
                out.push(*kind);
                long(out, bytes);
            }
            Value::Table(entries) => {
                out.push(b'F');
                long(out, &encode_table(entries, fix));
            }
            Value::Array(values) => {
                out.push(b'A');
                let mut content = Vec::new();
                for value in values {
                    value.encode(&mut content, fix);
                }
                long(out, &content);
            }
            Value::Nested(levels, inner) => {
                let mut value = Vec::new();
                inner.encode(&mut value, fix);
                for _ in 0..*levels {
                    let mut entry = vec![1, b'n'];
                    entry.append(&mut value);
                    value.push(b'F');
                    long(&mut value, &entry);
                }
                out.extend(value);
            }
            Value::Unknown(kind, bytes) => {
                out.push(*kind);
                out.extend_from_slice(bytes);
            }
        }
    }

    /// How deep the value reaches when it sits at `level`.
    fn depth(&self, level: usize) -> usize {
        match self {
            Value::Table(entries) => table_depth(entries, level + 1),
            Value::Array(values) => values
                .iter()
                .map(|v| v.depth(level + 1))
                .fold(level + 1, usize::max),
            Value::Nested(levels, inner) => inner.depth(level + usize::from(*levels)),
            _ => level,
        }
    }

    fn has_unknown(&self) -> bool {
        match self {
            Value::Table(entries) => entries.iter().any(|(_, v)| v.has_unknown()),
            Value::Array(values) => values.iter().any(Value::has_unknown),
            Value::Nested(_, inner) => inner.has_unknown(),
            Value::Unknown(..) => true,
            _ => false,
        }
    }

    fn names_utf8(&self) -> bool {
        match self {
            Value::Table(entries) => entries.iter().all(|(n, v)| is_utf8(n) && v.names_utf8()),
            Value::Array(values) => values.iter().all(Value::names_utf8),
            Value::Nested(_, inner) => inner.names_utf8(),
            _ => true,
        }
    }
}

fn table(u: &mut Unstructured<'_>, budget: usize) -> Result<Vec<(Vec<u8>, Value)>> {
    let n = u.int_in_range(0..=4)?;
    (0..n)
        .map(|_| {
            let n = u.int_in_range(0..=12usize)?.min(u.len());
            let name = u.bytes(n)?.to_vec();
            Ok((name, Value::generate(u, budget)?))
        })
        .collect()
}

fn encode_table(entries: &[(Vec<u8>, Value)], fix: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in entries {
        short(&mut out, name, fix);
        value.encode(&mut out, fix);
    }
    out
}

fn table_depth(entries: &[(Vec<u8>, Value)], level: usize) -> usize {
    entries
        .iter()
        .map(|(_, v)| v.depth(level))
        .fold(level, usize::max)
}

/// Whether the guard drops this `headers` table: a value of unknown
/// type, or nested deeper than [`MAX_DEPTH`] (the table is level 1).
fn table_dropped(entries: &[(Vec<u8>, Value)]) -> bool {
    entries.iter().any(|(_, v)| v.has_unknown()) || table_depth(entries, 1) > MAX_DEPTH
}

/// The fault of each short-string property, by its flag bit.
const SHORT_PROPS: [(u32, &str); 10] = [
    (15, "content_type not UTF-8"),
    (14, "content_encoding not UTF-8"),
    (10, "correlation_id not UTF-8"),
    (9, "reply_to not UTF-8"),
    (8, "expiration not UTF-8"),
    (7, "message_id not UTF-8"),
    (5, "type not UTF-8"),
    (4, "user_id not UTF-8"),
    (3, "app_id not UTF-8"),
    (2, "cluster_id not UTF-8"),
];

impl Spec {
    fn generate(u: &mut Unstructured<'_>) -> Result<Spec> {
        let channel = u.int_in_range(0..=3)?;
        Ok(match u.int_in_range(0..=10)? {
            0 | 1 => Spec::Deliver {
                channel,
                tag: text(u)?,
                delivery: u.arbitrary()?,
                exchange: text(u)?,
                key: text(u)?,
            },
            2 => Spec::Return {
                channel,
                code: u.arbitrary()?,
                text: text(u)?,
                exchange: text(u)?,
                key: text(u)?,
            },
            3 => Spec::GetOk {
                channel,
                delivery: u.arbitrary()?,
                exchange: text(u)?,
                key: text(u)?,
                count: u.arbitrary()?,
            },
            4 => Spec::Cancel {
                channel,
                tag: text(u)?,
                no_wait: u.arbitrary()?,
            },
            5 => {
                let class = *u.choose(&[10u16, 20])?;
                Spec::Close {
                    class,
                    channel: if class == 10 { 0 } else { channel },
                    code: u.arbitrary()?,
                    text: text(u)?,
                    method: u.arbitrary()?,
                }
            }
            6 => Spec::Ack {
                channel,
                fields: u.arbitrary()?,
            },
            7 | 8 => {
                let mut props = Vec::new();
                for bit in (2..=15u32).rev() {
                    if !u.ratio(1, 3)? {
                        continue;
                    }
                    let prop = match bit {
                        13 => Prop::Headers(table(u, 3)?),
                        12 | 11 => Prop::Fixed(vec![u.arbitrary()?]),
                        6 => Prop::Fixed(u.arbitrary::<[u8; 8]>()?.to_vec()),
                        _ => Prop::Short(text(u)?),
                    };
                    props.push((bit, prop));
                }
                let trailing = if u.ratio(1, 8)? {
                    let n = u.int_in_range(1..=4)?;
                    (0..n).map(|_| u.arbitrary()).collect::<Result<_>>()?
                } else {
                    Vec::new()
                };
                Spec::Header {
                    channel,
                    fixed: u.arbitrary()?,
                    spare: u.int_in_range(0..=3)?,
                    props,
                    trailing,
                }
            }
            9 => {
                let n = u.int_in_range(0..=64usize)?.min(u.len());
                Spec::Body {
                    channel,
                    data: u.bytes(n)?.to_vec(),
                }
            }
            _ if u.ratio(1, 4)? => Spec::ProtocolHeader,
            _ => Spec::Heartbeat,
        })
    }

    /// The frame as sent, or (`fix`) as the guard must pass it on.
    fn encode(&self, fix: bool) -> Vec<u8> {
        let method = |channel: u16, class: u16, id: u16, fields: &dyn Fn(&mut Vec<u8>)| {
            let mut p = class.to_be_bytes().to_vec();
            p.extend_from_slice(&id.to_be_bytes());
            fields(&mut p);
            frame(METHOD, channel, &p)
        };
        match self {
            Spec::Deliver {
                channel,
                tag,
                delivery,
                exchange,
                key,
            } => method(*channel, 60, 60, &|p| {
                short(p, tag, fix);
                p.extend_from_slice(delivery);
                short(p, exchange, fix);
                short(p, key, fix);
            }),
            Spec::Return {
                channel,
                code,
                text,
                exchange,
                key,
            } => method(*channel, 60, 50, &|p| {
                p.extend_from_slice(&code.to_be_bytes());
                short(p, text, fix);
                short(p, exchange, fix);
                short(p, key, fix);
            }),
            Spec::GetOk {
                channel,
                delivery,
                exchange,
                key,
                count,
            } => method(*channel, 60, 71, &|p| {
                p.extend_from_slice(delivery);
                short(p, exchange, fix);
                short(p, key, fix);
                p.extend_from_slice(&count.to_be_bytes());
            }),
            Spec::Cancel {
                channel,
                tag,
                no_wait,
            } => method(*channel, 60, 30, &|p| {
                short(p, tag, fix);
                p.push(*no_wait);
            }),
            Spec::Close {
                class,
                channel,
                code,
                text,
                method: failed,
            } => method(*channel, *class, if *class == 10 { 50 } else { 40 }, &|p| {
                p.extend_from_slice(&code.to_be_bytes());
                short(p, text, fix);
                p.extend_from_slice(failed);
            }),
            Spec::Ack { channel, fields } => method(*channel, 60, 80, &|p| p.extend_from_slice(fields)),
            Spec::Header {
                channel,
                fixed,
                spare,
                props,
                trailing,
            } => {
                let mut p = fixed.to_vec();
                if fix && !trailing.is_empty() {
                    // Properties that do not parse are dropped.
                    p.extend_from_slice(&[0, 0]);
                    return frame(CONTENT_HEADER, *channel, &p);
                }
                let flags = props.iter().fold(*spare, |flags, (bit, _)| flags | 1 << bit);
                p.extend_from_slice(&flags.to_be_bytes());
                for (_, prop) in props {
                    match prop {
                        Prop::Short(text) => short(&mut p, text, fix),
                        Prop::Fixed(bytes) => p.extend_from_slice(bytes),
                        Prop::Headers(entries) if fix && table_dropped(entries) => long(&mut p, &[]),
                        Prop::Headers(entries) => long(&mut p, &encode_table(entries, fix)),
                    }
                }
                if !fix {
                    p.extend_from_slice(trailing);
                }
                frame(CONTENT_HEADER, *channel, &p)
            }
            Spec::Body { channel, data } => frame(3, *channel, data),
            Spec::Heartbeat => frame(8, 0, &[]),
            Spec::ProtocolHeader => b"AMQP\x00\x00\x09\x01".to_vec(),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Spec::Deliver { .. } => "basic.deliver",
            Spec::Return { .. } => "basic.return",
            Spec::GetOk { .. } => "basic.get-ok",
            Spec::Cancel { .. } => "basic.cancel",
            Spec::Close { class: 10, .. } => "connection.close",
            Spec::Close { .. } => "channel.close",
            Spec::Header { .. } => "content header",
            _ => "?",
        }
    }

    /// Faults the guard's report must name (of a header table, whose
    /// check stops at the first fault, only that it was dropped).
    fn faults(&self) -> Vec<&'static str> {
        let mut faults = Vec::new();
        let mut bad = |text: &[u8], fault: &'static str| {
            if !is_utf8(text) {
                faults.push(fault);
            }
        };
        match self {
            Spec::Deliver {
                tag, exchange, key, ..
            } => {
                bad(tag, "consumer tag not UTF-8");
                bad(exchange, "exchange not UTF-8");
                bad(key, "routing key not UTF-8");
            }
            Spec::Return {
                text, exchange, key, ..
            } => {
                bad(text, "reply text not UTF-8");
                bad(exchange, "exchange not UTF-8");
                bad(key, "routing key not UTF-8");
            }
            Spec::GetOk { exchange, key, .. } => {
                bad(exchange, "exchange not UTF-8");
                bad(key, "routing key not UTF-8");
            }
            Spec::Cancel { tag, .. } => bad(tag, "consumer tag not UTF-8"),
            Spec::Close { text, .. } => bad(text, "reply text not UTF-8"),
            Spec::Header { props, trailing, .. } => {
                for (bit, prop) in props {
                    match prop {
                        Prop::Short(text) => {
                            let fault = SHORT_PROPS.iter().find(|(b, _)| b == bit).map(|(_, f)| *f);
                            if !is_utf8(text) {
                                faults.extend(fault);
                            }
                        }
                        Prop::Headers(entries) if table_dropped(entries) => faults.push("headers "),
                        Prop::Headers(entries) => {
                            if !entries.iter().all(|(n, v)| is_utf8(n) && v.names_utf8()) {
                                faults.push("header name not UTF-8");
                            }
                        }
                        Prop::Fixed(_) => {}
                    }
                }
                if !trailing.is_empty() {
                    faults.push("properties malformed");
                }
            }
            _ => {}
        }
        faults
    }
}
