//! The byte-level layer beneath every persistent archive: a [`Backend`]
//! stores envelopes under encoded keys, and [`Backed`] turns any backend
//! into a typed [`Archive`].
//!
//! A backend knows nothing of Rust types: it maps a key's MessagePack
//! bytes to an [envelope](super::envelope) and back (get, put, delete,
//! scan, batch put, namespace, len, clear). [`Backed`] does the typed work
//! once for all of them: it encodes keys and values, writes every envelope
//! *with its key*, and on every read checks that the envelope found under
//! a key carries that key, so a value that was moved, swapped or
//! misdirected to another key is [`Error::Corrupt`], never another call's
//! result. A new backend is a file implementing [`Backend`]; the archive
//! contract (`tests/contract.rs`) then runs on it unchanged.
//!
//! ```
//! use std::collections::BTreeMap;
//! use std::sync::{Arc, Mutex};
//! use klepto::archive::{Archive, Backed, Backend, RawItems};
//!
//! /// A toy backend: a shared ordered map of bytes.
//! #[derive(Clone, Default)]
//! struct Map(Arc<Mutex<BTreeMap<Vec<u8>, Vec<u8>>>>);
//!
//! impl Backend for Map {
//!     fn get(&self, key: &[u8]) -> klepto::Result<Option<Vec<u8>>> {
//!         Ok(self.0.lock().unwrap().get(key).cloned())
//!     }
//!     fn put(&self, key: &[u8], envelope: &[u8]) -> klepto::Result<()> {
//!         self.0.lock().unwrap().insert(key.to_vec(), envelope.to_vec());
//!         Ok(())
//!     }
//!     fn put_batch(&self, entries: Vec<(Vec<u8>, Vec<u8>)>) -> klepto::Result<()> {
//!         self.0.lock().unwrap().extend(entries);
//!         Ok(())
//!     }
//!     fn delete(&self, key: &[u8]) -> klepto::Result<Option<Vec<u8>>> {
//!         Ok(self.0.lock().unwrap().remove(key))
//!     }
//!     fn len(&self) -> klepto::Result<usize> {
//!         Ok(self.0.lock().unwrap().len())
//!     }
//!     fn clear(&self) -> klepto::Result<()> {
//!         self.0.lock().unwrap().clear();
//!         Ok(())
//!     }
//!     fn scan(&self, _values: bool) -> klepto::Result<RawItems<'_>> {
//!         let all: Vec<_> = self.0.lock().unwrap().clone().into_iter().map(Ok).collect();
//!         Ok(Box::new(all.into_iter()))
//!     }
//!     fn namespace(&self, _namespace: &str) -> klepto::Result<Self> {
//!         Ok(Map::default())
//!     }
//!     fn location(&self) -> String {
//!         "toy map".into()
//!     }
//! }
//!
//! let a: Backed<Map, String, u32> = Backed::new(Map::default());
//! a.insert("one".into(), 1)?;
//! assert_eq!(a.get(&"one".into())?, Some(1));
//!
//! // Move the stored entry under another key: the archive refuses it.
//! let stolen = a.backend().get(&rmp_serde::to_vec("one").unwrap())?.unwrap();
//! a.backend().put(&rmp_serde::to_vec("two").unwrap(), &stolen)?;
//! assert!(matches!(a.get(&"two".into()), Err(klepto::Error::Corrupt { .. })));
//! # Ok::<(), klepto::Error>(())
//! ```

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::envelope::{from_msgpack, to_msgpack, Envelope};
use super::{Archive, Items, Lease, WithArgs};
use crate::{Error, Result};

/// One stored entry as bytes: the key's MessagePack encoding and the
/// envelope stored under it.
pub type RawEntry = (Vec<u8>, Vec<u8>);

/// A fallible, streaming scan over a backend's raw entries.
pub type RawItems<'a> = Box<dyn Iterator<Item = Result<RawEntry>> + 'a>;

