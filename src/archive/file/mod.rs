//! An archive that keeps the whole dictionary in one file: [`FileArchive`]
//! (its documentation gives the file layouts and the locking protocol).

use std::fmt;
use std::hash::Hash;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::fs::{self, LockGuard};
use super::{Archive, Items, WithArgs};
use crate::{Error, Result};

mod codec;
mod layout;
mod shared;

use codec::Entries;
use shared::{Cache, Change, Format, Seen, Shared};

/// An archive holding its whole dictionary in one file, MessagePack or JSON.
///
/// Handles are cheap to clone and share their parsed dictionary; handles
/// opened separately on one path (in one process or many) stay consistent
/// through the file and its lock (see *Writes and processes*).
///
/// # File layouts
///
/// **MessagePack** (any path not ending in `.json`): a header, a *snapshot*
/// of the whole dictionary, then one *record* per write since the snapshot.
/// Each is a frame holding one [envelope](super::envelope) (so each has its
/// own checksum):
///
/// ```text
/// b"KLFILE\0\x01"                            magic, layout version 1
/// frame( envelope( [[key, value, args], ...] ) )  the snapshot
/// frame( envelope( [0, [[key, value, args], ...]] ) )  a record: entries stored
/// frame( envelope( [1, [key, ...]] ) )         a record: keys removed
/// ...
/// frame = u64 LE length n, u64 LE !n, n bytes
/// ```
///
/// `args` is MessagePack `bin` (the canonical encoding of the call's
/// arguments, see [`Archive::insert_with_args`]) or `nil`. Files written by
/// klepto-cache 0.1 (one envelope of the entry list, no header) are read as
/// a snapshot without records and rewritten in this layout by the first
/// write.
///
/// **JSON** (the path ends in `.json`, any case): a human-readable,
/// pretty-printed document, rewritten whole by every write. Entries are
/// arrays, not object members, so keys that serialize as numbers, tuples or
/// structs are fine:
///
/// ```text
/// {
///   "format": "klepto-file",
///   "version": 1,
///   "entries": [[key, value, "args as lowercase hex" or null], ...]
/// }
/// ```
///
/// # Damage
///
/// A damaged or truncated snapshot, a damaged record, or a JSON document
/// that does not parse (an empty file too) makes [`FileArchive::open`] and
/// every later operation return [`Error::Corrupt`] naming the path, and the
/// file is never overwritten. One case is not damage: a last record cut
/// short (its frame runs past the end of the file) is an append that a
/// writer did not finish before it died, never acknowledged to its caller.
/// It is ignored (with a `log` warning at open) and the next write cuts it
/// off. A last record at full length that fails its checksum was
/// acknowledged once, so it is [`Error::Corrupt`], not dropped.
///
/// # Writes and processes
///
/// Every write holds an exclusive advisory lock ([`std::fs::File::lock`]) on
/// the sidecar file `<path>.lock`, first reads what other handles or
/// processes appended since this handle last looked, and then either
///
/// - **appends one record** (MessagePack): one `write`, then `fdatasync` when
///   durable. Its cost does not grow with the archive. [`Archive::extend`]
///   is one record, all or nothing; or
/// - **rewrites the whole file** (JSON always; MessagePack for the first
///   write, [`Archive::clear`], and *compaction*, when the records would
///   outgrow the snapshot and 256 KiB): a temporary file in the same
///   directory, fsynced, renamed over `<path>`, the directory fsynced. A
///   rewrite costs the whole dictionary, but a MessagePack file is
///   rewritten only after its records have grown as large as the snapshot,
///   so the cost per write stays constant (amortized), and a file is at
///   most about twice its live data.
///
/// Writers in any number of processes (or threads with separate handles)
/// therefore never lose each other's entries, and readers, who take no
/// lock, see whole records only. Temporary files of a writer that died
/// before its rename are removed under the lock at the next open or
/// rewrite. The lock file is left in place (removing it would race with
/// other lockers). Advisory locks may not work on network filesystems.
///
/// # Reads
///
/// A handle keeps the parsed dictionary in memory together with a
/// fingerprint of the file it came from; each read stats the path, reads
/// only the new records if the same file grew, and parses the file again
/// only if it was replaced. On Unix the fingerprint is (device, inode, size,
/// mtime): a rewrite is a new inode, and the handle keeps the version it
/// parsed open so that its inode number cannot be reused by a later version.
/// Elsewhere it is (size, mtime), and a change means a full parse.
///
/// # Example
///
/// ```
/// use klepto::archive::{Archive, FileArchive};
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("memo.msgpack");
///
/// let a: FileArchive<u64, String> = FileArchive::open(&path)?;
/// a.insert(1, "one".into())?;
/// a.extend(vec![(2, "two".into()), (3, "three".into())])?;   // one record
///
/// let b: FileArchive<u64, String> = FileArchive::open(&path)?; // another handle
/// assert_eq!(b.get(&2)?, Some("two".to_string()));
/// assert_eq!(b.len()?, 3);
///
/// let fib = a.namespaced("fib")?;                              // memo.fib.msgpack
/// assert_eq!(fib.len()?, 0);
/// assert!(fib.location().ends_with("memo.fib.msgpack"));
///
/// // JSON when the path ends in `.json`, without fsyncs:
/// let j: FileArchive<(u8, u8), f64> =
///     FileArchive::open(dir.path().join("memo.json"))?.durable(false);
/// j.insert((1, 2), 0.5)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct FileArchive<K, V> {
    shared: Arc<Shared<K, V>>,
    /// The path namespaces derive from (the path given to `open`).
    root: Arc<Path>,
    namespace: Arc<str>,
    durable: bool,
}

