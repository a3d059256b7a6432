//! Every decoder of outside bytes, fed structured mutations of valid inputs
//! (bit flips, truncations, splices, byte runs, huge length prefixes) by
//! proptest on the stable toolchain: the envelope, a file archive's file
//! (snapshot and appended records), a directory entry, an SQLite row,
//! and `describe_args`. (The archive URL parser, which is internal, has
//! its mutation test next to it in `src/archive/sql/target.rs`.)
//!
//! The property for each: no panic, no allocation beyond [`ALLOC_LIMIT`]
//! (a length prefix claiming gigabytes must not be believed), and either
//! the exact original value or `Error::Corrupt`.
//!
//! Seeds: the valid inputs built here, and the files under
//! `tests/corpus/<decoder>/` (written by `KLEPTO_WRITE_CORPUS=1 cargo test
//! --test fuzz_decoders`, committed). `PROPTEST_CASES` sets the cases per
//! decoder (default 256).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::{Path, PathBuf};

use klepto::archive::envelope::{from_msgpack, to_msgpack, Envelope};
use klepto::archive::{Archive, DirArchive, FileArchive, SqlArchive};
use klepto::key::encode::encode_args;
use klepto::key::{describe_args, KeyConfig};
use klepto::keymap::HashKey;
use klepto::{Error, KeyGen};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

// ------------------------------------------------------------ allocations --

/// The largest single allocation a decoder may make for these inputs (all
/// under 64 KiB): a believed 4 GiB length prefix would go far beyond.
const ALLOC_LIMIT: usize = 64 << 20;

