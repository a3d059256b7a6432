//! How a [`FileArchive`](super::FileArchive) serializes its dictionary: the
//! entry list of a snapshot (MessagePack or JSON) and the records appended
//! after it (MessagePack).

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;

use serde::de::{DeserializeOwned, Error as _, SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The in-memory dictionary: value and optional encoded arguments per key.
pub(super) type Entries<K, V> = HashMap<K, (V, Option<Vec<u8>>)>;

/// One entry to store: key, value, encoded arguments.
pub(super) type Item<K, V> = (K, V, Option<Vec<u8>>);

pub(super) const JSON_FORMAT: &str = "klepto-file";
pub(super) const JSON_VERSION: u32 = 1;

/// Record tag: entries stored (a later one replaces an earlier one).
const PUT: u8 = 0;
/// Record tag: keys removed.
const REMOVE: u8 = 1;

/// Serializes the dictionary as `[[key, value, args-or-nil], ...]`.
pub(super) struct EntriesRef<'a, K, V>(pub(super) &'a Entries<K, V>);

impl<K: Serialize, V: Serialize> Serialize for EntriesRef<'_, K, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let entries = self.0.iter().map(|(k, (v, args))| (k, v, args));
        serialize_entries(serializer, self.0.len(), entries)
    }
}

/// Serializes items to store as `[[key, value, args-or-nil], ...]`.
struct ItemsRef<'a, K, V>(&'a [Item<K, V>]);

impl<K: Serialize, V: Serialize> Serialize for ItemsRef<'_, K, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let items = self.0.iter().map(|(k, v, args)| (k, v, args));
        serialize_entries(serializer, self.0.len(), items)
    }
}

/// `len` entries as `[[key, value, args-or-nil], ...]`.
fn serialize_entries<'a, S, K, V>(
    serializer: S,
    len: usize,
    entries: impl Iterator<Item = (&'a K, &'a V, &'a Option<Vec<u8>>)>,
) -> Result<S::Ok, S::Error>
where
    S: Serializer,
    K: Serialize + 'a,
    V: Serialize + 'a,
{
    let mut seq = serializer.serialize_seq(Some(len))?;
    for (k, v, args) in entries {
        seq.serialize_element(&(k, v, args.as_deref().map(ArgsRef)))?;
    }
    seq.end()
}

/// Reads `[[key, value, args-or-nil], ...]` straight into a dictionary
/// (a later duplicate key wins).
pub(super) struct EntryMap<K, V>(pub(super) Entries<K, V>);

impl<'de, K, V> Deserialize<'de> for EntryMap<K, V>
where
    K: DeserializeOwned + Eq + Hash,
    V: DeserializeOwned,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<K, V>(PhantomData<fn() -> (K, V)>);

        impl<'de, K, V> Visitor<'de> for EntriesVisitor<K, V>
        where
            K: DeserializeOwned + Eq + Hash,
            V: DeserializeOwned,
        {
            type Value = EntryMap<K, V>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of [key, value, args] entries")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                // Cap the hint: it comes from the (possibly damaged) file.
                let mut map = HashMap::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
                while let Some((k, v, args)) = seq.next_element::<(K, V, Option<ArgsBuf>)>()? {
                    map.insert(k, (v, args.map(|a| a.0)));
                }
                Ok(EntryMap(map))
            }
        }

        deserializer.deserialize_seq(EntriesVisitor(PhantomData))
    }
}

/// One change appended to a MessagePack file archive after its snapshot:
/// `[0, [[key, value, args-or-nil], ...]]` stores entries,
/// `[1, [key, ...]]` removes keys.
pub(super) enum Record<K, V> {
    /// Entries stored, in order.
    Put(Vec<Item<K, V>>),
    /// Keys removed.
    Remove(Vec<K>),
}

impl<K: Eq + Hash, V> Record<K, V> {
    /// Applies the change to `entries`.
    pub(super) fn apply(self, entries: &mut Entries<K, V>) {
        match self {
            Record::Put(items) => {
                entries.reserve(items.len());
                entries.extend(items.into_iter().map(|(k, v, a)| (k, (v, a))));
            }
            Record::Remove(keys) => {
                for key in &keys {
                    entries.remove(key);
                }
            }
        }
    }
}

/// The MessagePack of a record storing `items`.
pub(super) fn put_record<K: Serialize, V: Serialize>(
    items: &[Item<K, V>],
) -> crate::Result<Vec<u8>> {
    crate::archive::envelope::to_msgpack(&(PUT, ItemsRef(items)), "file archive record")
}

