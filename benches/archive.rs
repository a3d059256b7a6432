//! Speed of the persistent archives, next to a hand-written `rusqlite`
//! baseline measured in the same run.
//!
//! * `sql_op/*`: one `insert` (replacing an existing row) and one `get` of a
//!   16-byte hashed key with a 100-byte value, in a table of 10,000 rows:
//!   `SqlArchive` against the baseline (one connection, prepared
//!   `INSERT OR REPLACE` / `SELECT`, WAL, `synchronous=NORMAL`) storing
//!   the same value bytes without the envelope, under the key's 16 raw bytes.
//! * `memo_dump_100k/*`: `Memo::dump` of 100,000 `u64 -> Vec<u8>` (100-byte)
//!   results into a fresh SQLite table and a fresh MessagePack file.
//! * `memo_load_100k/sql`: opening the SQLite archive and `Memo::load` of
//!   those 100,000 entries.
//! * `dir_insert/*`: one `DirArchive::insert` with and without durability.
//! * `file_fill/<archive>/<n>`: a write-through memo computing `n` distinct
//!   results (1,000 / 10,000 / 100,000) into a fresh `FileArchive` and a
//!   fresh `SqlArchive`, one write per result; reported per result, so a
//!   constant time per entry shows as equal figures across `n`. `file` is
//!   `durable(false)` against SQLite's default `synchronous=NORMAL` (neither
//!   syncs per write); `*_durable` syncs every write (`fdatasync` against
//!   `?durable=true`, `synchronous=FULL`), at 1,000 only.
//!
//! * `vec1000_*` (feature `hdf5`): the HDF5 archives against `SqlArchive`
//!   and `DirArchive` with an 8,000-byte array value (see `archive/hdf5.rs`).
//!
//! After criterion, a latency table gives ops/s, p50 and p99 per single
//! operation over 20,000 timed operations each.
//!
//! Run with `cargo bench --bench archive` (or `-- --quick` for a fast pass;
//! `--features hdf5` adds the HDF5 archives).

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BatchSize, BenchmarkGroup, Criterion};
use klepto::archive::{Archive, DirArchive, FileArchive, SqlArchive};
use klepto::keymap::{HashKey, HashKeymap};
use klepto::policy::Unbounded;
use klepto::{Memo, PlainMemo};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rusqlite::{params, Connection, OptionalExtension};

#[cfg(feature = "hdf5")]
#[path = "archive/hdf5.rs"]
mod hdf5_archives;

/// Rows in the tables of the single-operation benches.
const ROWS: u64 = 10_000;
/// Entries dumped and loaded.
const BULK: u64 = 100_000;
/// Size of every value, in bytes.
const VALUE_LEN: usize = 100;
/// Timed operations per row of the latency table.
const LATENCY_OPS: usize = 20_000;
const SEED: u64 = 0x6b6c_6570_746f;

fn value(x: u64) -> Vec<u8> {
    vec![x as u8; VALUE_LEN]
}

fn key(x: u64) -> HashKey {
    klepto::KeyGen::new().key(&x).expect("a u64 key")
}

/// A pseudo-random sequence of existing row numbers.
fn row_sequence(n: usize) -> Vec<u64> {
    let mut rng = StdRng::seed_from_u64(SEED);
    (0..n).map(|_| rng.random_range(0..ROWS)).collect()
}

/// The hand-written baseline: one connection, prepared statements, the same
/// key and value bytes as the archive stores (minus the envelope).
struct Baseline {
    conn: Connection,
}

impl Baseline {
    fn open(path: &Path) -> Baseline {
        let conn = Connection::open(path).expect("open the baseline database");
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
             CREATE TABLE IF NOT EXISTS kv (key BLOB PRIMARY KEY NOT NULL, value BLOB NOT NULL) WITHOUT ROWID;",
        )
        .expect("set up the baseline table");
        Baseline { conn }
    }

    fn insert(&self, key: &HashKey, value: &Vec<u8>) {
        let bytes = rmp_serde::to_vec(value).expect("encode");
        self.conn
            .prepare_cached("INSERT OR REPLACE INTO kv (key, value) VALUES (?1, ?2)")
            .expect("prepare")
            .execute(params![&key.as_bytes()[..], bytes])
            .expect("insert");
    }

    fn get(&self, key: &HashKey) -> Option<Vec<u8>> {
        let bytes: Option<Vec<u8>> = self
            .conn
            .prepare_cached("SELECT value FROM kv WHERE key = ?1")
            .expect("prepare")
            .query_row(params![&key.as_bytes()[..]], |r| r.get(0))
            .optional()
            .expect("select");
        bytes.map(|b| rmp_serde::from_slice(&b).expect("decode"))
    }
}

