//! [`HdfArchive`]: a dictionary in one HDF5 file, written copy-on-write.

use std::fmt;
use std::fs as stdfs;
use std::io;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use hdf5::Group;
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::entry::{self, NewEntry};
use super::{create_file, open_error, open_for_write, open_read_only};
use crate::archive::dir::{is_digest, key_digest};
use crate::archive::envelope::to_msgpack;
use crate::archive::fs::{self, io_err, LockGuard};
use crate::archive::{Archive, Items, WithArgs};
use crate::{Error, Result};

/// An archive keeping every entry in one HDF5 file (feature `hdf5`):
/// numbers and arrays of numbers as typed datasets that h5py, HDFView or
/// any HDF5 tool reads directly.
///
/// # Layout
///
/// ```text
/// results.h5
///   /<digest>          an entry of the archive itself
///   /<namespace>/      a memo's `.name(..)`: a group of entries
///     <digest>         an entry: a dataset named by the key's digest
/// results.h5.lock      the advisory lock file of writers
/// ```
///
/// `<digest>` is 32 lowercase hex digits, as [`DirArchive`](crate::archive::DirArchive)
/// names its files. A value that is a number or an evenly nested sequence
/// of numbers of one type (`f64`, `Vec<i32>`, `Vec<Vec<f64>>` with rows
/// of equal length, `[u8; 16]`) is a dataset of that element type and
/// shape; anything else is the crate's [envelope](crate::archive::envelope)
/// as a `u8` dataset. Each dataset carries attributes: `call` (the call's
/// arguments as text such as `(1, 2.5)`, for hashed keys), `klepto_format`
/// (`native` or `envelope`) and `klepto` (the key, the encoded arguments
/// and a checksum, checked on every read; layout in the crate's
/// `archive/hdf5/entry.rs`). In h5py:
///
/// ```python
/// import h5py
/// with h5py.File("results.h5", "r") as f:
///     for digest, d in f["fib"].items():
///         print(d.attrs["call"].decode(), d[()])    # (30,) 832040
/// ```
///
/// # Crash safety and processes
///
/// HDF5 files are not safe against a crash during an in-place write, so a
/// write never touches the file in place: under an exclusive advisory lock
/// on `results.h5.lock`, the file is copied to a temporary file beside it,
/// the change is made in the copy, which is fsynced and renamed over the
/// file (then the directory is fsynced; `durable(false)` skips both
/// fsyncs). Readers (which take no lock) and a crash see the old file or
/// the new one, never a mix; writers in any number of processes take turns
/// and lose nothing; HDF5's own file locks never conflict, since nothing
/// opens the file itself for writing.
///
/// The cost: **each write copies the whole file** (`extend` copies it
/// once for the whole batch). Use `extend`, a memo's `dump`, or
/// [`Cached`](crate::archive::Cached) to write in batches, or
/// [`HdfDirArchive`](super::HdfDirArchive) for many single writes. Space
/// of removed or replaced entries is kept in the file's free-space manager
/// and reused by later writes; the file does not shrink (delete it to
/// start afresh). Files are created in the HDF5 1.10 format (free space
/// kept across sessions): HDF5 1.8 tools cannot read them.
///
/// # Damage
///
/// A file that is not a readable HDF5 file is [`Error::Corrupt`] naming it
/// at `open`, and is left untouched. A damaged entry (its checksum, its
/// key, or HDF5 itself fails) is [`Error::Corrupt`] naming the file and
/// the dataset; a memo counts it in `info().errors` and recomputes it.
///
/// ```
/// use klepto::archive::{Archive, HdfArchive};
/// let dir = tempfile::tempdir()?;
/// let a: HdfArchive<u64, Vec<f64>> = HdfArchive::open(dir.path().join("results.h5"))?;
/// a.insert(3, vec![0.5, 1.5, 2.5])?;
/// assert_eq!(a.get(&3)?, Some(vec![0.5, 1.5, 2.5]));
/// let fib = a.namespaced("fib")?;           // the group `/fib`
/// assert_eq!(fib.len()?, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct HdfArchive<K, V> {
    file: Arc<SharedFile>,
    /// The group of this namespace: `""` for the root.
    group: Arc<str>,
    durable: bool,
    types: PhantomData<fn() -> (K, V)>,
}

/// Entries a scan reads with the file opened once.
const SCAN_CHUNK: usize = 256;

/// What every handle on one file shares.
struct SharedFile {
    path: PathBuf,
    lock_path: PathBuf,
    tmp_prefix: String,
    /// The file as last opened for reading, while it is still the file at
    /// `path` (a writer renames a new file there).
    reader: Mutex<Option<Reader>>,
}

