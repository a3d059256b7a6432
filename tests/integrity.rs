//! An entry answers only for its own key (issue 9's most serious bug):
//! values swapped or copied between keys of an SQLite table or a
//! directory archive, and random page damage in an SQLite file, never make
//! a memo return another call's result. Each bad entry is counted in
//! `info().errors`, recomputed, and rewritten.

mod common;

use std::path::{Path, PathBuf};

use klepto::archive::{Archive, DirArchive, SqlArchive};
use klepto::keymap::HashKey;
use klepto::{CacheInfo, KeyGen, Memo};
use rand::{RngExt, SeedableRng};

const N: u64 = 50;

fn f(x: u64) -> u64 {
    x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 9
}

fn key(x: u64) -> HashKey {
    KeyGen::new().key(&x).unwrap()
}

fn key_bytes(x: u64) -> Vec<u8> {
    rmp_serde::to_vec(&key(x)).unwrap()
}

fn counts(info: &CacheInfo) -> (u64, u64, u64) {
    (info.loads, info.misses, info.errors)
}

/// Fills `archive` with f(0..N) through a write-through memo.
fn fill<A: Archive<HashKey, u64>>(archive: A) {
    let memo = Memo::builder()
        .inf()
        .write_through()
        .archive(archive)
        .build(f);
    for x in 0..N {
        assert_eq!(memo.call(x), f(x));
    }
    assert_eq!(counts(&memo.info()), (0, N, 0));
}

/// Calls 0..N on a memo over `archive` and checks every result is f(x);
/// returns the memo's (loads, misses, errors).
fn check_calls<A: Archive<HashKey, u64>>(archive: A) -> (u64, u64, u64) {
    let memo = Memo::builder().inf().archive(archive).build(f);
    for x in 0..N {
        assert_eq!(
            memo.call(x),
            f(x),
            "call {x} returned another call's result"
        );
    }
    counts(&memo.info())
}

/// After repairs, every entry loads: a function that returns a wrong
/// value shows any recomputation.
fn all_load<A: Archive<HashKey, u64>>(archive: A) {
    let memo = Memo::builder()
        .inf()
        .archive(archive)
        .build(|_: u64| u64::MAX);
    for x in 0..N {
        assert_eq!(memo.call(x), f(x), "entry {x} not rewritten");
    }
    assert_eq!(
        counts(&memo.info()),
        (N, 0, 0),
        "a fresh memo loads every entry"
    );
}

fn sqlite(path: &Path) -> SqlArchive<HashKey, u64> {
    SqlArchive::open(path).unwrap()
}

#[test]
fn sqlite_rows_all_given_the_first_rows_value_are_errors_not_results() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.db");
    fill(sqlite(&path));

    let db = rusqlite::Connection::open(&path).unwrap();
    let changed = db
        .execute(
            "UPDATE memo SET value = (SELECT value FROM memo ORDER BY key LIMIT 1)",
            [],
        )
        .unwrap();
    assert_eq!(changed as u64, N);
    drop(db);

    // One row still holds its own value; the other N-1 hold the first's.
    let a = sqlite(&path);
    let bad = (0..N)
        .filter(|&x| matches!(a.get(&key(x)), Err(klepto::Error::Corrupt { .. })))
        .count() as u64;
    assert_eq!(bad, N - 1, "each moved row reads as Error::Corrupt");

    assert_eq!(check_calls(sqlite(&path)), (1, N - 1, N - 1));
    all_load(sqlite(&path));
}

#[test]
fn sqlite_rows_swapped_pairwise_are_errors_not_results() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.db");
    fill(sqlite(&path));
    let db = rusqlite::Connection::open(&path).unwrap();
    let get = |x: u64| -> Vec<u8> {
        db.query_row(
            "SELECT value FROM memo WHERE key = ?1",
            [key_bytes(x)],
            |r| r.get(0),
        )
        .unwrap()
    };
    let (v3, v7) = (get(3), get(7));
    let put = |x: u64, v: &[u8]| {
        db.execute(
            "UPDATE memo SET value = ?2 WHERE key = ?1",
            (key_bytes(x), v),
        )
        .unwrap()
    };
    assert_eq!(put(3, &v7) + put(7, &v3), 2);
    drop(db);

    let err = sqlite(&path).get(&key(3)).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, klepto::Error::Corrupt { .. }), "{msg}");
    assert!(msg.contains("table memo"), "names the table: {msg}");
    assert!(
        msg.contains(&common::hex(&key_bytes(3))),
        "names the key: {msg}"
    );

    assert_eq!(check_calls(sqlite(&path)), (N - 2, 2, 2));
    all_load(sqlite(&path));
}

