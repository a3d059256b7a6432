//! [`HdfDirArchive`]: a directory with one HDF5 file per entry.

use std::ffi::OsStr;
use std::fmt;
use std::fs as stdfs;
use std::io;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::entry::{self, NewEntry, ReadEntry};
use super::{open_error, open_read_only};
use crate::archive::dir::{is_digest, key_digest};
use crate::archive::envelope::{from_msgpack, to_msgpack};
use crate::archive::fs::{self, io_err, DirPlace, LockGuard};
use crate::archive::{Archive, Items, WithArgs};
use crate::Result;

const EXTENSION: &str = ".h5";

/// An archive keeping one HDF5 file per entry in a directory (feature
/// `hdf5`): [`DirArchive`](crate::archive::DirArchive)'s layout, with
/// entries that HDF5 tools read.
///
/// # Layout
///
/// ```text
/// <dir>/
///   <digest>.h5      one entry: an HDF5 file holding the dataset /<digest>
///   .lock            the advisory lock file
///   .tmp-*           files of writes in progress (or of a crashed writer)
///   <namespace>/     a namespace (a memo's `.name(..)`): the same, one level down
/// ```
///
/// The dataset and its attributes are those of an
/// [`HdfArchive`](super::HdfArchive) entry: numbers and arrays of numbers
/// as typed datasets, other values as envelope bytes, each with its
/// arguments as text (`call`) and its key, arguments and checksum (`klepto`).
/// In h5py:
/// `h5py.File("results.d/fib/<digest>.h5")["<digest>"][()]`.
///
/// # Crash safety and processes
///
/// As in `DirArchive`: an insert writes its entry to a temporary file in
/// the directory, fsyncs it, renames it over `<digest>.h5` and fsyncs the
/// directory (`durable(false)` skips the fsyncs), under a *shared* lock,
/// so any number of processes write different entries at once with no
/// file lock on a shared HDF5 file. `remove` and `clear` take the
/// exclusive lock; reads take none. A file found under another entry's
/// name, or one that is not HDF5, is [`Error::Corrupt`](crate::Error::Corrupt)
/// naming it; a memo then counts an error and recomputes.
///
/// ```
/// use klepto::archive::{Archive, HdfDirArchive};
/// let dir = tempfile::tempdir()?;
/// let a: HdfDirArchive<String, Vec<Vec<f32>>> = HdfDirArchive::open(dir.path().join("results.d"))?;
/// a.insert("grid".into(), vec![vec![1.0, 2.0], vec![3.0, 4.0]])?;   // a 2x2 f32 dataset
/// assert_eq!(a.get(&"grid".into())?, Some(vec![vec![1.0, 2.0], vec![3.0, 4.0]]));
/// assert_eq!(a.len()?, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct HdfDirArchive<K, V> {
    place: DirPlace,
    durable: bool,
    types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Clone for HdfDirArchive<K, V> {
    fn clone(&self) -> Self {
        HdfDirArchive {
            place: self.place.clone(),
            durable: self.durable,
            types: PhantomData,
        }
    }
}

impl<K, V> fmt::Debug for HdfDirArchive<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HdfDirArchive")
            .field("dir", &self.place.dir)
            .finish()
    }
}

impl<K, V> HdfDirArchive<K, V> {
    /// Opens the archive in directory `dir`, creating it (and its parents)
    /// if missing.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        Ok(HdfDirArchive {
            place: DirPlace::open(dir.as_ref())?,
            durable: true,
            types: PhantomData,
        })
    }

    /// Whether writes fsync the entry file and the directory (default
    /// `true`).
    pub fn durable(mut self, durable: bool) -> Self {
        self.durable = durable;
        self
    }

    /// The directory of this handle's namespace.
    pub fn path(&self) -> &Path {
        &self.place.dir
    }

    /// The namespace (`""`: the directory given to `open`).
    pub fn namespace(&self) -> &str {
        &self.place.namespace
    }

    /// The file that holds (or would hold) the entry of `key`; its dataset
    /// is named like the file, without `.h5`.
    ///
    /// ```
    /// use klepto::archive::HdfDirArchive;
    /// let dir = tempfile::tempdir()?;
    /// let a: HdfDirArchive<u64, f64> = HdfDirArchive::open(dir.path())?;
    /// let file = a.entry_file(&7)?;
    /// assert_eq!(file.extension().unwrap(), "h5");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn entry_file(&self, key: &K) -> Result<PathBuf>
    where
        K: Serialize,
    {
        Ok(self.entry_path(&key_digest(&to_msgpack(key, "an archive key")?)))
    }

    fn entry_path(&self, name: &str) -> PathBuf {
        self.place.dir.join(format!("{name}{EXTENSION}"))
    }

    /// Writes `entry` to its own file, all or nothing (lock held by the
    /// caller).
    fn write_entry(&self, entry: &NewEntry) -> Result<tempfile::TempPath> {
        let path = self.entry_path(&entry.name());
        fs::stage_with(&path, fs::TMP_PREFIX, self.durable, |tmp| {
            let file = hdf5::File::create(tmp).map_err(|e| open_error(&path, &e))?;
            entry.write(&file, &path.display())?;
            file.close()
                .map_err(|e| entry::write_error(&path.display(), &e))
        })
    }
}