struct Reader {
    file: hdf5::File,
    stamp: Stamp,
}

/// Tells one file at a path from the next: a rename puts a new inode there.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Stamp {
    #[cfg(unix)]
    inode: (u64, u64),
    len: u64,
    modified: Option<SystemTime>,
}

impl Stamp {
    fn of(meta: &stdfs::Metadata) -> Stamp {
        Stamp {
            #[cfg(unix)]
            inode: {
                use std::os::unix::fs::MetadataExt;
                (meta.dev(), meta.ino())
            },
            len: meta.len(),
            modified: meta.modified().ok(),
        }
    }
}

impl<K, V> Clone for HdfArchive<K, V> {
    fn clone(&self) -> Self {
        HdfArchive {
            file: Arc::clone(&self.file),
            group: Arc::clone(&self.group),
            durable: self.durable,
            types: PhantomData,
        }
    }
}

impl<K, V> fmt::Debug for HdfArchive<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HdfArchive")
            .field("path", &self.file.path)
            .field("group", &self.group)
            .finish()
    }
}

impl<K, V> HdfArchive<K, V> {
    /// Opens the archive in the HDF5 file at `path`, creating an empty one
    /// if there is none. A file that is not HDF5 (or is truncated) is
    /// [`Error::Corrupt`] naming it, and is left untouched.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| Error::Config {
                reason: format!("an HDF5 archive needs a file name: {}", path.display()),
            })?;
        let shared = SharedFile {
            lock_path: fs::with_suffix(&path, ".lock"),
            tmp_prefix: format!(".{name}{}", fs::TMP_PREFIX),
            path,
            reader: Mutex::new(None),
        };
        if !shared.exists()? {
            let _lock = LockGuard::exclusive(&shared.lock_path)?;
            if !shared.exists()? {
                fs::replace_with(&shared.path, &shared.tmp_prefix, true, |tmp| {
                    create_file(tmp)
                        .and_then(hdf5::File::close)
                        .map_err(|e| open_error(tmp, &e))
                })?;
            }
        }
        // Opened once now, so that a damaged file fails here.
        shared.with_file(|_| Ok(()))?;
        Ok(HdfArchive {
            file: Arc::new(shared),
            group: Arc::from(""),
            durable: true,
            types: PhantomData,
        })
    }

    /// Whether writes fsync the file and its directory (default `true`).
    /// Without, a crash of the machine may lose recent writes (never tear
    /// the file).
    pub fn durable(mut self, durable: bool) -> Self {
        self.durable = durable;
        self
    }

    /// The HDF5 file.
    pub fn path(&self) -> &Path {
        &self.file.path
    }

    /// The group of this handle's namespace (`""`: the root).
    pub fn namespace(&self) -> &str {
        &self.group
    }

    /// Where h5py finds the entry of `key` in the file: `/<namespace>/<digest>`
    /// (`/<digest>` at the root), whether or not it is stored.
    ///
    /// ```
    /// use klepto::archive::{Archive, HdfArchive};
    /// let dir = tempfile::tempdir()?;
    /// let a: HdfArchive<u64, f64> = HdfArchive::open(dir.path().join("r.h5"))?;
    /// let path = a.namespaced("f")?.dataset_path(&7)?;
    /// assert!(path.starts_with("/f/") && path.len() == 3 + 32);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn dataset_path(&self, key: &K) -> Result<String>
    where
        K: Serialize,
    {
        let name = key_digest(&to_msgpack(key, "an archive key")?);
        Ok(if self.group.is_empty() {
            format!("/{name}")
        } else {
            format!("/{}/{name}", self.group)
        })
    }

    /// `path:/group/digest`, as HDF5 tools name a dataset.
    fn entry_location(&self, name: &str) -> String {
        if self.group.is_empty() {
            format!("{}:/{name}", self.file.path.display())
        } else {
            format!("{}:/{}/{name}", self.file.path.display(), self.group)
        }
    }

    /// `f` of this namespace's group in the current file (`None` if the
    /// group does not exist yet).
    fn read<R>(&self, f: impl FnOnce(Option<&Group>) -> Result<R>) -> Result<R> {
        self.file.with_file(|file| {
            let group = if self.group.is_empty() {
                Some(
                    file.as_group()
                        .map_err(|e| open_error(&self.file.path, &e))?,
                )
            } else if file.link_exists(&self.group) {
                Some(
                    file.group(&self.group)
                        .map_err(|e| open_error(&self.file.path, &e))?,
                )
            } else {
                None
            };
            f(group.as_ref())
        })
    }

    /// Makes a change in a copy of the file and puts the copy in its place
    /// (see *Crash safety* above); `f` gets this namespace's group there.
    fn write<R>(&self, f: impl FnOnce(&Group) -> Result<R>) -> Result<R> {
        let shared = &*self.file;
        let _lock = LockGuard::exclusive(&shared.lock_path)?;
        fs::remove_stale_temps(&shared.path, &shared.tmp_prefix);
        let mut out = None;
        fs::replace_with(&shared.path, &shared.tmp_prefix, self.durable, |tmp| {
            let file = if shared.exists()? {
                stdfs::copy(&shared.path, tmp).map_err(io_err(&shared.path))?;
                open_for_write(tmp)
            } else {
                create_file(tmp)
            }
            .map_err(|e| open_error(&shared.path, &e))?;
            let at = |e: hdf5::Error| entry::write_error(&shared.path.display(), &e);
            let group = if self.group.is_empty() {
                file.as_group().map_err(at)?
            } else if file.link_exists(&self.group) {
                file.group(&self.group).map_err(at)?
            } else {
                file.create_group(&self.group).map_err(at)?
            };
            out = Some(f(&group)?);
            drop(group);
            file.close().map_err(at)
        })?;
        Ok(out.expect("the change ran"))
    }
}

