//! Reloading results from SQLite in a new process, as a user's program does
//! when it starts again: a memo over a `SqlArchive` called on 10,000
//! arguments whose results an earlier process stored, against a
//! hand-written `rusqlite` reader doing the same 10,000 lookups (prepared
//! `SELECT`, the value decoded, kept in a `HashMap`) on a table it wrote
//! itself in its own simplest form (16-byte blake3 key, MessagePack value).
//!
//! `cargo run --release` (from `outside/sqlite`): fills both databases once,
//! then runs 15 rounds, each spawning one process per reader in turn, and
//! prints the median time per reader, their ratio, and the median of the
//! rounds' own ratios (each round's two readers run back to back, so that
//! ratio is the one least moved by a neighbour on a shared machine). `--quick`: 3 rounds of
//! 1,000 lookups (for CI). `--fill DIR N` then `--child klepto|rusqlite DIR
//! N`: one reader alone (to profile it); `--child archive DIR N` reads the
//! same entries through `SqlArchive::get` without a memo.

use std::collections::HashMap;
use std::hint::black_box;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use klepto::archive::SqlArchive;
use klepto::Memo;
use rusqlite::{params, Connection, OptionalExtension};

/// The function whose results are stored: a 100-byte value per argument.
fn value(x: u64) -> Vec<u8> {
    (0..100)
        .map(|i| (x.wrapping_mul(31).wrapping_add(i)) as u8)
        .collect()
}

fn baseline_key(x: u64) -> [u8; 16] {
    let mut k = [0; 16];
    k.copy_from_slice(&blake3::hash(&x.to_le_bytes()).as_bytes()[..16]);
    k
}

fn memo_on(path: &Path) -> impl Fn(u64) -> Vec<u8> {
    let archive = SqlArchive::open(path.as_os_str()).expect("open the archive");
    let memo = Memo::builder()
        .inf()
        .name("value")
        .archive(archive)
        .build(value as fn(u64) -> Vec<u8>);
    move |x| memo.call(x)
}

fn fill(dir: &Path, n: u64) {
    let klepto_db = dir.join("klepto.db");
    {
        let archive = SqlArchive::open(klepto_db.as_os_str()).expect("open");
        let memo = Memo::builder()
            .inf()
            .name("value")
            .archive(archive)
            .build(value as fn(u64) -> Vec<u8>);
        for x in 0..n {
            memo.call(x);
        }
        memo.dump().expect("dump");
    }
    let conn = Connection::open(dir.join("baseline.db")).expect("open baseline");
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
         CREATE TABLE IF NOT EXISTS value (key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;",
    )
    .expect("baseline schema");
    let tx = conn.unchecked_transaction().expect("tx");
    {
        let mut put = tx
            .prepare("INSERT OR REPLACE INTO value (key, value) VALUES (?1, ?2)")
            .expect("prepare");
        for x in 0..n {
            let bytes = rmp_serde::to_vec(&value(x)).expect("encode");
            put.execute(params![&baseline_key(x)[..], bytes])
                .expect("insert");
        }
    }
    tx.commit().expect("commit");
}

/// One reader in this (new) process: the time to open and do `n` lookups.
fn read(kind: &str, dir: &Path, n: u64) -> u128 {
    let start = Instant::now();
    match kind {
        "klepto" => {
            let f = memo_on(&dir.join("klepto.db"));
            for x in 0..n {
                black_box(f(x));
            }
        }
        // The archive alone (no memo): where the memo's share of the time is.
        "archive" => {
            use klepto::archive::Archive;
            let keys = klepto::KeyGen::new();
            let a: SqlArchive<klepto::keymap::HashKey, Vec<u8>> =
                SqlArchive::open(dir.join("klepto.db").as_os_str()).expect("open the archive");
            let a = a.namespaced("value").expect("namespace");
            let mut kept: HashMap<u64, Vec<u8>> = HashMap::new();
            for x in 0..n {
                let v = a
                    .get(&keys.key(&x).expect("key"))
                    .expect("get")
                    .expect("stored");
                kept.insert(x, v);
            }
            black_box(&kept);
        }
        "rusqlite" => {
            let conn = Connection::open(dir.join("baseline.db")).expect("open baseline");
            conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
                .expect("pragmas");
            let mut get = conn
                .prepare("SELECT value FROM value WHERE key = ?1")
                .expect("prepare");
            let mut kept: HashMap<u64, Vec<u8>> = HashMap::new();
            for x in 0..n {
                let blob: Option<Vec<u8>> = get
                    .query_row(params![&baseline_key(x)[..]], |r| r.get(0))
                    .optional()
                    .expect("select");
                let v: Vec<u8> = match blob {
                    Some(b) => rmp_serde::from_slice(&b).expect("decode"),
                    None => value(x),
                };
                kept.insert(x, v);
            }
            black_box(&kept);
        }
        other => panic!("unknown reader {other}"),
    }
    start.elapsed().as_nanos()
}

fn median(mut v: Vec<u128>) -> u128 {
    v.sort_unstable();
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 5 && args[1] == "--child" {
        let n: u64 = args[4].parse().expect("n");
        println!("{}", read(&args[2], Path::new(&args[3]), n));
        return;
    }
    if args.len() == 4 && args[1] == "--fill" {
        // Only fill `dir` (for profiling a `--child` run by hand).
        fill(Path::new(&args[2]), args[3].parse().expect("n"));
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let (rounds, n) = if quick { (3, 1_000) } else { (15, 10_000) };
    let dir = tempfile_dir();
    fill(&dir, n);
    let exe = std::env::current_exe().expect("own path");
    let readers = ["klepto", "rusqlite"];
    let mut times: HashMap<&str, Vec<u128>> = HashMap::new();
    for _ in 0..rounds {
        for r in readers {
            let out = Command::new(&exe)
                .args([
                    "--child",
                    r,
                    dir.to_str().expect("utf-8 path"),
                    &n.to_string(),
                ])
                .output()
                .expect("spawn a reader");
            assert!(
                out.status.success(),
                "{r}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let ns: u128 = String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .expect("ns");
            times.entry(r).or_default().push(ns);
        }
    }
    let ks = times.remove("klepto").expect("klepto ran");
    let bs = times.remove("rusqlite").expect("rusqlite ran");
    let per_round = ks.iter().zip(&bs).map(|(&k, &b)| k as f64 / b as f64);
    let mut per_round: Vec<f64> = per_round.collect();
    per_round.sort_by(f64::total_cmp);
    let round_ratio = per_round[per_round.len() / 2];
    let (k, b) = (median(ks), median(bs));
    println!("new-process reload of {n} results, median of {rounds} interleaved runs:");
    println!("  klepto memo over SqlArchive   {:8.2} ms", k as f64 / 1e6);
    println!("  hand-written rusqlite reader  {:8.2} ms", b as f64 / 1e6);
    println!(
        "  ratio of the medians {:.2}x, median of the rounds' ratios {:.2}x (target <= 1.1x)",
        k as f64 / b as f64,
        round_ratio
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// A fresh directory under the system's temp dir.
fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("klepto-sqlite-outside-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
