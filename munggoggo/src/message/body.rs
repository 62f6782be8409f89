//! Bodies written into a send buffer per thread.
//!
//! A body encoded into a `Vec` of its own and then shared (the sender's
//! trace store, the queue and the receiver each hold it) costs two
//! allocations per message, made on the sender's thread and freed on the
//! receiver's: with the system allocator the costliest kind, since each of
//! the receiver's frees takes the lock of the sender's arena while the
//! sender allocates from it. So bodies are written one after the other
//! into a buffer of the thread and split off it, as tokio-util's codecs
//! split frames off their read buffer: one allocation per [`CHUNK`] bytes
//! of small bodies, freed once the last body in it is dropped.
//!
//! The price: a small body kept alive keeps its buffer alive (at most
//! [`CHUNK`] bytes). A body of more than [`LARGE`] bytes leaves the
//! buffer to itself, so a large body never keeps later small ones'
//! buffer, nor they its.

use std::cell::RefCell;

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;

/// The size of a fresh send buffer.
const CHUNK: usize = 4096;

/// A buffer with less room than this is replaced before a body is written.
const ROOM: usize = 256;

/// A body larger than this keeps the buffer it was written into for itself.
const LARGE: usize = 1024;

thread_local! {
    static BUFFER: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// Encodes `value` as JSON into the thread's send buffer.
pub(crate) fn json<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Bytes> {
    write(|buffer| serde_json::to_writer(buffer.writer(), value))
}

/// Writes a body with `fill` into the thread's send buffer and splits it
/// off. A `fill` that fails leaves nothing behind.
fn write<E>(fill: impl FnOnce(&mut BytesMut) -> Result<(), E>) -> Result<Bytes, E> {
    BUFFER.with(|cell| {
        // A `Serialize` impl that itself encodes a message: its body gets
        // a buffer of its own.
        let Ok(mut buffer) = cell.try_borrow_mut() else {
            let mut own = BytesMut::new();
            fill(&mut own)?;
            return Ok(own.freeze());
        };
        // What a `fill` that panicked left.
        buffer.clear();
        if buffer.capacity() < ROOM {
            *buffer = BytesMut::with_capacity(CHUNK);
        }
        if let Err(e) = fill(&mut buffer) {
            buffer.clear();
            return Err(e);
        }
        let body = buffer.split().freeze();
        if body.len() > LARGE {
            *buffer = BytesMut::new();
        }
        Ok(body)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_their_own_json_and_small_ones_share_a_buffer() {
        let bodies: Vec<Bytes> = (0..100)
            .map(|i| json(&serde_json::json!({ "i": i })).unwrap())
            .collect();
        for (i, body) in bodies.iter().enumerate() {
            assert_eq!(&body[..], format!(r#"{{"i":{i}}}"#).as_bytes());
        }
        // Consecutive small bodies sit next to each other in one buffer.
        let shared = bodies
            .windows(2)
            .filter(|pair| pair[0].as_ptr_range().end == pair[1].as_ptr())
            .count();
        assert!(shared >= 90, "only {shared} of 99 neighbours share a buffer");
    }

    #[test]
    fn a_large_body_keeps_its_buffer_to_itself() {
        let small = json("before").unwrap();
        let large = json(&"x".repeat(10 * LARGE)).unwrap();
        let after = json("after").unwrap();
        assert_eq!(large.len(), 10 * LARGE + 2);
        assert_eq!(&after[..], br#""after""#);
        assert_ne!(
            large.as_ptr_range().end,
            after.as_ptr(),
            "a small body went in after a large one"
        );
        assert_eq!(&small[..], br#""before""#);
    }

    #[test]
    fn a_failed_encoding_leaves_nothing_behind() {
        struct Fails;
        impl Serialize for Fails {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::{Error, SerializeSeq};
                let mut seq = s.serialize_seq(None)?;
                seq.serialize_element("written before the failure")?;
                Err(S::Error::custom("no"))
            }
        }
        assert!(json(&Fails).is_err());
        assert_eq!(&json(&1).unwrap()[..], b"1");
    }

    #[test]
    fn a_body_encoded_while_encoding_another_gets_its_own_buffer() {
        struct Nested;
        impl Serialize for Nested {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let inner = json(&[1, 2]).map_err(serde::ser::Error::custom)?;
                s.serialize_str(std::str::from_utf8(&inner).unwrap())
            }
        }
        assert_eq!(&json(&Nested).unwrap()[..], br#""[1,2]""#);
    }
}