impl<K, V> HdfDirArchive<K, V>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned + 'static,
{
    /// The entry in the file `name.h5`, checked against `key` if given;
    /// `None` if there is no such file.
    fn read_file(&self, name: &str, key: Option<&[u8]>) -> Result<Option<ReadEntry<V>>> {
        let path = self.entry_path(name);
        let file = match open_read_only(&path) {
            Ok(file) => file,
            Err(_) if !path.exists() => return Ok(None),
            Err(e) => return Err(e),
        };
        let group = file.as_group().map_err(|e| open_error(&path, &e))?;
        match entry::read(&group, name, key, &path.display())? {
            Some(entry) => Ok(Some(entry)),
            // A file without its dataset: renamed from another entry's.
            None => Err(entry::corrupt(
                &path.display(),
                "the entry file holds another key's entry (moved, copied or swapped)",
            )),
        }
    }

    /// The digests of the entry files, streamed from the directory.
    fn names(&self) -> Result<impl Iterator<Item = Result<String>> + '_> {
        let entries = stdfs::read_dir(&self.place.dir).map_err(io_err(&self.place.dir))?;
        Ok(entries.filter_map(move |entry| match entry {
            Ok(entry) => entry_digest(entry.file_name().as_os_str()).map(Ok),
            Err(e) => Some(Err(io_err(&self.place.dir)(e))),
        }))
    }

    fn write_entries(&self, entries: Vec<NewEntry>) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let _lock = LockGuard::shared(&self.place.lock_path)?;
        let mut staged = Vec::with_capacity(entries.len());
        for entry in &entries {
            staged.push((self.write_entry(entry)?, self.entry_path(&entry.name())));
        }
        for (tmp, path) in staged {
            tmp.persist(&path).map_err(|e| io_err(&path)(e.error))?;
        }
        if self.durable {
            fs::sync_dir(&self.place.dir)?;
        }
        Ok(())
    }
}

/// The digest of an entry file's name (`<digest>.h5`).
fn entry_digest(name: &OsStr) -> Option<String> {
    let digest = name.to_str()?.strip_suffix(EXTENSION)?;
    is_digest(digest).then(|| digest.to_owned())
}

impl<K, V> Archive<K, V> for HdfDirArchive<K, V>
where
    K: Serialize + DeserializeOwned + Send + Sync,
    V: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    fn get(&self, key: &K) -> Result<Option<V>> {
        let key = to_msgpack(key, "an archive key")?;
        Ok(self
            .read_file(&key_digest(&key), Some(&key))?
            .map(|e| e.value))
    }

    fn insert(&self, key: K, value: V) -> Result<()> {
        self.insert_with_args(key, value, None)
    }

    /// Reads and deletes the entry file under the exclusive lock; a damaged
    /// entry is deleted too, and reported as [`Error::Corrupt`](crate::Error::Corrupt).
    fn remove(&self, key: &K) -> Result<Option<V>> {
        let key = to_msgpack(key, "an archive key")?;
        let name = key_digest(&key);
        let path = self.entry_path(&name);
        let _lock = LockGuard::exclusive(&self.place.lock_path)?;
        let found = self.read_file(&name, Some(&key));
        match stdfs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&path)(e)),
        }
        if self.durable {
            fs::sync_dir(&self.place.dir)?;
        }
        Ok(found?.map(|e| e.value))
    }

    fn contains_key(&self, key: &K) -> Result<bool> {
        let path = self.entry_path(&key_digest(&to_msgpack(key, "an archive key")?));
        match stdfs::symlink_metadata(&path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    fn len(&self) -> Result<usize> {
        self.names()?.try_fold(0, |n, name| name.map(|_| n + 1))
    }

    fn keys(&self) -> Result<Items<'_, K>> {
        Ok(Box::new(self.names()?.map(move |name| {
            let name = name?;
            let path = self.entry_path(&name);
            let file = open_read_only(&path)?;
            let group = file.as_group().map_err(|e| open_error(&path, &e))?;
            let key = entry::read_key(&group, &name, &path.display())?;
            from_msgpack(&key, path.display())
        })))
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
        Ok(Box::new(self.names()?.filter_map(move |name| {
            let name = match name {
                Ok(name) => name,
                Err(e) => return Some(Err(e)),
            };
            // Removed meanwhile: skipped.
            let read = self.read_file(&name, None).transpose()?;
            Some(read.and_then(|e| {
                let key = from_msgpack(&e.key, self.entry_path(&name).display())?;
                Ok((key, e.value, e.args))
            }))
        })))
    }

    /// Deletes every entry file (and temporary files of crashed writers)
    /// under the exclusive lock; namespaces (subdirectories) stay.
    fn clear(&self) -> Result<()> {
        let _lock = LockGuard::exclusive(&self.place.lock_path)?;
        fs::remove_entries(
            &self.place.dir,
            |name| entry_digest(name).is_some(),
            self.durable,
        )
    }

    /// Stages every entry in its own temporary file, then renames them all
    /// into place: a failure before the renames changes nothing.
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
        let name = key_digest(&key);
        let path = self.entry_path(&name);
        let file = match open_read_only(&path) {
            Ok(file) => file,
            Err(_) if !path.exists() => return Ok(None),
            Err(e) => return Err(e),
        };
        let group = file.as_group().map_err(|e| open_error(&path, &e))?;
        entry::read_args(&group, &name, &key, &path.display())
    }

    /// The subdirectory `<dir>/<namespace>` of the directory given to
    /// [`open`](HdfDirArchive::open), created if missing; `""` is that
    /// directory. Names with `/`, `..` or NUL are refused.
    fn namespaced(&self, namespace: &str) -> Result<Self> {
        Ok(HdfDirArchive {
            place: self.place.namespaced(namespace)?,
            durable: self.durable,
            types: PhantomData,
        })
    }

    fn location(&self) -> String {
        self.place.dir.display().to_string()
    }
}
