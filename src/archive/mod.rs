//! Archives: dictionaries that keep a memo's results outside its memory.
//!
//! Every archive is a dictionary on its own, usable without a memo, with
//! `&self` methods (archives are shared between threads) that return
//! [`Result`]. A [`Memo`](crate::Memo) with an archive writes
//! evicted entries there and loads missing keys from it.

mod backend;
mod cached;
mod dict;
mod dir;
pub mod envelope;
mod faults;
mod file;
mod fs;
#[cfg(feature = "hdf5")]
mod hdf5;
mod lease;
mod null;
#[cfg(feature = "redis")]
mod redis;
#[cfg(any(feature = "postgres", feature = "redis"))]
mod server;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "redis"))]
mod target;

pub use backend::{Backed, Backend, RawEntry, RawItems};
pub use cached::Cached;
pub use dict::DictArchive;
pub use dir::{DirArchive, DirStore};
pub use file::FileArchive;
#[cfg(feature = "hdf5")]
pub use hdf5::{HdfArchive, HdfDirArchive};
pub use lease::Lease;
pub use null::NullArchive;
#[cfg(feature = "redis")]
pub use redis::{RedisArchive, RedisStore};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use sql::{SqlArchive, SqlDatabase, SqlTable};
pub use target::mask_password;

use std::time::Duration;

use crate::Result;

/// An entry with the canonical encoding of its call's arguments, if known
/// (see [`Archive::insert_with_args`]).
pub type WithArgs<K, V> = (K, V, Option<Vec<u8>>);

/// A fallible, streaming iterator over an archive's contents.
pub type Items<'a, T> = Box<dyn Iterator<Item = Result<T>> + 'a>;

/// A dictionary from `K` to `V` kept outside a memo's memory.
///
/// Methods take `&self`: an archive is shared by the threads of a memo (and,
/// for persistent backends, by other processes). Iteration is streamed so a
/// backend never has to hold all its entries in memory at once.
///
/// ```
/// use klepto::archive::{Archive, DictArchive};
/// let a: DictArchive<String, i64> = DictArchive::new();
/// a.insert("a".into(), 1)?;
/// assert_eq!(a.get(&"a".into())?, Some(1));
/// a.extend(vec![("b".to_string(), 2), ("c".to_string(), 3)])?;
/// assert_eq!(a.len()?, 3);
/// # Ok::<(), klepto::Error>(())
/// ```
pub trait Archive<K, V>: Send + Sync {
    /// The value stored under `key`, if any.
    fn get(&self, key: &K) -> Result<Option<V>>;

    /// Stores `value` under `key`, replacing any previous value.
    fn insert(&self, key: K, value: V) -> Result<()>;

    /// Removes `key`, returning its value if it was present.
    fn remove(&self, key: &K) -> Result<Option<V>>;

    /// Whether `key` is present.
    fn contains_key(&self, key: &K) -> Result<bool> {
        Ok(self.get(key)?.is_some())
    }

    /// Number of entries.
    fn len(&self) -> Result<usize>;

    /// Whether the archive holds no entry.
    fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Every key, streamed.
    fn keys(&self) -> Result<Items<'_, K>>;

    /// Every `(key, value)` pair, streamed.
    fn iter(&self) -> Result<Items<'_, (K, V)>>;

    /// Every value, streamed.
    fn values(&self) -> Result<Items<'_, V>>
    where
        K: 'static,
        V: 'static,
    {
        Ok(Box::new(self.iter()?.map(|r| r.map(|(_, v)| v))))
    }

    /// Every `(key, value)` pair (Python's `items()`); the same as [`iter`](Archive::iter).
    fn items(&self) -> Result<Items<'_, (K, V)>> {
        self.iter()
    }

    /// Removes every entry.
    fn clear(&self) -> Result<()>;

    /// Stores many entries as one batch: one transaction (all or nothing)
    /// where the backend has transactions.
    fn extend(&self, items: Vec<(K, V)>) -> Result<()>;

    /// Stores `value` under `key` together with `args`, the canonical
    /// encoding of the call's arguments when the key is a digest of them
    /// (see [`HashKeymap`](crate::keymap::HashKeymap)), so that tools can
    /// show which call an entry belongs to. Backends without room for it
    /// store the entry alone (the default).
    fn insert_with_args(&self, key: K, value: V, args: Option<Vec<u8>>) -> Result<()> {
        let _ = args;
        self.insert(key, value)
    }

    /// [`extend`](Archive::extend) with each entry's encoded arguments (see
    /// [`insert_with_args`](Archive::insert_with_args)).
    fn extend_with_args(&self, items: Vec<WithArgs<K, V>>) -> Result<()> {
        self.extend(items.into_iter().map(|(k, v, _)| (k, v)).collect())
    }

    /// Every entry with the encoded arguments stored with it (see
    /// [`args`](Archive::args)), streamed: what a memo's
    /// [`load`](crate::Memo::load) reads. The default asks
    /// [`args`](Archive::args) for each entry of [`iter`](Archive::iter);
    /// backends that keep the arguments in the entry override it.
    fn iter_with_args<'a>(&'a self) -> Result<Items<'a, WithArgs<K, V>>>
    where
        K: 'a,
        V: 'a,
    {
        Ok(Box::new(self.iter()?.map(move |item| {
            let (key, value) = item?;
            let args = self.args(&key)?;
            Ok((key, value, args))
        })))
    }

    /// The encoded arguments stored with `key`, if the backend keeps them
    /// and they were given. Decode them with
    /// [`key::describe_args`](crate::key::describe_args).
    fn args(&self, key: &K) -> Result<Option<Vec<u8>>> {
        let _ = key;
        Ok(None)
    }

    /// The same archive, scoped to `namespace` (a memo's `.name(..)`), so
    /// that functions sharing one archive never see each other's keys. The
    /// table, file stem or subdirectory of persistent backends.
    fn namespaced(&self, namespace: &str) -> Result<Self>
    where
        Self: Sized;

    /// True only for an archive that keeps nothing ([`NullArchive`]); a memo
    /// then behaves as if no archive were attached.
    fn is_null(&self) -> bool {
        false
    }

    /// Where the archive lives (a path, a URL, `memory`), for messages.
    fn location(&self) -> String;

    /// Tries to take the lease on `key` for `ttl`, so that other processes
    /// sharing the archive wait for this one's result instead of computing
    /// it too (a memo built with `.lease(..)` does this on a miss):
    /// `Some(lease)` if taken, `None` while another holder's lease is live.
    /// Archives shared only within one process (and those without leases)
    /// always grant, which is the default.
    fn try_lease(&self, key: &K, ttl: Duration) -> Result<Option<Lease>> {
        let _ = (key, ttl);
        Ok(Some(Lease::new()))
    }

    /// Gives up `lease` on `key`, if it still holds it (the default does
    /// nothing).
    fn release(&self, key: &K, lease: &Lease) -> Result<()> {
        let _ = (key, lease);
        Ok(())
    }
}
