//! The frame scanner on hand-made frames. Each output is checked with
//! amq-protocol's own parser, the one lapin uses.
//!
//! (Long: one test per kind of frame the scanner repairs or lets through.)

use amq_protocol::frame::{parse_frame, AMQPFrame};
use amq_protocol::protocol::{basic, AMQPClass};

use super::check::repair_utf8;
use super::*;

// Property flag bits of the basic class.
const CONTENT_TYPE: u32 = 15;
const HEADERS: u32 = 13;
const DELIVERY_MODE: u32 = 12;
const TIMESTAMP: u32 = 6;
const TYPE: u32 = 5;
const APP_ID: u32 = 3;

fn frame(kind: u8, channel: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![kind];
    f.extend_from_slice(&channel.to_be_bytes());
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    f.extend_from_slice(payload);
    f.push(FRAME_END);
    f
}

fn short(s: &[u8]) -> Vec<u8> {
    let mut v = vec![s.len() as u8];
    v.extend_from_slice(s);
    v
}

fn long(kind: u8, content: &[u8]) -> Vec<u8> {
    let mut v = vec![kind];
    v.extend_from_slice(&(content.len() as u32).to_be_bytes());
    v.extend_from_slice(content);
    v
}

/// The entries of a table: name, then a typed value.
fn entries(entries: &[(&[u8], Vec<u8>)]) -> Vec<u8> {
    let mut v = Vec::new();
    for (name, value) in entries {
        v.extend(short(name));
        v.extend_from_slice(value);
    }
    v
}

/// A table property or value without its type byte.
fn table(content: &[u8]) -> Vec<u8> {
    long(b'F', content)[1..].to_vec()
}

/// A `headers` value nested `depth` tables deep (the headers table itself
/// not counted).
fn nested(depth: usize) -> Vec<u8> {
    let mut value = long(b'F', &[]);
    for _ in 1..depth {
        value = long(b'F', &entries(&[(b"n", value)]));
    }
    value
}

/// A content-header frame with the given properties (flag bit, encoded).
fn header(channel: u16, props: &[(u32, Vec<u8>)]) -> Vec<u8> {
    let mut payload = Vec::new();
    payload.extend_from_slice(&60u16.to_be_bytes());
    payload.extend_from_slice(&0u16.to_be_bytes());
    payload.extend_from_slice(&5u64.to_be_bytes());
    let flags: u16 = props.iter().map(|(bit, _)| 1u16 << bit).sum();
    payload.extend_from_slice(&flags.to_be_bytes());
    let mut sorted = props.to_vec();
    sorted.sort_by_key(|(bit, _)| std::cmp::Reverse(*bit));
    for (_, value) in sorted {
        payload.extend(value);
    }
    frame(CONTENT_HEADER, channel, &payload)
}

fn deliver(channel: u16, tag: &[u8], exchange: &[u8], key: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&60u16.to_be_bytes());
    p.extend_from_slice(&60u16.to_be_bytes());
    p.extend(short(tag));
    p.extend_from_slice(&7u64.to_be_bytes());
    p.push(0);
    p.extend(short(exchange));
    p.extend(short(key));
    frame(METHOD, channel, &p)
}

fn body(channel: u16) -> Vec<u8> {
    frame(3, channel, b"hello")
}

fn heartbeat() -> Vec<u8> {
    frame(8, 0, &[])
}

fn good_header(channel: u16) -> Vec<u8> {
    header(
        channel,
        &[
            (CONTENT_TYPE, short(b"application/json")),
            (
                HEADERS,
                table(&entries(&[
                    (b"x", long(b'S', b"y")),
                    (b"n", vec![b'I', 0, 0, 0, 1]),
                ])),
            ),
            (DELIVERY_MODE, vec![1]),
            (TIMESTAMP, 1u64.to_be_bytes().to_vec()),
            (TYPE, short(b"Ping")),
            (APP_ID, short(b"pinger")),
        ],
    )
}

/// Runs the scanner over `chunks`, as a stream; returns lapin's view.
fn run(chunks: &[&[u8]]) -> (Vec<u8>, Vec<Repair>) {
    let mut scanner = Scanner::default();
    let mut seen = Vec::new();
    let mut out = Vec::new();
    let mut repairs = Vec::new();
    for chunk in chunks {
        let mut chunk = chunk.to_vec();
        let ready = scanner.feed(&mut chunk, &mut out);
        seen.extend_from_slice(&chunk[..ready]);
        seen.append(&mut out);
        repairs.extend(scanner.take_repairs());
    }
    scanner.finish(&mut out);
    seen.append(&mut out);
    (seen, repairs)
}