impl<K, V> Clone for FileArchive<K, V> {
    fn clone(&self) -> Self {
        FileArchive {
            shared: Arc::clone(&self.shared),
            root: Arc::clone(&self.root),
            namespace: Arc::clone(&self.namespace),
            durable: self.durable,
        }
    }
}

impl<K, V> fmt::Debug for FileArchive<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileArchive")
            .field("path", &self.shared.path)
            .field("format", &self.shared.format)
            .field("namespace", &self.namespace)
            .field("durable", &self.durable)
            .finish_non_exhaustive()
    }
}

impl<K, V> FileArchive<K, V>
where
    K: Serialize + DeserializeOwned + Eq + Hash + Clone + Send + Sync + 'static,
    V: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    /// Opens the archive in the file at `path`: JSON if the path ends in
    /// `.json`, MessagePack otherwise.
    ///
    /// An existing file is read and validated now: a damaged file, or one
    /// written for other key or value types, gives [`Error::Corrupt`] naming
    /// the path (and the file is left as it is). An absent file is an empty
    /// archive, created by the first write; its directory must exist, else
    /// [`Error::Io`] naming `path` (directories are not created).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        Self::open_in(Arc::from(path), Arc::from(""), path.to_path_buf(), true)
    }

    fn open_in(root: Arc<Path>, namespace: Arc<str>, path: PathBuf, durable: bool) -> Result<Self> {
        let is_json = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        let format = if is_json {
            Format::Json
        } else {
            Format::MsgPack
        };
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let shared = Shared {
            lock_path: fs::with_suffix(&path, ".lock"),
            tmp_prefix: format!(".{}{}", name.unwrap_or_default(), fs::TMP_PREFIX),
            format,
            cache: RwLock::new(Cache::empty(Seen::Unknown)),
            path,
        };
        shared.refresh(&mut shared.cache.write())?;
        if shared.cache.read().seen == Seen::Absent && !fs::parent_dir(&shared.path).is_dir() {
            return Err(Error::Io {
                path: shared.path.clone(),
                source: io::Error::new(io::ErrorKind::NotFound, "the directory does not exist"),
            });
        }
        shared.tidy_at_open();
        Ok(FileArchive {
            shared: Arc::new(shared),
            root,
            namespace,
            durable,
        })
    }

    /// Whether writes are fsynced (file and directory) before they return;
    /// `true` by default. `false` is faster and still atomic, but the last
    /// writes may be lost in a power failure.
    #[must_use]
    pub fn durable(mut self, durable: bool) -> Self {
        self.durable = durable;
        self
    }

    /// The file this handle reads and writes.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// The namespace this handle reads and writes (`""` for the file given
    /// to [`open`](Self::open)).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Runs `f` on the current dictionary, brought up to the file first.
    fn read<T>(&self, f: impl FnOnce(&Arc<Entries<K, V>>) -> T) -> Result<T> {
        let now = self.shared.current()?;
        {
            let cache = self.shared.cache.read();
            if cache.seen == now {
                return Ok(f(&cache.entries));
            }
        }
        let mut cache = self.shared.cache.write();
        self.shared.refresh(&mut cache)?;
        Ok(f(&cache.entries))
    }

    /// Rewrites the file as one snapshot, without the records appended
    /// since the last one (the log), under the lock: a MessagePack file
    /// grows by a record per write until it is compacted (which writes
    /// also do once the log outgrows the snapshot).
    ///
    /// ```
    /// use klepto::archive::{Archive, FileArchive};
    /// let dir = tempfile::tempdir().unwrap();
    /// let a: FileArchive<u32, u32> = FileArchive::open(dir.path().join("a.msgpack"))?;
    /// a.insert(1, 1)?;
    /// a.insert(1, 2)?;
    /// a.compact()?;
    /// assert_eq!(a.get(&1)?, Some(2));
    /// # Ok::<(), klepto::Error>(())
    /// ```
    pub fn compact(&self) -> Result<()> {
        let shared = &*self.shared;
        let _lock = LockGuard::exclusive(&shared.lock_path)?;
        let mut cache = shared.cache.write();
        shared.refresh(&mut cache)?;
        let result = shared.rewrite(&mut cache, self.durable);
        if result.is_err() {
            // The file may or may not be the new one: read it again.
            *cache = Cache::empty(Seen::Unknown);
        }
        result
    }

    /// Applies `change` under the lock file, after catching up with the
    /// file; returns the removed value of a `Remove`.
    fn write(&self, change: Change<K, V>) -> Result<Option<V>> {
        let shared = &*self.shared;
        let _lock = LockGuard::exclusive(&shared.lock_path)?;
        let mut cache = shared.cache.write();
        shared.refresh(&mut cache)?;
        shared.write(&mut cache, change, self.durable)
    }
}

