//! Persistence across processes, with real child processes (this test binary,
//! re-executed with a role in its environment): restart, many writers at
//! once, SIGKILL in the middle of writes, and bad data on disk.
//!
//! Each archive type (one file, a directory, an SQLite table, and with the
//! feature `hdf5` one HDF5 file and a directory of them) runs every
//! scenario.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use klepto::archive::{Archive, DirArchive, FileArchive, SqlArchive};
use klepto::key::describe_args;
use klepto::keymap::HashKey;
use klepto::{CacheInfo, Error, KeyGen, Memo};
use rand::{RngExt, SeedableRng};

/// The child's role; unset in the parent.
const ROLE: &str = "KLEPTO_PERSIST_ROLE";
/// The archive type the child uses.
const KIND: &str = "KLEPTO_PERSIST_KIND";
/// The archive's path.
const PATH: &str = "KLEPTO_PERSIST_PATH";
/// The writer's number (many-writers role).
const WRITER: &str = "KLEPTO_PERSIST_WRITER";
/// The child test's name, run with `--exact`.
const CHILD_TEST: &str = "child";

const CALLS: u64 = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
    Sql,
    #[cfg(feature = "hdf5")]
    Hdf,
    #[cfg(feature = "hdf5")]
    HdfDir,
}

/// Every archive kind of this build.
fn kinds() -> Vec<Kind> {
    let kinds = vec![Kind::File, Kind::Dir, Kind::Sql];
    #[cfg(feature = "hdf5")]
    let kinds = [kinds, vec![Kind::Hdf, Kind::HdfDir]].concat();
    kinds
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Dir => "dir",
            Kind::Sql => "sql",
            #[cfg(feature = "hdf5")]
            Kind::Hdf => "hdf",
            #[cfg(feature = "hdf5")]
            Kind::HdfDir => "hdfdir",
        }
    }

    fn parse(s: &str) -> Kind {
        kinds()
            .into_iter()
            .find(|k| k.name() == s)
            .unwrap_or_else(|| panic!("unknown archive kind {s:?}"))
    }

    /// Where this kind's archive lives inside `dir`.
    fn path(self, dir: &Path) -> PathBuf {
        match self {
            Kind::File => dir.join("memo.msgpack"),
            Kind::Dir => dir.join("memo.d"),
            Kind::Sql => dir.join("memo.db"),
            #[cfg(feature = "hdf5")]
            Kind::Hdf => dir.join("memo.h5"),
            #[cfg(feature = "hdf5")]
            Kind::HdfDir => dir.join("memo.h5d"),
        }
    }
}

/// Runs `$body` with `$a` bound to the archive of `$kind` at `$path`.
macro_rules! with_archive {
    ($kind:expr, $path:expr, |$a:ident| $body:expr) => {
        match $kind {
            Kind::File => {
                let $a: FileArchive<HashKey, u64> = FileArchive::open($path).unwrap();
                $body
            }
            Kind::Dir => {
                let $a: DirArchive<HashKey, u64> = DirArchive::open($path).unwrap();
                $body
            }
            Kind::Sql => {
                let $a: SqlArchive<HashKey, u64> =
                    SqlArchive::open($path.to_str().unwrap()).unwrap();
                $body
            }
            #[cfg(feature = "hdf5")]
            Kind::Hdf => {
                let $a: klepto::archive::HdfArchive<HashKey, u64> =
                    klepto::archive::HdfArchive::open($path).unwrap();
                $body
            }
            #[cfg(feature = "hdf5")]
            Kind::HdfDir => {
                let $a: klepto::archive::HdfDirArchive<HashKey, u64> =
                    klepto::archive::HdfDirArchive::open($path).unwrap();
                $body
            }
        }
    };
}

/// The memoized function: cheap, and different for every argument.
fn f(x: u64) -> u64 {
    x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 7
}

fn key(x: u64) -> HashKey {
    KeyGen::new().key(&x).unwrap()
}

/// Starts this test binary as a child with `role`.
fn spawn(role: &str, kind: Kind, path: &Path, extra: &[(&str, String)]) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([CHILD_TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env(KIND, kind.name())
        .env(PATH, path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn the child test process")
}

/// Waits for a child and returns its stdout lines that start with `OUT `.
fn output(child: Child) -> Vec<String> {
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "child failed: {:?}", out.status);
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| out_line(l).map(str::to_owned))
        .collect()
}

/// What a child printed after `OUT ` on a line (the test harness may print
/// its `test child ... ` prefix on the same line).
fn out_line(line: &str) -> Option<&str> {
    line.find("OUT ").map(|i| &line[i + 4..])
}