/// Parses `bytes` as lapin does, frame after frame; panics on an error.
fn parse_all(mut bytes: &[u8]) -> Vec<AMQPFrame> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        match parse_frame(bytes) {
            Ok((rest, frame)) => {
                frames.push(frame);
                bytes = rest;
            }
            Err(e) => panic!("lapin cannot parse the guarded stream: {e:?} at {bytes:?}"),
        }
    }
    frames
}

fn properties(frame: &AMQPFrame) -> &basic::AMQPProperties {
    match frame {
        AMQPFrame::Header(_, header) => &header.properties,
        other => panic!("not a content header: {other:?}"),
    }
}

fn faults(repairs: &[Repair]) -> Vec<String> {
    repairs.iter().map(|r| r.faults.to_string()).collect()
}

#[test]
fn clean_frames_pass_in_place_unchanged() {
    let mut stream = deliver(1, b"agent", b"", b"agent");
    stream.extend(good_header(1));
    stream.extend(body(1));
    stream.extend(heartbeat());
    let mut chunk = stream.clone();
    let mut out = Vec::new();
    let mut scanner = Scanner::default();
    assert_eq!(scanner.feed(&mut chunk, &mut out), stream.len());
    assert!(out.is_empty());
    assert_eq!(chunk, stream);
    assert!(!scanner.has_repairs());
    assert_eq!(parse_all(&chunk).len(), 4);
}

#[test]
fn unguarded_poison_does_not_parse() {
    // The faults the guard exists for: lapin's parser fails on each.
    for bad in [
        header(1, &[(TYPE, short(b"P\xffng"))]),
        header(1, &[(APP_ID, short(b"\xc3"))]),
        header(1, &[(HEADERS, table(&entries(&[(b"\xfe", vec![b'V'])])))]),
    ] {
        assert!(parse_frame(&bad[..]).is_err());
    }
}

#[test]
fn invalid_utf8_in_short_strings_becomes_question_marks() {
    let cases: [(Vec<u8>, &str); 4] = [
        (header(1, &[(TYPE, short(b"P\xffng"))]), "type not UTF-8"),
        (header(1, &[(APP_ID, short(b"ab\xe2\x82"))]), "app_id not UTF-8"),
        (
            header(1, &[(HEADERS, table(&entries(&[(b"k\xc0y", vec![b'V'])])))]),
            "header name not UTF-8",
        ),
        (
            header(1, &[(CONTENT_TYPE, short(b"\x80")), (TYPE, short(b"\xff\xfe"))]),
            "content_type not UTF-8, type not UTF-8",
        ),
    ];
    for (bad, fault) in cases {
        let (seen, repairs) = run(&[&bad]);
        assert_eq!(seen.len(), bad.len(), "lengths are kept");
        assert_eq!(faults(&repairs), [fault]);
        let frames = parse_all(&seen);
        assert_eq!(frames.len(), 1);
    }
    let (seen, _) = run(&[&header(1, &[(TYPE, short(b"P\xffng"))])]);
    let kind = properties(&parse_all(&seen)[0]).kind().clone();
    assert_eq!(kind.unwrap().as_str(), "P?ng");
    let (seen, _) = run(&[&header(1, &[(APP_ID, short(b"ab\xe2\x82"))])]);
    let app_id = properties(&parse_all(&seen)[0]).app_id().clone();
    assert_eq!(app_id.unwrap().as_str(), "ab??");
}

#[test]
fn headers_nested_10000_deep_become_an_empty_table() {
    let bad = header(
        1,
        &[
            (HEADERS, table(&entries(&[(b"deep", nested(10_000))]))),
            (TYPE, short(b"Ping")),
        ],
    );
    let mut stream = deliver(1, b"agent.fanout", b"admin", b"admin");
    stream.extend(&bad);
    stream.extend(body(1));
    let (seen, repairs) = run(&[&stream]);
    assert_eq!(faults(&repairs), ["headers nested too deep"]);
    assert_eq!(repairs[0].queue.as_deref(), Some("agent.fanout"));
    let frames = parse_all(&seen);
    assert_eq!(frames.len(), 3);
    let props = properties(&frames[1]);
    assert!(props.headers().as_ref().unwrap().inner().is_empty());
    assert_eq!(props.kind().as_ref().unwrap().as_str(), "Ping");
    assert!(matches!(frames[2], AMQPFrame::Body(1, _)));
}

