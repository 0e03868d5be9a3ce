//! The shared body of `wamp_json`, `wamp_msgpack` and `wamp_cbor`: one serializer's `decode` on
//! arbitrary bytes.
//!
//! What must hold, for a value the serializer decodes (message or not):
//! - it re-encodes to bytes that decode to the same value, and those bytes re-encode to
//!   themselves (encoding is a function of the value);
//! - MessagePack and CBOR carry every value, so it also survives a trip through the other two
//!   serializers, except JSON for what JSON cannot carry (non-finite floats; strings that start
//!   with NUL, which the WAMP JSON rules read as base64 byte strings).
//!
//! and for a message (`Serializer::decode`): the same, message for message (`Message::to_value`
//! then `from_value` is what `encode` and `decode` do around the serializer).
//!
//! NaN is not equal to itself, so values are compared with every NaN equal to every other.
//! Every serializer takes the same nesting depth, and JSON floats round-trip exactly
//! (serde_json's `float_roundtrip`): this target found both when they did not.

use sockeye_wamp_proto::{Message, Serializer, Value};

/// `a == b`, with NaN equal to NaN.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => x == y || (x.is_nan() && y.is_nan()),
        (Value::List(x), Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Dict(x), Value::Dict(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y.iter())
                    .all(|((kx, vx), (ky, vy))| kx == ky && same(vx, vy))
        }
        _ => a == b,
    }
}

/// Whether any float in `v` is NaN (whose bits a serializer need not keep).
fn has_nan(v: &Value) -> bool {
    match v {
        Value::Float(f) => f.is_nan(),
        Value::List(l) => l.iter().any(has_nan),
        Value::Dict(d) => d.iter().any(|(_, v)| has_nan(v)),
        _ => false,
    }
}

/// Whether serializer `other` is expected to carry `v`, which `s` decoded.
fn carries(s: Serializer, other: Serializer, v: &Value) -> bool {
    other == s || other != Serializer::Json || json_carries(v)
}

/// Whether `wamp.2.json` can carry `v` unchanged.
fn json_carries(v: &Value) -> bool {
    match v {
        Value::Float(f) => f.is_finite(),
        Value::Str(s) => !s.starts_with('\0'),
        Value::List(l) => l.iter().all(json_carries),
        Value::Dict(d) => d.iter().all(|(_, v)| json_carries(v)),
        _ => true,
    }
}

fn value_round_trip(s: Serializer, v: &Value) {
    let bytes = s.encode_value(v);
    let back = s
        .decode_value(&bytes)
        .unwrap_or_else(|e| panic!("{s}: {e}: {v:?} encodes to {bytes:02x?}"));
    assert!(same(v, &back), "{s}: {v:?} comes back as {back:?}");
    if !has_nan(v) {
        assert_eq!(s.encode_value(&back), bytes, "{s}: {v:?}");
    }
}

fn message_round_trip(s: Serializer, m: &Message) {
    let bytes = s.encode(m);
    let back = s
        .decode(&bytes)
        .unwrap_or_else(|e| panic!("{s}: {e}: {m:?} encodes to {bytes:02x?}"));
    assert_eq!(back.code(), m.code());
    let v = m.to_value();
    assert!(
        same(&back.to_value(), &v),
        "{s}: {m:?} comes back as {back:?}"
    );
    if !has_nan(&v) {
        assert_eq!(&back, m, "{s}");
    }
}

pub fn run(s: Serializer, data: &[u8]) {
    let Ok(value) = s.decode_value(data) else {
        // Then it is no message either.
        assert!(s.decode(data).is_err());
        return;
    };
    for other in Serializer::ALL {
        if carries(s, other, &value) {
            value_round_trip(other, &value);
        }
    }
    let Ok(msg) = s.decode(data) else {
        return;
    };
    let v = msg.to_value();
    assert!(
        same(&v, &value),
        "{msg:?} is not what was decoded: {value:?}"
    );
    for other in Serializer::ALL {
        if carries(s, other, &v) {
            message_round_trip(other, &msg);
        }
    }
}
