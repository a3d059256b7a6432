//! An archive that keeps one file per entry in a directory: [`DirArchive`]
//! (its documentation gives the layout and what is safe across processes).

use std::ffi::OsStr;
use std::fmt;
use std::fs::{self as stdfs, DirEntry};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::backend::{Backed, Backend, RawEntry, RawItems};
use super::envelope::Envelope;
use super::faults::{self, Step};
use super::fs::{self, io_err, DirPlace, LockGuard};
use crate::{Error, Result};

const EXTENSION: &str = ".kle";
/// Hex digits in an entry's file name (16 bytes of blake3).
const DIGEST_HEX: usize = 32;

/// An archive keeping one file per entry in a directory: the typed
/// archive over a [`DirStore`].
///
/// Suited to many single-entry writes and to sharing between processes:
/// an insert writes only its own entry (see *Crash safety and processes*
/// for what is safe across processes).
///
/// # Layout
///
/// ```text
/// <dir>/
///   <digest>.kle     one entry: an envelope with the key, the args (if any), the value
///   .lock            the advisory lock file
///   .tmp-*           temporary files of writes in progress (or of a crashed writer)
///   <namespace>/     a namespace: the same layout, one level down
/// ```
///
/// `<digest>` is 32 lowercase hex digits: the first 16 bytes of the blake3
/// hash of the key's MessagePack encoding. File names never contain the raw
/// key, so keys have no length or character limits. Each entry file is one
/// [envelope](super::envelope) *with* its key section, so keys can be
/// listed, and an entry file found under another key's name (a file copied
/// or renamed by hand, or a practically impossible digest collision) is
/// [`Error::Corrupt`] naming the file, never another key's value.
///
/// # Crash safety and processes
///
/// - `insert`: the entry is written to a temporary file in the directory,
///   fsynced, renamed over `<digest>.kle`, and the directory fsynced
///   (`durable(false)` skips the fsyncs). Readers see the old entry or the
///   new one, never a torn one. Writers hold a *shared* lock on `.lock`, so
///   any number of them, in any number of processes, write at once.
/// - `remove` and `clear` hold the *exclusive* lock: no insert can land
///   between reading an entry and deleting it, so `remove` returns exactly
///   the value it deletes and never deletes a value it did not return.
/// - `extend` holds the shared lock, first writes every entry to its own
///   temporary file, then renames them into place and fsyncs the directory
///   once. A batch that fails before the renames (an encoding or I/O error)
///   changes nothing; a crash *during* the renames can leave part of the
///   batch: the batch is atomic per entry, not as a whole.
/// - `get`, `contains_key`, `len`, `keys`, `iter` take no lock.
///
/// Locks are advisory ([`std::fs::File::lock`]): they order klepto handles
/// (and anything else that locks `.lock`), and may not work on network
/// filesystems. `clear` also deletes temporary files left by crashed
/// writers (safe, since it holds the exclusive lock).
///
/// # Damage
///
/// A damaged entry file gives [`Error::Corrupt`] naming that file from
/// `get`, an `Err` item from `keys`/`iter` (which then go on with the other
/// entries), and is never overwritten except by a new `insert` of its key
/// (or deleted by a `remove` of it).
///
/// # Example
///
/// ```
/// use klepto::archive::{Archive, DirArchive};
/// let dir = tempfile::tempdir()?;
/// let a: DirArchive<String, Vec<u32>> = DirArchive::open(dir.path().join("cache"))?;
/// a.insert("a key of any length and with / any characters".into(), vec![1, 2])?;
/// a.extend(vec![("b".into(), vec![3]), ("c".into(), vec![])])?;
/// assert_eq!(a.get(&"b".into())?, Some(vec![3]));
/// assert_eq!(a.len()?, 3);                 // three `<digest>.kle` files
///
/// let fib = a.namespaced("fib")?.durable(false); // the subdirectory `cache/fib`
/// assert_eq!(fib.len()?, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub type DirArchive<K, V> = Backed<DirStore, K, V>;

/// The [`Backend`] of a [`DirArchive`]: one envelope file per entry in a
/// directory (see [`DirArchive`] for the layout and the locking).
#[derive(Clone)]
pub struct DirStore {
    /// The directory given to `open`; namespaces are its subdirectories.
    /// The directories: given to `open`, read and written by this handle.
    place: DirPlace,
    durable: bool,
}