/// A 10,000-row SQLite archive and baseline in `dir`.
fn sql_pair(dir: &Path) -> (SqlArchive<HashKey, Vec<u8>>, Baseline) {
    let archive = SqlArchive::open(dir.join("archive.db").to_str().expect("utf-8 path"))
        .expect("open the archive");
    archive
        .extend((0..ROWS).map(|x| (key(x), value(x))).collect())
        .expect("fill the archive");
    let baseline = Baseline::open(&dir.join("baseline.db"));
    for x in 0..ROWS {
        baseline.insert(&key(x), &value(x));
    }
    (archive, baseline)
}

fn sql_ops(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (archive, baseline) = sql_pair(dir.path());
    let keys: Vec<HashKey> = row_sequence(1_024).into_iter().map(key).collect();
    let v = value(7);

    let mut g = c.benchmark_group("sql_op");
    g.measurement_time(Duration::from_secs(3));
    let mut i = 0;
    g.bench_function("insert/klepto", |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            archive.insert(keys[i], v.clone()).expect("insert")
        })
    });
    g.bench_function("insert/rusqlite", |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            baseline.insert(&keys[i], &v)
        })
    });
    g.bench_function("get/klepto", |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            black_box(archive.get(&keys[i]).expect("get"))
        })
    });
    g.bench_function("get/rusqlite", |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            black_box(baseline.get(&keys[i]))
        })
    });
    g.finish();
}

/// The memo of the bulk benches: `value` over `u64`, unbounded.
type BulkMemo<A> = PlainMemo<fn(u64) -> Vec<u8>, u64, Vec<u8>, HashKeymap, Unbounded, A>;

/// A memo holding `BULK` computed results, all unsaved, with archive `a`.
fn full_memo<A: Archive<HashKey, Vec<u8>>>(a: A) -> BulkMemo<A> {
    let memo = Memo::builder()
        .inf()
        .archive(a)
        .build(value as fn(u64) -> Vec<u8>);
    for x in 0..BULK {
        memo.call(x);
    }
    memo
}

/// Times `dump` of a full memo, which `full` builds over a fresh archive
/// in a new temporary directory (set-up and drop are not timed).
fn bench_dump<M>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    full: impl Fn(&Path) -> M,
    dump: impl Fn(&M),
) {
    g.bench_function(name, |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().expect("temp dir");
                (full(dir.path()), dir)
            },
            |(memo, dir)| {
                dump(&memo);
                (memo, dir)
            },
            BatchSize::PerIteration,
        )
    });
}

fn bulk(c: &mut Criterion) {
    let mut g = c.benchmark_group("memo_dump_100k");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    bench_dump(
        &mut g,
        "sql",
        |dir| {
            full_memo(SqlArchive::open(dir.join("dump.db").to_str().expect("utf-8")).expect("open"))
        },
        |memo| memo.dump().expect("dump"),
    );
    bench_dump(
        &mut g,
        "file",
        |dir| full_memo(FileArchive::open(dir.join("dump.msgpack")).expect("open")),
        |memo| memo.dump().expect("dump"),
    );
    g.finish();

    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("load.db");
    let url = path.to_str().expect("utf-8").to_owned();
    full_memo(SqlArchive::open(&url).expect("open"))
        .dump()
        .expect("dump");
    let mut g = c.benchmark_group("memo_load_100k");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    g.bench_function("sql", |b| {
        b.iter(|| {
            let a = SqlArchive::open(&url).expect("open");
            let memo = Memo::builder().inf().archive(a).build(value);
            memo.load().expect("load");
            assert_eq!(memo.info().size, BULK as usize);
            memo
        })
    });
    g.finish();
}

/// A write-through memo over archive `a`.
fn write_through<A: Archive<HashKey, Vec<u8>>>(a: A) -> BulkMemo<A> {
    Memo::builder()
        .inf()
        .write_through()
        .archive(a)
        .build(value as fn(u64) -> Vec<u8>)
}

/// Times `n` first calls of a write-through memo over a fresh archive
/// opened by `open` in a new temporary directory (set-up and drop untimed).
fn bench_fill<A: Archive<HashKey, Vec<u8>>>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    n: u64,
    open: impl Fn(&Path) -> A,
) {
    g.throughput(criterion::Throughput::Elements(n));
    g.bench_function(criterion::BenchmarkId::new(name, n), |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().expect("temp dir");
                (write_through(open(dir.path())), dir)
            },
            |(memo, dir)| {
                for x in 0..n {
                    black_box(memo.call(x));
                }
                assert_eq!(memo.info().errors, 0);
                (memo, dir)
            },
            BatchSize::PerIteration,
        )
    });
}

