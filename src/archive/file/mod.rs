//! An archive that keeps the whole dictionary in one file: [`FileArchive`]
//! (its documentation gives the file layouts and the locking protocol).

use std::collections::HashMap;
use std::fmt;
use std::fs::{File, Metadata};
use std::hash::Hash;
use std::io::{self, Read};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::RwLock;
use serde::de::{DeserializeOwned, SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::envelope::{from_msgpack, to_msgpack, Envelope};
use super::fs::{self, io_err, LockGuard};
use super::{Archive, Items, WithArgs};
use crate::{Error, Result};

/// The in-memory dictionary: value and optional encoded arguments per key.
type Entries<K, V> = HashMap<K, (V, Option<Vec<u8>>)>;

const JSON_FORMAT: &str = "klepto-file";
const JSON_VERSION: u32 = 1;

/// An archive holding its whole dictionary in one file, MessagePack or JSON.
///
/// Handles are cheap to clone and share their parsed dictionary; handles
/// opened separately on one path (in one process or many) stay consistent
/// through the file and its lock (see *Writes and processes*).
///
/// # File layouts
///
/// **MessagePack** (any path not ending in `.json`): the file is one
/// [envelope](super::envelope) without a key section, whose value is the
/// MessagePack array of the entries, so the envelope's checksum covers the
/// whole file:
///
/// ```text
/// envelope( [[key, value, args], ...] )
/// ```
///
/// `args` is MessagePack `bin` (the canonical encoding of the call's
/// arguments, see [`Archive::insert_with_args`]) or `nil`.
///
/// **JSON** (the path ends in `.json`, any case): a human-readable,
/// pretty-printed document. Entries are arrays, not object members, so keys
/// that serialize as numbers, tuples or structs are fine:
///
/// ```text
/// {
///   "format": "klepto-file",
///   "version": 1,
///   "entries": [[key, value, "args as lowercase hex" or null], ...]
/// }
/// ```
///
/// A truncated or damaged file fails the checksum (MessagePack) or the parser
/// (JSON); so does an empty file. Either way [`FileArchive::open`] and every
/// later operation return [`Error::Corrupt`] naming the path, and the file is
/// never overwritten.
///
/// # Writes and processes
///
/// Every write is a read-modify-write of the whole file under an exclusive
/// advisory lock ([`std::fs::File::lock`]) on the sidecar file
/// `<path>.lock`: lock, re-read the file if another handle or process changed
/// it, apply the change, write a temporary file in the same directory, fsync
/// it, rename it over `<path>`, fsync the directory, unlock. Writers in any
/// number of processes (or threads with separate handles) therefore never
/// lose each other's entries, and readers, who take no lock, see either the
/// old file or the new one. The lock file is left in place (removing it
/// would race with other lockers). Advisory locks may not work on network
/// filesystems.
///
/// Each write rewrites the whole file: the format suits dictionaries that are
/// written in batches ([`Archive::extend`] is one rewrite) or that stay small.
/// Use [`DirArchive`](super::DirArchive) for many single-entry writes.
///
/// # Reads
///
/// A handle keeps the parsed dictionary in memory together with a
/// fingerprint of the file it came from; each read stats the path and parses
/// the file again only if the fingerprint changed. On Unix the fingerprint is
/// (device, inode, size, mtime): since every write replaces the file by a
/// rename, a new version is a new inode, and the handle keeps the version it
/// parsed open so that its inode number cannot be reused by a later version.
/// Elsewhere it is (size, mtime).
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
/// a.extend(vec![(2, "two".into()), (3, "three".into())])?;   // one rewrite
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

/// What one file path's handles share.
struct Shared<K, V> {
    path: PathBuf,
    lock_path: PathBuf,
    tmp_prefix: String,
    format: Format,
    cache: RwLock<Cache<K, V>>,
}

/// The parsed dictionary and what it was parsed from.
struct Cache<K, V> {
    seen: Seen,
    /// Shared with running iterators; written through `Arc::make_mut`, which
    /// copies only while an iterator still holds the old version.
    entries: Arc<Entries<K, V>>,
    /// The file version `entries` came from, kept open on Unix so that its
    /// inode number stays taken and cannot fingerprint a later version.
    _held: Option<File>,
}

impl<K, V> Cache<K, V> {
    /// No entries, from the file in state `seen`.
    fn empty(seen: Seen) -> Self {
        Cache {
            seen,
            entries: Arc::default(),
            _held: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    MsgPack,
    Json,
}

/// The state of the file a cache was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// No file: the archive is empty.
    Absent,
    /// The file with this fingerprint.
    File(Fingerprint),
    /// Unknown (after a failed write): read the file again.
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    #[cfg(unix)]
    dev: u64,
    #[cfg(unix)]
    ino: u64,
    size: u64,
    mtime: Option<SystemTime>,
}

impl Fingerprint {
    fn of(meta: &Metadata) -> Self {
        #[cfg(unix)]
        use std::os::unix::fs::MetadataExt;
        Fingerprint {
            #[cfg(unix)]
            dev: meta.dev(),
            #[cfg(unix)]
            ino: meta.ino(),
            size: meta.len(),
            mtime: meta.modified().ok(),
        }
    }
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

    /// Runs `f` on the current dictionary, re-reading the file first if it
    /// changed.
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

    /// Read-modify-write under the lock file. `f` returns its result and
    /// whether it changed the dictionary (no change, no rewrite).
    fn write<T>(&self, f: impl FnOnce(&mut Entries<K, V>) -> (T, bool)) -> Result<T> {
        let shared = &*self.shared;
        let _lock = LockGuard::exclusive(&shared.lock_path)?;
        let mut cache = shared.cache.write();
        shared.refresh(&mut cache)?;
        let entries = Arc::make_mut(&mut cache.entries);
        let (out, changed) = f(entries);
        if !changed {
            return Ok(out);
        }
        match shared.store(entries, self.durable) {
            Ok((seen, held)) => {
                cache.seen = seen;
                cache._held = held;
                Ok(out)
            }
            Err(e) => {
                // The dictionary in memory no longer matches the file.
                *cache = Cache::empty(Seen::Unknown);
                Err(e)
            }
        }
    }
}

impl<K, V> Shared<K, V>
where
    K: Serialize + DeserializeOwned + Eq + Hash,
    V: Serialize + DeserializeOwned,
{
    fn location(&self) -> String {
        self.path.display().to_string()
    }

    /// The state of the file now (one `stat`).
    fn current(&self) -> Result<Seen> {
        match std::fs::metadata(&self.path) {
            Ok(meta) => Ok(Seen::File(Fingerprint::of(&meta))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Seen::Absent),
            Err(e) => Err(io_err(&self.path)(e)),
        }
    }

    /// Re-reads the file into `cache` unless it is the version already
    /// there. On error `cache` is left as it was (and still does not match
    /// the file, so the next access tries again).
    fn refresh(&self, cache: &mut Cache<K, V>) -> Result<()> {
        let now = self.current()?;
        if cache.seen == now {
            return Ok(());
        }
        let mut file = match File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                *cache = Cache::empty(Seen::Absent);
                return Ok(());
            }
            Err(e) => return Err(io_err(&self.path)(e)),
        };
        // The fingerprint of the version actually read, which may be newer
        // than the one just stat'ed.
        let meta = file.metadata().map_err(io_err(&self.path))?;
        let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
        file.read_to_end(&mut bytes).map_err(io_err(&self.path))?;
        let entries = self.parse(&bytes)?;
        *cache = Cache {
            seen: Seen::File(Fingerprint::of(&meta)),
            entries: Arc::new(entries),
            _held: hold(file),
        };
        Ok(())
    }

    fn parse(&self, bytes: &[u8]) -> Result<Entries<K, V>> {
        let location = self.location();
        let corrupt = |reason: String| Error::Corrupt {
            location: location.clone(),
            reason,
        };
        match self.format {
            Format::MsgPack => {
                let envelope = Envelope::decode(bytes, &location)?;
                if envelope.key.is_some() || envelope.args.is_some() {
                    return Err(corrupt(
                        "an envelope with key or args sections is an entry, not a file archive"
                            .into(),
                    ));
                }
                Ok(from_msgpack::<EntryMap<K, V>>(envelope.value, &location)?.0)
            }
            Format::Json => {
                let doc: JsonIn<K, V> = serde_json::from_slice(bytes).map_err(|e| {
                    corrupt(format!(
                        "not a klepto JSON archive of `{}` -> `{}`: {e}",
                        std::any::type_name::<K>(),
                        std::any::type_name::<V>()
                    ))
                })?;
                if doc.format != JSON_FORMAT || doc.version != JSON_VERSION {
                    return Err(corrupt(format!(
                        "format {:?} version {} (this build reads {JSON_FORMAT:?} version {JSON_VERSION})",
                        doc.format, doc.version
                    )));
                }
                Ok(doc.entries.0)
            }
        }
    }

    /// Writes `entries` to the file atomically; returns the new file's state.
    fn store(&self, entries: &Entries<K, V>, durable: bool) -> Result<(Seen, Option<File>)> {
        let bytes = match self.format {
            Format::MsgPack => {
                let value = to_msgpack(&EntriesRef(entries), "file archive entries")?;
                Envelope {
                    key: None,
                    args: None,
                    value: &value,
                }
                .encode()
            }
            Format::Json => {
                let doc = JsonOut {
                    format: JSON_FORMAT,
                    version: JSON_VERSION,
                    entries: EntriesRef(entries),
                };
                let mut bytes = serde_json::to_vec_pretty(&doc).map_err(|e| Error::Encode {
                    what: "file archive entries as JSON".into(),
                    reason: e.to_string(),
                })?;
                bytes.push(b'\n');
                bytes
            }
        };
        let file = fs::write_atomic(&self.path, &self.tmp_prefix, &bytes, durable)?;
        let meta = file.metadata().map_err(io_err(&self.path))?;
        Ok((Seen::File(Fingerprint::of(&meta)), hold(file)))
    }
}