#[test]
fn depth_limit_is_exact() {
    // The headers table is level 1: a value nested MAX_DEPTH - 1 deep fits.
    let fits = header(1, &[(HEADERS, table(&entries(&[(b"d", nested(MAX_DEPTH - 1))])))]);
    let (seen, repairs) = run(&[&fits]);
    assert!(repairs.is_empty());
    assert_eq!(seen, fits);
    let deeper = header(1, &[(HEADERS, table(&entries(&[(b"d", nested(MAX_DEPTH))])))]);
    let (_, repairs) = run(&[&deeper]);
    assert_eq!(faults(&repairs), ["headers nested too deep"]);
    // Arrays count too.
    let mut array = long(b'A', &[]);
    for _ in 0..MAX_DEPTH {
        array = long(b'A', &array);
    }
    let (seen, repairs) = run(&[&header(1, &[(HEADERS, table(&entries(&[(b"a", array)])))])]);
    assert_eq!(faults(&repairs), ["headers nested too deep"]);
    parse_all(&seen);
}

#[test]
fn malformed_properties_are_dropped() {
    let type_ping = (TYPE, short(b"Ping"));
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "unknown field type",
            header(
                1,
                &[
                    (HEADERS, table(&entries(&[(b"k", vec![b'Z', 1])]))),
                    type_ping.clone(),
                ],
            ),
            "headers malformed",
        ),
        (
            "long string longer than its table",
            header(
                1,
                &[(HEADERS, table(&entries(&[(b"k", vec![b'S', 0, 0, 0, 9, b'x'])])))],
            ),
            "headers malformed",
        ),
        (
            "field name past the end",
            header(1, &[(HEADERS, table(&[5, b'a']))]),
            "headers malformed",
        ),
        (
            "truncated fixed-size value",
            header(1, &[(HEADERS, table(&entries(&[(b"k", vec![b'l', 0, 0])])))]),
            "headers malformed",
        ),
        (
            "table longer than the properties",
            header(1, &[(HEADERS, vec![0, 0, 1, 0, 1, b'k', b'V'])]),
            "properties malformed",
        ),
        (
            "trailing bytes",
            header(1, &[(TYPE, vec![4, b'P', b'i', b'n', b'g', 0, 0])]),
            "properties malformed",
        ),
        (
            "flagged but missing",
            header(1, &[(TYPE, vec![])]),
            "properties malformed",
        ),
        (
            "short string past the end",
            header(1, &[(APP_ID, vec![200, b'a'])]),
            "properties malformed",
        ),
    ];
    for (what, bad, fault) in cases {
        let (seen, repairs) = run(&[&bad]);
        assert_eq!(faults(&repairs), [fault], "{what}");
        let frames = parse_all(&seen);
        assert_eq!(frames.len(), 1, "{what}");
        if fault == "properties malformed" {
            assert_eq!(
                properties(&frames[0]),
                &basic::AMQPProperties::default(),
                "{what}"
            );
        } else {
            let headers = properties(&frames[0]).headers().clone();
            assert!(headers.unwrap().inner().is_empty(), "{what}");
        }
    }
}

