//! Serializers (WAMP spec, "Serializations" and "WebSocket Transport"): the WebSocket
//! subprotocol names the serializer, and each WAMP message travels as one WebSocket message.
//!
//! | subprotocol      | frames | notes                                                      |
//! |------------------|--------|------------------------------------------------------------|
//! | `wamp.2.json`    | text   | byte strings travel as `"\u0000"` + base64 (spec, "JSON")   |
//! | `wamp.2.msgpack` | binary | strings are str, byte strings bin                          |
//! | `wamp.2.cbor`    | binary | strings are text, byte strings bytes                       |
//!
//! Every serializer decodes into the same [`Value`] model, so sessions on different
//! serializers talk to each other through the router.

use std::fmt;

use base64::Engine as _;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq};

use crate::message::{Message, ProtocolViolation};
use crate::value::{Dict, Value};

/// Nesting deeper than this is refused by the decoders (a stack-exhaustion guard).
const MAX_DEPTH: usize = 100;

/// The deepest message every serializer decodes, counting the message's own list as level 1:
/// anything deeper is refused whichever serializer brought it, so that a message one session
/// sends can always be delivered to a session on another serializer (MessagePack's decoder
/// stops at 49 levels, CBOR's and JSON's go further).
pub const MAX_NESTING: usize = 48;

fn nesting(v: &Value) -> usize {
    match v {
        Value::List(items) => 1 + items.iter().map(nesting).max().unwrap_or(0),
        Value::Dict(d) => 1 + d.iter().map(|(_, v)| nesting(v)).max().unwrap_or(0),
        _ => 0,
    }
}

/// The kind of WebSocket frame a serializer's messages travel in (WAMP spec, "WebSocket
/// Transport"): JSON is UTF-8 text, the others are bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameType {
    /// WebSocket text frames (opcode 1), UTF-8: `wamp.2.json`.
    Text,
    /// WebSocket binary frames (opcode 2): `wamp.2.msgpack` and `wamp.2.cbor`.
    Binary,
}

/// A WAMP serializer, named by its WebSocket subprotocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Serializer {
    /// `wamp.2.json`: JSON in text frames; byte strings as `"\u0000"` + base64.
    Json,
    /// `wamp.2.msgpack`: MessagePack in binary frames.
    MsgPack,
    /// `wamp.2.cbor`: CBOR in binary frames.
    Cbor,
}

impl Serializer {
    /// All serializers, in the order a server prefers them by default: the binary ones are
    /// smaller and faster, and carry byte strings without base64.
    pub const ALL: [Serializer; 3] = [Serializer::MsgPack, Serializer::Cbor, Serializer::Json];