/// The child side: does nothing in a normal test run.
#[test]
fn child() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let kind = Kind::parse(&std::env::var(KIND).unwrap());
    let path = PathBuf::from(std::env::var(PATH).unwrap());
    match role.as_str() {
        "first-run" => with_archive!(kind, &path, |a| first_run(a)),
        "second-run" => with_archive!(kind, &path, |a| second_run(a)),
        "writer" => {
            let id: u64 = std::env::var(WRITER).unwrap().parse().unwrap();
            with_archive!(kind, &path, |a| writer(a, id))
        }
        "crasher" => with_archive!(kind, &path, |a| crasher(a)),
        other => panic!("unknown role {other}"),
    }
}

fn print_info(info: CacheInfo) {
    println!(
        "OUT info hits={} misses={} loads={} errors={}",
        info.hits, info.misses, info.loads, info.errors
    );
}

/// Memoizes `CALLS` calls; results reach the archive by eviction and, for
/// the rest, when the memo is dropped.
fn first_run<A: Archive<HashKey, u64>>(archive: A) {
    let memo = Memo::builder().lru(100).name("f").archive(archive).build(f);
    for x in 0..CALLS {
        assert_eq!(memo.call(x), f(x));
    }
    print_info(memo.info());
}

/// The same calls in a new process: all must come from the archive. The
/// function here returns a wrong value, so a recomputation would show.
fn second_run<A: Archive<HashKey, u64>>(archive: A) {
    let memo = Memo::builder()
        .lru(100)
        .name("f")
        .archive(archive)
        .build(|_: u64| u64::MAX);
    let mut same = 0;
    for x in 0..CALLS {
        if memo.call(x) == f(x) {
            same += 1;
        }
    }
    print_info(memo.info());
    println!("OUT same={same}");
}

/// Writes `CALLS` distinct keys (its own range), one write per call.
fn writer<A: Archive<HashKey, u64>>(archive: A, id: u64) {
    let memo = Memo::builder()
        .lru(16)
        .write_through()
        .archive(archive)
        .build(f);
    for x in id * CALLS..(id + 1) * CALLS {
        memo.try_call(x).unwrap();
    }
    assert_eq!(memo.info().errors, 0);
}