thread_local! {
    /// The largest allocation this thread made since [`Largest::reset`]
    /// (per thread: the tests run in parallel).
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

struct Largest;

impl Largest {
    fn reset() {
        LARGEST.with(|l| l.set(0));
    }
    fn get() -> usize {
        LARGEST.with(Cell::get)
    }
    fn record(size: usize) {
        // `try_with`: allocations during thread teardown are not recorded.
        let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
    }
}

/// The system allocator, recording the largest request. Requests over
/// twice the limit fail (`null`), so a believed huge length aborts the
/// test with an allocation error instead of exhausting the machine.
struct Recording;

// SAFETY: every call is forwarded unchanged to `System`, which upholds the
// `GlobalAlloc` contract; the wrapper only records sizes (and refuses huge
// requests by returning null, which the contract allows).
unsafe impl GlobalAlloc for Recording {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Largest::record(layout.size());
        if layout.size() > 2 * ALLOC_LIMIT {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Largest::record(new_size);
        if new_size > 2 * ALLOC_LIMIT {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Recording = Recording;

// -------------------------------------------------------------- mutations --

/// One structured change to a valid input.
#[derive(Debug, Clone)]
enum Mutation {
    /// Flip bit `bit` of byte `at` (positions modulo the input's length).
    Flip { at: usize, bit: u8 },
    /// Keep only the first `len` bytes.
    Truncate { len: usize },
    /// Insert `bytes` at `at`.
    Insert { at: usize, bytes: Vec<u8> },
    /// Copy `len` bytes from `from` over `to` (a splice of the input with itself).
    Splice { from: usize, to: usize, len: usize },
    /// Write a huge little- or big-endian length over four bytes at `at`.
    HugeLength {
        at: usize,
        value: u32,
        big_endian: bool,
    },
    /// Overwrite `len` bytes at `at` with `byte`.
    Fill { at: usize, len: usize, byte: u8 },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let huge = prop_oneof![
        Just(u32::MAX),
        Just(u32::MAX - 1),
        Just(0x7fff_ffff),
        Just(0x8000_0000),
        Just(0x0100_0000),
        any::<u32>()
    ];
    prop_oneof![
        3 => (any::<usize>(), 0..8u8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        2 => any::<usize>().prop_map(|len| Mutation::Truncate { len }),
        1 => (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        1 => (any::<usize>(), any::<usize>(), 1..64usize)
            .prop_map(|(from, to, len)| Mutation::Splice { from, to, len }),
        2 => (any::<usize>(), huge, any::<bool>())
            .prop_map(|(at, value, big_endian)| Mutation::HugeLength { at, value, big_endian }),
        1 => (any::<usize>(), 1..32usize, prop_oneof![Just(0u8), Just(0xff), any::<u8>()])
            .prop_map(|(at, len, byte)| Mutation::Fill { at, len, byte }),
    ]
}

impl Mutation {
    fn apply(&self, input: &[u8]) -> Vec<u8> {
        let mut out = input.to_vec();
        let n = out.len().max(1);
        match *self {
            Mutation::Flip { at, bit } => {
                if !out.is_empty() {
                    out[at % n] ^= 1 << bit;
                }
            }
            Mutation::Truncate { len } => out.truncate(len % (n + 1)),
            Mutation::Insert { at, ref bytes } => {
                let at = at % (out.len() + 1);
                out.splice(at..at, bytes.iter().copied());
            }
            Mutation::Splice { from, to, len } => {
                if !out.is_empty() {
                    let (from, to) = (from % n, to % n);
                    let len = len.min(n - from).min(n - to);
                    let chunk = out[from..from + len].to_vec();
                    out[to..to + len].copy_from_slice(&chunk);
                }
            }
            Mutation::HugeLength {
                at,
                value,
                big_endian,
            } => {
                if out.len() >= 4 {
                    let at = at % (out.len() - 3);
                    let bytes = if big_endian {
                        value.to_be_bytes()
                    } else {
                        value.to_le_bytes()
                    };
                    out[at..at + 4].copy_from_slice(&bytes);
                }
            }
            Mutation::Fill { at, len, byte } => {
                if !out.is_empty() {
                    let at = at % n;
                    let end = (at + len).min(out.len());
                    out[at..end].fill(byte);
                }
            }
        }
        out
    }
}

/// A seed and one to three mutations of it.
fn mutated(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(seeds),
        prop::collection::vec(mutation(), 1..4),
    )
        .prop_map(|(seed, ms)| ms.iter().fold(seed, |bytes, m| m.apply(&bytes)))
}

// ------------------------------------------------------------------ seeds --

fn corpus_dir(decoder: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(decoder)
}

/// The built seeds of `decoder`, plus its committed corpus files; with
/// `KLEPTO_WRITE_CORPUS=1`, the built seeds are (re)written there first.
fn seeds(decoder: &str, built: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let dir = corpus_dir(decoder);
    if std::env::var("KLEPTO_WRITE_CORPUS").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(&dir).unwrap();
        for (i, seed) in built.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i}.bin")), seed).unwrap();
        }
    }
    let mut all = built;
    if let Ok(entries) = std::fs::read_dir(&dir) {
        let mut files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
        files.sort();
        for f in files {
            all.push(std::fs::read(f).unwrap());
        }
    }
    all
}

fn runner() -> TestRunner {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(256);
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

/// Runs `check` on mutations of `seeds`; also checks the allocation bound.
fn fuzz(decoder: &str, seeds: Vec<Vec<u8>>, check: impl Fn(&[u8]) -> Result<(), String>) {
    let mut runner = runner();
    let cases = runner.config().cases;
    runner
        .run(&mutated(seeds), |bytes| {
            Largest::reset();
            let verdict = check(&bytes);
            let largest = Largest::get();
            prop_assert!(
                largest <= ALLOC_LIMIT,
                "{decoder}: allocated {largest} bytes for a {}-byte input",
                bytes.len()
            );
            verdict.map_err(TestCaseError::fail)
        })
        .unwrap_or_else(|e| panic!("{decoder}: {e}"));
    println!("{decoder}: {cases} mutated inputs, no panic, every result exact or Corrupt");
}

/// `Ok` if `got` is `Ok(expected)` or `Err(Corrupt)`.
fn exact_or_corrupt<T: PartialEq + std::fmt::Debug>(
    got: klepto::Result<T>,
    expected: &T,
) -> Result<(), String> {
    match got {
        Ok(v) if &v == expected => Ok(()),
        Ok(v) => Err(format!("decoded a wrong value: {v:?}, not {expected:?}")),
        Err(Error::Corrupt { .. }) => Ok(()),
        Err(e) => Err(format!("an error other than Corrupt: {e}")),
    }
}

fn key(x: u64) -> HashKey {
    KeyGen::new().key(&x).unwrap()
}

fn value(x: u64) -> Vec<u64> {
    (0..x % 7).map(|i| i * x).collect()
}

// -------------------------------------------------------------- decoders --

#[test]
fn envelope() {
    let built: Vec<Vec<u8>> = (0..4u64)
        .map(|x| {
            let key = to_msgpack(&key(x), "key").unwrap();
            let value = to_msgpack(&value(x), "value").unwrap();
            let args = encode_args(&x, &KeyConfig::default()).unwrap();
            Envelope {
                key: (x % 2 == 0).then_some(&key[..]),
                args: (x % 3 == 0).then_some(&args[..]),
                value: &value,
            }
            .encode()
        })
        .collect();
    let originals = built.clone();
    fuzz("envelope", seeds("envelope", built), |bytes| {
        let Ok(envelope) = Envelope::decode(bytes, "fuzz") else {
            return Ok(());
        };
        // A sound envelope must be one of the originals, exactly.
        let decoded: Vec<u64> = match from_msgpack(envelope.value, "fuzz") {
            Ok(v) => v,
            Err(Error::Corrupt { .. }) => return Ok(()),
            Err(e) => return Err(format!("value: {e}")),
        };
        let re = Envelope { ..envelope }.encode();
        if originals.contains(&re) && (0..4).any(|x| value(x) == decoded) {
            Ok(())
        } else {
            Err(format!(
                "a mutated envelope passed its checksum: {bytes:02x?}"
            ))
        }
    });
}

#[test]
fn describe_args_never_panics_and_reads_only_sound_encodings() {
    let built: Vec<Vec<u8>> = vec![
        encode_args(&(1u64, 2.5f64), &KeyConfig::default()).unwrap(),
        encode_args(&"text with \u{e9}", &KeyConfig::default()).unwrap(),
        encode_args(&(vec![1i32, -2], Some(3u8), ()), &KeyConfig::default()).unwrap(),
        encode_args(
            &std::collections::BTreeMap::from([("a", 1.0f32)]),
            &KeyConfig::default(),
        )
        .unwrap(),
    ];
    fuzz("args", seeds("args", built), |bytes| {
        match describe_args(bytes) {
            Ok(_) | Err(Error::Corrupt { .. }) => Ok(()),
            Err(e) => Err(format!("an error other than Corrupt: {e}")),
        }
    });
}

/// A file archive of four entries, as written (snapshot, then records).
fn file_archive_bytes(dir: &Path) -> (Vec<u8>, Vec<(HashKey, Vec<u64>)>) {
    let path = dir.join("seed.msgpack");
    let a: FileArchive<HashKey, Vec<u64>> = FileArchive::open(&path).unwrap();
    let entries: Vec<_> = (0..4).map(|x| (key(x), value(x))).collect();
    a.extend(entries[..2].to_vec()).unwrap();
    for (k, v) in &entries[2..] {
        a.insert(*k, v.clone()).unwrap(); // appended records
    }
    drop(a);
    (std::fs::read(&path).unwrap(), entries)
}

#[test]
fn file_archive() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, entries) = file_archive_bytes(dir.path());
    let path = dir.path().join("fuzz.msgpack");
    fuzz("file", seeds("file", vec![bytes]), |bytes| {
        std::fs::write(&path, bytes).unwrap();
        let a = match FileArchive::<HashKey, Vec<u64>>::open(&path) {
            Ok(a) => a,
            Err(Error::Corrupt { .. }) => return Ok(()),
            Err(e) => return Err(format!("open: {e}")),
        };
        // Whatever opens holds only original entries, exactly.
        for item in a.iter().map_err(|e| e.to_string())? {
            let (k, v) = match item {
                Ok(kv) => kv,
                Err(Error::Corrupt { .. }) => continue,
                Err(e) => return Err(format!("iter: {e}")),
            };
            match entries.iter().find(|(ek, _)| *ek == k) {
                Some((_, ev)) if *ev == v => {}
                _ => return Err(format!("entry not written: {k} -> {v:?}")),
            }
        }
        Ok(())
    });
}

#[test]
fn directory_entry() {
    let dir = tempfile::tempdir().unwrap();
    let a: DirArchive<HashKey, Vec<u64>> = DirArchive::open(dir.path()).unwrap().durable(false);
    a.insert(key(5), value(5)).unwrap();
    let file = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "kle"))
        .unwrap();
    let seed = std::fs::read(&file).unwrap();
    fuzz("dir", seeds("dir", vec![seed]), |bytes| {
        std::fs::write(&file, bytes).unwrap();
        // Read as absent would be wrong too: the file is there.
        exact_or_corrupt(a.get(&key(5)), &Some(value(5)))?;
        for item in a.iter().map_err(|e| e.to_string())? {
            match item {
                Ok((k, v)) if k == key(5) && v == value(5) => {}
                Ok(kv) => return Err(format!("iter gave {kv:?}")),
                Err(Error::Corrupt { .. }) => {}
                Err(e) => return Err(format!("iter: {e}")),
            }
        }
        Ok(())
    });
}

