//! klepto-cache's server archives measured from a user's binary (default
//! release profile), next to the raw drivers doing the same work:
//!
//! * archive `get` and `insert` (`u64 -> String` of 32 characters) against
//!   a prepared `postgres` statement / a `redis` `GET`/`SET` moving values
//!   of the envelope's size under the same key bytes;
//! * a memo hit through Redis (a `.no_cache()` memo: every call is a memory
//!   miss and an archive load) against a raw `GET` of the same Redis key;
//!
//! each on two access patterns: one hot key asked again and again, and keys
//! drawn uniformly from 10,000 stored ones. Every case runs 7 rounds (after
//! one warm-up round); within a round klepto and raw alternate in blocks of
//! 100 operations (alternating which goes first), so both see the same
//! background. It prints the medians over rounds, the ratio klepto/raw,
//! and the client thread's CPU time per operation (what each side costs
//! the client, apart from waiting for the server).
//!
//! ```text
//! eval "$(bash ../../main/scripts/services.sh env)"
//! cargo run --release                  # the comparison
//! cargo run --release -- probe OP N    # N operations of one kind, for strace / MONITOR
//! ```
//!
//! Probe operations: pg-get pg-raw-get pg-insert pg-raw-insert pg-extend
//! pg-raw-extend pg-miss pg-miss-lease redis-get redis-raw-get redis-insert
//! redis-raw-insert redis-extend redis-raw-extend redis-hit redis-miss
//! redis-miss-lease. Redis probes bracket the operations with
//! `ECHO probe-begin` / `ECHO probe-end`, visible in `redis-cli MONITOR`.
//!
//! Tables and namespaces `bench_outside*` are removed before and after.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use klepto::archive::{Archive, Backend, RedisArchive, SqlArchive};
use klepto::keymap::{HashKey, HashKeymap};
use klepto::policy::{Lru, NoCache};
use klepto::{Memo, PlainMemo};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

const ROWS: u64 = 10_000;
const KEY0: u64 = 1_000_000;
/// The key of the hot pattern.
const HOT: u64 = KEY0 + 4_242;
const ROUNDS: usize = 7;
const BATCH: u64 = 1_000;
const SEED: u64 = 0x6b6c_6570_746f;

const NAME: &str = "bench_outside";
const RAW: &str = "bench_outside_raw";
const MEMO: &str = "bench_outside_memo";
const PLAIN: &str = "bench_outside_plain";
const LEASED: &str = "bench_outside_lease";

fn value(x: u64) -> String {
    format!("{x:032}")
}

fn raw_value(x: u64, len: usize) -> Vec<u8> {
    // The same formatting work as the archive's value, padded to `len`.
    let mut bytes = value(x).into_bytes();
    bytes.resize(len, b' ');
    bytes
}

fn msgpack_u64(x: u64) -> Vec<u8> {
    rmp_serde::to_vec(&x).expect("encode")
}

fn with_param(url: &str, name: &str, value: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{name}={value}")
}

type ServerMemo<P, A> = PlainMemo<fn(u64) -> String, u64, String, HashKeymap, P, A>;

static FRESH: AtomicU64 = AtomicU64::new(1 << 40);

fn miss_memo<A: Archive<HashKey, String>>(a: A, name: &str, lease: bool) -> ServerMemo<Lru, A> {
    let b = Memo::builder()
        .lru(1_024)
        .name(name)
        .write_through()
        .archive(a);
    let b = if lease {
        b.lease(Duration::from_secs(10))
    } else {
        b
    };
    b.build(value as fn(u64) -> String)
}

// ---------------------------------------------------------------- PostgreSQL

struct RawPg {
    client: postgres::Client,
    get: postgres::Statement,
    upsert: postgres::Statement,
    upsert_many: postgres::Statement,
}