/// Writes keys in a loop, reporting each completed write, until killed.
fn crasher<A: Archive<HashKey, u64>>(archive: A) {
    let start: u64 = std::env::var(WRITER).unwrap().parse().unwrap();
    for x in start.. {
        archive.insert(key(x), f(x)).unwrap();
        println!("OUT done {x}");
    }
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn restart_loads_every_result_from_the_archive() {
    for kind in kinds() {
        let dir = tempdir();
        let path = kind.path(dir.path());
        let first = output(spawn("first-run", kind, &path, &[]));
        assert_eq!(
            first,
            [format!("info hits=0 misses={CALLS} loads=0 errors=0")],
            "{kind:?}"
        );
        // Hashed keys keep the call's arguments next to the result.
        with_archive!(kind, &path, |a| {
            let a = a.namespaced("f").unwrap();
            let args = a.args(&key(5)).unwrap().expect("arguments stored");
            assert_eq!(describe_args(&args).unwrap(), "(5,)", "{kind:?}");
        });
        let second = output(spawn("second-run", kind, &path, &[]));
        assert_eq!(
            second,
            [
                format!("info hits=0 misses=0 loads={CALLS} errors=0"),
                format!("same={CALLS}")
            ],
            "{kind:?}"
        );
    }
}

#[test]
fn four_writers_at_once_lose_nothing() {
    for kind in kinds() {
        let dir = tempdir();
        let path = kind.path(dir.path());
        let writers: Vec<Child> = (0..4)
            .map(|id| spawn("writer", kind, &path, &[(WRITER, id.to_string())]))
            .collect();
        for w in writers {
            output(w);
        }
        with_archive!(kind, &path, |a| {
            assert_eq!(a.len().unwrap(), 4 * CALLS as usize, "{kind:?}");
            for x in 0..4 * CALLS {
                assert_eq!(a.get(&key(x)).unwrap(), Some(f(x)), "{kind:?} key {x}");
            }
        });
    }
}

#[test]
fn sigkill_during_writes_loses_no_reported_write_and_damages_nothing() {
    let seed = rand::rng().random::<u64>();
    println!("kill timing seed {seed}");
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    for kind in kinds() {
        let dir = tempdir();
        let path = kind.path(dir.path());
        let mut reported = Vec::new();
        let mut next = 0_u64;
        for round in 0..20 {
            let mut child = spawn("crasher", kind, &path, &[(WRITER, next.to_string())]);
            let stdout = child.stdout.take().unwrap();
            let reader = std::thread::spawn(move || {
                BufReader::new(stdout)
                    .lines()
                    .map_while(Result::ok)
                    .filter_map(|l| out_line(&l)?.strip_prefix("done ")?.parse::<u64>().ok())
                    .collect::<Vec<u64>>()
            });
            std::thread::sleep(Duration::from_millis(rng.random_range(20..120)));
            child.kill().unwrap(); // SIGKILL on Unix
            child.wait().unwrap();
            let done = reader.join().unwrap();
            next = done.last().map_or(next, |x| x + 1) + 1;
            reported.extend(done);
            let written: HashMap<HashKey, u64> = (0..next).map(|x| (key(x), x)).collect();
            with_archive!(kind, &path, |a| {
                for item in a.iter().unwrap() {
                    let (k, v) = item.unwrap_or_else(|e| {
                        panic!("{kind:?} round {round}: damaged entry after SIGKILL: {e}")
                    });
                    let x = written[&k];
                    assert_eq!(v, f(x), "{kind:?} round {round}: wrong value for {x}");
                }
                for &x in &reported {
                    assert_eq!(
                        a.get(&key(x)).unwrap(),
                        Some(f(x)),
                        "{kind:?} round {round}: reported write {x} lost"
                    );
                }
            });
        }
        assert!(
            !reported.is_empty(),
            "{kind:?}: no write completed in 20 rounds"
        );
        println!(
            "{kind:?}: 20 kills, {} reported writes all present, every entry decodes",
            reported.len()
        );
    }
}

#[test]
fn a_corrupt_file_archive_is_an_error_naming_the_path_and_is_left_untouched() {
    let dir = tempdir();
    for (name, bytes) in [
        ("garbage.msgpack", b"this is not an archive".to_vec()),
        ("garbage.json", b"{\"format\": ".to_vec()),
        ("empty-but-present.msgpack", Vec::new()),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        match FileArchive::<HashKey, u64>::open(&path) {
            Err(Error::Corrupt { location, .. }) => {
                assert!(location.contains(name), "{location}")
            }
            other => panic!("{name}: expected Error::Corrupt, got {other:?}"),
        }
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "{name} was modified");
    }

    // A real archive, truncated at several points.
    let path = dir.path().join("real.msgpack");
    let a: FileArchive<HashKey, u64> = FileArchive::open(&path).unwrap();
    a.extend((0..50).map(|x| (key(x), f(x))).collect()).unwrap();
    let whole = std::fs::read(&path).unwrap();
    for cut in [1, whole.len() / 3, whole.len() - 1] {
        std::fs::write(&path, &whole[..cut]).unwrap();
        let err = FileArchive::<HashKey, u64>::open(&path).unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "cut {cut}: {err}");
        assert!(err.to_string().contains("real.msgpack"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), &whole[..cut]);
    }
}

#[test]
fn a_damaged_entry_is_counted_recomputed_and_rewritten() {
    for kind in kinds().into_iter().filter(|&k| k != Kind::File) {
        let dir = tempdir();
        let path = kind.path(dir.path());
        with_archive!(kind, &path, |a| {
            a.extend((0..10).map(|x| (key(x), f(x))).collect()).unwrap();
        });
        damage_entry(kind, &path, &key(3));
        with_archive!(kind, &path, |a| {
            let got = a.get(&key(3));
            assert!(
                matches!(got, Err(Error::Corrupt { .. })),
                "{kind:?}: {got:?}"
            );
            let memo = Memo::builder().inf().archive(a).build(f);
            for x in 0..10 {
                assert_eq!(memo.call(x), f(x));
            }
            let info = memo.info();
            assert_eq!(
                (info.loads, info.misses, info.errors),
                (9, 1, 1),
                "{kind:?}"
            );
            assert_eq!(memo.archive().get(&key(3)).unwrap(), Some(f(3)), "{kind:?}");
        });
    }
}

/// The name of `key`'s entry: the first 16 bytes of blake3 of its
/// MessagePack, in hex.
#[cfg(feature = "hdf5")]
fn digest(key: &HashKey) -> String {
    blake3::hash(&rmp_serde::to_vec(key).unwrap()).to_hex()[..32].to_owned()
}

