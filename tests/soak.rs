//! Soak: 4 processes × 4 threads mix `call`, `try_call`, `dump`, `load`,
//! `clear` and archive `remove` on one SQLite archive and one file archive
//! for `KLEPTO_SOAK_SECS` seconds (default 10), with 1% of user calls
//! panicking. Afterwards every archived value equals `f(x)`, every process
//! finished within a bound (nothing deadlocked), and in a last phase
//! without panics or clears each memo's counts add up to its calls.
//!
//! Ignored by default: `cargo test --test soak -- --ignored` (CI runs it
//! for 60 s).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::thread;
use std::time::{Duration, Instant};

use klepto::archive::{Archive, FileArchive, SqlArchive};
use klepto::keymap::RawKeymap;
use klepto::Memo;
use rand::{RngExt, SeedableRng};

mod common;

const ROLE: &str = "KLEPTO_SOAK_ROLE";
const DIR: &str = "KLEPTO_SOAK_DIR";
const PROCESSES: usize = 4;
const THREADS: usize = 4;
const KEYS: u64 = 400;

fn f(x: u64) -> u64 {
    x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 13
}

fn seconds() -> u64 {
    std::env::var("KLEPTO_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10)
}

fn sql(dir: &Path) -> SqlArchive<u64, u64> {
    SqlArchive::open(dir.join("soak.db").to_str().unwrap()).unwrap()
}

fn file(dir: &Path) -> FileArchive<u64, u64> {
    FileArchive::open(dir.join("soak.msgpack"))
        .unwrap()
        .durable(false)
}

/// One process's work on one archive: the mixed phase, then a counted one.
/// Returns the operations done.
fn soak<A: Archive<u64, u64> + Clone + 'static>(archive: A, until: Instant, seed: u64) -> u64 {
    let memo = Memo::builder()
        .lru(64)
        .keymap(RawKeymap::new())
        .archive(archive)
        .build(move |x: u64| {
            // 1% of computations panic (not the counted phase's).
            if x < KEYS && rand::rng().random_ratio(1, 100) {
                panic!("soak: a user function failed on purpose");
            }
            f(x)
        });
    let ops = AtomicU64::new(0);
    thread::scope(|s| {
        for t in 0..THREADS {
            let (memo, ops) = (&memo, &ops);
            s.spawn(move || {
                let mut rng = rand::rngs::SmallRng::seed_from_u64(seed * 31 + t as u64);
                while Instant::now() < until {
                    let x = rng.random_range(0..KEYS);
                    match rng.random_range(0..1000) {
                        0..=899 => {
                            if let Ok(v) = catch_unwind(AssertUnwindSafe(|| memo.call(x))) {
                                assert_eq!(v, f(x), "call({x})");
                            }
                        }
                        900..=979 => {
                            if let Ok(Ok(v)) = catch_unwind(AssertUnwindSafe(|| memo.try_call(x))) {
                                assert_eq!(v, f(x), "try_call({x})");
                            }
                        }
                        980..=989 => memo.dump().expect("dump"),
                        990..=995 => memo.load().expect("load"),
                        996..=997 => {
                            memo.archive().remove(&x).expect("remove");
                        }
                        _ => memo.clear(),
                    }
                    ops.fetch_add(1, Relaxed);
                }
            });
        }
    });
    // The counted phase: no panics (keys beyond KEYS), no clears.
    memo.clear();
    let calls = AtomicU64::new(0);
    thread::scope(|s| {
        for t in 0..THREADS as u64 {
            let (memo, calls) = (&memo, &calls);
            s.spawn(move || {
                for i in 0..500 {
                    let x = KEYS + (t * 131 + i) % 300;
                    assert_eq!(memo.call(x), f(x));
                    calls.fetch_add(1, Relaxed);
                }
            });
        }
    });
    let info = memo.info();
    assert_eq!(
        info.hits + info.misses + info.loads,
        calls.load(Relaxed),
        "the counts add up: {info:?}"
    );
    ops.load(Relaxed) + calls.load(Relaxed)
}

/// The child side: does nothing in a normal run.
#[test]
fn child() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let dir = PathBuf::from(std::env::var(DIR).unwrap());
    let seed: u64 = role.parse().unwrap();
    let until = Instant::now() + Duration::from_secs(seconds());
    let (d1, d2) = (dir.clone(), dir.clone());
    let a = thread::spawn(move || soak(sql(&d1), until, seed));
    let b = thread::spawn(move || soak(file(&d2), until, seed + 100));
    let ops = a.join().unwrap() + b.join().unwrap();
    println!("OUT ops {ops}");
}

#[test]
#[ignore = "a long soak: cargo test --test soak -- --ignored (CI runs it)"]
fn processes_and_threads_mixing_every_operation_lose_nothing_and_never_hang() {
    let dir = tempfile::tempdir().unwrap();
    let secs = seconds();
    let children: Vec<_> = (0..PROCESSES)
        .map(|p| {
            Command::new(std::env::current_exe().unwrap())
                .args(["child", "--exact", "--nocapture", "--test-threads=1"])
                .env(ROLE, p.to_string())
                .env(DIR, dir.path())
                .env("RUST_BACKTRACE", "0")
                .stdout(Stdio::piped())
                .stderr(Stdio::null()) // the planned panics' messages
                .spawn()
                .unwrap()
        })
        .collect();
    let mut total = 0_u64;
    for mut child in children {
        // Nothing deadlocks: each process ends within its time and a margin.
        let status =
            common::wait_bounded(&mut child, Duration::from_secs(secs + 120), "soak child");
        assert!(status.success(), "a soak process failed: {status:?}");
        let mut out = String::new();
        std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
        let ops: u64 = out
            .lines()
            .find_map(|l| l.split("OUT ops ").nth(1))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no report from a soak process: {out}"));
        total += ops;
    }
    // Every archived value is right, in both archives.
    let mut entries = 0;
    for item in sql(dir.path()).iter().unwrap() {
        let (k, v) = item.unwrap();
        assert_eq!(v, f(k), "sqlite: wrong value for {k}");
        entries += 1;
    }
    for item in file(dir.path()).iter().unwrap() {
        let (k, v) = item.unwrap();
        assert_eq!(v, f(k), "file: wrong value for {k}");
        entries += 1;
    }
    println!(
        "soak: {PROCESSES} processes x {THREADS} threads x 2 archives, {secs} s: {total} operations, {entries} archived entries all right"
    );
}