/// A store of envelopes under encoded keys: what a persistent archive
/// needs from its storage (a directory, an SQL table, a Redis namespace).
///
/// Keys are the MessagePack encoding of the archive's key type; values are
/// whole [envelopes](super::envelope), stored and returned byte for byte.
/// A backend never interprets them (except to find a key, as a directory
/// does in its entry files): checking them is [`Backed`]'s job. Methods take
/// `&self`; a backend is shared by threads.
pub trait Backend: Send + Sync + Sized {
    /// The envelope stored under `key`, if any.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// `f` of the envelope stored under `key`, if any, without a copy of
    /// its own where the backend can lend the bytes (SQLite lends its
    /// row). By default, `f` of [`get`](Self::get)'s bytes.
    fn get_with<R>(&self, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>> {
        Ok(self.get(key)?.map(|stored| f(&stored)))
    }

    /// Stores `envelope` under `key`, replacing what was there, atomically.
    fn put(&self, key: &[u8], envelope: &[u8]) -> Result<()>;

    /// Stores many entries as one batch: one transaction (all or nothing)
    /// or one pipeline where the backend has them.
    fn put_batch(&self, entries: Vec<RawEntry>) -> Result<()>;

    /// Removes `key`, returning the envelope that was stored.
    fn delete(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Whether an entry is stored under `key` (its envelope is not checked).
    fn contains(&self, key: &[u8]) -> Result<bool> {
        Ok(self.get(key)?.is_some())
    }

    /// The number of entries.
    fn len(&self) -> Result<usize>;

    /// Whether the store holds no entry.
    fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Removes every entry of this namespace.
    fn clear(&self) -> Result<()>;

    /// Gives back the space that removed and replaced entries left (SQLite
    /// `VACUUM`); what it did, for messages. By default nothing.
    fn compact(&self) -> Result<String> {
        Ok("nothing to compact".into())
    }

    /// Every entry, streamed (never all in memory at once). With `values`
    /// false a backend may yield empty envelopes (only the keys are used).
    fn scan(&self, values: bool) -> Result<RawItems<'_>>;

    /// The same store scoped to `namespace` (a table, a subdirectory, a key
    /// prefix): namespaces never see each other's entries.
    fn namespace(&self, namespace: &str) -> Result<Self>;

    /// Where the store lives (a path, a URL without password), for messages.
    fn location(&self) -> String;

    /// Where the entry of `key` lives, for [`Error::Corrupt`]: by default
    /// the location and the key in hex.
    fn entry_location(&self, key: &[u8]) -> String {
        format!("{} key {}", self.location(), KeyHex(key))
    }

    /// Tries to take the lease on `key` for `ttl` under `token`: `true` if
    /// taken (no live lease was held by another token), `false` if another
    /// holder's lease is live. A lease expires by itself after `ttl`.
    /// Backends shared only within one process keep no leases: the default
    /// always grants (a memo's own single flight covers its threads).
    fn try_lease(&self, key: &[u8], ttl: Duration, token: &[u8]) -> Result<bool> {
        let _ = (key, ttl, token);
        Ok(true)
    }

    /// Gives up the lease on `key` if `token` still holds it.
    fn release(&self, key: &[u8], token: &[u8]) -> Result<()> {
        let _ = (key, token);
        Ok(())
    }
}

/// A typed [`Archive`] over a byte-level [`Backend`]: the one place where
/// keys and values are encoded, envelopes written with their key, and
/// every read checked against the key asked for.
///
/// [`SqlArchive`](super::SqlArchive), [`DirArchive`](super::DirArchive) and
/// the server archives are `Backed` over their backends (type aliases);
/// wrap your own backend with [`Backed::new`].
pub struct Backed<B, K, V> {
    backend: B,
    types: PhantomData<fn() -> (K, V)>,
}

impl<B: Clone, K, V> Clone for Backed<B, K, V> {
    fn clone(&self) -> Self {
        Backed::new(self.backend.clone())
    }
}

impl<B: fmt::Debug, K, V> fmt::Debug for Backed<B, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.backend.fmt(f)
    }
}

impl<B, K, V> Backed<B, K, V> {
    /// The typed archive over `backend`.
    pub fn new(backend: B) -> Self {
        Backed {
            backend,
            types: PhantomData,
        }
    }