/// Flips bytes in one random page of a filled SQLite file per round: calls
/// may fail over to computing (SQLite may see the damage, or the envelope
/// check does), but no call ever returns a wrong value.
#[test]
fn random_page_damage_in_an_sqlite_file_never_returns_a_wrong_value() {
    const ROUNDS: usize = 40;
    let seed = rand::rng().random::<u64>();
    println!("page damage seed {seed}");
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let pristine = dir.path().join("pristine.db");
    {
        let memo = Memo::builder()
            .inf()
            .archive(SqlArchive::<HashKey, Vec<u64>>::open(&pristine).unwrap())
            .build(|x: u64| vec![f(x); 20]);
        for x in 0..500 {
            memo.call(x);
        }
    } // dumped on drop
    let db = rusqlite::Connection::open(&pristine).unwrap();
    db.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    let page: i64 = db.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
    let page = page as usize;
    drop(db);
    let bytes = std::fs::read(&pristine).unwrap();
    let pages = bytes.len() / page;
    assert!(pages > 10, "{pages} pages");

    let (mut errors, mut loads) = (0, 0);
    for round in 0..ROUNDS {
        let path = dir.path().join(format!("round{round}.db"));
        let mut damaged = bytes.clone();
        let p = rng.random_range(1..pages); // page 0 holds the header and schema
        for _ in 0..8 {
            let at = p * page + rng.random_range(0..page);
            damaged[at] ^= rng.random_range(1..=255u8);
        }
        std::fs::write(&path, &damaged).unwrap();
        let Ok(archive) = SqlArchive::<HashKey, Vec<u64>>::open(&path) else {
            continue; // SQLite refused the file outright: nothing to return
        };
        let memo = Memo::builder()
            .inf()
            .archive(archive)
            .build(|x: u64| vec![f(x); 20]);
        for x in 0..500 {
            assert_eq!(
                memo.call(x),
                vec![f(x); 20],
                "round {round} (page {p}, seed {seed}): wrong value for {x}"
            );
        }
        let info = memo.info();
        errors += info.errors;
        loads += info.loads;
    }
    println!("{ROUNDS} damaged copies: {loads} loads, {errors} errors counted");
    assert!(
        errors > 0,
        "damage to random pages was never noticed (seed {seed})"
    );
}

/// The entry file of `x` in a directory archive.
fn entry_file(dir: &Path, x: u64) -> PathBuf {
    let digest = blake3::hash(&key_bytes(x));
    dir.join(format!("{}.kle", common::hex(&digest.as_bytes()[..16])))
}

#[test]
fn directory_entries_swapped_are_errors_not_results() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("memo.d");
    let open = || DirArchive::<HashKey, u64>::open(&root).unwrap();
    fill(open());

    let (p3, p7) = (entry_file(&root, 3), entry_file(&root, 7));
    let (b3, b7) = (std::fs::read(&p3).unwrap(), std::fs::read(&p7).unwrap());
    std::fs::write(&p3, &b7).unwrap();
    std::fs::write(&p7, &b3).unwrap();

    let err = open().get(&key(3)).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, klepto::Error::Corrupt { .. }), "{msg}");
    assert!(
        msg.contains(&p3.display().to_string()),
        "names the file: {msg}"
    );

    // Counted (it used to read as absent, silently), recomputed, rewritten.
    assert_eq!(check_calls(open()), (N - 2, 2, 2));
    all_load(open());
}

#[test]
fn a_directory_entry_copied_over_another_is_an_error_not_a_result() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("memo.d");
    let open = || DirArchive::<HashKey, u64>::open(&root).unwrap();
    fill(open());
    std::fs::copy(entry_file(&root, 1), entry_file(&root, 2)).unwrap();
    assert!(matches!(
        open().get(&key(2)),
        Err(klepto::Error::Corrupt { .. })
    ));
    assert_eq!(check_calls(open()), (N - 1, 1, 1));
    all_load(open());
}