#[test]
fn sqlite_row() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("fuzz.db");
    let a: SqlArchive<HashKey, Vec<u64>> = SqlArchive::open(db.to_str().unwrap()).unwrap();
    a.insert(key(6), value(6)).unwrap();
    let k = rmp_serde::to_vec(&key(6)).unwrap();
    let conn = rusqlite::Connection::open(&db).unwrap();
    let seed: Vec<u8> = conn
        .query_row("SELECT value FROM memo WHERE key = ?1", [&k], |r| r.get(0))
        .unwrap();
    fuzz("sql", seeds("sql", vec![seed]), |bytes| {
        conn.execute("UPDATE memo SET value = ?2 WHERE key = ?1", (&k, bytes))
            .unwrap();
        match a.get(&key(6)) {
            Ok(Some(v)) if v == value(6) => Ok(()),
            Ok(other) => Err(format!("decoded {other:?}")),
            Err(Error::Corrupt { .. }) => Ok(()),
            Err(e) => Err(format!("an error other than Corrupt: {e}")),
        }
    });
}

/// The harness itself can fail: a decoder that believes a length prefix
/// (allocating what a mutated prefix claims) and one that returns a wrong
/// value are both caught.
#[test]
fn the_harness_catches_believed_lengths_and_wrong_values() {
    let seed = vec![vec![8, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]];
    let believes_lengths = std::panic::catch_unwind(|| {
        fuzz("believer", seed.clone(), |bytes| {
            if let Some(len) = bytes.first_chunk::<4>() {
                // Capped below the allocator's refusal, to fail the check
                // rather than abort the process.
                let len = (u32::from_le_bytes(*len) as usize).min(ALLOC_LIMIT + (1 << 20));
                let v: Vec<u8> = Vec::with_capacity(len);
                std::hint::black_box(v);
            }
            Ok(())
        })
    });
    assert!(
        believes_lengths.is_err(),
        "a believed 4 GiB prefix went unnoticed"
    );
    let wrong = std::panic::catch_unwind(|| {
        fuzz("wrong", seed.clone(), |bytes| {
            exact_or_corrupt(Ok(bytes.to_vec()), &seed[0])
        })
    });
    assert!(wrong.is_err(), "a wrong value went unnoticed");
}