/// Flips bytes in the stored entry of `key`.
fn damage_entry(kind: Kind, path: &Path, key: &HashKey) {
    match kind {
        Kind::Dir => {
            let entries: Vec<PathBuf> = std::fs::read_dir(path)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "kle"))
                .collect();
            // Find the entry of `key`: the one whose damage makes it unreadable.
            let a: DirArchive<HashKey, u64> = DirArchive::open(path).unwrap();
            for entry in entries {
                let original = std::fs::read(&entry).unwrap();
                let mut bytes = original.clone();
                let last = bytes.len() - 1;
                bytes[last] ^= 0xff;
                std::fs::write(&entry, &bytes).unwrap();
                if a.get(key).is_err() {
                    return;
                }
                std::fs::write(&entry, &original).unwrap();
            }
            panic!("no entry file for {key}");
        }
        Kind::Sql => {
            let db = rusqlite::Connection::open(path).unwrap();
            let key_bytes = rmp_serde::to_vec(key).unwrap();
            let n = db
                .execute(
                    "UPDATE memo SET value = value || x'00' WHERE key = ?1",
                    [key_bytes],
                )
                .unwrap();
            assert_eq!(n, 1, "no row for {key}");
        }
        // Overwrite the dataset's number behind the archive's back: the
        // entry's checksum no longer matches.
        #[cfg(feature = "hdf5")]
        Kind::Hdf => {
            let name = digest(key);
            let file = hdf5::File::open_rw(path).unwrap();
            let dataset = file.dataset(&name).unwrap();
            let value: u64 = dataset.read_scalar().unwrap();
            dataset.write_scalar(&(value ^ 1)).unwrap();
        }
        // Cut the entry's file in half: HDF5 cannot open it.
        #[cfg(feature = "hdf5")]
        Kind::HdfDir => {
            let name = digest(key);
            let entry = path.join(format!("{name}.h5"));
            let bytes = std::fs::read(&entry).unwrap();
            std::fs::write(&entry, &bytes[..bytes.len() / 2]).unwrap();
        }
        Kind::File => unreachable!("one file has no single entry"),
    }
}

#[test]
fn reading_an_archive_written_for_another_value_type_is_a_clear_error() {
    for kind in kinds() {
        let dir = tempdir();
        let path = kind.path(dir.path());
        with_archive!(kind, &path, |a| {
            a.insert(key(1), 7).unwrap();
        });
        let err = match kind {
            Kind::File => FileArchive::<HashKey, String>::open(&path)
                .and_then(|a| a.get(&key(1)))
                .unwrap_err(),
            Kind::Dir => DirArchive::<HashKey, String>::open(&path)
                .and_then(|a| a.get(&key(1)))
                .unwrap_err(),
            Kind::Sql => SqlArchive::<HashKey, String>::open(path.to_str().unwrap())
                .and_then(|a| a.get(&key(1)))
                .unwrap_err(),
            #[cfg(feature = "hdf5")]
            Kind::Hdf => klepto::archive::HdfArchive::<HashKey, String>::open(&path)
                .and_then(|a| a.get(&key(1)))
                .unwrap_err(),
            #[cfg(feature = "hdf5")]
            Kind::HdfDir => klepto::archive::HdfDirArchive::<HashKey, String>::open(&path)
                .and_then(|a| a.get(&key(1)))
                .unwrap_err(),
        };
        assert!(matches!(err, Error::Corrupt { .. }), "{kind:?}: {err}");
        assert!(err.to_string().contains("String"), "{kind:?}: {err}");

        // A memo of the other type: `try_call` returns the error and leaves
        // the entry alone; `call` recomputes (and replaces it).
        let err = other_type_try_call(kind, &path);
        assert!(matches!(err, Error::Corrupt { .. }), "{kind:?}: {err}");
        with_archive!(kind, &path, |a| {
            assert_eq!(
                a.get(&key(1)).unwrap(),
                Some(7),
                "{kind:?}: entry left alone"
            );
        });
    }
}

/// `try_call(1)` of a `u64 -> String` memo over the archive of `kind` at
/// `path`, whose entry for 1 holds a `u64`: the error it returns.
fn other_type_try_call(kind: Kind, path: &Path) -> Error {
    fn try_one<A: Archive<HashKey, String>>(a: A) -> Error {
        let memo = Memo::builder()
            .inf()
            .archive(a)
            .build(|x: u64| x.to_string());
        let err = memo.try_call(1).unwrap_err();
        assert_eq!(memo.info().errors, 1);
        err
    }
    match kind {
        // The whole file is decoded at open: the memo is never built.
        Kind::File => FileArchive::<HashKey, String>::open(path).unwrap_err(),
        Kind::Dir => try_one(DirArchive::open(path).unwrap()),
        Kind::Sql => try_one(SqlArchive::open(path.to_str().unwrap()).unwrap()),
        #[cfg(feature = "hdf5")]
        Kind::Hdf => try_one(klepto::archive::HdfArchive::open(path).unwrap()),
        #[cfg(feature = "hdf5")]
        Kind::HdfDir => try_one(klepto::archive::HdfDirArchive::open(path).unwrap()),
    }
}