impl SharedFile {
    fn exists(&self) -> Result<bool> {
        match stdfs::metadata(&self.path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err(&self.path)(e)),
        }
    }

    /// `f` of the file at `path`, opened anew only if it changed.
    fn with_file<R>(&self, f: impl FnOnce(&hdf5::File) -> Result<R>) -> Result<R> {
        let mut reader = self.reader.lock();
        let meta = stdfs::metadata(&self.path).map_err(io_err(&self.path))?;
        let stamp = Stamp::of(&meta);
        if reader.as_ref().is_none_or(|r| r.stamp != stamp) {
            *reader = None;
            let file = open_read_only(&self.path)?;
            *reader = Some(Reader { file, stamp });
        }
        f(&reader.as_ref().expect("opened above").file)
    }
}

/// The entries' names in `group`: its datasets named by a digest.
fn entry_names(group: Option<&Group>, location: &Path) -> Result<Vec<String>> {
    let Some(group) = group else {
        return Ok(Vec::new());
    };
    let mut names = group
        .member_names()
        .map_err(|e| entry::corrupt(&location.display(), format!("unreadable group: {e}")))?;
    names.retain(|n| is_digest(n));
    Ok(names)
}

impl<K, V> HdfArchive<K, V>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned + 'static,
{
    /// The entry of `key` in `group`, checked.
    fn read_entry(&self, group: Option<&Group>, key: &[u8]) -> Result<Option<entry::ReadEntry<V>>> {
        let Some(group) = group else {
            return Ok(None);
        };
        let name = key_digest(key);
        entry::read(group, &name, Some(key), &self.entry_location(&name))
    }

    /// Every entry's name, then the entries read in chunks of
    /// [`SCAN_CHUNK`] as they are reached, each chunk from the file current
    /// then (a writer may replace it meanwhile). One chunk of values is in
    /// memory at a time.
    fn scan<T: 'static>(
        &self,
        item: impl Fn(&Self, &Group, &str) -> Result<Option<T>> + 'static,
    ) -> Result<Items<'_, T>>
    where
        K: 'static,
        V: 'static,
    {
        let names = self.read(|group| entry_names(group, &self.file.path))?;
        let mut names = names.into_iter().peekable();
        let chunks = std::iter::from_fn(move || {
            names.peek()?;
            let chunk: Vec<String> = names.by_ref().take(SCAN_CHUNK).collect();
            let read = self.read(|group| {
                Ok(match group {
                    Some(group) => chunk
                        .iter()
                        .filter_map(|name| item(self, group, name).transpose())
                        .collect(),
                    None => Vec::new(),
                })
            });
            Some(read.unwrap_or_else(|e| vec![Err(e)]))
        });
        Ok(Box::new(chunks.flatten()))
    }

    fn write_entries(&self, entries: Vec<NewEntry>) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        self.write(|group| {
            for e in &entries {
                e.write(group, &self.entry_location(&e.name()))?;
            }
            Ok(())
        })
    }
}

