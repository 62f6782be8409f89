//! Conversions between munggoggo's [`Properties`] and AMQP basic
//! properties, and between AMQP field tables and JSON header values.
//!
//! Pure functions, so they are unit-tested without a broker.

use lapin::types::{AMQPValue, FieldArray, FieldTable, LongString, ShortString};
use lapin::BasicProperties;
use serde_json::{Number, Value};

use crate::error::{Error, Result};
use crate::message::{Headers, Properties, SmolStr};

/// Nested tables and arrays deeper than this become `null` (a hostile
/// message must not exhaust the stack).
const MAX_DEPTH: usize = 64;

/// An AMQP short string (at most 255 bytes), or an error naming what it is.
pub(super) fn short(what: &str, value: &str) -> Result<ShortString> {
    ShortString::try_new(value).map_err(|_| {
        let mut end = 40.min(value.len());
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        Error::bus(format!(
            "{what} `{}…` is {} bytes long; AMQP allows at most 255",
            &value[..end],
            value.len()
        ))
    })
}

/// The AMQP properties munggoggo publishes with: the given properties plus
/// `delivery_mode` 1 (transient), `priority` 0 and a header table that is
/// always present (`{}` when empty), as munggoggo 0.4 sends them.
pub(super) fn to_amqp(props: &Properties) -> Result<BasicProperties> {
    let mut headers = json_to_table(&props.headers)?;
    crate::traceparent::to_table(props.trace.as_ref(), &mut headers);
    let mut amqp = BasicProperties::default()
        .with_headers(headers)
        .with_delivery_mode(1)
        .with_priority(0);
    if let Some(kind) = &props.kind {
        amqp = amqp.with_type(short("message type", kind)?);
    }
    if let Some(app_id) = &props.app_id {
        amqp = amqp.with_app_id(short("app_id", app_id)?);
    }
    if let Some(content_type) = &props.content_type {
        amqp = amqp.with_content_type(short("content_type", content_type)?);
    }
    if let Some(timestamp) = props.timestamp {
        amqp = amqp.with_timestamp(timestamp);
    }
    if let Some(message_id) = &props.message_id {
        amqp = amqp.with_message_id(short("message_id", message_id)?);
    }
    if let Some(correlation_id) = &props.correlation_id {
        amqp = amqp.with_correlation_id(short("correlation_id", correlation_id)?);
    }
    if let Some(reply_to) = &props.reply_to {
        amqp = amqp.with_reply_to(short("reply_to", reply_to)?);
    }
    if let Some(user_id) = &props.user_id {
        amqp = amqp.with_user_id(short("user_id", user_id)?);
    }
    if let Some(expiration) = &props.expiration {
        amqp = amqp.with_expiration(short("expiration", expiration)?);
    }
    Ok(amqp)
}

/// munggoggo's view of received AMQP properties.
pub(super) fn from_amqp(amqp: &BasicProperties) -> Properties {
    let text = |s: &Option<ShortString>| s.as_ref().map(|s| SmolStr::from(s.as_str()));
    let headers: Headers = amqp.headers().as_ref().map(table_to_json).unwrap_or_default();
    Properties {
        trace: crate::traceparent::from_wire(&headers),
        kind: text(amqp.kind()),
        app_id: text(amqp.app_id()),
        correlation_id: text(amqp.correlation_id()),
        message_id: text(amqp.message_id()),
        timestamp: *amqp.timestamp(),
        headers,
        content_type: text(amqp.content_type()),
        user_id: text(amqp.user_id()),
        reply_to: text(amqp.reply_to()),
        expiration: text(amqp.expiration()),
    }
}

/// An AMQP field table as a JSON object.
pub(super) fn table_to_json(table: &FieldTable) -> Headers {
    table_at(table, 0)
}

fn table_at(table: &FieldTable, depth: usize) -> Headers {
    table
        .inner()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), value_at(v, depth + 1)))
        .collect()
}