impl RawPg {
    fn connect(url: &str) -> RawPg {
        let mut client = postgres::Client::connect(url, postgres::NoTls).expect("connect");
        client
            .batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS {RAW} (key BYTEA PRIMARY KEY, value BYTEA NOT NULL)"
            ))
            .expect("create");
        let get = client
            .prepare(&format!("SELECT value FROM {RAW} WHERE key = $1"))
            .expect("prepare");
        let upsert = client
            .prepare(&format!(
                "INSERT INTO {RAW} (key, value) VALUES ($1, $2) \
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
            ))
            .expect("prepare");
        let upsert_many = client
            .prepare(&format!(
                "INSERT INTO {RAW} (key, value) SELECT * FROM unnest($1::bytea[], $2::bytea[]) \
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
            ))
            .expect("prepare");
        RawPg {
            client,
            get,
            upsert,
            upsert_many,
        }
    }

    fn get(&mut self, x: u64) -> Vec<u8> {
        self.client
            .query_opt(&self.get, &[&msgpack_u64(x)])
            .expect("raw get")
            .expect("stored")
            .get(0)
    }

    fn insert(&mut self, x: u64, len: usize) {
        self.client
            .execute(&self.upsert, &[&msgpack_u64(x), &raw_value(x, len)])
            .expect("raw upsert");
    }

    fn batch(&mut self, first: u64, n: u64, len: usize) {
        let keys: Vec<Vec<u8>> = (first..first + n).map(msgpack_u64).collect();
        let values: Vec<Vec<u8>> = (first..first + n).map(|x| raw_value(x, len)).collect();
        let mut tx = self.client.transaction().expect("begin");
        tx.execute(&self.upsert_many, &[&keys, &values])
            .expect("raw batch");
        tx.commit().expect("commit");
    }
}

fn pg_cleanup(url: &str) {
    let mut c = postgres::Client::connect(url, postgres::NoTls).expect("connect");
    c.batch_execute(&format!(
        "DROP TABLE IF EXISTS \"{NAME}\", \"{RAW}\", \"{MEMO}\", \"{PLAIN}\", \"{LEASED}\""
    ))
    .expect("drop");
    let leases: bool = c
        .query_one("SELECT to_regclass('klepto_leases') IS NOT NULL", &[])
        .expect("lease table?")
        .get(0);
    if leases {
        c.execute(
            "DELETE FROM klepto_leases WHERE tbl LIKE 'bench\\_outside%'",
            &[],
        )
        .expect("delete leases");
    }
}

struct Pg {
    url: String,
    archive: SqlArchive<u64, String>,
    raw: RawPg,
    len: usize,
}

impl Pg {
    fn open(url: &str) -> Pg {
        pg_cleanup(url);
        let archive: SqlArchive<u64, String> =
            SqlArchive::open(with_param(url, "table", NAME)).expect("open");
        archive
            .extend((KEY0..KEY0 + ROWS).map(|x| (x, value(x))).collect())
            .expect("fill");
        let len = archive
            .backend()
            .get(&msgpack_u64(KEY0))
            .expect("read")
            .expect("stored")
            .len();
        let mut raw = RawPg::connect(url);
        raw.batch(KEY0, ROWS, len);
        Pg {
            url: url.to_owned(),
            archive,
            raw,
            len,
        }
    }

    fn hashed(&self) -> SqlArchive<HashKey, String> {
        SqlArchive::open(with_param(&self.url, "table", NAME)).expect("open")
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        pg_cleanup(&self.url);
    }
}

// --------------------------------------------------------------------- Redis

fn unlink_matching(conn: &mut redis::Connection, pattern: &str) {
    let mut cursor = 0_u64;
    loop {
        let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1_000)
            .query(conn)
            .expect("scan");
        if !keys.is_empty() {
            redis::cmd("UNLINK")
                .arg(&keys)
                .query::<()>(conn)
                .expect("unlink");
        }
        if next == 0 {
            return;
        }
        cursor = next;
    }
}

fn prefix(kind: &str, ns: &str) -> String {
    format!("{kind}:{}:{ns}:", ns.len())
}

fn redis_cleanup(url: &str) {
    let mut conn = redis::Client::open(url)
        .expect("url")
        .get_connection()
        .expect("connect");
    for ns in [NAME, MEMO, PLAIN, LEASED] {
        for kind in ["klepto", "klepto-lease", "rawkey"] {
            unlink_matching(&mut conn, &format!("{}*", prefix(kind, ns)));
        }
    }
}