impl fmt::Debug for DirStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DirArchive")
            .field("dir", &self.place.dir)
            .field("namespace", &self.place.namespace)
            .field("durable", &self.durable)
            .finish_non_exhaustive()
    }
}

impl<K, V> Backed<DirStore, K, V> {
    /// Opens the archive in directory `dir`, creating it (and its parents)
    /// if missing.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        DirStore::open(dir).map(Backed::new)
    }

    /// Whether writes are fsynced (entry file and directory) before they
    /// return; `true` by default. `false` is faster and still atomic per
    /// entry, but the last writes may be lost in a power failure.
    #[must_use]
    pub fn durable(self, durable: bool) -> Self {
        let mut store = self.backend().clone();
        store.durable = durable;
        Backed::new(store)
    }

    /// The directory this handle reads and writes.
    pub fn path(&self) -> &Path {
        &self.backend().place.dir
    }

    /// The namespace this handle reads and writes (`""` for the directory
    /// given to [`open`](Self::open)).
    pub fn namespace(&self) -> &str {
        &self.backend().place.namespace
    }
}

impl DirStore {
    /// Opens the store in directory `dir`, creating it (and its parents)
    /// if missing.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        Ok(DirStore {
            place: DirPlace::open(dir.as_ref())?,
            durable: true,
        })
    }

    /// The entry file of the key whose MessagePack encoding is `key`.
    fn entry_path(&self, key: &[u8]) -> PathBuf {
        self.place.dir.join(entry_name(key))
    }
}

impl Backend for DirStore {
    /// The entry file's bytes: `None` if there is no entry file.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        read_if_present(&self.entry_path(key))
    }

    /// Writes the entry file atomically under the shared lock.
    fn put(&self, key: &[u8], envelope: &[u8]) -> Result<()> {
        let path = self.entry_path(key);
        let _lock = LockGuard::shared(&self.place.lock_path)?;
        fs::write_atomic(&path, fs::TMP_PREFIX, envelope, self.durable)?;
        Ok(())
    }

    /// Stages every entry in a temporary file, then renames them all into
    /// place and fsyncs the directory once (see [`DirArchive`]).
    fn put_batch(&self, entries: Vec<RawEntry>) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let _lock = LockGuard::shared(&self.place.lock_path)?;
        // Stage every entry first: an error here drops (deletes) the
        // temporary files and leaves the archive as it was.
        let mut staged = Vec::with_capacity(entries.len());
        for (key, envelope) in &entries {
            let path = self.entry_path(key);
            let tmp = fs::stage(&path, fs::TMP_PREFIX, envelope, self.durable)?;
            staged.push((tmp, path));
        }
        drop(entries);
        for (tmp, path) in staged {
            faults::check(Step::Rename).map_err(io_err(&path))?;
            tmp.persist(&path).map_err(|e| io_err(&path)(e.error))?;
        }
        if self.durable {
            fs::sync_dir(&self.place.dir)?;
        }
        Ok(())
    }

    /// Reads and deletes the entry file under the exclusive lock.
    fn delete(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let path = self.entry_path(key);
        let _lock = LockGuard::exclusive(&self.place.lock_path)?;
        let Some(bytes) = read_if_present(&path)? else {
            return Ok(None);
        };
        match stdfs::remove_file(&path) {
            Ok(()) => {}
            // Deleted by someone who does not take the lock.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&path)(e)),
        }
        if self.durable {
            fs::sync_dir(&self.place.dir)?;
        }
        Ok(Some(bytes))
    }

    /// Whether the entry file exists (it is not read).
    fn contains(&self, key: &[u8]) -> Result<bool> {
        let path = self.entry_path(key);
        match stdfs::symlink_metadata(&path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// The number of entry files, counted without reading them (a damaged
    /// entry counts).
    fn len(&self) -> Result<usize> {
        let entries = stdfs::read_dir(&self.place.dir).map_err(io_err(&self.place.dir))?;
        let mut n = 0;
        for entry in entries {
            if entry_file(entry)
                .map_err(io_err(&self.place.dir))?
                .is_some()
            {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Deletes every entry (and temporary files of crashed writers) under
    /// the exclusive lock. Namespaces (subdirectories) are left alone.
    fn clear(&self) -> Result<()> {
        let _lock = LockGuard::exclusive(&self.place.lock_path)?;
        fs::remove_entries(&self.place.dir, is_entry_name, self.durable)
    }

    /// Every entry file, streamed from the directory (no snapshot): entries
    /// written or removed meanwhile may or may not be seen. The key is read
    /// from the file's envelope, which must be sound and be named after
    /// that key; otherwise the item is [`Error::Corrupt`] naming the file.
    fn scan(&self, _values: bool) -> Result<RawItems<'_>> {
        let dir = Arc::clone(&self.place.dir);
        let entries = stdfs::read_dir(&dir).map_err(io_err(&dir))?;
        Ok(Box::new(entries.filter_map(move |entry| {
            let path = match entry_file(entry) {
                Ok(Some(path)) => path,
                Ok(None) => return None,
                Err(e) => return Some(Err(io_err(&dir)(e))),
            };
            match read_if_present(&path) {
                Ok(Some(bytes)) => Some(split_entry(&path, bytes)),
                Ok(None) => None,
                Err(e) => Some(Err(e)),
            }
        })))
    }

    /// The subdirectory `<dir>/<namespace>` of the directory given to
    /// [`open`](DirStore::open), created if missing; `""` is that
    /// directory itself. Namespaces with path separators, `..` or NUL are
    /// refused with [`Error::Config`].
    fn namespace(&self, namespace: &str) -> Result<Self> {
        Ok(DirStore {
            place: self.place.namespaced(namespace)?,
            durable: self.durable,
        })
    }

    fn location(&self) -> String {
        self.place.dir.display().to_string()
    }

    /// The entry file's path.
    fn entry_location(&self, key: &[u8]) -> String {
        self.entry_path(key).display().to_string()
    }
}

/// The file's bytes, or `None` if it does not exist.
fn read_if_present(path: &Path) -> Result<Option<Vec<u8>>> {
    match stdfs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path)(e)),
    }
}