impl<K, V> Archive<K, V> for FileArchive<K, V>
where
    K: Serialize + DeserializeOwned + Eq + Hash + Clone + Send + Sync + 'static,
    V: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    fn get(&self, key: &K) -> Result<Option<V>> {
        self.read(|m| m.get(key).map(|(v, _)| v.clone()))
    }

    fn insert(&self, key: K, value: V) -> Result<()> {
        self.insert_with_args(key, value, None)
    }

    fn remove(&self, key: &K) -> Result<Option<V>> {
        self.write(Change::Remove(key.clone()))
    }

    fn contains_key(&self, key: &K) -> Result<bool> {
        self.read(|m| m.contains_key(key))
    }

    fn len(&self) -> Result<usize> {
        self.read(|m| m.len())
    }

    fn keys(&self) -> Result<Items<'_, K>> {
        let keys: Vec<K> = self.read(|m| m.keys().cloned().collect())?;
        Ok(Box::new(keys.into_iter().map(Ok)))
    }

    /// A snapshot of the dictionary as of the call; values are cloned as
    /// the iterator reaches them.
    fn iter(&self) -> Result<Items<'_, (K, V)>> {
        let (snapshot, keys) =
            self.read(|m| (Arc::clone(m), m.keys().cloned().collect::<Vec<K>>()))?;
        Ok(Box::new(keys.into_iter().filter_map(move |k| {
            let value = snapshot.get(&k).map(|(v, _)| v.clone())?;
            Some(Ok((k, value)))
        })))
    }

    fn clear(&self) -> Result<()> {
        self.write(Change::Clear).map(drop)
    }

    /// One record (or one rewrite) for the whole batch: all or nothing.
    fn extend(&self, items: Vec<(K, V)>) -> Result<()> {
        let items = items.into_iter().map(|(k, v)| (k, v, None)).collect();
        self.write(Change::Put(items)).map(drop)
    }

    fn insert_with_args(&self, key: K, value: V, args: Option<Vec<u8>>) -> Result<()> {
        self.write(Change::Put(vec![(key, value, args)])).map(drop)
    }

    /// One record (or one rewrite) for the whole batch: all or nothing.
    fn extend_with_args(&self, items: Vec<WithArgs<K, V>>) -> Result<()> {
        self.write(Change::Put(items)).map(drop)
    }

    fn args(&self, key: &K) -> Result<Option<Vec<u8>>> {
        self.read(|m| m.get(key).and_then(|(_, a)| a.clone()))
    }

    /// The file `<dir>/<stem>.<namespace>.<ext>` next to the file given to
    /// [`open`](FileArchive::open) (`memo.msgpack` -> `memo.fib.msgpack`);
    /// `""` is that file itself. Namespaces with path separators, `..` or
    /// NUL are refused with [`Error::Config`].
    fn namespaced(&self, namespace: &str) -> Result<Self> {
        fs::check_namespace(namespace)?;
        if namespace == &*self.namespace {
            return Ok(self.clone());
        }
        let path = namespaced_path(&self.root, namespace);
        Self::open_in(
            Arc::clone(&self.root),
            Arc::from(namespace),
            path,
            self.durable,
        )
    }

    fn location(&self) -> String {
        self.shared.location()
    }
}

/// `root` with `namespace` inserted before its extension.
fn namespaced_path(root: &Path, namespace: &str) -> PathBuf {
    if namespace.is_empty() {
        return root.to_path_buf();
    }
    let mut name = root.file_stem().unwrap_or_default().to_owned();
    name.push(".");
    name.push(namespace);
    if let Some(ext) = root.extension() {
        name.push(".");
        name.push(ext);
    }
    root.with_file_name(name)
}

#[cfg(test)]
mod tests;
