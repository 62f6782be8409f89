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
//! [`CHUNK`] bytes). A body of more than [`LARGE`] bytes is not copied
//! into the buffer: it keeps the allocation it was encoded into.

use std::cell::RefCell;

use bytes::{Bytes, BytesMut};
use serde::Serialize;

/// The size of a fresh send buffer.
const CHUNK: usize = 4096;

/// A send buffer with less room than this is replaced by a fresh one.
const ROOM: usize = 256;

/// A body larger than this keeps the allocation it was encoded into.
const LARGE: usize = 1024;

thread_local! {
    static BUFFERS: RefCell<Buffers> = RefCell::new(Buffers::default());
}

/// A thread's buffers: JSON is written into `scratch` (serde_json writes
/// fastest into a `Vec`), then small bodies are copied into `send`.
#[derive(Default)]
struct Buffers {
    scratch: Vec<u8>,
    send: BytesMut,
}

/// Encodes `value` as JSON into the thread's send buffer.
pub(crate) fn json<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Bytes> {
    BUFFERS.with(|cell| {
        // A `Serialize` impl that itself encodes a message: its body gets
        // a buffer of its own.
        let Ok(mut buffers) = cell.try_borrow_mut() else {
            return serde_json::to_vec(value).map(Bytes::from);
        };
        let Buffers { scratch, send } = &mut *buffers;
        // What a `Serialize` impl that panicked left.
        scratch.clear();
        serde_json::to_writer(&mut *scratch, value)?;
        if scratch.len() > LARGE {
            // The body keeps the allocation; the scratch starts small again.
            return Ok(Bytes::from(std::mem::take(scratch)));
        }
        if send.capacity() < scratch.len().max(ROOM) {
            *send = BytesMut::with_capacity(CHUNK);
        }
        send.extend_from_slice(scratch);
        Ok(send.split().freeze())
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