    /// The WebSocket subprotocol that names it (`"wamp.2.json"`, ...).
    pub fn protocol(self) -> &'static str {
        match self {
            Serializer::Json => "wamp.2.json",
            Serializer::MsgPack => "wamp.2.msgpack",
            Serializer::Cbor => "wamp.2.cbor",
        }
    }

    /// The serializer a subprotocol names, `None` for one that is not WAMP's.
    pub fn from_protocol(protocol: &str) -> Option<Self> {
        Serializer::ALL
            .into_iter()
            .find(|s| s.protocol() == protocol)
    }

    /// The WebSocket frames its messages travel in, both ways: a message in the other kind
    /// of frame is a protocol violation.
    pub fn frame_type(self) -> FrameType {
        match self {
            Serializer::Json => FrameType::Text,
            Serializer::MsgPack | Serializer::Cbor => FrameType::Binary,
        }
    }

    /// Whether messages travel in binary frames (otherwise text frames).
    pub fn is_binary(self) -> bool {
        self.frame_type() == FrameType::Binary
    }

    /// The first of `preference` that the client offered (the server's choice, as RFC 6455
    /// §4.2.2 lets it make).
    pub fn negotiate(preference: &[Serializer], offered: &[String]) -> Option<Serializer> {
        preference
            .iter()
            .copied()
            .find(|s| offered.iter().any(|o| o == s.protocol()))
    }

    /// A message as the payload of one WebSocket message.
    pub fn encode(self, msg: &Message) -> Vec<u8> {
        self.encode_value(&msg.to_value())
    }

    /// Decodes and validates one WebSocket message's payload; anything malformed, too deep
    /// ([`MAX_NESTING`]) or not a valid message is a [`ProtocolViolation`].
    pub fn decode(self, bytes: &[u8]) -> Result<Message, ProtocolViolation> {
        Message::from_value(self.decode_value(bytes)?)
    }

    /// Any value in this serialization, for what is not a [`Message`] (tests, tools).
    pub fn encode_value(self, v: &Value) -> Vec<u8> {
        match self {
            Serializer::Json => {
                serde_json::to_vec(&Json(v)).expect("a Value always serializes to JSON")
            }
            Serializer::MsgPack => {
                let mut buf = Vec::with_capacity(64);
                write_msgpack(&mut buf, v);
                buf
            }
            Serializer::Cbor => {
                let mut buf = Vec::with_capacity(64);
                ciborium::into_writer(&to_cbor(v), &mut buf).expect("writing to a Vec");
                buf
            }
        }
    }

    /// Decodes a payload into a [`Value`] without checking it is a message; deeper than
    /// [`MAX_NESTING`] is refused.
    pub fn decode_value(self, bytes: &[u8]) -> Result<Value, ProtocolViolation> {
        let value = self.decode_any(bytes)?;
        if nesting(&value) > MAX_NESTING {
            return Err(ProtocolViolation::new(format!(
                "nested deeper than {MAX_NESTING} levels"
            )));
        }
        Ok(value)
    }

    fn decode_any(self, bytes: &[u8]) -> Result<Value, ProtocolViolation> {
        match self {
            Serializer::Json => serde_json::from_slice::<JsonIn>(bytes)
                .map(|j| j.0)
                .map_err(|e| ProtocolViolation::new(format!("invalid JSON: {e}"))),
            Serializer::MsgPack => {
                let mut rd = bytes;
                let v = rmpv::decode::read_value_with_max_depth(&mut rd, MAX_DEPTH)
                    .map_err(|e| ProtocolViolation::new(format!("invalid MessagePack: {e}")))?;
                if !rd.is_empty() {
                    return Err(ProtocolViolation::new(
                        "invalid MessagePack: bytes after the message",
                    ));
                }
                from_msgpack(v, 0)
            }
            Serializer::Cbor => {
                let mut rd = bytes;
                let v: ciborium::Value =
                    ciborium::de::from_reader_with_recursion_limit(&mut rd, MAX_DEPTH)
                        .map_err(|e| ProtocolViolation::new(format!("invalid CBOR: {e}")))?;
                if !rd.is_empty() {
                    return Err(ProtocolViolation::new(
                        "invalid CBOR: bytes after the message",
                    ));
                }
                from_cbor(v, 0)
            }
        }
    }
}

impl fmt::Display for Serializer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.protocol())
    }
}

// ---- JSON ----

/// "A byte array is converted to a JSON string as follows: convert the byte array to a
/// Base64 encoded (host language) string, prepend the string with a \0 character."
fn json_bytes(b: &[u8]) -> String {
    let mut s = String::with_capacity(1 + b.len().div_ceil(3) * 4);
    s.push('\0');
    base64::engine::general_purpose::STANDARD.encode_string(b, &mut s);
    s
}

struct Json<'a>(&'a Value);

impl Serialize for Json<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::UInt(u) => s.serialize_u64(*u),
            Value::Float(f) => s.serialize_f64(*f),
            Value::Str(t) => s.serialize_str(t),
            Value::Bytes(b) => s.serialize_str(&json_bytes(b)),
            Value::List(l) => {
                let mut seq = s.serialize_seq(Some(l.len()))?;
                for v in l {
                    seq.serialize_element(&Json(v))?;
                }
                seq.end()
            }
            Value::Dict(d) => {
                let mut map = s.serialize_map(Some(d.len()))?;
                for (k, v) in d.iter() {
                    map.serialize_entry(k, &Json(v))?;
                }
                map.end()
            }
        }
    }
}

struct JsonIn(Value);

