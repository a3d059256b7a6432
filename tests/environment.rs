//! The machine gets in the way: a full disk, a read-only filesystem, a path
//! that is a directory, a lock file that cannot be opened, and a clock set
//! back. Each is a clear `Error` naming the path, never a panic, and
//! nothing acknowledged is lost.
//!
//! The full-disk and read-only tests mount a small tmpfs, which needs root
//! (CI runs as root). Without it they print one line and skip, except under
//! `CI=true`, where they fail.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use klepto::archive::{Archive, DirArchive, FileArchive, SqlArchive};
use klepto::keymap::RawKeymap;
use klepto::{Error, Memo};

/// A tmpfs mounted on a temporary directory, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// A tmpfs of `kib` KiB, or `None` (after saying why) without root.
    fn mount(kib: u32) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(dir.path())
            .output();
        match status {
            Ok(out) if out.status.success() => Some(Tmpfs { dir }),
            other => {
                let why = match other {
                    Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_owned(),
                    Err(e) => e.to_string(),
                };
                if common::in_ci() {
                    panic!("cannot mount a tmpfs but CI=true (CI runs as root): {why}");
                }
                common::skip(&format!("cannot mount a tmpfs (needs root): {why}"));
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Remounts the filesystem read-only.
    fn read_only(&self) {
        let out = Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(self.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "remount ro: {out:?}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

fn f(x: u64) -> Vec<u8> {
    vec![(x % 251) as u8; 2_000]
}

/// The error's message names `path` (or a file inside it).
fn names(err: &Error, path: &Path) -> bool {
    err.to_string().contains(&path.display().to_string())
}

/// Writes entries until the disk is full; returns the acknowledged keys.
fn fill_until_full<A: Archive<u64, Vec<u8>>>(a: &A, what: &str, path: &Path) -> Vec<u64> {
    let mut done = Vec::new();
    for x in 0..100_000 {
        match a.insert(x, f(x)) {
            Ok(()) => done.push(x),
            Err(e) => {
                assert!(
                    matches!(e, Error::Io { .. } | Error::Archive { .. }),
                    "{what}: a full disk is an I/O or archive error: {e}"
                );
                assert!(
                    names(&e, path),
                    "{what}: the error names {}: {e}",
                    path.display()
                );
                // A second write fails the same way, no panic.
                assert!(a.insert(x, f(x)).is_err(), "{what}: still full");
                return done;
            }
        }
    }
    panic!("{what}: the disk never filled");
}

/// Every acknowledged key reads back, from a fresh handle.
fn all_there<A: Archive<u64, Vec<u8>>>(a: &A, what: &str, done: &[u64]) {
    for &x in done {
        assert_eq!(
            a.get(&x).unwrap(),
            Some(f(x)),
            "{what}: acknowledged {x} lost"
        );
    }
}

#[test]
fn a_full_disk_is_an_error_naming_the_path_and_loses_nothing_acknowledged() {
    let Some(fs) = Tmpfs::mount(512) else {
        return;
    };
    let file = fs.path().join("full.msgpack");
    let a: FileArchive<u64, Vec<u8>> = FileArchive::open(&file).unwrap();
    let done = fill_until_full(&a, "file", &file);
    drop(a);
    all_there(&FileArchive::open(&file).unwrap(), "file", &done);
    std::fs::remove_file(&file).unwrap();

    let dir = fs.path().join("full.d");
    let a: DirArchive<u64, Vec<u8>> = DirArchive::open(&dir).unwrap();
    let done = fill_until_full(&a, "dir", &dir);
    all_there(&DirArchive::open(&dir).unwrap(), "dir", &done);
    assert_eq!(
        DirArchive::<u64, Vec<u8>>::open(&dir)
            .unwrap()
            .len()
            .unwrap(),
        done.len()
    );
    std::fs::remove_dir_all(&dir).unwrap();

    let db = fs.path().join("full.db");
    let a: SqlArchive<u64, Vec<u8>> = SqlArchive::open(db.to_str().unwrap()).unwrap();
    let done = fill_until_full(&a, "sqlite", &db);
    drop(a);
    all_there(
        &SqlArchive::open(db.to_str().unwrap()).unwrap(),
        "sqlite",
        &done,
    );

    // A memo on a full disk still answers, counting the failed writes.
    let a: SqlArchive<u64, Vec<u8>> = SqlArchive::open(db.to_str().unwrap()).unwrap();
    let memo = Memo::builder()
        .lru(2)
        .keymap(RawKeymap::new())
        .write_through()
        .archive(a)
        .build(f);
    for x in 1_000_000..1_000_010 {
        assert_eq!(memo.call(x), f(x));
    }
    assert!(memo.info().errors > 0, "the failed writes are counted");
    assert!(
        memo.try_call(2_000_000).is_err(),
        "try_call reports the full disk"
    );
}

#[test]
fn a_read_only_filesystem_serves_reads_and_refuses_writes_clearly() {
    let Some(fs) = Tmpfs::mount(4096) else {
        return;
    };
    let file = fs.path().join("ro.msgpack");
    let dir = fs.path().join("ro.d");
    let db = fs.path().join("ro.db");
    let items: Vec<(u64, Vec<u8>)> = (0..10).map(|x| (x, f(x))).collect();
    FileArchive::open(&file)
        .unwrap()
        .extend(items.clone())
        .unwrap();
    DirArchive::open(&dir)
        .unwrap()
        .extend(items.clone())
        .unwrap();
    SqlArchive::open(db.to_str().unwrap())
        .unwrap()
        .extend(items.clone())
        .unwrap();
    fs.read_only();

    fn check<A: Archive<u64, Vec<u8>>>(a: A, what: &str, path: &Path) {
        for x in 0..10 {
            assert_eq!(a.get(&x).unwrap(), Some(f(x)), "{what}: read {x}");
        }
        let err = a.insert(99, f(99)).unwrap_err();
        assert!(
            names(&err, path),
            "{what}: the error names {}: {err}",
            path.display()
        );
        // A memo over it loads what is there and counts failed writes.
        let memo = Memo::builder()
            .inf()
            .keymap(RawKeymap::new())
            .write_through()
            .archive(a)
            .build(f);
        assert_eq!(memo.call(3), f(3));
        assert_eq!(memo.call(50), f(50));
        let info = memo.info();
        assert_eq!((info.loads, info.misses), (1, 1), "{what}");
        assert!(info.errors >= 1, "{what}: the failed write is counted");
    }
    check(FileArchive::open(&file).unwrap(), "file", &file);
    check(DirArchive::open(&dir).unwrap(), "dir", &dir);
    let sql = SqlArchive::open(db.to_str().unwrap())
        .unwrap_or_else(|e| panic!("sqlite on a read-only filesystem: {e}"));
    check(sql, "sqlite", &db);
}

#[test]
fn a_path_that_is_a_directory_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("a-directory");
    std::fs::create_dir(&path).unwrap();
    let err = FileArchive::<u64, u64>::open(&path).unwrap_err();
    assert!(names(&err, &path), "file: {err}");
    let err = SqlArchive::<u64, u64>::open(path.to_str().unwrap()).unwrap_err();
    assert!(names(&err, &path), "sqlite: {err}");
    // A directory archive whose path is a file.
    let file = tmp.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let err = DirArchive::<u64, u64>::open(&file).unwrap_err();
    assert!(names(&err, &file), "dir: {err}");
}

#[test]
fn a_lock_file_that_cannot_be_opened_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    // A directory where the lock file should be: it cannot be opened for
    // locking, whoever runs the test.
    let file = tmp.path().join("memo.msgpack");
    let lock: PathBuf = tmp.path().join("memo.msgpack.lock");
    std::fs::create_dir(&lock).unwrap();
    let result = FileArchive::<u64, u64>::open(&file).and_then(|a| a.insert(1, 1));
    let err = result.unwrap_err();
    assert!(names(&err, &lock), "file: {err}");

    let dir = tmp.path().join("memo.d");
    std::fs::create_dir_all(dir.join(".lock")).unwrap();
    let a: DirArchive<u64, u64> = DirArchive::open(&dir).unwrap();
    let err = a.insert(1, 1).unwrap_err();
    assert!(names(&err, &dir.join(".lock")), "dir: {err}");
    assert_eq!(a.get(&1).unwrap(), None, "nothing half written");
}

#[test]
fn a_clock_set_back_does_not_serve_stale_data() {
    let tmp = tempfile::tempdir().unwrap();
    for name in ["memo.msgpack", "memo.json"] {
        let path = tmp.path().join(name);
        let a: FileArchive<u64, u64> = FileArchive::open(&path).unwrap();
        let b: FileArchive<u64, u64> = FileArchive::open(&path).unwrap();
        a.insert(1, 10).unwrap();
        assert_eq!(b.get(&1).unwrap(), Some(10));
        let before = std::fs::metadata(&path).unwrap().modified().unwrap();
        // Another write, then the file's time set back to before it (a
        // clock stepped back by NTP, or a copy that kept old times).
        a.insert(1, 11).unwrap();
        let back = before - std::time::Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(back)
            .unwrap();
        assert_eq!(b.get(&1).unwrap(), Some(11), "{name}: stale value served");
        // Even with the exact time of the version b read.
        a.insert(1, 12).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(before)
            .unwrap();
        assert_eq!(b.get(&1).unwrap(), Some(12), "{name}: stale value served");
    }
}