/// The MessagePack of a record removing `key`.
pub(super) fn remove_record<K: Serialize>(key: &K) -> crate::Result<Vec<u8>> {
    crate::archive::envelope::to_msgpack(&(REMOVE, [key]), "file archive record")
}

impl<'de, K, V> Deserialize<'de> for Record<K, V>
where
    K: DeserializeOwned,
    V: DeserializeOwned,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RecordVisitor<K, V>(PhantomData<fn() -> (K, V)>);

        impl<'de, K, V> Visitor<'de> for RecordVisitor<K, V>
        where
            K: DeserializeOwned,
            V: DeserializeOwned,
        {
            type Value = Record<K, V>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a file archive record [tag, payload]")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let missing = || A::Error::custom("a record without its payload");
                let record = match seq.next_element::<u8>()?.ok_or_else(missing)? {
                    PUT => {
                        let items: Vec<(K, V, Option<ArgsBuf>)> =
                            seq.next_element()?.ok_or_else(missing)?;
                        let items = items.into_iter().map(|(k, v, a)| (k, v, a.map(|a| a.0)));
                        Record::Put(items.collect())
                    }
                    REMOVE => Record::Remove(seq.next_element()?.ok_or_else(missing)?),
                    tag => return Err(A::Error::custom(format!("unknown record tag {tag}"))),
                };
                if seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                    return Err(A::Error::custom("a record with more than two fields"));
                }
                Ok(record)
            }
        }

        deserializer.deserialize_seq(RecordVisitor(PhantomData))
    }
}

/// Encoded arguments: MessagePack `bin`, or a hex string in JSON.
struct ArgsRef<'a>(&'a [u8]);

impl Serialize for ArgsRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&crate::hex::encode(self.0))
        } else {
            serializer.serialize_bytes(self.0)
        }
    }
}

/// Owned [`ArgsRef`].
struct ArgsBuf(Vec<u8>);

impl<'de> Deserialize<'de> for ArgsBuf {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BytesVisitor;

        impl<'de> Visitor<'de> for BytesVisitor {
            type Value = ArgsBuf;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("encoded arguments (bytes or a hex string)")
            }

            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<ArgsBuf, E> {
                Ok(ArgsBuf(v.to_vec()))
            }

            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<ArgsBuf, E> {
                Ok(ArgsBuf(v))
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ArgsBuf, E> {
                crate::hex::decode(v)
                    .map(ArgsBuf)
                    .ok_or_else(|| E::custom("encoded arguments are not a hex string"))
            }
        }

        if deserializer.is_human_readable() {
            deserializer.deserialize_str(BytesVisitor)
        } else {
            deserializer.deserialize_byte_buf(BytesVisitor)
        }
    }
}

/// The JSON document written.
#[derive(Serialize)]
pub(super) struct JsonOut<'a, K, V> {
    pub(super) format: &'static str,
    pub(super) version: u32,
    pub(super) entries: EntriesRef<'a, K, V>,
}

/// The JSON document read.
#[derive(Deserialize)]
#[serde(bound = "K: DeserializeOwned + Eq + Hash, V: DeserializeOwned")]
pub(super) struct JsonIn<K, V> {
    pub(super) format: String,
    pub(super) version: u32,
    pub(super) entries: EntryMap<K, V>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::envelope::from_msgpack;

    #[test]
    fn records_round_trip() {
        let items: Vec<Item<u64, String>> =
            vec![(1, "one".into(), Some(vec![1, 2])), (2, "two".into(), None)];
        let put: Record<u64, String> = from_msgpack(&put_record(&items).unwrap(), "t").unwrap();
        let mut entries = Entries::new();
        put.apply(&mut entries);
        assert_eq!(entries[&1], ("one".to_string(), Some(vec![1, 2])));
        assert_eq!(entries[&2], ("two".to_string(), None));
        let remove: Record<u64, String> =
            from_msgpack(&remove_record(&1_u64).unwrap(), "t").unwrap();
        remove.apply(&mut entries);
        assert_eq!(entries.len(), 1);
    }

    #[test]
    fn malformed_records_are_errors() {
        for bad in [
            rmp_serde::to_vec(&(7_u8, [1_u64])).unwrap(),
            rmp_serde::to_vec(&(0_u8,)).unwrap(),
            rmp_serde::to_vec(&(1_u8, [1_u64], 3_u8)).unwrap(),
            rmp_serde::to_vec(&(0_u8, [("not a u64", "v", ())])).unwrap(),
        ] {
            assert!(from_msgpack::<Record<u64, String>>(&bad, "t").is_err());
        }
    }
}