impl<'de> Deserialize<'de> for JsonIn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JsonVisitor).map(JsonIn)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, i: i64) -> Result<Value, E> {
        Ok(Value::Int(i))
    }

    fn visit_u64<E>(self, u: u64) -> Result<Value, E> {
        Ok(Value::from(u))
    }

    fn visit_f64<E>(self, f: f64) -> Result<Value, E> {
        Ok(Value::Float(f))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
        self.visit_string(s.to_owned())
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Value, E> {
        match s.strip_prefix('\0') {
            Some(b64) => base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map(Value::Bytes)
                .map_err(|e| E::custom(format!("invalid base64 in a \\u0000 string: {e}"))),
            None => Ok(Value::Str(s)),
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut l = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(JsonIn(v)) = seq.next_element()? {
            l.push(v);
        }
        Ok(Value::List(l))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut d = Dict::new();
        while let Some((k, JsonIn(v))) = map.next_entry::<String, JsonIn>()? {
            d.insert(k, v);
        }
        Ok(Value::Dict(d))
    }
}

// ---- MessagePack ----

fn write_msgpack(buf: &mut Vec<u8>, v: &Value) {
    use rmp::encode as mp;
    // Writing into a Vec cannot fail.
    match v {
        Value::Null => mp::write_nil(buf).expect("vec"),
        Value::Bool(b) => mp::write_bool(buf, *b).expect("vec"),
        Value::Int(i) => {
            mp::write_sint(buf, *i).expect("vec");
        }
        Value::UInt(u) => {
            mp::write_uint(buf, *u).expect("vec");
        }
        Value::Float(f) => mp::write_f64(buf, *f).expect("vec"),
        Value::Str(s) => mp::write_str(buf, s).expect("vec"),
        Value::Bytes(b) => mp::write_bin(buf, b).expect("vec"),
        Value::List(l) => {
            mp::write_array_len(buf, len32(l.len())).expect("vec");
            for x in l {
                write_msgpack(buf, x);
            }
        }
        Value::Dict(d) => {
            mp::write_map_len(buf, len32(d.len())).expect("vec");
            for (k, x) in d.iter() {
                mp::write_str(buf, k).expect("vec");
                write_msgpack(buf, x);
            }
        }
    }
}

fn len32(n: usize) -> u32 {
    u32::try_from(n).expect("a MessagePack container holds at most 2^32-1 items")
}

fn from_msgpack(v: rmpv::Value, depth: usize) -> Result<Value, ProtocolViolation> {
    use rmpv::Value as M;
    if depth > MAX_DEPTH {
        return Err(ProtocolViolation::new("MessagePack nested too deeply"));
    }
    Ok(match v {
        M::Nil => Value::Null,
        M::Boolean(b) => Value::Bool(b),
        M::Integer(i) => match (i.as_i64(), i.as_u64()) {
            (Some(i), _) => Value::Int(i),
            (None, Some(u)) => Value::UInt(u),
            (None, None) => unreachable!("a MessagePack integer is an i64 or a u64"),
        },
        M::F32(f) => Value::Float(f.into()),
        M::F64(f) => Value::Float(f),
        M::String(s) => match s.into_str() {
            Some(s) => Value::Str(s),
            None => return Err(ProtocolViolation::new("MessagePack string is not UTF-8")),
        },
        M::Binary(b) => Value::Bytes(b),
        M::Array(a) => Value::List(
            a.into_iter()
                .map(|x| from_msgpack(x, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        M::Map(m) => {
            let mut d = Dict::with_capacity(m.len());
            for (k, x) in m {
                let M::String(k) = k else {
                    return Err(ProtocolViolation::new(
                        "MessagePack map key is not a string",
                    ));
                };
                let Some(k) = k.into_str() else {
                    return Err(ProtocolViolation::new("MessagePack map key is not UTF-8"));
                };
                d.insert(k, from_msgpack(x, depth + 1)?);
            }
            Value::Dict(d)
        }
        M::Ext(..) => return Err(ProtocolViolation::new("MessagePack ext types are not WAMP")),
    })
}

// ---- CBOR ----

fn to_cbor(v: &Value) -> ciborium::Value {
    use ciborium::Value as C;
    match v {
        Value::Null => C::Null,
        Value::Bool(b) => C::Bool(*b),
        Value::Int(i) => C::Integer((*i).into()),
        Value::UInt(u) => C::Integer((*u).into()),
        Value::Float(f) => C::Float(*f),
        Value::Str(s) => C::Text(s.clone()),
        Value::Bytes(b) => C::Bytes(b.clone()),
        Value::List(l) => C::Array(l.iter().map(to_cbor).collect()),
        Value::Dict(d) => C::Map(
            d.iter()
                .map(|(k, x)| (C::Text(k.to_owned()), to_cbor(x)))
                .collect(),
        ),
    }
}

fn from_cbor(v: ciborium::Value, depth: usize) -> Result<Value, ProtocolViolation> {
    use ciborium::Value as C;
    if depth > MAX_DEPTH {
        return Err(ProtocolViolation::new("CBOR nested too deeply"));
    }
    Ok(match v {
        C::Null => Value::Null,
        C::Bool(b) => Value::Bool(b),
        C::Integer(i) => {
            let i = i128::from(i);
            match (i64::try_from(i), u64::try_from(i)) {
                (Ok(i), _) => Value::Int(i),
                (_, Ok(u)) => Value::UInt(u),
                _ => return Err(ProtocolViolation::new("CBOR integer out of range")),
            }
        }
        C::Float(f) => Value::Float(f),
        C::Text(s) => Value::Str(s),
        C::Bytes(b) => Value::Bytes(b),
        C::Array(a) => Value::List(
            a.into_iter()
                .map(|x| from_cbor(x, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        C::Map(m) => {
            let mut d = Dict::with_capacity(m.len());
            for (k, x) in m {
                let C::Text(k) = k else {
                    return Err(ProtocolViolation::new("CBOR map key is not a string"));
                };
                d.insert(k, from_cbor(x, depth + 1)?);
            }
            Value::Dict(d)
        }
        // Tags (dates, bignums) are not WAMP types; the tagged value is what counts.
        C::Tag(_, inner) => from_cbor(*inner, depth + 1)?,
        _ => return Err(ProtocolViolation::new("unsupported CBOR value")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dict;

    fn sample() -> Value {
        Value::List(vec![
            Value::Null,
            true.into(),
            (-5).into(),
            Value::from(u64::MAX),
            1.5.into(),
            "héllo".into(),
            Value::Bytes(vec![0, 1, 2, 255]),
            Value::Dict(dict! {"z" => 1, "a" => Value::List(vec![])}),
        ])
    }

    #[test]
    fn every_serializer_round_trips_every_type() {
        for s in Serializer::ALL {
            let bytes = s.encode_value(&sample());
            assert_eq!(s.decode_value(&bytes).unwrap(), sample(), "{s}");
        }
    }

    #[test]
    fn json_bytes_are_nul_prefixed_base64() {
        let v = Value::Bytes(b"\x00\x01hi".to_vec());
        let text = Serializer::Json.encode_value(&v);
        assert_eq!(text, br#""\u0000AAFoaQ==""#);
        assert_eq!(Serializer::Json.decode_value(&text).unwrap(), v);
    }

    #[test]
    fn json_keeps_key_order() {
        let text = br#"{"session":1,"authid":"a","authrole":"r"}"#;
        let v = Serializer::Json.decode_value(text).unwrap();
        assert_eq!(Serializer::Json.encode_value(&v), text);
    }

    #[test]
    fn garbage_is_a_violation_not_a_panic() {
        for s in Serializer::ALL {
            for bad in [&b""[..], b"\xc1", b"[1,", b"\x91\xc7\x01\x01\x00", b"[1] x"] {
                let _ = s.decode(bad).unwrap_err();
            }
        }
        let deep = "[".repeat(1000) + &"]".repeat(1000);
        Serializer::Json.decode(deep.as_bytes()).unwrap_err();
        let mut mp = vec![0x91u8; 1000];
        mp.push(0xc0);
        Serializer::MsgPack.decode(&mp).unwrap_err();
        let mut cb = vec![0x81u8; 1000];
        cb.push(0xf6);
        Serializer::Cbor.decode(&cb).unwrap_err();
    }

    #[test]
    fn server_preference_decides() {
        let offered = vec!["wamp.2.json".to_owned(), "wamp.2.msgpack".to_owned()];
        assert_eq!(
            Serializer::negotiate(&Serializer::ALL, &offered),
            Some(Serializer::MsgPack)
        );
        assert_eq!(
            Serializer::negotiate(&[Serializer::Json], &offered),
            Some(Serializer::Json)
        );
        assert_eq!(Serializer::negotiate(&Serializer::ALL, &[]), None);
    }
}
