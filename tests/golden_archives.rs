//! Archives written by earlier releases stay readable: `tests/golden/<version>/`
//! holds a file archive (MessagePack, with a snapshot and appended records),
//! a JSON file archive, a directory archive, an SQLite database and (with
//! the feature `hdf5`) an HDF5 file, each written by that release's memo.
//! This release must open every one of them (from a copy: the committed
//! files are never touched), read every entry with its value and stored
//! arguments, and serve a memo from it without computing.
//!
//! A release that changes a format adds its own directory:
//! `KLEPTO_WRITE_GOLDEN=1 cargo test --features hdf5 --test golden_archives`
//! writes `tests/golden/<this version>/` if it does not exist yet. Formats
//! are described in `FORMAT.md`.

use std::path::{Path, PathBuf};

use klepto::archive::{Archive, DirArchive, FileArchive, SqlArchive};
use klepto::key::describe_args;
use klepto::keymap::HashKey;
use klepto::{KeyGen, Memo};

/// Calls in every golden archive.
const CALLS: u64 = 12;

/// The memoized function of the golden archives.
fn f((x, y): (u64, f64)) -> Vec<f64> {
    (0..=x % 4).map(|i| y * i as f64 - 0.5).collect()
}

fn args(x: u64) -> (u64, f64) {
    (x, x as f64 / 4.0)
}

fn key(x: u64) -> HashKey {
    KeyGen::new().key(&args(x)).unwrap()
}

/// The calls' arguments as `describe_args` shows them.
fn described(x: u64) -> String {
    let (a, b) = args(x);
    let b = if b.fract() == 0.0 {
        format!("{b:.1}")
    } else {
        b.to_string()
    };
    format!("({a}, {b})")
}

fn golden_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Writes this release's golden archives into `dir` through memos.
fn write_golden(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    fn fill<A: Archive<HashKey, Vec<f64>>>(archive: A) {
        let memo = Memo::builder()
            .lru(4)
            .write_through()
            .archive(archive)
            .build(f);
        for x in 0..CALLS {
            memo.call(args(x));
        }
    }
    // A snapshot of the first half, then one appended record per write.
    let file: FileArchive<HashKey, Vec<f64>> = FileArchive::open(dir.join("file.msgpack")).unwrap();
    let memo = Memo::builder().inf().archive(file).build(f);
    for x in 0..CALLS / 2 {
        memo.call(args(x));
    }
    memo.dump().unwrap();
    drop(memo);
    let file: FileArchive<HashKey, Vec<f64>> = FileArchive::open(dir.join("file.msgpack")).unwrap();
    fill(file);
    fill(FileArchive::open(dir.join("file.json")).unwrap());
    fill(DirArchive::open(dir.join("dir")).unwrap());
    fill(SqlArchive::open(dir.join("sqlite.db").to_str().unwrap()).unwrap());
    #[cfg(feature = "hdf5")]
    fill(klepto::archive::HdfArchive::open(dir.join("hdf5.h5")).unwrap());
    // Lock files are not part of an archive's contents.
    for lock in [
        "file.msgpack.lock",
        "file.json.lock",
        "dir/.lock",
        "hdf5.h5.lock",
    ] {
        let _ = std::fs::remove_file(dir.join(lock));
    }
}

/// Checks one archive: every entry, its arguments, and a memo loading all
/// of them without a miss.
fn check<A: Archive<HashKey, Vec<f64>> + Clone>(what: &str, archive: A) {
    assert_eq!(archive.len().unwrap(), CALLS as usize, "{what}: entries");
    for x in 0..CALLS {
        assert_eq!(
            archive.get(&key(x)).unwrap(),
            Some(f(args(x))),
            "{what}: value of {x}"
        );
        let stored = archive.args(&key(x)).unwrap();
        let stored = stored.unwrap_or_else(|| panic!("{what}: no arguments kept for {x}"));
        assert_eq!(
            describe_args(&stored).unwrap(),
            described(x),
            "{what}: arguments of {x}"
        );
    }
    let memo = Memo::builder()
        .inf()
        .archive(archive)
        .build(|_: (u64, f64)| -> Vec<f64> { panic!("a golden result was recomputed") });
    for x in 0..CALLS {
        assert_eq!(memo.call(args(x)), f(args(x)), "{what}: memo of {x}");
    }
    let info = memo.info();
    assert_eq!(
        (info.loads, info.misses, info.errors),
        (CALLS, 0, 0),
        "{what}"
    );
}

/// Copies the directory `from` to `to`, recursively.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn archives_written_by_every_release_are_read_by_this_one() {
    let root = golden_root();
    let this = root.join(env!("CARGO_PKG_VERSION"));
    if std::env::var("KLEPTO_WRITE_GOLDEN").is_ok_and(|v| v == "1") && !this.exists() {
        write_golden(&this);
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("tests/golden holds the golden archives")
        .map(|e| e.unwrap().path())
        .collect();
    versions.sort();
    assert!(
        !versions.is_empty(),
        "no golden archives under {}",
        root.display()
    );
    for version in versions {
        let name = version.file_name().unwrap().to_string_lossy().into_owned();
        let tmp = tempfile::tempdir().unwrap();
        copy_dir(&version, tmp.path());
        let dir = tmp.path();
        check(
            &format!("{name} file"),
            FileArchive::open(dir.join("file.msgpack")).unwrap(),
        );
        check(
            &format!("{name} json"),
            FileArchive::open(dir.join("file.json")).unwrap(),
        );
        check(
            &format!("{name} dir"),
            DirArchive::open(dir.join("dir")).unwrap(),
        );
        let db = dir.join("sqlite.db");
        check(
            &format!("{name} sqlite"),
            SqlArchive::open(db.to_str().unwrap()).unwrap(),
        );
        #[cfg(feature = "hdf5")]
        if dir.join("hdf5.h5").exists() {
            let h5 = klepto::archive::HdfArchive::open(dir.join("hdf5.h5")).unwrap();
            check(&format!("{name} hdf5"), h5);
        }
        println!("golden archives of {name}: every entry read");
    }
}