fn file_fill(c: &mut Criterion) {
    let mut g = c.benchmark_group("file_fill");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(5));
    let file = |dir: &Path| FileArchive::open(dir.join("fill.msgpack")).expect("open");
    let sql = |dir: &Path, params: &str| {
        let url = format!(
            "sqlite://{}?table=fill{params}",
            dir.join("fill.db").display()
        );
        SqlArchive::open(url).expect("open")
    };
    for n in [1_000, 10_000, 100_000] {
        bench_fill(&mut g, "file", n, |dir| file(dir).durable(false));
        bench_fill(&mut g, "sql", n, |dir| sql(dir, ""));
    }
    bench_fill(&mut g, "file_durable", 1_000, file);
    bench_fill(&mut g, "sql_durable", 1_000, |dir| {
        sql(dir, "&durable=true")
    });
    g.finish();
}

fn dir_inserts(c: &mut Criterion) {
    let mut g = c.benchmark_group("dir_insert");
    g.measurement_time(Duration::from_secs(3));
    for durable in [true, false] {
        let dir = tempfile::tempdir().expect("temp dir");
        let a: DirArchive<HashKey, Vec<u8>> =
            DirArchive::open(dir.path()).expect("open").durable(durable);
        let keys: Vec<HashKey> = (0..1_000).map(key).collect();
        let v = value(1);
        let mut i = 0;
        let name = if durable { "durable" } else { "not_durable" };
        g.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) % keys.len();
                a.insert(keys[i], v.clone()).expect("insert")
            })
        });
    }
    g.finish();
}

/// Times `ops` single operations and returns (ops/s, p50, p99).
fn latency(ops: usize, mut op: impl FnMut(usize)) -> (f64, Duration, Duration) {
    let mut times = Vec::with_capacity(ops);
    let start = Instant::now();
    for i in 0..ops {
        let t = Instant::now();
        op(i);
        times.push(t.elapsed());
    }
    let total = start.elapsed();
    times.sort();
    let pct = |p: f64| times[((times.len() - 1) as f64 * p) as usize];
    (ops as f64 / total.as_secs_f64(), pct(0.50), pct(0.99))
}

fn latency_table() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (archive, baseline) = sql_pair(dir.path());
    let keys: Vec<HashKey> = row_sequence(LATENCY_OPS).into_iter().map(key).collect();
    let v = value(9);
    let file: FileArchive<HashKey, Vec<u8>> =
        FileArchive::open(dir.path().join("latency.msgpack")).expect("open");
    file.extend((0..ROWS).map(|x| (key(x), value(x))).collect())
        .expect("fill");
    let durable: DirArchive<HashKey, Vec<u8>> =
        DirArchive::open(dir.path().join("durable")).expect("open");
    let quick: DirArchive<HashKey, Vec<u8>> = DirArchive::open(dir.path().join("quick"))
        .expect("open")
        .durable(false);

    let rows: Vec<(&str, (f64, Duration, Duration))> = vec![
        (
            "rusqlite baseline insert",
            latency(LATENCY_OPS, |i| baseline.insert(&keys[i], &v)),
        ),
        (
            "SqlArchive insert",
            latency(LATENCY_OPS, |i| {
                archive.insert(keys[i], v.clone()).expect("insert")
            }),
        ),
        (
            "rusqlite baseline get",
            latency(LATENCY_OPS, |i| drop(black_box(baseline.get(&keys[i])))),
        ),
        (
            "SqlArchive get",
            latency(LATENCY_OPS, |i| {
                drop(black_box(archive.get(&keys[i]).expect("get")))
            }),
        ),
        (
            "FileArchive get (10k entries)",
            latency(LATENCY_OPS, |i| {
                drop(black_box(file.get(&keys[i]).expect("get")))
            }),
        ),
        (
            "FileArchive insert (10k entries)",
            latency(200, |i| file.insert(keys[i], v.clone()).expect("insert")),
        ),
        (
            "DirArchive insert, durable",
            latency(2_000, |i| {
                durable.insert(keys[i], v.clone()).expect("insert")
            }),
        ),
        (
            "DirArchive insert, durable(false)",
            latency(LATENCY_OPS, |i| {
                quick.insert(keys[i], v.clone()).expect("insert")
            }),
        ),
        (
            "DirArchive get",
            latency(LATENCY_OPS, |i| {
                drop(black_box(quick.get(&keys[i % 2_000]).expect("get")))
            }),
        ),
    ];
    println!("\nlatency per single operation ({LATENCY_OPS} ops unless fewer are needed):");
    println!("| operation | ops/s | p50 | p99 |");
    println!("|---|---:|---:|---:|");
    for (name, (rate, p50, p99)) in rows {
        println!("| {name} | {rate:.0} | {p50:.1?} | {p99:.1?} |");
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    sql_ops(&mut c);
    bulk(&mut c);
    dir_inserts(&mut c);
    file_fill(&mut c);
    #[cfg(feature = "hdf5")]
    hdf5_archives::benches(&mut c);
    c.final_summary();
    // The table takes a while: only in a full run, not with a filter.
    if std::env::args().skip(1).all(|a| a.starts_with('-')) {
        latency_table();
    }
}
