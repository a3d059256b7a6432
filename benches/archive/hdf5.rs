//! HDF5 archives next to `SqlArchive` and `DirArchive` holding the same
//! value, a 1,000-element `Vec<f64>` (8,000 bytes of numbers), in the same
//! run (feature `hdf5`; part of `benches/archive.rs`):
//!
//! * `vec1000_op/{insert,get}/<archive>`: one insert (replacing an existing
//!   entry) and one get, in an archive of 1,000 such entries, every
//!   archive with its default durability (fsync per write, SQLite's
//!   `synchronous=NORMAL`);
//! * `vec1000_dump_10k/<archive>` and `vec1000_load_10k/<archive>`:
//!   `Memo::dump` of 10,000 results into a fresh archive, and `Memo::load`
//!   of them in a new memo;
//! * then the bytes on disk per entry, against the 8,000 of the numbers.

use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion};
use klepto::archive::{Archive, DirArchive, HdfArchive, HdfDirArchive, SqlArchive};
use klepto::keymap::HashKey;
use klepto::Memo;

use super::key;

/// Entries in the archives of the single-operation benches.
const ENTRIES: u64 = 1_000;
/// Entries dumped and loaded.
const BULK: u64 = 10_000;

/// The value of `x`: 1,000 numbers.
fn series(x: u64) -> Vec<f64> {
    (0..1_000).map(|i| (x * 1_000 + i) as f64 * 0.5).collect()
}

type Open<A> = fn(&Path) -> A;

fn sql(dir: &Path) -> SqlArchive<HashKey, Vec<f64>> {
    SqlArchive::open(dir.join("v.db").to_str().expect("utf-8")).expect("open")
}
fn plain_dir(dir: &Path) -> DirArchive<HashKey, Vec<f64>> {
    DirArchive::open(dir.join("v.d")).expect("open")
}
fn hdf(dir: &Path) -> HdfArchive<HashKey, Vec<f64>> {
    HdfArchive::open(dir.join("v.h5")).expect("open")
}
fn hdf_dir(dir: &Path) -> HdfDirArchive<HashKey, Vec<f64>> {
    HdfDirArchive::open(dir.join("v.h5d")).expect("open")
}

/// Insert and get of one entry in an archive of `ENTRIES`.
fn ops<A: Archive<HashKey, Vec<f64>>>(
    insert: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    open: Open<A>,
) {
    let dir = tempfile::tempdir().expect("temp dir");
    let a = open(dir.path());
    a.extend((0..ENTRIES).map(|x| (key(x), series(x))).collect())
        .expect("fill");
    let keys: Vec<HashKey> = (0..ENTRIES).map(key).collect();
    let v = series(7);
    let mut i = 0;
    insert.bench_function(format!("insert/{name}"), |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            a.insert(keys[i], v.clone()).expect("insert")
        })
    });
    insert.bench_function(format!("get/{name}"), |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            a.get(&keys[i]).expect("get").expect("present")
        })
    });
}

/// The memo of the bulk benches: `series` over `u64`, unbounded.
type SeriesMemo<A> = klepto::PlainMemo<
    fn(u64) -> Vec<f64>,
    u64,
    Vec<f64>,
    klepto::keymap::HashKeymap,
    klepto::policy::Unbounded,
    A,
>;

/// A memo of `BULK` computed `series`, unsaved, over archive `a`.
fn full_memo<A: Archive<HashKey, Vec<f64>>>(a: A) -> SeriesMemo<A> {
    let memo = Memo::builder()
        .inf()
        .archive(a)
        .build(series as fn(u64) -> Vec<f64>);
    for x in 0..BULK {
        memo.call(x);
    }
    memo
}

fn dump_load<A: Archive<HashKey, Vec<f64>>>(c: &mut Criterion, name: &str, open: Open<A>) {
    let mut g = c.benchmark_group("vec1000_dump_10k");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    super::bench_dump(
        &mut g,
        name,
        |dir| full_memo(open(dir)),
        |memo| memo.dump().expect("dump"),
    );
    g.finish();

    let dir = tempfile::tempdir().expect("temp dir");
    full_memo(open(dir.path())).dump().expect("dump");
    let mut g = c.benchmark_group("vec1000_load_10k");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    g.bench_function(name, |b| {
        b.iter(|| {
            let memo = Memo::builder()
                .inf()
                .archive(open(dir.path()))
                .build(series);
            memo.load().expect("load");
            assert_eq!(memo.info().size, BULK as usize);
            memo
        })
    });
    g.finish();
    println!(
        "{name}: {:.0} bytes on disk per entry (the numbers: 8000)",
        disk_bytes(dir.path()) as f64 / BULK as f64
    );
}

/// Bytes of every file under `path`.
fn disk_bytes(path: &Path) -> u64 {
    let mut total = 0;
    let mut todo: Vec<PathBuf> = vec![path.to_path_buf()];
    while let Some(p) = todo.pop() {
        let meta = std::fs::metadata(&p).expect("stat");
        if meta.is_dir() {
            todo.extend(
                std::fs::read_dir(&p)
                    .expect("list")
                    .map(|e| e.expect("entry").path()),
            );
        } else {
            total += meta.len();
        }
    }
    total
}

pub fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("vec1000_op");
    g.measurement_time(Duration::from_secs(5));
    ops(&mut g, "sql", sql);
    ops(&mut g, "dir", plain_dir);
    ops(&mut g, "hdf", hdf);
    ops(&mut g, "hdfdir", hdf_dir);
    g.finish();
    dump_load(c, "sql", sql);
    dump_load(c, "dir", plain_dir);
    dump_load(c, "hdf", hdf);
    dump_load(c, "hdfdir", hdf_dir);
}