/// The file to keep open with a parsed version (Unix: see [`Cache`]).
fn hold(file: File) -> Option<File> {
    if cfg!(unix) {
        Some(file)
    } else {
        None
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
        self.write(|m| {
            let old = m.remove(key).map(|(v, _)| v);
            let changed = old.is_some();
            (old, changed)
        })
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
        self.write(|m| {
            let changed = !m.is_empty();
            m.clear();
            ((), changed)
        })
    }

    /// One read-modify-write of the file for the whole batch: all or nothing.
    fn extend(&self, items: Vec<(K, V)>) -> Result<()> {
        self.write(|m| {
            let changed = !items.is_empty();
            m.reserve(items.len());
            m.extend(items.into_iter().map(|(k, v)| (k, (v, None))));
            ((), changed)
        })
    }

    fn insert_with_args(&self, key: K, value: V, args: Option<Vec<u8>>) -> Result<()> {
        self.write(|m| {
            m.insert(key, (value, args));
            ((), true)
        })
    }

    fn extend_with_args(&self, items: Vec<WithArgs<K, V>>) -> Result<()> {
        self.write(|m| {
            let changed = !items.is_empty();
            m.reserve(items.len());
            m.extend(items.into_iter().map(|(k, v, a)| (k, (v, a))));
            ((), changed)
        })
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

// ---------------------------------------------------------------------------
// Serialization of the entry list, borrowing the dictionary.

/// Serializes the dictionary as `[[key, value, args-or-nil], ...]`.
struct EntriesRef<'a, K, V>(&'a Entries<K, V>);

impl<K: Serialize, V: Serialize> Serialize for EntriesRef<'_, K, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for (k, (v, args)) in self.0 {
            seq.serialize_element(&(k, v, args.as_deref().map(ArgsRef)))?;
        }
        seq.end()
    }
}

/// Reads `[[key, value, args-or-nil], ...]` straight into a dictionary
/// (a later duplicate key wins).
struct EntryMap<K, V>(Entries<K, V>);

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

#[derive(Serialize)]
struct JsonOut<'a, K, V> {
    format: &'static str,
    version: u32,
    entries: EntriesRef<'a, K, V>,
}

#[derive(Deserialize)]
#[serde(bound = "K: DeserializeOwned + Eq + Hash, V: DeserializeOwned")]
struct JsonIn<K, V> {
    format: String,
    version: u32,
    entries: EntryMap<K, V>,
}

#[cfg(test)]
mod tests;
