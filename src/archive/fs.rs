//! Filesystem helpers shared by the file and directory archives: atomic
//! replacement of a file, directory fsync, advisory lock files, namespace
//! checks. One implementation, so both backends get the same crash safety.

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tempfile::{NamedTempFile, TempPath};

use super::faults::{self, Step};
use crate::{Error, Result};

/// Prefix of every temporary file an archive writes; readers skip these.
pub(crate) const TMP_PREFIX: &str = ".tmp-";

/// A closure turning an `io::Error` into [`Error::Io`] naming `path`.
pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The directory holding `path` (`.` for a bare file name).
pub(crate) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Refuses namespaces that would leave the archive's directory or name
/// nothing, or name its own files: path separators, `..`, NUL, and a
/// leading `.` (`.lock`, `.tmp-*`, `.` itself). `""` is allowed
/// (the archive itself) and handled by the callers.
pub(crate) fn check_namespace(namespace: &str) -> Result<()> {
    // A leading dot would name the archive's own files (`.lock`, `.tmp-*`)
    // or a parent (`..`).
    let bad = namespace.starts_with('.')
        || namespace.contains("..")
        || namespace.contains(['/', '\\', '\0']);
    if bad {
        return Err(Error::config(format!(
            "invalid archive namespace {namespace:?}: no leading `.`, path separators, `..` or NUL"
        )));
    }
    Ok(())
}

/// Makes the directory entry changes in `dir` (renames, unlinks) durable.
/// A no-op where directories cannot be opened (Windows).
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| faults::check(Step::Sync).and_then(|()| d.sync_all()))
            .map_err(io_err(dir))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Writes `bytes` to a new temporary file next to `path` (named
/// `<prefix>…`), fsyncs it when `durable`, and returns it still unnamed:
/// dropping the result deletes it, [`TempPath::persist`] renames it over
/// `path`. Errors name `path`.
pub(crate) fn stage(path: &Path, prefix: &str, bytes: &[u8], durable: bool) -> Result<TempPath> {
    Ok(write_temp(path, prefix, bytes, durable)?.into_temp_path())
}

/// Replaces `path` by a file holding `bytes`, all or nothing: a temporary
/// file in the same directory, written, fsynced (if `durable`), renamed over
/// `path`, then the directory fsynced (if `durable`). Readers see the old
/// file or the new one, never a mix. Returns the new file, open for reading
/// its metadata.
pub(crate) fn write_atomic(path: &Path, prefix: &str, bytes: &[u8], durable: bool) -> Result<File> {
    let tmp = write_temp(path, prefix, bytes, durable)?;
    faults::check(Step::Rename).map_err(io_err(path))?;
    let file = tmp.persist(path).map_err(|e| io_err(path)(e.error))?;
    if durable {
        sync_dir(parent_dir(path))?;
    }
    Ok(file)
}

/// A new temporary file next to `path` that `fill` writes by its path (for
/// libraries that write files themselves, like HDF5), fsynced if
/// `durable`, still unnamed as in [`stage`]. An error from `fill` deletes it.
#[cfg_attr(not(feature = "hdf5"), allow(dead_code))]
pub(crate) fn stage_with(
    path: &Path,
    prefix: &str,
    durable: bool,
    fill: impl FnOnce(&Path) -> Result<()>,
) -> Result<TempPath> {
    let tmp = new_temp(path, prefix)?.into_temp_path();
    fill(&tmp)?;
    if durable {
        File::open(&tmp)
            .and_then(|f| faults::check(Step::Sync).and_then(|()| f.sync_all()))
            .map_err(io_err(path))?;
    }
    Ok(tmp)
}

/// [`write_atomic`] for a file that `fill` writes by its path (see
/// [`stage_with`]).
#[cfg_attr(not(feature = "hdf5"), allow(dead_code))]
pub(crate) fn replace_with(
    path: &Path,
    prefix: &str,
    durable: bool,
    fill: impl FnOnce(&Path) -> Result<()>,
) -> Result<()> {
    let tmp = stage_with(path, prefix, durable, fill)?;
    faults::check(Step::Rename).map_err(io_err(path))?;
    tmp.persist(path).map_err(|e| io_err(path)(e.error))?;
    if durable {
        sync_dir(parent_dir(path))?;
    }
    Ok(())
}

/// A new temporary file next to `path` holding `bytes`, fsynced if `durable`.
fn write_temp(path: &Path, prefix: &str, bytes: &[u8], durable: bool) -> Result<NamedTempFile> {
    let mut tmp = new_temp(path, prefix)?;
    faults::write_all(&mut tmp, bytes).map_err(io_err(path))?;
    if durable {
        faults::check(Step::Sync)
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(io_err(path))?;
    }
    Ok(tmp)
}

/// Random characters after the prefix of a temporary file's name.
const TMP_RANDOM: usize = 6;

fn new_temp(path: &Path, prefix: &str) -> Result<NamedTempFile> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(prefix).rand_bytes(TMP_RANDOM);
    // Archive files are ordinary files (0666 minus the umask), not the
    // owner-only 0600 of a temporary file, so other users can share them.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    builder.tempfile_in(parent_dir(path)).map_err(io_err(path))
}