struct Rd {
    url: String,
    archive: RedisArchive<u64, String>,
    conn: redis::Connection,
    prefix: Vec<u8>,
    len: usize,
    memo: ServerMemo<NoCache, RedisArchive<HashKey, String>>,
    /// The Redis key of the memo's result for `KEY0 + i`.
    memo_keys: Vec<Vec<u8>>,
}

impl Rd {
    fn open(url: &str) -> Rd {
        redis_cleanup(url);
        let archive: RedisArchive<u64, String> =
            RedisArchive::open(with_param(url, "ns", NAME)).expect("open");
        archive
            .extend((KEY0..KEY0 + ROWS).map(|x| (x, value(x))).collect())
            .expect("fill");
        let len = archive
            .backend()
            .get(&msgpack_u64(KEY0))
            .expect("read")
            .expect("stored")
            .len();
        let conn = redis::Client::open(url)
            .expect("url")
            .get_connection()
            .expect("connect");
        let memo = Memo::builder()
            .no_cache()
            .name(MEMO)
            .archive(RedisArchive::open(with_param(url, "ns", NAME)).expect("open"))
            .build(value as fn(u64) -> String);
        let hashed: Vec<HashKey> = (KEY0..KEY0 + ROWS)
            .map(|x| memo.key(&x).expect("key"))
            .collect();
        memo.archive()
            .extend(
                hashed
                    .iter()
                    .zip(KEY0..)
                    .map(|(k, x)| (*k, value(x)))
                    .collect(),
            )
            .expect("fill the memo");
        let memo_prefix = prefix("klepto", MEMO);
        let memo_keys = hashed
            .iter()
            .map(|k| {
                [
                    memo_prefix.as_bytes(),
                    &rmp_serde::to_vec(k).expect("encode"),
                ]
                .concat()
            })
            .collect();
        let mut rd = Rd {
            url: url.to_owned(),
            archive,
            conn,
            prefix: prefix("rawkey", NAME).into_bytes(),
            len,
            memo,
            memo_keys,
        };
        rd.raw_batch(KEY0, ROWS);
        assert!(rd.raw_memo_get(KEY0).is_some(), "raw key = memo key");
        rd
    }

    fn raw_key(&self, x: u64) -> Vec<u8> {
        [&self.prefix[..], &msgpack_u64(x)].concat()
    }

    fn raw_get(&mut self, x: u64) -> Vec<u8> {
        let key = self.raw_key(x);
        let v: Option<Vec<u8>> = redis::cmd("GET")
            .arg(key)
            .query(&mut self.conn)
            .expect("get");
        v.expect("stored")
    }

    fn raw_set(&mut self, x: u64) {
        let key = self.raw_key(x);
        redis::cmd("SET")
            .arg(key)
            .arg(raw_value(x, self.len))
            .query::<()>(&mut self.conn)
            .expect("set");
    }

    fn raw_batch(&mut self, first: u64, n: u64) {
        let mut pipe = redis::pipe();
        pipe.atomic();
        for x in first..first + n {
            pipe.cmd("SET")
                .arg(self.raw_key(x))
                .arg(raw_value(x, self.len))
                .ignore();
        }
        pipe.query::<()>(&mut self.conn).expect("pipeline");
    }

    fn raw_memo_get(&mut self, x: u64) -> Option<Vec<u8>> {
        redis::cmd("GET")
            .arg(&self.memo_keys[(x - KEY0) as usize])
            .query(&mut self.conn)
            .expect("get")
    }

    fn echo(&mut self, text: &str) {
        redis::cmd("ECHO")
            .arg(text)
            .query::<String>(&mut self.conn)
            .expect("echo");
    }

    fn hashed(&self) -> RedisArchive<HashKey, String> {
        RedisArchive::open(with_param(&self.url, "ns", NAME)).expect("open")
    }
}

impl Drop for Rd {
    fn drop(&mut self) {
        redis_cleanup(&self.url);
    }
}

// --------------------------------------------------------------- comparison

/// Operations per block: klepto and raw alternate block by block within a
/// round, so both see the same background.
const BLOCK: usize = 100;

