//! Values of any type, as an archive of unknown key and value types holds
//! them: MessagePack trees (`rmpv`), and their JSON form for people and
//! scripts.

use std::hash::{Hash, Hasher};

use rmpv::Value;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value as Json;

/// A key of any type, compared and hashed by its MessagePack encoding
/// (what the persistent archives store as the key).
#[derive(Clone, Debug)]
pub struct AnyKey {
    pub value: Value,
    pub bytes: Vec<u8>,
}

impl AnyKey {
    /// The key whose MessagePack encoding is `bytes`.
    pub fn from_bytes(bytes: &[u8]) -> Result<AnyKey, String> {
        let value =
            rmp_serde::from_slice(bytes).map_err(|e| format!("not a MessagePack key: {e}"))?;
        Ok(AnyKey {
            value,
            bytes: bytes.to_vec(),
        })
    }
}

impl PartialEq for AnyKey {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for AnyKey {}

impl Hash for AnyKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.bytes.hash(state);
    }
}

impl Serialize for AnyKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for AnyKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let bytes = rmp_serde::to_vec(&value).map_err(serde::de::Error::custom)?;
        Ok(AnyKey { value, bytes })
    }
}

/// `value` as JSON: maps with keys that are not strings become lists of
/// `[key, value]` pairs, bytes lists of numbers, non-finite floats strings.
pub fn to_json(value: &Value) -> Json {
    match value {
        Value::Nil => Json::Null,
        Value::Boolean(b) => Json::Bool(*b),
        Value::Integer(i) => match (i.as_u64(), i.as_i64()) {
            (Some(u), _) => Json::from(u),
            (None, Some(s)) => Json::from(s),
            _ => Json::Null,
        },
        Value::F32(f) => float(f64::from(*f)),
        Value::F64(f) => float(*f),
        Value::String(s) => Json::String(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        Value::Binary(b) => Json::Array(b.iter().map(|&x| Json::from(x)).collect()),
        Value::Array(items) => Json::Array(items.iter().map(to_json).collect()),
        Value::Map(pairs) if pairs.iter().all(|(k, _)| k.is_str()) => Json::Object(
            pairs
                .iter()
                .map(|(k, v)| (k.as_str().unwrap_or_default().to_owned(), to_json(v)))
                .collect(),
        ),
        Value::Map(pairs) => Json::Array(
            pairs
                .iter()
                .map(|(k, v)| Json::Array(vec![to_json(k), to_json(v)]))
                .collect(),
        ),
        Value::Ext(kind, data) => serde_json::json!({ "ext": kind, "data": data }),
    }
}

fn float(f: f64) -> Json {
    serde_json::Number::from_f64(f).map_or_else(|| Json::String(f.to_string()), Json::Number)
}

/// The MessagePack tree of a JSON value (the inverse of [`to_json`] for
/// numbers, strings, lists and string-keyed maps).
pub fn from_json(json: &Json) -> Value {
    match json {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Boolean(*b),
        Json::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Value::from(u),
            (None, Some(i), _) => Value::from(i),
            (_, _, Some(f)) => Value::F64(f),
            _ => Value::Nil,
        },
        Json::String(s) => Value::from(s.as_str()),
        Json::Array(items) => Value::Array(items.iter().map(from_json).collect()),
        Json::Object(map) => Value::Map(
            map.iter()
                .map(|(k, v)| (Value::from(k.as_str()), from_json(v)))
                .collect(),
        ),
    }
}

pub use klepto::hex::encode as hex;

/// A key in hexadecimal (as `klepto ls` shows it) back to bytes.
pub fn unhex(text: &str) -> Result<Vec<u8>, String> {
    let text = text.trim();
    klepto::hex::decode(text)
        .ok_or_else(|| format!("`{text}` is not a key in hexadecimal (as `klepto ls` shows it)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trips_what_it_can() {
        let value = Value::Array(vec![
            Value::from(1u64),
            Value::from(-2i64),
            Value::F64(2.5),
            Value::from("a"),
            Value::Map(vec![(Value::from("k"), Value::from(3u64))]),
        ]);
        assert_eq!(from_json(&to_json(&value)), value);
        assert_eq!(to_json(&Value::F64(f64::NAN)), Json::String("NaN".into()));
        let odd = Value::Map(vec![(Value::from(1u64), Value::Nil)]);
        assert_eq!(to_json(&odd), serde_json::json!([[1, null]]));
    }

    #[test]
    fn keys_compare_by_their_encoding() {
        let bytes = rmp_serde::to_vec(&(1u32, "x")).unwrap();
        let key = AnyKey::from_bytes(&bytes).unwrap();
        assert_eq!(rmp_serde::to_vec(&key).unwrap(), bytes);
        assert_eq!(unhex(&hex(&bytes)).unwrap(), bytes);
        assert!(unhex("zz").is_err());
    }
}