/// Whether `name` is a temporary file written for `prefix`: the prefix and
/// exactly the random characters, so that another archive whose name
/// starts the same way (`memo.msgpack.tmp-x.msgpack`) is never taken for one.
fn is_temp_of(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix).is_some_and(|rest| {
        rest.len() == TMP_RANDOM && rest.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

/// The temporary files next to `path` written for `prefix` (see [`stage`]).
fn temps(path: &Path, prefix: &str) -> Vec<PathBuf> {
    let Ok(dir) = std::fs::read_dir(parent_dir(path)) else {
        return Vec::new();
    };
    dir.filter_map(|entry| {
        let entry = entry.ok()?;
        let name = entry.file_name();
        is_temp_of(name.to_str()?, prefix).then(|| entry.path())
    })
    .collect()
}

/// Whether temporary files written for `prefix` lie next to `path`.
pub(crate) fn has_stale_temps(path: &Path, prefix: &str) -> bool {
    !temps(path, prefix).is_empty()
}

/// Removes the temporary files written for `prefix` next to `path`. Call
/// only under the exclusive lock that every writer of those files holds
/// while one exists: then each one found was left by a writer that died.
/// Failures are logged, not returned: litter is no reason to fail a write.
pub(crate) fn remove_stale_temps(path: &Path, prefix: &str) {
    for temp in temps(path, prefix) {
        match std::fs::remove_file(&temp) {
            Ok(()) => log::info!(
                "klepto: removed {}, left by a writer that died",
                temp.display()
            ),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => log::warn!("klepto: cannot remove {}: {e}", temp.display()),
        }
    }
}

/// Deletes the files of `dir` that `is_entry` accepts by name, and the
/// temporary files of writes ([`TMP_PREFIX`]), leaving subdirectories
/// (namespaces) alone; fsyncs the directory if `durable`. Call under the
/// exclusive lock, so that no temporary file is a live write's.
pub(crate) fn remove_entries(
    dir: &Path,
    is_entry: impl Fn(&OsStr) -> bool,
    durable: bool,
) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(io_err(dir))?;
    for entry in entries {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        let is_tmp = name.to_str().is_some_and(|n| n.starts_with(TMP_PREFIX));
        if !(is_tmp || is_entry(&name)) || entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let path = entry.path();
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&path)(e)),
        }
    }
    if durable {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Where a directory archive keeps one namespace: the directory given to
/// `open` (the root), this namespace's directory (the root itself, or a
/// subdirectory of it named after the namespace) and its lock file.
/// Shared by [`DirArchive`](super::DirArchive) and `HdfDirArchive`.
#[derive(Clone, Debug)]
pub(crate) struct DirPlace {
    pub(crate) root: Arc<Path>,
    pub(crate) dir: Arc<Path>,
    pub(crate) namespace: Arc<str>,
    pub(crate) lock_path: Arc<Path>,
}

impl DirPlace {
    /// The root namespace of `dir`, created (with its parents) if missing.
    pub(crate) fn open(dir: &Path) -> Result<Self> {
        let root: Arc<Path> = Arc::from(dir);
        Self::at(Arc::clone(&root), Arc::from(""), root)
    }

    /// The namespace `namespace` (see [`check_namespace`]) of the same
    /// root, its directory created if missing; `""` is the root.
    pub(crate) fn namespaced(&self, namespace: &str) -> Result<Self> {
        check_namespace(namespace)?;
        if namespace == &*self.namespace {
            return Ok(self.clone());
        }
        let dir = if namespace.is_empty() {
            Arc::clone(&self.root)
        } else {
            Arc::from(self.root.join(namespace))
        };
        Self::at(Arc::clone(&self.root), Arc::from(namespace), dir)
    }

    fn at(root: Arc<Path>, namespace: Arc<str>, dir: Arc<Path>) -> Result<Self> {
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        Ok(DirPlace {
            lock_path: Arc::from(dir.join(DIR_LOCK_FILE)),
            root,
            dir,
            namespace,
        })
    }
}

/// The lock file of a directory archive, in each namespace's directory.
const DIR_LOCK_FILE: &str = ".lock";

/// An advisory lock held on a lock file until dropped.
///
/// Each lock opens the lock file anew, so two locks taken in one process
/// (two threads, two handles) exclude each other exactly like two locks in
/// two processes do.
#[derive(Debug)]
pub(crate) struct LockGuard {
    file: File,
}

impl LockGuard {
    /// Waits for an exclusive lock on `path` (created if absent).
    pub(crate) fn exclusive(path: &Path) -> Result<Self> {
        let file = open_lock_file(path)?;
        file.lock().map_err(io_err(path))?;
        Ok(LockGuard { file })
    }

    /// Waits for a shared lock on `path` (created if absent).
    pub(crate) fn shared(path: &Path) -> Result<Self> {
        let file = open_lock_file(path)?;
        file.lock_shared().map_err(io_err(path))?;
        Ok(LockGuard { file })
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        // Closing the file releases the lock too; unlocking first makes the
        // release independent of when the descriptor is closed.
        let _ = self.file.unlock();
    }
}

fn open_lock_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io_err(path))
}

