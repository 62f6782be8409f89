//! Pickle bodies of the aio-pika RPC pattern, read and written with
//! serde-pickle (docs/protocol.md, "Exposed methods").
//!
//! Decoding never runs or resolves Python code: serde-pickle has no way to
//! import a module or call a global. A result or a call's arguments that
//! name a global (a class, a function, `datetime`, ...) are refused with
//! [`PickleError::Global`]; instances of plain classes arrive as their
//! attribute dictionaries. Only the exception of an `error` reply is read
//! with serde-pickle's "restore state" option, which keeps the arguments
//! the exception was built with (its text) and still never resolves the
//! class.
//!
//! A hostile pickle must not exhaust the stack: bodies are bounded
//! ([`MAX_BODY`]), decoded results are at most [`MAX_DEPTH`] levels deep,
//! and bodies that could nest deeper than a worker thread's stack allows
//! are decoded on a thread with a stack of its own.

use serde_json::{Map, Number, Value as Json};
use serde_pickle::{DeOptions, HashableValue, SerOptions, Value};

/// The `content_type` aio-pika gives pickle bodies.
pub const CONTENT_TYPE: &str = "application/python-pickle";

/// The largest pickle body munggoggo reads.
pub const MAX_BODY: usize = 64 * 1024;

/// How deeply nested a decoded value may be.
pub const MAX_DEPTH: usize = 64;

/// Bodies up to this size nest shallowly enough to decode on any thread.
const INLINE_BODY: usize = 256;

/// The stack of the thread that decodes larger bodies.
const DECODE_STACK: usize = 256 * 1024 * 1024;

/// Why a pickle body cannot be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PickleError {
    /// The body names Python code, which munggoggo never loads.
    #[error("the pickle refers to a Python global (a class, function or module); munggoggo reads only data from pickles: dict, list, tuple, set, str, bytes, int, float, bool and None")]
    Global,
    /// The body is not a pickle serde-pickle can read.
    #[error("not a readable pickle: {0}")]
    Malformed(String),
    /// The body is larger than [`MAX_BODY`].
    #[error("the pickle is {0} bytes long; munggoggo reads at most {MAX_BODY}")]
    TooLarge(usize),
    /// The value nests deeper than [`MAX_DEPTH`].
    #[error("the value nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// A value cannot be written as a pickle.
    #[error("cannot write the pickle: {0}")]
    Encode(String),
}

/// Encodes a JSON value (call arguments or a result) as a pickle.
pub fn encode(value: &Json) -> Result<Vec<u8>, PickleError> {
    serde_pickle::to_vec(value, SerOptions::new()).map_err(|e| PickleError::Encode(e.to_string()))
}

/// Decodes a pickle of plain data into JSON, refusing globals.
pub fn decode(body: &[u8]) -> Result<Json, PickleError> {
    decode_with(body, DeOptions::new())
}

/// The text of a pickled Python exception (an aio-pika `error` reply): its
/// arguments, without resolving its class.
pub fn decode_exception(body: &[u8]) -> Result<String, PickleError> {
    let args = decode_with(body, DeOptions::new().keep_restore_state())?;
    Ok(match args {
        Json::Array(mut args) if args.len() == 1 && args[0].is_string() => match args.pop() {
            Some(Json::String(text)) => text,
            _ => String::new(),
        },
        Json::Array(args) if args.is_empty() => "a Python exception without a message".to_owned(),
        Json::String(text) => text,
        other => other.to_string(),
    })
}

/// A pickled `builtins.RuntimeError(text)`: what a Rust method's error
/// becomes for an aio-pika caller, which raises it.
///
/// serde-pickle writes the argument tuple; the three opcodes around it
/// (protocol header, the global `builtins.RuntimeError` and REDUCE) are the
/// only bytes written here, because serde-pickle has no way to name a class.
pub fn encode_exception(text: &str) -> Result<Vec<u8>, PickleError> {
    let args = serde_pickle::to_vec(&(text,), SerOptions::new().proto_v2())
        .map_err(|e| PickleError::Encode(e.to_string()))?;
    // serde-pickle frames a value as PROTO 2 ... STOP.
    let inner = args
        .strip_prefix(b"\x80\x02")
        .and_then(|a| a.strip_suffix(b"."))
        .ok_or_else(|| PickleError::Encode("serde-pickle wrote an unexpected frame".to_owned()))?;
    let mut body = Vec::with_capacity(inner.len() + 32);
    body.extend_from_slice(b"\x80\x02cbuiltins\nRuntimeError\n");
    body.extend_from_slice(inner);
    body.extend_from_slice(b"R.");
    Ok(body)
}

fn decode_with(body: &[u8], options: DeOptions) -> Result<Json, PickleError> {
    if body.len() > MAX_BODY {
        return Err(PickleError::TooLarge(body.len()));
    }
    let run = move |body: &[u8]| -> Result<Json, PickleError> {
        let value = serde_pickle::value_from_slice(body, options).map_err(|e| match e {
            serde_pickle::Error::Syntax(serde_pickle::ErrorCode::UnresolvedGlobal) => PickleError::Global,
            e => PickleError::Malformed(e.to_string()),
        })?;
        to_json(&value, 0)
    };
    if body.len() <= INLINE_BODY {
        return run(body);
    }
    // Up to MAX_BODY bytes can nest about MAX_BODY / 2 levels, and
    // serde-pickle recurses once per level: give it room.
    let owned = body.to_vec();
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("munggoggo-pickle".to_owned())
            .stack_size(DECODE_STACK)
            .spawn_scoped(scope, move || run(&owned))
            .map_err(|e| PickleError::Malformed(format!("cannot start the decoding thread: {e}")))?
            .join()
            .map_err(|_| PickleError::Malformed("serde-pickle panicked".to_owned()))?
    })
}