/// The path of a directory entry if it is an entry file (name and type
/// only: no read, and no `stat` where the directory listing has the type).
fn entry_file(entry: io::Result<DirEntry>) -> io::Result<Option<PathBuf>> {
    let entry = entry?;
    if !is_entry_name(&entry.file_name()) || entry.file_type()?.is_dir() {
        return Ok(None);
    }
    Ok(Some(entry.path()))
}

/// `<32 lowercase hex digits>.kle`.
fn is_entry_name(name: &OsStr) -> bool {
    name.to_str()
        .is_some_and(|n| n.strip_suffix(EXTENSION).is_some_and(is_digest))
}

/// The entry file name of the key whose MessagePack encoding is `key`.
fn entry_name(key: &[u8]) -> String {
    let mut name = key_digest(key);
    name.push_str(EXTENSION);
    name
}

/// The digest that names the entry of the key whose MessagePack encoding
/// is `key`: 32 lowercase hex digits, the first 16 bytes of its blake3.
pub(crate) fn key_digest(key: &[u8]) -> String {
    crate::hex::encode(&blake3::hash(key).as_bytes()[..DIGEST_HEX / 2])
}

/// Whether `name` is a digest as [`key_digest`] writes it.
#[cfg_attr(not(feature = "hdf5"), allow(dead_code))]
pub(crate) fn is_digest(name: &str) -> bool {
    name.len() == DIGEST_HEX
        && name
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The key stored in the entry file at `path` and the file's bytes: the
/// envelope must be sound, have a key section, and the file must be named
/// after that key.
fn split_entry(path: &Path, bytes: Vec<u8>) -> Result<RawEntry> {
    let corrupt = |reason: &str| Error::Corrupt {
        location: path.display().to_string(),
        reason: reason.into(),
    };
    let key = Envelope::decode(&bytes, path.display())?
        .key
        .ok_or_else(|| corrupt("entry has no key section"))?
        .to_vec();
    if path.file_name() != Some(OsStr::new(&entry_name(&key))) {
        return Err(corrupt(
            "the entry file holds another key's entry (moved, copied or swapped)",
        ));
    }
    Ok((key, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::envelope::to_msgpack;
    use crate::archive::fs::assert_corrupt;
    use crate::archive::Archive;
    use serde::Serialize;
    use std::collections::BTreeMap;

    fn open<K, V>(dir: &Path) -> DirArchive<K, V> {
        DirArchive::open(dir).unwrap().durable(false)
    }

    fn entry_names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = stdfs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| is_entry_name(OsStr::new(n)))
            .collect();
        names.sort();
        names
    }

    /// The entry file of `key` in `a`.
    fn file_of<K: Serialize, V>(a: &DirArchive<K, V>, key: &K) -> PathBuf {
        a.backend().entry_path(&to_msgpack(key, "key").unwrap())
    }

    #[test]
    fn every_method_round_trips() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a").join("b");
        let a: DirArchive<u64, String> = DirArchive::open(&dir).unwrap();
        assert!(dir.is_dir(), "open creates the directory");
        assert!(a.is_empty().unwrap());
        a.insert(1, "one".into()).unwrap();
        a.insert_with_args(2, "two".into(), Some(vec![0, 1, 255]))
            .unwrap();
        a.extend(vec![(3, "three".into()), (4, "four".into())])
            .unwrap();
        a.extend_with_args(vec![
            (5, "five".into(), Some(vec![5])),
            (6, "six".into(), None),
        ])
        .unwrap();
        assert_eq!(a.len().unwrap(), 6);
        assert_eq!(entry_names(&dir).len(), 6);
        assert_eq!(a.get(&2).unwrap().as_deref(), Some("two"));
        assert_eq!(a.get(&9).unwrap(), None);
        assert!(a.contains_key(&4).unwrap());
        assert!(!a.contains_key(&9).unwrap());
        assert_eq!(a.args(&2).unwrap(), Some(vec![0, 1, 255]));
        assert_eq!(a.args(&5).unwrap(), Some(vec![5]));
        assert_eq!(a.args(&1).unwrap(), None);
        assert_eq!(a.args(&9).unwrap(), None);
        assert_eq!(a.remove(&3).unwrap().as_deref(), Some("three"));
        assert_eq!(a.remove(&3).unwrap(), None);

        let b: DirArchive<u64, String> = DirArchive::open(&dir).unwrap();
        let mut keys: Vec<u64> = b.keys().unwrap().map(Result::unwrap).collect();
        keys.sort_unstable();
        assert_eq!(keys, [1, 2, 4, 5, 6]);
        let items: BTreeMap<u64, String> = b.iter().unwrap().map(Result::unwrap).collect();
        assert_eq!(items.len(), 5);
        assert_eq!(items[&6], "six");
        let mut values: Vec<String> = b.values().unwrap().map(Result::unwrap).collect();
        values.sort();
        assert_eq!(values, ["five", "four", "one", "six", "two"]);

        b.insert(2, "deux".into()).unwrap();
        assert_eq!(a.get(&2).unwrap().as_deref(), Some("deux"));
        assert_eq!(a.args(&2).unwrap(), None);

        a.clear().unwrap();
        assert!(b.is_empty().unwrap());
        assert_eq!(a.location(), dir.display().to_string());
    }

    #[test]
    fn file_names_are_digests_never_raw_keys() {
        let tmp = tempfile::tempdir().unwrap();
        let a: DirArchive<String, u8> = open(tmp.path());
        let long = "/../\0weird key ".repeat(1000);
        a.insert(long.clone(), 1).unwrap();
        a.insert(String::new(), 2).unwrap();
        assert_eq!(a.get(&long).unwrap(), Some(1));
        assert_eq!(a.get(&String::new()).unwrap(), Some(2));
        for name in entry_names(tmp.path()) {
            assert_eq!(name.len(), 36);
            assert!(name.ends_with(".kle"));
        }
        // The digest is blake3 of the key's MessagePack, first 16 bytes.
        let digest = blake3::hash(&rmp_serde::to_vec(&String::new()).unwrap());
        let expected = format!("{}.kle", crate::hex::encode(&digest.as_bytes()[..16]));
        assert!(tmp.path().join(expected).is_file());
    }

    #[test]
    fn namespaces_are_subdirectories() {
        let tmp = tempfile::tempdir().unwrap();
        let a: DirArchive<u64, u64> = open(tmp.path());
        let fib = a.namespaced("fib").unwrap();
        assert_eq!(fib.path(), tmp.path().join("fib"));
        assert_eq!(fib.namespace(), "fib");
        fib.insert(1, 10).unwrap();
        a.insert(1, 20).unwrap();
        assert_eq!(fib.get(&1).unwrap(), Some(10));
        assert_eq!(a.get(&1).unwrap(), Some(20));
        assert_eq!(a.len().unwrap(), 1, "a namespace is not an entry");
        assert_eq!(a.iter().unwrap().count(), 1);
        a.clear().unwrap();
        assert_eq!(fib.get(&1).unwrap(), Some(10), "clear keeps namespaces");
        let g = fib.namespaced("g").unwrap();
        assert_eq!(g.path(), tmp.path().join("g"), "namespaces are not nested");
        assert_eq!(g.namespaced("").unwrap().path(), tmp.path());
        for bad in ["a/b", "..", ".", "x\0", "a\\b", ".lock", ".tmp-abcdef"] {
            assert!(
                matches!(a.namespaced(bad), Err(Error::Config { .. })),
                "{bad:?}"
            );
        }
        // The root's own lock file is still its lock file: remove and clear work.
        a.insert(2, 2).unwrap();
        assert_eq!(a.remove(&2).unwrap(), Some(2));
        a.clear().unwrap();
    }

    #[test]
    fn a_damaged_entry_is_an_error_and_the_others_stay_readable() {
        let tmp = tempfile::tempdir().unwrap();
        let a: DirArchive<u64, String> = open(tmp.path());
        a.extend((0..5).map(|i| (i, format!("v{i}"))).collect())
            .unwrap();
        let damaged = file_of(&a, &2);
        let good = stdfs::read(&damaged).unwrap();
        for bytes in [
            &good[..good.len() - 1],
            &good[..5],
            b"garbage".as_slice(),
            &[],
        ] {
            stdfs::write(&damaged, bytes).unwrap();
            assert_corrupt(a.get(&2).unwrap_err(), &damaged);
            assert!(a.contains_key(&2).unwrap(), "present, though damaged");
            assert_corrupt(a.args(&2).unwrap_err(), &damaged);
            assert_eq!(stdfs::read(&damaged).unwrap(), bytes, "left untouched");
            assert_eq!(a.len().unwrap(), 5);
            for items in [
                a.iter().unwrap().map(|r| r.map(|_| ())).collect::<Vec<_>>(),
                { a.keys().unwrap().map(|r| r.map(|_| ())).collect() },
            ] {
                assert_eq!(items.len(), 5);
                let errors: Vec<_> = items.into_iter().filter_map(Result::err).collect();
                assert_eq!(errors.len(), 1);
                assert!(errors[0]
                    .to_string()
                    .contains(&damaged.display().to_string()));
            }
            for i in [0, 1, 3, 4] {
                assert_eq!(a.get(&i).unwrap(), Some(format!("v{i}")));
            }
        }
        // A remove of the key deletes the damage and reports it.
        assert_corrupt(a.remove(&2).unwrap_err(), &damaged);
        assert!(!damaged.exists());
        // A new insert of the key writes a sound entry.
        stdfs::write(&damaged, b"garbage").unwrap();
        a.insert(2, "new".into()).unwrap();
        assert_eq!(a.get(&2).unwrap().as_deref(), Some("new"));
    }

    #[test]
    fn a_wrong_value_type_is_corrupt_but_keys_still_list() {
        let tmp = tempfile::tempdir().unwrap();
        let a: DirArchive<u64, String> = open(tmp.path());
        a.insert(1, "text".into()).unwrap();
        let wrong: DirArchive<u64, u64> = open(tmp.path());
        let err = wrong.get(&1).unwrap_err();
        assert_corrupt(err, &file_of(&a, &1));
        assert!(wrong.get(&1).unwrap_err().to_string().contains("u64"));
        assert_eq!(
            wrong
                .keys()
                .unwrap()
                .map(Result::unwrap)
                .collect::<Vec<_>>(),
            [1]
        );
        assert!(wrong.iter().unwrap().next().unwrap().is_err());
    }

    #[test]
    fn an_entry_holding_another_key_is_corrupt() {
        let tmp = tempfile::tempdir().unwrap();
        let a: DirArchive<u64, u64> = open(tmp.path());
        a.extend(vec![(1, 10), (2, 20)]).unwrap();
        // Swap the two entry files (or a digest collision).
        let (one, two) = (file_of(&a, &1), file_of(&a, &2));
        let (b1, b2) = (stdfs::read(&one).unwrap(), stdfs::read(&two).unwrap());
        stdfs::write(&one, b2).unwrap();
        stdfs::write(&two, b1).unwrap();
        assert_corrupt(a.get(&1).unwrap_err(), &one);
        assert_corrupt(a.get(&2).unwrap_err(), &two);
        assert!(a.get(&2).unwrap_err().to_string().contains("another key"));
        let items: Vec<_> = a.iter().unwrap().collect();
        assert_eq!(items.len(), 2);
        assert!(items.iter().all(Result::is_err), "{items:?}");
    }

    #[test]
    fn temporary_and_lock_files_are_not_entries() {
        let tmp = tempfile::tempdir().unwrap();
        let a: DirArchive<u64, u64> = open(tmp.path());
        a.insert(1, 1).unwrap();
        a.remove(&7).unwrap(); // creates the lock file
        assert!(tmp.path().join(".lock").exists());
        stdfs::write(tmp.path().join(".tmp-crashed"), b"half an entry").unwrap();
        stdfs::write(tmp.path().join("notes.txt"), b"a user's file").unwrap();
        assert_eq!(a.len().unwrap(), 1);
        assert_eq!(
            a.iter().unwrap().map(Result::unwrap).collect::<Vec<_>>(),
            [(1, 1)]
        );
        a.clear().unwrap();
        assert!(
            !tmp.path().join(".tmp-crashed").exists(),
            "clear removes crash leftovers"
        );
        assert!(
            tmp.path().join("notes.txt").exists(),
            "clear keeps foreign files"
        );
    }

    #[test]
    fn a_failed_batch_changes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        // The third value cannot be encoded: nothing of the batch may appear.
        #[derive(Clone, serde::Deserialize)]
        struct Bad(bool);
        impl Serialize for Bad {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if self.0 {
                    Err(serde::ser::Error::custom("refused"))
                } else {
                    s.serialize_bool(false)
                }
            }
        }
        let a: DirArchive<u64, Bad> = open(tmp.path());
        let err = a.extend(vec![(1, Bad(false)), (2, Bad(false)), (3, Bad(true))]);
        assert!(matches!(err, Err(Error::Encode { .. })));
        assert_eq!(a.len().unwrap(), 0);
        assert_eq!(
            stdfs::read_dir(tmp.path()).unwrap().count(),
            0,
            "encoded before anything is written"
        );
    }

    #[test]
    fn writers_with_separate_handles_lose_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::thread::scope(|s| {
            for t in 0..4_u64 {
                s.spawn(move || {
                    let a: DirArchive<u64, u64> = open(dir);
                    for i in 0..50 {
                        a.insert(t * 1000 + i, i).unwrap();
                        if i % 10 == 0 {
                            a.extend(vec![(t * 1000 + 500 + i, i), (t * 1000 + 600 + i, i)])
                                .unwrap();
                        }
                        if i % 10 == 9 {
                            assert_eq!(a.remove(&(t * 1000 + i)).unwrap(), Some(i));
                        }
                    }
                });
            }
        });
        let a: DirArchive<u64, u64> = open(dir);
        let got: BTreeMap<u64, u64> = a.iter().unwrap().map(Result::unwrap).collect();
        let mut want = BTreeMap::new();
        for t in 0..4 {
            for i in 0..50 {
                if i % 10 != 9 {
                    want.insert(t * 1000 + i, i);
                }
                if i % 10 == 0 {
                    want.insert(t * 1000 + 500 + i, i);
                    want.insert(t * 1000 + 600 + i, i);
                }
            }
        }
        assert_eq!(got, want);
        assert_eq!(a.len().unwrap(), want.len());
    }

    #[test]
    fn remove_and_insert_race_without_losing_a_value() {
        // One thread keeps inserting increasing values under one key, the
        // other keeps removing it: every value is either removed (returned
        // by remove) or is the final value, never silently lost.
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let removed = std::thread::scope(|s| {
            s.spawn(move || {
                let a: DirArchive<u8, u64> = open(dir);
                for i in 0..300 {
                    a.insert(0, i).unwrap();
                }
            });
            s.spawn(move || {
                let a: DirArchive<u8, u64> = open(dir);
                let mut removed = Vec::new();
                for _ in 0..300 {
                    removed.extend(a.remove(&0).unwrap());
                }
                removed
            })
            .join()
            .unwrap()
        });
        let a: DirArchive<u8, u64> = open(dir);
        let last = a.get(&0).unwrap();
        assert!(removed.windows(2).all(|w| w[0] < w[1]), "{removed:?}");
        if let (Some(l), Some(r)) = (last, removed.last()) {
            assert!(l > *r);
        }
        assert!(last == Some(299) || removed.last() == Some(&299));
    }

    #[test]
    fn clones_share_the_directory_and_debug_names_it() {
        let tmp = tempfile::tempdir().unwrap();
        let a: DirArchive<u64, u64> = DirArchive::open(tmp.path()).unwrap();
        let b = a.clone().durable(false);
        b.insert(1, 1).unwrap();
        assert_eq!(a.get(&1).unwrap(), Some(1));
        let debug = format!("{a:?}");
        assert!(debug.contains("durable: true"), "{debug}");
        assert!(format!("{b:?}").contains("durable: false"));
    }
}