/// `path` with `suffix` appended to its file name (`a/memo.json` + `.lock`
/// = `a/memo.json.lock`).
pub(crate) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Test helper: `err` is [`Error::Corrupt`] naming the file at `path`.
#[cfg(test)]
pub(crate) fn assert_corrupt(err: Error, path: &Path) {
    match err {
        Error::Corrupt { location, .. } => assert_eq!(location, path.display().to_string()),
        other => panic!("expected Corrupt for {}, got {other:?}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_that_escape_are_refused() {
        for bad in [
            ".", "..", ".lock", ".tmp-abc", ".hidden", "a/b", "a\\b", "../x", "x..y", "a\0b",
        ] {
            assert!(
                matches!(check_namespace(bad), Err(Error::Config { .. })),
                "{bad:?}"
            );
        }
        for good in ["", "fib", "f.g", "名前", "a-b_c"] {
            assert!(check_namespace(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        write_atomic(&path, TMP_PREFIX, b"one", true).unwrap();
        write_atomic(&path, TMP_PREFIX, b"two", false).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_missing_directory_is_an_io_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("f");
        let err = write_atomic(&path, TMP_PREFIX, b"x", true).unwrap_err();
        match err {
            Error::Io { path: p, .. } => assert_eq!(p, path),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn stale_temps_are_found_by_exact_name_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("memo.msgpack");
        let prefix = ".memo.msgpack.tmp-";
        let ours = new_temp(&path, prefix).unwrap().into_temp_path();
        let ours = ours.keep().unwrap();
        let other = dir.path().join(".memo.msgpack.tmp-x.msgpack.tmp-abcdef");
        std::fs::write(&other, b"another archive's temp").unwrap();
        std::fs::write(&path, b"the archive").unwrap();
        assert!(has_stale_temps(&path, prefix));
        remove_stale_temps(&path, prefix);
        assert!(!ours.exists() && other.exists() && path.exists());
        assert!(!has_stale_temps(&path, prefix));
    }

    #[test]
    fn exclusive_locks_exclude_within_one_process() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.lock");
        let first = LockGuard::exclusive(&path).unwrap();
        let other = open_lock_file(&path).unwrap();
        assert!(other.try_lock().is_err());
        assert!(other.try_lock_shared().is_err());
        drop(first);
        assert!(other.try_lock().is_ok());
    }
}