impl<K, V> Archive<K, V> for HdfArchive<K, V>
where
    K: Serialize + DeserializeOwned + Send + Sync + 'static,
    V: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    fn get(&self, key: &K) -> Result<Option<V>> {
        let key = to_msgpack(key, "an archive key")?;
        self.read(|group| Ok(self.read_entry(group, &key)?.map(|e| e.value)))
    }

    fn insert(&self, key: K, value: V) -> Result<()> {
        self.insert_with_args(key, value, None)
    }

    /// Removes `key` and returns its value; a damaged entry is removed too,
    /// and reported as [`Error::Corrupt`].
    fn remove(&self, key: &K) -> Result<Option<V>> {
        let key = to_msgpack(key, "an archive key")?;
        let name = key_digest(&key);
        if !self.read(|group| Ok(group.is_some_and(|g| g.link_exists(&name))))? {
            return Ok(None);
        }
        let found = self.write(|group| {
            let found = entry::read(group, &name, Some(&key), &self.entry_location(&name));
            if group.link_exists(&name) {
                group
                    .unlink(&name)
                    .map_err(|e| entry::write_error(&self.entry_location(&name), &e))?;
            }
            Ok(found)
        })?;
        Ok(found?.map(|e| e.value))
    }

    fn contains_key(&self, key: &K) -> Result<bool> {
        let name = key_digest(&to_msgpack(key, "an archive key")?);
        self.read(|group| Ok(group.is_some_and(|g| g.link_exists(&name))))
    }

    fn len(&self) -> Result<usize> {
        self.read(|group| Ok(entry_names(group, &self.file.path)?.len()))
    }

    fn keys(&self) -> Result<Items<'_, K>> {
        self.scan(|archive, group, name| {
            let location = archive.entry_location(name);
            let key = entry::read_key(group, name, &location)?;
            crate::archive::envelope::from_msgpack(&key, &location).map(Some)
        })
    }

    fn iter(&self) -> Result<Items<'_, (K, V)>> {
        Ok(Box::new(
            self.iter_with_args()?.map(|r| r.map(|(k, v, _)| (k, v))),
        ))
    }

    fn iter_with_args<'a>(&'a self) -> Result<Items<'a, WithArgs<K, V>>>
    where
        K: 'a,
        V: 'a,
    {
        self.scan(|archive, group, name| {
            let location = archive.entry_location(name);
            let Some(e) = entry::read::<V>(group, name, None, &location)? else {
                return Ok(None);
            };
            let key = crate::archive::envelope::from_msgpack(&e.key, &location)?;
            Ok(Some((key, e.value, e.args)))
        })
    }

    /// Removes every entry of this namespace (other namespaces stay).
    fn clear(&self) -> Result<()> {
        if self.len()? == 0 {
            return Ok(());
        }
        self.write(|group| {
            for name in entry_names(Some(group), &self.file.path)? {
                group
                    .unlink(&name)
                    .map_err(|e| entry::write_error(&self.entry_location(&name), &e))?;
            }
            Ok(())
        })
    }

    /// Writes every entry in one copy of the file: all or nothing.
    fn extend(&self, items: Vec<(K, V)>) -> Result<()> {
        self.write_entries(NewEntry::all(items.into_iter().map(|(k, v)| (k, v, None)))?)
    }

    fn insert_with_args(&self, key: K, value: V, args: Option<Vec<u8>>) -> Result<()> {
        self.write_entries(vec![NewEntry::new(&key, &value, args)?])
    }

    fn extend_with_args(&self, items: Vec<WithArgs<K, V>>) -> Result<()> {
        self.write_entries(NewEntry::all(items)?)
    }

    fn args(&self, key: &K) -> Result<Option<Vec<u8>>> {
        let key = to_msgpack(key, "an archive key")?;
        self.read(|group| {
            let Some(group) = group else {
                return Ok(None);
            };
            let name = key_digest(&key);
            entry::read_args(group, &name, &key, &self.entry_location(&name))
        })
    }

    /// The group `/<namespace>` of the same file (created by its first
    /// write); `""` is the root. Names with `/`, `..`, NUL, or of 32 hex
    /// digits (an entry's name) are refused with [`Error::Config`].
    fn namespaced(&self, namespace: &str) -> Result<Self> {
        fs::check_namespace(namespace)?;
        if is_digest(namespace) {
            return Err(Error::Config {
                reason: format!(
                    "namespace {namespace:?} of {} looks like an entry's name",
                    self.file.path.display()
                ),
            });
        }
        Ok(HdfArchive {
            file: Arc::clone(&self.file),
            group: Arc::from(namespace),
            durable: self.durable,
            types: PhantomData,
        })
    }

    fn location(&self) -> String {
        if self.group.is_empty() {
            self.file.path.display().to_string()
        } else {
            format!("{}:/{}", self.file.path.display(), self.group)
        }
    }
}