/// A comparison's result: per round, each side's mean wall-clock and
/// thread-CPU nanoseconds per operation.
struct Outcome {
    server: &'static str,
    op: &'static str,
    pattern: &'static str,
    n: usize,
    klepto: Vec<(f64, f64)>,
    raw: Vec<(f64, f64)>,
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// CPU time of the calling thread (what the client spends, not waits).
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a valid pointer to a timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Wall and CPU time of operations `from..to` on `keys` (cycled).
fn time_block(
    keys: &[u64],
    from: usize,
    to: usize,
    op: &mut dyn FnMut(u64),
) -> (Duration, Duration) {
    let (cpu, start) = (thread_cpu(), Instant::now());
    for i in from..to {
        op(keys[i % keys.len()]);
    }
    (start.elapsed(), thread_cpu() - cpu)
}

/// One round: `n` operations per side in blocks of `BLOCK`, alternating
/// which side goes first; each side's (wall, CPU) ns per operation.
fn round(
    n: usize,
    keys: &[u64],
    offset: usize,
    klepto: &mut dyn FnMut(u64),
    raw: &mut dyn FnMut(u64),
) -> ((f64, f64), (f64, f64)) {
    let (mut k, mut r) = (
        (Duration::ZERO, Duration::ZERO),
        (Duration::ZERO, Duration::ZERO),
    );
    let add = |sum: &mut (Duration, Duration), t: (Duration, Duration)| {
        sum.0 += t.0;
        sum.1 += t.1;
    };
    for (b, from) in (0..n).step_by(BLOCK).enumerate() {
        let (from, to) = (offset + from, offset + (from + BLOCK).min(n));
        if b % 2 == 0 {
            add(&mut k, time_block(keys, from, to, klepto));
            add(&mut r, time_block(keys, from, to, raw));
        } else {
            add(&mut r, time_block(keys, from, to, raw));
            add(&mut k, time_block(keys, from, to, klepto));
        }
    }
    let per_op = |t: (Duration, Duration)| {
        (
            t.0.as_nanos() as f64 / n as f64,
            t.1.as_nanos() as f64 / n as f64,
        )
    };
    (per_op(k), per_op(r))
}

/// A warm-up round, then `ROUNDS` rounds; each round runs both sides on
/// the same keys, interleaved block by block.
#[allow(clippy::too_many_arguments)]
fn compare(
    out: &mut Vec<Outcome>,
    server: &'static str,
    op: &'static str,
    pattern: &'static str,
    n: usize,
    keys: &[u64],
    klepto: &mut dyn FnMut(u64),
    raw: &mut dyn FnMut(u64),
) {
    round(n / 4, keys, 0, klepto, raw);
    let (mut k, mut r) = (Vec::new(), Vec::new());
    for i in 0..ROUNDS {
        let (a, b) = round(n, keys, i * n, klepto, raw);
        k.push(a);
        r.push(b);
    }
    let o = Outcome {
        server,
        op,
        pattern,
        n,
        klepto: k,
        raw: r,
    };
    let wall = |v: &[(f64, f64)]| median(&v.iter().map(|t| t.0).collect::<Vec<_>>());
    eprintln!(
        "{server} {op} {pattern}: klepto {:.1} µs, raw {:.1} µs",
        wall(&o.klepto) / 1e3,
        wall(&o.raw) / 1e3
    );
    out.push(o);
}

fn patterns() -> [(&'static str, Vec<u64>); 2] {
    let mut rng = StdRng::seed_from_u64(SEED);
    let uniform = (0..200_000)
        .map(|_| KEY0 + rng.random_range(0..ROWS))
        .collect();
    [("hot key", vec![HOT]), ("uniform 10k", uniform)]
}

fn run_comparison(pg: Option<&mut Pg>, rd: Option<&mut Rd>) {
    let mut out = Vec::new();
    if let Some(pg) = pg {
        for (pattern, keys) in patterns() {
            let (archive, raw, len) = (&pg.archive, &mut pg.raw, pg.len);
            compare(
                &mut out,
                "postgres",
                "get",
                pattern,
                2_000,
                &keys,
                &mut |x| drop(black_box(archive.get(&x).expect("get").expect("stored"))),
                &mut |x| drop(black_box(raw.get(x))),
            );
            let raw = &mut pg.raw;
            compare(
                &mut out,
                "postgres",
                "insert",
                pattern,
                1_000,
                &keys,
                &mut |x| archive.insert(x, value(x)).expect("insert"),
                &mut |x| raw.insert(x, len),
            );
        }
    }
    if let Some(rd) = rd {
        for (pattern, keys) in patterns() {
            let archive = rd.archive.clone();
            compare(
                &mut out,
                "redis",
                "get",
                pattern,
                5_000,
                &keys,
                &mut |x| drop(black_box(archive.get(&x).expect("get").expect("stored"))),
                &mut |x| drop(black_box(rd.raw_get(x))),
            );
            compare(
                &mut out,
                "redis",
                "insert",
                pattern,
                5_000,
                &keys,
                &mut |x| archive.insert(x, value(x)).expect("insert"),
                &mut |x| rd.raw_set(x),
            );
            // The memo's and the raw side's state are disjoint fields.
            let (memo, conn, memo_keys) = (&rd.memo, &mut rd.conn, &rd.memo_keys);
            compare(
                &mut out,
                "redis",
                "memo hit via archive vs GET",
                pattern,
                5_000,
                &keys,
                &mut |x| drop(black_box(memo.call(x))),
                &mut |x| {
                    let v: Option<Vec<u8>> = redis::cmd("GET")
                        .arg(&memo_keys[(x - KEY0) as usize])
                        .query(&mut *conn)
                        .expect("get");
                    black_box(v.expect("stored"));
                },
            );
        }
        let info = rd.memo.info();
        assert_eq!((info.misses, info.errors), (0, 0), "memo: {info:?}");
    }
    println!(
        "\n{ROUNDS} rounds per case after a warm-up, klepto and raw interleaved in blocks of {BLOCK} \
         operations; medians over rounds of each round's mean per operation (wall clock), and of \
         the client thread's CPU time per operation:"
    );
    println!(
        "| server | operation | pattern | ops/round | klepto µs/op | klepto ops/s | raw µs/op | raw ops/s | \
         klepto/raw (medians) | per-round ratios min..max | client CPU µs/op klepto / raw |"
    );
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|---|---|");
    for o in &out {
        let wall = |v: &[(f64, f64)]| median(&v.iter().map(|t| t.0).collect::<Vec<_>>());
        let cpu = |v: &[(f64, f64)]| median(&v.iter().map(|t| t.1).collect::<Vec<_>>());
        let (k, r) = (wall(&o.klepto), wall(&o.raw));
        let ratios: Vec<f64> = o
            .klepto
            .iter()
            .zip(&o.raw)
            .map(|(a, b)| a.0 / b.0)
            .collect();
        let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = ratios.iter().copied().fold(0.0, f64::max);
        println!(
            "| {} | {} | {} | {} | {:.1} | {:.0} | {:.1} | {:.0} | {:.2}x | {:.2}..{:.2} | {:.1} / {:.1} |",
            o.server,
            o.op,
            o.pattern,
            o.n,
            k / 1e3,
            1e9 / k,
            r / 1e3,
            1e9 / r,
            k / r,
            lo,
            hi,
            cpu(&o.klepto) / 1e3,
            cpu(&o.raw) / 1e3,
        );
    }
}

// ------------------------------------------------------------------- probes

fn probe(op: &str, n: u64, pg: Option<&mut Pg>, rd: Option<&mut Rd>) {
    let keys: Vec<u64> = {
        let mut rng = StdRng::seed_from_u64(SEED);
        (0..n).map(|_| KEY0 + rng.random_range(0..ROWS)).collect()
    };
    let fresh = || FRESH.fetch_add(1, Relaxed);
    if let Some(server) = op.strip_prefix("pg-") {
        let pg = pg.expect("KLEPTO_PG_URL is needed for pg probes");
        let misses = match server {
            "miss" => Some(miss_memo(pg.hashed(), PLAIN, false)),
            "miss-lease" => Some(miss_memo(pg.hashed(), LEASED, true)),
            _ => None,
        };
        // Tables and statements get ready before the counted part.
        if let Some(m) = &misses {
            m.call(fresh());
        }
        eprintln!("probe-begin {op} {n}");
        for &x in &keys {
            match server {
                "get" => drop(pg.archive.get(&x).expect("get")),
                "raw-get" => drop(pg.raw.get(x)),
                "insert" => pg.archive.insert(x, value(x)).expect("insert"),
                "raw-insert" => pg.raw.insert(x, pg.len),
                "extend" => pg
                    .archive
                    .extend((KEY0..KEY0 + BATCH).map(|x| (x, value(x))).collect())
                    .expect("extend"),
                "raw-extend" => pg.raw.batch(KEY0, BATCH, pg.len),
                "miss" | "miss-lease" => drop(misses.as_ref().unwrap().call(fresh())),
                _ => panic!("unknown probe {op}"),
            }
        }
        eprintln!("probe-end {op}");
    } else if let Some(server) = op.strip_prefix("redis-") {
        let rd = rd.expect("KLEPTO_REDIS_URL is needed for redis probes");
        let misses = match server {
            "miss" => Some(miss_memo(rd.hashed(), PLAIN, false)),
            "miss-lease" => Some(miss_memo(rd.hashed(), LEASED, true)),
            _ => None,
        };
        if let Some(m) = &misses {
            m.call(fresh());
        }
        rd.echo(&format!("probe-begin {op} {n}"));
        for &x in &keys {
            match server {
                "get" => drop(rd.archive.get(&x).expect("get")),
                "raw-get" => drop(rd.raw_get(x)),
                "insert" => rd.archive.insert(x, value(x)).expect("insert"),
                "raw-insert" => rd.raw_set(x),
                "extend" => rd
                    .archive
                    .extend((KEY0..KEY0 + BATCH).map(|x| (x, value(x))).collect())
                    .expect("extend"),
                "raw-extend" => rd.raw_batch(KEY0, BATCH),
                "hit" => drop(rd.memo.call(x)),
                "miss" | "miss-lease" => drop(misses.as_ref().unwrap().call(fresh())),
                _ => panic!("unknown probe {op}"),
            }
        }
        rd.echo(&format!("probe-end {op}"));
    } else {
        panic!("unknown probe {op}");
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let pg_url = std::env::var("KLEPTO_PG_URL")
        .ok()
        .filter(|u| !u.is_empty());
    let redis_url = std::env::var("KLEPTO_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty());
    for (var, url) in [("KLEPTO_PG_URL", &pg_url), ("KLEPTO_REDIS_URL", &redis_url)] {
        if url.is_none() {
            println!(
                "skipped: {var} not set (start the servers with `bash ../../main/scripts/services.sh start` \
                 and `eval \"$(bash ../../main/scripts/services.sh env)\"`)"
            );
        }
    }
    let probe_op = match args.first().map(String::as_str) {
        Some("probe") => Some((
            args.get(1).cloned().expect("probe OP N"),
            args.get(2)
                .and_then(|n| n.parse::<u64>().ok())
                .expect("probe OP N"),
        )),
        Some(other) => panic!("unknown argument {other}"),
        None => None,
    };
    // Only the server a probe needs.
    let wants = |server: &str| {
        probe_op
            .as_ref()
            .is_none_or(|(op, _)| op.starts_with(server))
    };
    let mut pg = pg_url.as_deref().filter(|_| wants("pg-")).map(Pg::open);
    let mut rd = redis_url
        .as_deref()
        .filter(|_| wants("redis-"))
        .map(Rd::open);
    if let Some(pg) = &pg {
        println!("postgres: envelope (and raw value) {} bytes", pg.len);
    }
    if let Some(rd) = &rd {
        println!("redis: envelope (and raw value) {} bytes", rd.len);
    }
    match probe_op {
        Some((op, n)) => probe(&op, n, pg.as_mut(), rd.as_mut()),
        None => run_comparison(pg.as_mut(), rd.as_mut()),
    }
}