    /// The backend beneath, for its own methods and for raw access.
    pub fn backend(&self) -> &B {
        &self.backend
    }
}

impl<B: Backend, K, V> Backed<B, K, V>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
{
    fn encode_key(key: &K) -> Result<Vec<u8>> {
        to_msgpack(key, "an archive key")
    }

    /// `f` of the key's bytes, encoded on the stack when they fit (a
    /// hashed key takes 18 bytes): a read then allocates nothing for them.
    fn with_key<R>(key: &K, f: impl FnOnce(&[u8]) -> Result<R>) -> Result<R> {
        let mut room = [0_u8; 64];
        let mut free = &mut room[..];
        if rmp_serde::encode::write(&mut free, key).is_ok() {
            let len = 64 - free.len();
            return f(&room[..len]);
        }
        // Too long for the stack (or not encodable: the error comes from here).
        f(&Self::encode_key(key)?)
    }

    /// The key's bytes and the envelope holding the key, `args` and `value`.
    fn encode_entry(key: &K, value: &V, args: Option<&[u8]>) -> Result<RawEntry> {
        let key = Self::encode_key(key)?;
        let value = to_msgpack(value, "an archive value")?;
        let envelope = Envelope {
            key: Some(&key),
            args,
            value: &value,
        }
        .encode();
        Ok((key, envelope))
    }

    /// Checks `stored`, found under `key`: a sound envelope that carries
    /// `key` itself. Anything else is [`Error::Corrupt`] naming the entry.
    fn check_entry<'a>(&self, key: &[u8], stored: &'a [u8]) -> Result<Envelope<'a>> {
        let at = EntryAt(&self.backend, key);
        let envelope = Envelope::decode(stored, &at)?;
        match envelope.key {
            Some(own) if own == key => Ok(envelope),
            Some(_) => Err(Error::Corrupt {
                location: at.to_string(),
                reason: "the entry holds another key's value (moved, swapped or misdirected)"
                    .into(),
            }),
            None => Err(Error::Corrupt {
                location: at.to_string(),
                reason: "the entry carries no key, so it cannot be checked \
                         (written by klepto-cache 0.1?)"
                    .into(),
            }),
        }
    }

    fn decode_value(&self, key: &[u8], stored: &[u8]) -> Result<V> {
        let envelope = self.check_entry(key, stored)?;
        from_msgpack(envelope.value, EntryAt(&self.backend, key))
    }

    fn decode_key(&self, key: &[u8]) -> Result<K> {
        from_msgpack(key, EntryAt(&self.backend, key))
    }
}