fn value_at(value: &AMQPValue, depth: usize) -> Value {
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    match value {
        AMQPValue::Boolean(b) => Value::Bool(*b),
        AMQPValue::ShortShortInt(n) => Value::from(*n),
        AMQPValue::ShortShortUInt(n) => Value::from(*n),
        AMQPValue::ShortInt(n) => Value::from(*n),
        AMQPValue::ShortUInt(n) => Value::from(*n),
        AMQPValue::LongInt(n) => Value::from(*n),
        AMQPValue::LongUInt(n) => Value::from(*n),
        AMQPValue::LongLongInt(n) => Value::from(*n),
        AMQPValue::Timestamp(n) => Value::from(*n),
        AMQPValue::Float(f) => float(f64::from(*f)),
        AMQPValue::Double(f) => float(*f),
        AMQPValue::DecimalValue(d) => float(f64::from(d.value) / 10f64.powi(i32::from(d.scale))),
        AMQPValue::ShortString(s) => Value::String(s.as_str().to_owned()),
        AMQPValue::LongString(s) => Value::String(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ByteArray(b) => Value::String(String::from_utf8_lossy(b.as_slice()).into_owned()),
        AMQPValue::FieldArray(a) => {
            Value::Array(a.as_slice().iter().map(|v| value_at(v, depth + 1)).collect())
        }
        AMQPValue::FieldTable(t) => Value::Object(table_at(t, depth)),
        AMQPValue::Void => Value::Null,
    }
}

fn float(f: f64) -> Value {
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// A JSON object as an AMQP field table: strings become long strings,
/// integers 64-bit signed integers (larger ones doubles), objects nested
/// tables, arrays field arrays, `null` void.
pub(super) fn json_to_table(headers: &Headers) -> Result<FieldTable> {
    let mut table = FieldTable::default();
    for (key, value) in headers {
        table.insert(short("header name", key)?, json_to_value(value)?);
    }
    Ok(table)
}

fn json_to_value(value: &Value) -> Result<AMQPValue> {
    Ok(match value {
        Value::Null => AMQPValue::Void,
        Value::Bool(b) => AMQPValue::Boolean(*b),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => AMQPValue::LongLongInt(i),
            (None, Some(f)) => AMQPValue::Double(f),
            (None, None) => {
                return Err(Error::bus(format!(
                    "header value {n} is not representable in AMQP"
                )))
            }
        },
        Value::String(s) => AMQPValue::LongString(LongString::from(s.as_bytes())),
        Value::Array(items) => AMQPValue::FieldArray(FieldArray::from(
            items.iter().map(json_to_value).collect::<Result<Vec<_>>>()?,
        )),
        Value::Object(map) => AMQPValue::FieldTable(json_to_table(map)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use lapin::types::{ByteArray, DecimalValue};
    use serde_json::json;

    fn headers(value: Value) -> Headers {
        match value {
            Value::Object(map) => map,
            _ => Headers::new(),
        }
    }

    #[test]
    fn json_headers_survive_a_round_trip() {
        let h = headers(json!({
            "k": "v", "n": 1, "neg": -7, "big": u64::MAX, "f": 1.5, "yes": true, "none": null,
            "list": [1, "two", [3]], "nested": {"a": {"b": "c"}}, "empty": {}
        }));
        let table = json_to_table(&h).unwrap();
        assert_eq!(table.inner().get("k"), Some(&AMQPValue::LongString("v".into())));
        assert_eq!(table.inner().get("n"), Some(&AMQPValue::LongLongInt(1)));
        assert_eq!(table.inner().get("none"), Some(&AMQPValue::Void));
        let back = table_to_json(&table);
        let mut expected = h.clone();
        expected.insert("big".into(), json!(u64::MAX as f64));
        assert_eq!(back, expected);
    }

    #[test]
    fn every_amqp_value_type_maps_to_json() {
        let mut inner = FieldTable::default();
        inner.insert("x".into(), AMQPValue::ShortShortUInt(3));
        let mut t = FieldTable::default();
        t.insert("b".into(), AMQPValue::ShortShortInt(-1));
        t.insert("s".into(), AMQPValue::ShortInt(-300));
        t.insert("u".into(), AMQPValue::ShortUInt(300));
        t.insert("i".into(), AMQPValue::LongInt(-70000));
        t.insert("I".into(), AMQPValue::LongUInt(70000));
        t.insert("ts".into(), AMQPValue::Timestamp(1_700_000_000));
        t.insert("f".into(), AMQPValue::Float(0.5));
        t.insert("nan".into(), AMQPValue::Double(f64::NAN));
        t.insert(
            "d".into(),
            AMQPValue::DecimalValue(DecimalValue {
                scale: 2,
                value: 1234,
            }),
        );
        t.insert("ss".into(), AMQPValue::ShortString("short".into()));
        t.insert(
            "bad".into(),
            AMQPValue::LongString(LongString::from(vec![b'a', 0xff])),
        );
        t.insert(
            "bytes".into(),
            AMQPValue::ByteArray(ByteArray::from(vec![b'h', b'i'])),
        );
        t.insert(
            "arr".into(),
            AMQPValue::FieldArray(vec![AMQPValue::Boolean(false)].into()),
        );
        t.insert("tbl".into(), AMQPValue::FieldTable(inner));
        let json = Value::Object(table_to_json(&t));
        assert_eq!(
            json,
            json!({
                "b": -1, "s": -300, "u": 300, "i": -70000, "I": 70000, "ts": 1_700_000_000u64,
                "f": 0.5, "nan": null, "d": 12.34, "ss": "short", "bad": "a\u{fffd}", "bytes": "hi",
                "arr": [false], "tbl": {"x": 3}
            })
        );
    }

    #[test]
    fn deeply_nested_tables_are_cut_off() {
        let mut t = FieldTable::default();
        for _ in 0..(MAX_DEPTH + 10) {
            let mut outer = FieldTable::default();
            outer.insert("n".into(), AMQPValue::FieldTable(t));
            t = outer;
        }
        let json = Value::Object(table_to_json(&t));
        let mut depth = 0;
        let mut cursor = &json;
        while let Some(next) = cursor.get("n") {
            depth += 1;
            cursor = next;
        }
        assert!(depth <= MAX_DEPTH + 1, "depth {depth}");
        assert_eq!(cursor, &Value::Null);
    }

    #[test]
    fn properties_round_trip_with_munggoggo_defaults() {
        let mut props = Properties::new("CUSTOM", "agent1");
        props.correlation_id = Some("c0ffee".into());
        props.reply_to = Some("agent1".into());
        props.headers = headers(json!({"k": "v", "n": 1}));
        let amqp = to_amqp(&props).unwrap();
        assert_eq!(*amqp.delivery_mode(), Some(1));
        assert_eq!(*amqp.priority(), Some(0));
        assert_eq!(amqp.kind().as_ref().map(ShortString::as_str), Some("CUSTOM"));
        assert_eq!(amqp.app_id().as_ref().map(ShortString::as_str), Some("agent1"));
        assert_eq!(
            amqp.content_type().as_ref().map(ShortString::as_str),
            Some("application/json")
        );
        assert!(amqp.user_id().is_none());
        assert_eq!(from_amqp(&amqp), props);
    }

    #[test]
    fn empty_headers_are_sent_as_an_empty_table() {
        let props = Properties::new("PUBSUB", "a");
        let amqp = to_amqp(&props).unwrap();
        assert_eq!(amqp.headers().as_ref().map(|t| t.inner().len()), Some(0));
        assert!(amqp.correlation_id().is_none());
        assert!(amqp.reply_to().is_none());
    }

    #[test]
    fn missing_amqp_properties_stay_absent() {
        let props = from_amqp(&BasicProperties::default());
        assert_eq!(props, Properties::default());
    }

    #[test]
    fn overlong_short_strings_are_errors_not_panics() {
        let mut props = Properties::new("CUSTOM", "a");
        props.kind = Some("é".repeat(200).into());
        let err = to_amqp(&props).unwrap_err().to_string();
        assert!(err.contains("message type"), "{err}");
        assert!(err.contains("400 bytes"), "{err}");
        let long_key: Headers = [("k".repeat(256), Value::Null)].into_iter().collect();
        assert!(json_to_table(&long_key).is_err());
    }
}
