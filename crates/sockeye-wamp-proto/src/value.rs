//! The value model every serializer decodes into and encodes from.
//!
//! WAMP payloads are "JSON-like with binary": integers, floats, booleans, strings, byte
//! strings, lists and string-keyed dictionaries (WAMP spec §"Serializations"). One model for all
//! serializers is what lets a JSON session and a MessagePack session talk to each other through
//! the router without either side knowing.
//!
//! Dictionaries keep their keys in insertion order. Nothing in WAMP depends on order, but the
//! test vectors of the spec are byte-exact, and re-encoding `{"session":…,"authid":…}` must not
//! come out sorted.

use std::fmt;

/// One WAMP value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// JSON `null`, MessagePack nil, CBOR null.
    Null,
    /// A boolean.
    Bool(bool),
    /// Integers that fit `i64`. Non-negative integers above `i64::MAX` are [`Value::UInt`], so
    /// each number has one representation and `==` is numeric equality.
    Int(i64),
    /// Integers above `i64::MAX`, up to `u64::MAX`; smaller ones are always [`Value::Int`].
    UInt(u64),
    /// A floating-point number; `1.0` is not equal to the integer `1`.
    Float(f64),
    /// A UTF-8 string (URIs are strings too).
    Str(String),
    /// A byte string: MessagePack bin, CBOR bytes, in JSON `"\u0000"` + base64.
    Bytes(Vec<u8>),
    /// An ordered list (WAMP's `list`, e.g. `Arguments`).
    List(Vec<Value>),
    /// A string-keyed dictionary (WAMP's `dict`, e.g. `Options` and `ArgumentsKw`).
    Dict(Dict),
}

impl Value {
    /// About how many bytes the value takes, serialized or held: what queues and retained
    /// events are measured in. Strings and byte strings count their length, numbers 9 bytes,
    /// containers the sum of their parts.
    pub fn size_hint(&self) -> usize {
        match self {
            Value::Null | Value::Bool(_) => 1,
            Value::Int(_) | Value::UInt(_) | Value::Float(_) => 9,
            Value::Str(s) => s.len() + 2,
            Value::Bytes(b) => b.len() + 2,
            Value::List(items) => 2 + items.iter().map(Value::size_hint).sum::<usize>(),
            Value::Dict(dict) => dict.size_hint(),
        }
    }

    /// The value as a non-negative integer, if it is one.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::Int(i) if i >= 0 => Some(i as u64),
            Value::UInt(u) => Some(u),
            _ => None,
        }
    }

    /// The value as a signed integer, if it is a [`Value::Int`].
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Int(i) => Some(i),
            _ => None,
        }
    }

    /// The value as a string slice, if it is a [`Value::Str`].
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value as a boolean, if it is one.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The value's items, if it is a list.
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    /// The value as a dictionary, if it is one.
    pub fn as_dict(&self) -> Option<&Dict> {
        match self {
            Value::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// A short name of the value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) | Value::UInt(_) => "integer",
            Value::Float(_) => "float",
            Value::Str(_) => "string",
            Value::Bytes(_) => "bytes",
            Value::List(_) => "list",
            Value::Dict(_) => "dict",
        }
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl From<i32> for Value {
    fn from(i: i32) -> Self {
        Value::Int(i.into())
    }
}

impl From<u64> for Value {
    fn from(u: u64) -> Self {
        match i64::try_from(u) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::UInt(u),
        }
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Self {
        Value::Float(f)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}

impl From<Vec<u8>> for Value {
    fn from(b: Vec<u8>) -> Self {
        Value::Bytes(b)
    }
}

impl From<Vec<Value>> for Value {
    fn from(l: Vec<Value>) -> Self {
        Value::List(l)
    }
}

impl From<Dict> for Value {
    fn from(d: Dict) -> Self {
        Value::Dict(d)
    }
}

/// A string-keyed dictionary that keeps insertion order and unique keys (inserting an existing
/// key replaces its value in place, as JSON decoders do with duplicate keys).
///
/// Lookups are linear: WAMP option and detail dictionaries have a handful of keys.
#[derive(Clone, Default, PartialEq)]
pub struct Dict(Vec<(String, Value)>);

impl Dict {
    /// An empty dictionary.
    pub fn new() -> Self {
        Dict(Vec::new())
    }

    /// An empty dictionary with room for `n` keys.
    pub fn with_capacity(n: usize) -> Self {
        Dict(Vec::with_capacity(n))
    }

    /// The value under `key`, if there is one.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Sets `key` to `value`, replacing an existing value in place (its position is kept).
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<Value>) {
        let key = key.into();
        let value = value.into();
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
    }

    /// Builder form of [`Dict::insert`].
    pub fn with(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.insert(key, value);
        self
    }

    /// Takes the value under `key` out, keeping the order of the others.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let i = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.remove(i).1)
    }

    /// Whether `key` has a value.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// See [`Value::size_hint`].
    pub fn size_hint(&self) -> usize {
        2 + self
            .0
            .iter()
            .map(|(k, v)| k.len() + 2 + v.size_hint())
            .sum::<usize>()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The keys and values, in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The value under `key` if it is a boolean (`None` if missing or of another type).
    pub fn get_bool(&self, key: &str) -> Option<bool> {
        self.get(key).and_then(Value::as_bool)
    }

    /// The value under `key` if it is a string.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    /// The value under `key` if it is a non-negative integer.
    pub fn get_u64(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(Value::as_u64)
    }

    /// The value under `key` if it is a dictionary.
    pub fn get_dict(&self, key: &str) -> Option<&Dict> {
        self.get(key).and_then(Value::as_dict)
    }

    /// The value under `key` if it is a list.
    pub fn get_list(&self, key: &str) -> Option<&[Value]> {
        self.get(key).and_then(Value::as_list)
    }
}

impl fmt::Debug for Dict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl FromIterator<(String, Value)> for Dict {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Self {
        let mut d = Dict::new();
        for (k, v) in iter {
            d.insert(k, v);
        }
        d
    }
}

impl IntoIterator for Dict {
    type Item = (String, Value);
    type IntoIter = std::vec::IntoIter<(String, Value)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// Builds a [`Dict`]: `dict! { "acknowledge" => true, "exclude" => vec![Value::from(1)] }`.
#[macro_export]
macro_rules! dict {
    () => { $crate::Dict::new() };
    ($($k:expr => $v:expr),+ $(,)?) => {{
        let mut d = $crate::Dict::new();
        $( d.insert($k, $v); )+
        d
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dict_keeps_insertion_order_and_replaces_duplicates() {
        let mut d = dict! { "session" => 1, "authid" => "a" };
        d.insert("session", 2);
        let keys: Vec<_> = d.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["session", "authid"]);
        assert_eq!(d.get_u64("session"), Some(2));
    }

    #[test]
    fn integers_have_one_representation() {
        assert_eq!(Value::from(5u64), Value::Int(5));
        assert_eq!(Value::from(u64::MAX), Value::UInt(u64::MAX));
        assert_eq!(Value::Int(-1).as_u64(), None);
    }
}