impl<B, K, V> Archive<K, V> for Backed<B, K, V>
where
    B: Backend,
    K: Serialize + DeserializeOwned + Send + Sync,
    V: Serialize + DeserializeOwned + Send + Sync,
{
    /// The value of `key`; a damaged entry, or one holding another key's
    /// value, is [`Error::Corrupt`] naming the entry.
    fn get(&self, key: &K) -> Result<Option<V>> {
        Self::with_key(key, |key| {
            self.backend
                .get_with(key, |stored| self.decode_value(key, stored))?
                .transpose()
        })
    }

    fn insert(&self, key: K, value: V) -> Result<()> {
        self.insert_with_args(key, value, None)
    }

    /// Removes `key` and returns its value. A damaged entry is removed too,
    /// and reported as [`Error::Corrupt`].
    fn remove(&self, key: &K) -> Result<Option<V>> {
        let key = Self::encode_key(key)?;
        match self.backend.delete(&key)? {
            Some(stored) => self.decode_value(&key, &stored).map(Some),
            None => Ok(None),
        }
    }

    /// Whether an entry is stored under `key` (its value is not checked).
    fn contains_key(&self, key: &K) -> Result<bool> {
        self.backend.contains(&Self::encode_key(key)?)
    }

    fn len(&self) -> Result<usize> {
        self.backend.len()
    }

    /// Every key, streamed; a key that does not decode is an `Err` item.
    fn keys(&self) -> Result<Items<'_, K>> {
        let scan = self.backend.scan(false)?;
        Ok(Box::new(scan.map(move |entry| self.decode_key(&entry?.0))))
    }

    /// Every `(key, value)` pair, streamed. A damaged entry is an `Err`
    /// item; iteration goes on past it.
    fn iter(&self) -> Result<Items<'_, (K, V)>> {
        let scan = self.backend.scan(true)?;
        Ok(Box::new(scan.map(move |entry| {
            let (key, stored) = entry?;
            let value = self.decode_value(&key, &stored)?;
            Ok((self.decode_key(&key)?, value))
        })))
    }

    /// [`iter`](Archive::iter) with the arguments each envelope carries,
    /// in the same single scan.
    fn iter_with_args<'a>(&'a self) -> Result<Items<'a, WithArgs<K, V>>>
    where
        K: 'a,
        V: 'a,
    {
        let scan = self.backend.scan(true)?;
        Ok(Box::new(scan.map(move |entry| {
            let (key, stored) = entry?;
            let checked = self.check_entry(&key, &stored)?;
            let value = from_msgpack(checked.value, EntryAt(&self.backend, &key))?;
            let args = checked.args.map(<[u8]>::to_vec);
            Ok((self.decode_key(&key)?, value, args))
        })))
    }

    fn clear(&self) -> Result<()> {
        self.backend.clear()
    }

    /// Writes all entries as one batch (one transaction or pipeline). They
    /// are encoded first, so an encoding error writes nothing.
    fn extend(&self, items: Vec<(K, V)>) -> Result<()> {
        let entries = items
            .iter()
            .map(|(k, v)| Self::encode_entry(k, v, None))
            .collect::<Result<Vec<_>>>()?;
        drop(items);
        self.backend.put_batch(entries)
    }

    fn insert_with_args(&self, key: K, value: V, args: Option<Vec<u8>>) -> Result<()> {
        let (key, envelope) = Self::encode_entry(&key, &value, args.as_deref())?;
        self.backend.put(&key, &envelope)
    }

    fn extend_with_args(&self, items: Vec<WithArgs<K, V>>) -> Result<()> {
        let entries = items
            .iter()
            .map(|(k, v, a)| Self::encode_entry(k, v, a.as_deref()))
            .collect::<Result<Vec<_>>>()?;
        drop(items);
        self.backend.put_batch(entries)
    }

    fn args(&self, key: &K) -> Result<Option<Vec<u8>>> {
        let key = Self::encode_key(key)?;
        let Some(stored) = self.backend.get(&key)? else {
            return Ok(None);
        };
        Ok(self.check_entry(&key, &stored)?.args.map(<[u8]>::to_vec))
    }

    fn namespaced(&self, namespace: &str) -> Result<Self> {
        self.backend.namespace(namespace).map(Backed::new)
    }

    fn location(&self) -> String {
        self.backend.location()
    }

    fn try_lease(&self, key: &K, ttl: Duration) -> Result<Option<Lease>> {
        let lease = Lease::new();
        let taken = self
            .backend
            .try_lease(&Self::encode_key(key)?, ttl, lease.token())?;
        Ok(taken.then_some(lease))
    }

    fn release(&self, key: &K, lease: &Lease) -> Result<()> {
        self.backend.release(&Self::encode_key(key)?, lease.token())
    }
}

/// Where the entry of a key lives, formatted only when an error needs it.
struct EntryAt<'a, B>(&'a B, &'a [u8]);

impl<B: Backend> fmt::Display for EntryAt<'_, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.entry_location(self.1))
    }
}

/// A key's bytes in hex for messages, cut after 64 bytes.
pub(crate) struct KeyHex<'a>(pub(crate) &'a [u8]);

impl fmt::Display for KeyHex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 64;
        let shown = &self.0[..self.0.len().min(SHOWN)];
        f.write_str(&crate::hex::encode(shown))?;
        if self.0.len() > SHOWN {
            write!(f, "… ({} bytes)", self.0.len())?;
        }
        Ok(())
    }
}