fn to_json(value: &Value, depth: usize) -> Result<Json, PickleError> {
    if depth > MAX_DEPTH {
        return Err(PickleError::TooDeep);
    }
    let seq = |items: &mut dyn Iterator<Item = &Value>| -> Result<Json, PickleError> {
        items
            .map(|v| to_json(v, depth + 1))
            .collect::<Result<Vec<_>, _>>()
            .map(Json::Array)
    };
    Ok(match value {
        Value::None => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::I64(i) => Json::from(*i),
        Value::Int(i) => big_int(i),
        Value::F64(f) => Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::Bytes(b) => bytes(b),
        Value::String(s) => Json::String(s.clone()),
        Value::List(items) | Value::Tuple(items) => seq(&mut items.iter())?,
        Value::Set(items) | Value::FrozenSet(items) => {
            let items: Vec<Value> = items.iter().cloned().map(HashableValue::into_value).collect();
            seq(&mut items.iter())?
        }
        Value::Dict(map) => {
            let mut object = Map::with_capacity(map.len());
            for (key, value) in map {
                object.insert(key_text(key, depth)?, to_json(value, depth + 1)?);
            }
            Json::Object(object)
        }
    })
}

/// A dict key as a JSON object key: strings as they are, anything else as
/// its JSON text (`1`, `true`, `null`, `[1, 2]`).
fn key_text(key: &HashableValue, depth: usize) -> Result<String, PickleError> {
    match key {
        HashableValue::String(s) => Ok(s.clone()),
        other => Ok(to_json(&other.clone().into_value(), depth + 1)?.to_string()),
    }
}

fn big_int(i: &impl ToString) -> Json {
    // Lossless: a JSON number when it fits, else its decimal digits.
    let digits = i.to_string();
    match (digits.parse::<u64>(), digits.parse::<i64>()) {
        (Ok(u), _) => Json::from(u),
        (_, Ok(i)) => Json::from(i),
        _ => Json::String(digits),
    }
}

/// Bytes as text when they are UTF-8, else as a list of byte values.
fn bytes(b: &[u8]) -> Json {
    match std::str::from_utf8(b) {
        Ok(s) => Json::String(s.to_owned()),
        Err(_) => Json::Array(b.iter().map(|&b| Json::from(b)).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn data_round_trips() {
        let value = json!({"x": 6, "y": -7, "flag": true, "s": "Grüße", "l": [1.5, null], "big": u64::MAX});
        assert_eq!(decode(&encode(&value).unwrap()).unwrap(), value);
    }

    #[test]
    fn reads_what_python_sends() {
        // pickle.dumps({"x": 6, "y": 7, "flag": True}, 4), as captured from aio-pika.
        let call = b"\x80\x04\x95\x19\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x01x\x94K\x06\x8c\x01y\x94K\x07\x8c\x04flag\x94\x88u.";
        assert_eq!(decode(call).unwrap(), json!({"x": 6, "y": 7, "flag": true}));
        assert_eq!(decode(b"\x80\x04K*.").unwrap(), json!(42));
    }

    #[test]
    fn globals_are_refused() {
        // pickle.dumps(os.system, 4): a reference to a function.
        let global =
            b"\x80\x04\x95\x14\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x94\x8c\x06system\x94\x93\x94.";
        assert_eq!(decode(global), Err(PickleError::Global));
        // pickle.dumps(datetime.date(2020, 1, 1), 2): a REDUCE of a global.
        let reduce = b"\x80\x02cdatetime\ndate\nq\x00c_codecs\nencode\nq\x01X\x05\x00\x00\x00\x07\xc3\xa4\x01\x01q\x02X\x06\x00\x00\x00latin1q\x03\x86q\x04Rq\x05\x85q\x06Rq\x07.";
        assert_eq!(decode(reduce), Err(PickleError::Global));
    }

    #[test]
    fn exception_text_is_read_without_the_class() {
        // pickle.dumps(TypeError("missing 1 required positional argument: 'y'")), protocol 4.
        let body = b"\x80\x04\x95L\x00\x00\x00\x00\x00\x00\x00\x8c\x08builtins\x94\x8c\tTypeError\x94\x93\x94\x8c+missing 1 required positional argument: 'y'\x94\x85\x94R\x94.";
        let text = "missing 1 required positional argument: 'y'";
        assert_eq!(decode_exception(body).unwrap(), text);
        // The same body as a result is refused: it names a class.
        assert_eq!(decode(body), Err(PickleError::Global));
    }

    #[test]
    fn our_exception_reads_back() {
        let body = encode_exception("boom: `x` is 0").unwrap();
        assert!(body.starts_with(b"\x80\x02cbuiltins\nRuntimeError\n"));
        assert_eq!(decode_exception(&body).unwrap(), "boom: `x` is 0");
    }

    #[test]
    fn hostile_pickles_fail_cleanly() {
        assert!(matches!(decode(b"\x80\x04"), Err(PickleError::Malformed(_))));
        assert!(matches!(decode(b"garbage"), Err(PickleError::Malformed(_))));
        assert_eq!(
            decode(&vec![b'N'; MAX_BODY + 1]),
            Err(PickleError::TooLarge(MAX_BODY + 1))
        );
        // Lists nested MAX_BODY / 2 deep: refused, without exhausting the stack.
        let depth = MAX_BODY / 2 - 2;
        let mut body = vec![0x80, 0x04];
        body.extend(std::iter::repeat_n(b']', depth));
        body.extend(std::iter::repeat_n(b'a', depth - 1));
        body.push(b'.');
        assert_eq!(decode(&body), Err(PickleError::TooDeep));
    }
}