#[test]
fn deliveries_with_invalid_strings_are_repaired() {
    let bad = deliver(3, b"agent", b"top\xffic", b"ping.\xc3");
    let (seen, repairs) = run(&[&bad]);
    assert_eq!(faults(&repairs), ["exchange not UTF-8, routing key not UTF-8"]);
    assert_eq!(repairs[0].frame, "basic.deliver");
    assert_eq!(repairs[0].queue.as_deref(), Some("agent"));
    match &parse_all(&seen)[0] {
        AMQPFrame::Method(3, AMQPClass::Basic(basic::AMQPMethod::Deliver(d))) => {
            assert_eq!(d.exchange.as_str(), "top?ic");
            assert_eq!(d.routing_key.as_str(), "ping.?");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn protocol_header_and_unknown_frames_pass() {
    let mut stream = b"AMQP\x00\x00\x09\x01".to_vec();
    stream.extend(heartbeat());
    let (seen, repairs) = run(&[&stream]);
    assert_eq!(seen, stream);
    assert!(repairs.is_empty());
}

#[test]
fn a_frame_without_its_end_byte_stops_the_checks() {
    let mut broken = header(1, &[(TYPE, short(b"Ping"))]);
    *broken.last_mut().unwrap() = 0;
    let mut stream = broken.clone();
    stream.extend(header(1, &[(TYPE, short(b"\xff"))]));
    let (seen, repairs) = run(&[&stream]);
    assert_eq!(seen, stream, "everything passes unchanged once lost");
    assert!(repairs.is_empty());
}

/// A stream with clean and poison frames of every kind, interleaved on
/// two channels.
fn mixed_stream() -> Vec<u8> {
    let mut s = Vec::new();
    s.extend(deliver(1, b"a", b"", b"a"));
    s.extend(good_header(1));
    s.extend(body(1));
    s.extend(deliver(2, b"b.fanout", b"admin", b"\xff"));
    s.extend(heartbeat());
    s.extend(header(2, &[(TYPE, short(b"\xfe")), (APP_ID, short(b"\x80x"))]));
    s.extend(deliver(1, b"a", b"", b"a"));
    s.extend(header(1, &[(HEADERS, table(&entries(&[(b"d", nested(200))])))]));
    s.extend(body(2));
    s.extend(body(1));
    s.extend(header(2, &[(HEADERS, table(&entries(&[(b"k", vec![b'?'])])))]));
    s.extend(good_header(1));
    s
}

#[test]
fn a_stream_split_at_every_byte_boundary_gives_the_same_result() {
    let stream = mixed_stream();
    let (whole, repairs) = run(&[&stream]);
    assert_eq!(repairs.len(), 4);
    assert_eq!(parse_all(&whole).len(), 12);
    for split in 0..=stream.len() {
        let (seen, again) = run(&[&stream[..split], &stream[split..]]);
        assert_eq!(seen, whole, "split at {split}");
        assert_eq!(faults(&again), faults(&repairs), "split at {split}");
    }
    for size in [1, 2, 3, 7, 8, 13] {
        let chunks: Vec<&[u8]> = stream.chunks(size).collect();
        let (seen, _) = run(&chunks);
        assert_eq!(seen, whole, "chunks of {size}");
    }
}

/// A small deterministic generator (xorshift64*), so that the cases are
/// the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Mutates the properties of a content header (its flags and what follows
/// them): byte flips, insertions, deletions, nesting, bad UTF-8.
fn mutate(rng: &mut Rng, good: &[u8]) -> Vec<u8> {
    let payload = &good[FRAME_HEADER..good.len() - 1];
    let (fixed, props) = payload.split_at(12);
    let mut props = props.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(6) {
            0 if !props.is_empty() => {
                let at = rng.below(props.len());
                props[at] = rng.next() as u8;
            }
            1 => {
                let at = rng.below(props.len() + 1);
                props.insert(at, [0xff, 0xc3, b'F', b'A', 0, 0x80][rng.below(6)]);
            }
            2 if !props.is_empty() => {
                let at = rng.below(props.len());
                props.remove(at);
            }
            3 => props[..2].copy_from_slice(&(rng.next() as u16).to_be_bytes()),
            4 => {
                let at = rng.below(props.len() + 1);
                let deep = nested(1 + rng.below(3 * MAX_DEPTH));
                props.splice(at..at, deep);
            }
            _ => {
                let at = 2 + rng.below(props.len() - 1);
                props.splice(at..at, short(b"\xff\xfe"));
            }
        }
    }
    let mut payload = fixed.to_vec();
    payload.extend(props);
    frame(CONTENT_HEADER, 1, &payload)
}

#[test]
fn random_mutations_always_parse_after_the_guard() {
    let mut rng = Rng(0x005e_ed0f_9a7d);
    let good = good_header(1);
    let mut repaired = 0;
    for case in 0..3000 {
        let bad = mutate(&mut rng, &good);
        let mut stream = deliver(1, b"q", b"", b"q");
        stream.extend(&bad);
        stream.extend(body(1));
        // Random chunking too.
        let mut chunks = Vec::new();
        let mut rest = &stream[..];
        while !rest.is_empty() {
            let n = 1 + rng.below(rest.len().min(64));
            chunks.push(&rest[..n]);
            rest = &rest[n..];
        }
        let (seen, _) = run(&chunks);
        let (whole, faults) = run(&[&stream]);
        repaired += usize::from(!faults.is_empty());
        assert_eq!(seen, whole, "case {case}");
        let frames =
            std::panic::catch_unwind(|| parse_all(&seen)).unwrap_or_else(|_| panic!("case {case}: {bad:?}"));
        assert_eq!(frames.len(), 3, "case {case}");
    }
    // Most mutations break something the guard must repair.
    assert!(repaired > 2000, "{repaired} of 3000 repaired");
}

#[test]
fn repair_utf8_keeps_lengths() {
    let mut text = *b"ok \xe2\x82\xac \xe2\x82 \xff end \xc3";
    assert!(repair_utf8(&mut text));
    assert_eq!(&text, "ok € ?? ? end ?".as_bytes());
    let mut fine = *b"fine \xc3\xa9";
    assert!(!repair_utf8(&mut fine));
}

/// The committed seed corpus of the fuzz targets (`munggoggo/fuzz/`),
/// replayed through the same checks on every `cargo test`.
fn seeds(target: &str) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{}: {} seeds", dir.display(), files.len());
    files
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect()
}

#[test]
fn the_fuzz_seeds_keep_the_invariants() {
    for (target, check) in [
        ("guard_bytes", super::fuzz::bytes as fn(&[u8])),
        ("guard_frames", super::fuzz::frames),
    ] {
        for (path, bytes) in seeds(target) {
            if std::panic::catch_unwind(|| check(&bytes)).is_err() {
                panic!("{}: an invariant failed (see above)", path.display());
            }
        }
    }
}

/// The byte streams of the seed corpus of `guard_bytes`, each with the
/// read plan byte first: the frames of the tests above, a few broken.
fn byte_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mut clean = deliver(1, b"agent", b"", b"agent");
    clean.extend(good_header(1));
    clean.extend(body(1));
    clean.extend(heartbeat());
    let mut protocol = b"AMQP\x00\x00\x09\x01".to_vec();
    protocol.extend(heartbeat());
    let mut unended = header(1, &[(TYPE, short(b"Ping"))]);
    *unended.last_mut().unwrap() = 0;
    unended.extend(header(1, &[(TYPE, short(b"\xff"))]));
    let mut truncated = good_header(2);
    truncated.truncate(truncated.len() - 5);
    let mut deep = deliver(1, b"agent.fanout", b"admin", b"admin");
    deep.extend(header(
        1,
        &[(HEADERS, table(&entries(&[(b"deep", nested(MAX_DEPTH + 1))])))],
    ));
    deep.extend(body(1));
    let streams = vec![
        ("clean", clean),
        ("mixed", mixed_stream()),
        ("protocol_header", protocol),
        ("bad_type", header(1, &[(TYPE, short(b"P\xffng"))])),
        ("bad_app_id", header(1, &[(APP_ID, short(b"ab\xe2\x82"))])),
        (
            "bad_header_name",
            header(1, &[(HEADERS, table(&entries(&[(b"k\xc0y", vec![b'V'])])))]),
        ),
        ("deep_headers", deep),
        (
            "unknown_field_type",
            header(1, &[(HEADERS, table(&entries(&[(b"k", vec![b'Z', 1])])))]),
        ),
        (
            "trailing_bytes",
            header(1, &[(TYPE, vec![4, b'P', b'i', b'n', b'g', 0, 0])]),
        ),
        (
            "bad_deliver",
            deliver(3, b"ag\xffent", b"top\xffic", b"ping.\xc3"),
        ),
        ("no_end_byte", unended),
        ("truncated", truncated),
    ];
    streams
        .into_iter()
        .map(|(name, stream)| {
            let mut seed = vec![0x5a];
            seed.extend(stream);
            (name, seed)
        })
        .collect()
}

#[test]
#[ignore = "writes the seed corpus of guard_bytes into munggoggo/fuzz/seeds/"]
fn write_byte_seeds() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/guard_bytes");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, seed) in byte_seeds() {
        std::fs::write(dir.join(name), seed).unwrap();
    }
}
