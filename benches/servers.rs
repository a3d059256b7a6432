//! Speed of the server archives (PostgreSQL and Redis, on loopback), next
//! to the raw drivers doing the same work in the same run.
//!
//! The archives store `u64 -> String` entries (a 32-character string).
//! The raw peers store, under the same key bytes (the key's MessagePack,
//! encoded per operation as a user would), the same string padded to as
//! many bytes as the archive's envelope (55), so both move the same bytes
//! over the wire; klepto also builds the envelope on writes and checks it
//! (checksum, key) on reads.
//!
//! * `<server>/1_thread/*`: `get` (a hit) and `insert` (replacing a row) of
//!   pseudo-random keys among 10,000 stored ones: `klepto` (the archive)
//!   against `raw`: for PostgreSQL one `postgres::Client` with prepared
//!   `SELECT value FROM t WHERE key = $1` and
//!   `INSERT … ON CONFLICT (key) DO UPDATE` on a table of the same shape
//!   (`key BYTEA PRIMARY KEY, value BYTEA`); for Redis one
//!   `redis::Connection` with `GET`/`SET`.
//! * `<server>/4_threads/*`: the same with 4 client threads sharing one
//!   archive (and its pool) against 4 raw connections, one per thread;
//!   the time is wall-clock time over total operations.
//! * `<server>/extend_1000/*`: `extend` of 1,000 entries (`klepto`), the raw
//!   driver's batch doing the same (`raw_batch`: PostgreSQL one
//!   transaction with one `unnest` upsert; Redis one `MULTI`/`EXEC`
//!   pipeline of `SET`s), and 1,000 single raw upserts or `SET`s
//!   (`raw_single`); throughput is per entry.
//! * `redis/memo_hit/*`: a `.no_cache()` memo over Redis, so every call is a
//!   memory miss and an archive load (`klepto_memo`), against a raw `GET`
//!   of the very same Redis key (`raw_get`).
//! * `<server>/lease_miss/*`: a miss (a new key every call) of an LRU,
//!   write-through memo without (`no_lease`) and with `.lease(10 s)`
//!   (`lease`): the lease's extra cost per miss.
//!
//! After criterion (in a full run, not with a filter), a latency table gives
//! ops/s, p50 and p99 over 20,000 timed operations (fewer where they take
//! over 4 s) for each of these at 1 and 4 client threads, and the ratio of
//! klepto to its peer; the two sides run interleaved in 20 chunks, so both
//! see the same background load.
//!
//! On a virtual machine the loopback round trip depends much on whether
//! the CPUs are idle (a halted vCPU is slow to wake for each reply): a
//! Redis `GET` took 25 µs on a busy and 70 µs on an idle 2-core VM. Compare
//! klepto with its peer of the same run, not runs with each other.
//!
//! Needs `KLEPTO_PG_URL` and `KLEPTO_REDIS_URL`; a server whose variable is
//! unset is skipped with one line. Run with
//!
//! ```text
//! bash scripts/services.sh start && eval "$(bash scripts/services.sh env)"
//! cargo bench --features postgres,redis --bench servers
//! ```
//!
//! (or `-- --quick` for a fast pass). The tables and namespaces it uses
//! (`bench_servers*`) are removed before and after the run.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput};
use klepto::archive::{Archive, Backend, RedisArchive, SqlArchive};
use klepto::keymap::{HashKey, HashKeymap};
use klepto::policy::{Lru, NoCache, Policy};
use klepto::{Memo, PlainMemo};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// Entries stored before the `get`/`insert` benches.
const ROWS: u64 = 10_000;
/// The first key (keys from here on are 5 bytes of MessagePack).
const KEY0: u64 = 1_000_000;
/// Entries per `extend`.
const BATCH: u64 = 1_000;
/// Client threads of the concurrent benches.
const THREADS: usize = 4;
/// Timed operations per row of the latency table...
const LATENCY_OPS: usize = 20_000;
/// ...unless they take longer than this (PostgreSQL commits)...
const BUDGET: Duration = Duration::from_secs(4);
/// ...in this many chunks, alternating between klepto and its peer.
const CHUNKS: usize = 20;
/// The lease of the leased memo.
const LEASE_TTL: Duration = Duration::from_secs(10);
const SEED: u64 = 0x6b6c_6570_746f;

/// The archive's table / namespace; the others are the raw peer's table,
/// and the memos' namespaces.
const NAME: &str = "bench_servers";
const RAW: &str = "bench_servers_raw";
const MEMO: &str = "bench_servers_memo";
const PLAIN: &str = "bench_servers_plain";
const LEASED: &str = "bench_servers_lease";

/// The stored (and memoized) value: 32 characters.
fn value(x: u64) -> String {
    format!("{x:032}")
}

/// A raw peer's value: as many bytes as the archive's envelope.
fn raw_value(x: u64, len: usize) -> Vec<u8> {
    // The same formatting work as the archive's value, padded to `len`.
    let mut bytes = value(x).into_bytes();
    bytes.resize(len, b' ');
    bytes
}

/// The key's bytes, as klepto stores them.
fn msgpack<T: serde::Serialize>(x: &T) -> Vec<u8> {
    rmp_serde::to_vec(x).expect("encode a key")
}

/// `n` pseudo-random stored keys.
fn row_keys(n: usize) -> Vec<u64> {
    let mut rng = StdRng::seed_from_u64(SEED);
    (0..n).map(|_| KEY0 + rng.random_range(0..ROWS)).collect()
}

/// `url` with one more query parameter.
fn with_param(url: &str, name: &str, value: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{name}={value}")
}

/// The URL in `var`, or `None` after one line saying the server is skipped.
fn server_url(var: &str, what: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            println!(
                "skipped: {var} not set, no {what} benches \
                 (bash scripts/services.sh start; eval \"$(bash scripts/services.sh env)\")"
            );
            None
        }
    }
}

/// Memos over a server archive: `value` over `u64` with hashed keys.
type ServerMemo<P, A> = PlainMemo<fn(u64) -> String, u64, String, HashKeymap, P, A>;

/// A write-through LRU memo named `name` over `archive`, leased or not.
fn miss_memo<A: Archive<HashKey, String>>(
    archive: A,
    name: &str,
    lease: bool,
) -> ServerMemo<Lru, A> {
    let builder = Memo::builder()
        .lru(1_024)
        .name(name)
        .write_through()
        .archive(archive);
    let builder = if lease {
        builder.lease(LEASE_TTL)
    } else {
        builder
    };
    builder.build(value as fn(u64) -> String)
}

/// Keys never asked for before, for misses.
static FRESH: AtomicU64 = AtomicU64::new(1 << 40);

fn fresh_key() -> u64 {
    FRESH.fetch_add(1, Relaxed)
}

/// Checks that a memo's calls went as the bench meant: no cache failure.
fn check_memo<P: Policy, A: Archive<HashKey, String>>(what: &str, memo: &ServerMemo<P, A>) {
    let info = memo.info();
    assert_eq!(info.errors, 0, "{what}: cache failures during the bench");
    println!(
        "{what}: {} misses, {} loads, {} errors",
        info.misses, info.loads, info.errors
    );
}

/// One batch write of the `extend_1000` group.
#[derive(Clone, Copy)]
enum Batch {
    /// The archive's `extend`.
    Klepto,
    /// The raw driver's batch: one transaction or pipeline.
    Raw,
    /// 1,000 single raw writes.
    RawSingle,
}

/// A server, its archive and its raw peer, as the benches use them. `t` is
/// the client thread (each raw peer thread has its own connection).
trait Server: Sync {
    fn name(&self) -> &'static str;
    fn get(&self, klepto: bool, t: usize, x: u64);
    fn insert(&self, klepto: bool, t: usize, x: u64);
    fn extend(&self, how: Batch);
}

// ---------------------------------------------------------------- PostgreSQL

/// One raw PostgreSQL connection with its prepared statements on `RAW`.
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
            .expect("create the raw table");
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
        let row = self
            .client
            .query_opt(&self.get, &[&msgpack(&x)])
            .expect("raw get")
            .expect("a stored row");
        row.get(0)
    }

    fn insert(&mut self, x: u64, len: usize) {
        self.client
            .execute(&self.upsert, &[&msgpack(&x), &raw_value(x, len)])
            .expect("raw upsert");
    }

    /// One transaction, one statement: `n` rows from `first`.
    fn batch(&mut self, first: u64, n: u64, len: usize) {
        let keys: Vec<Vec<u8>> = (first..first + n).map(|x| msgpack(&x)).collect();
        let values: Vec<Vec<u8>> = (first..first + n).map(|x| raw_value(x, len)).collect();
        let mut tx = self.client.transaction().expect("begin");
        tx.execute(&self.upsert_many, &[&keys, &values])
            .expect("raw batch");
        tx.commit().expect("commit");
    }
}

/// Drops every table of the bench and its leftover leases.
fn pg_cleanup(url: &str) {
    let mut client = postgres::Client::connect(url, postgres::NoTls).expect("connect");
    let tables = [NAME, RAW, PLAIN, LEASED, MEMO]
        .map(|t| format!("\"{t}\""))
        .join(", ");
    client
        .batch_execute(&format!("DROP TABLE IF EXISTS {tables}"))
        .expect("drop the bench tables");
    let leases: bool = client
        .query_one("SELECT to_regclass('klepto_leases') IS NOT NULL", &[])
        .expect("look for the lease table")
        .get(0);
    if leases {
        client
            .execute(
                "DELETE FROM klepto_leases WHERE tbl LIKE 'bench\\_servers%'",
                &[],
            )
            .expect("delete the bench's leases");
    }
}

struct Pg {
    url: String,
    archive: SqlArchive<u64, String>,
    raw: Vec<Mutex<RawPg>>,
    /// The archive's envelope size, which the raw values copy.
    len: usize,
}

impl Pg {
    fn open(url: &str) -> Pg {
        pg_cleanup(url);
        let archive: SqlArchive<u64, String> =
            SqlArchive::open(with_param(url, "table", NAME)).expect("open the archive");
        archive
            .extend((KEY0..KEY0 + ROWS).map(|x| (x, value(x))).collect())
            .expect("fill the archive");
        let len = archive
            .backend()
            .get(&msgpack(&KEY0))
            .expect("read an envelope")
            .expect("stored")
            .len();
        let raw: Vec<Mutex<RawPg>> = (0..THREADS)
            .map(|_| Mutex::new(RawPg::connect(url)))
            .collect();
        raw[0].lock().unwrap().batch(KEY0, ROWS, len);
        println!("postgres: {ROWS} rows each; envelope (and raw value) {len} bytes");
        Pg {
            url: url.to_owned(),
            archive,
            raw,
            len,
        }
    }
}

impl Pg {
    /// An archive of hashed keys, for memos (which name their table).
    fn hashed(&self) -> SqlArchive<HashKey, String> {
        SqlArchive::open(with_param(&self.url, "table", NAME)).expect("open")
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        pg_cleanup(&self.url);
    }
}

impl Server for Pg {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn get(&self, klepto: bool, t: usize, x: u64) {
        if klepto {
            black_box(self.archive.get(&x).expect("get").expect("stored"));
        } else {
            black_box(self.raw[t].lock().unwrap().get(x));
        }
    }

    fn insert(&self, klepto: bool, t: usize, x: u64) {
        if klepto {
            self.archive.insert(x, value(x)).expect("insert");
        } else {
            self.raw[t].lock().unwrap().insert(x, self.len);
        }
    }

    fn extend(&self, how: Batch) {
        match how {
            Batch::Klepto => self
                .archive
                .extend((KEY0..KEY0 + BATCH).map(|x| (x, value(x))).collect())
                .expect("extend"),
            Batch::Raw => self.raw[0].lock().unwrap().batch(KEY0, BATCH, self.len),
            Batch::RawSingle => {
                let mut raw = self.raw[0].lock().unwrap();
                for x in KEY0..KEY0 + BATCH {
                    raw.insert(x, self.len);
                }
            }
        }
    }
}

// --------------------------------------------------------------------- Redis

/// Unlinks every key matching `pattern`.
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

/// `klepto:<n>:<ns>:`, klepto's prefix of a namespace's keys.
fn redis_prefix(kind: &str, ns: &str) -> String {
    format!("{kind}:{}:{ns}:", ns.len())
}

/// Removes every key of the bench: entries, leases, raw keys.
fn redis_cleanup(url: &str) {
    let mut conn = redis::Client::open(url)
        .expect("a Redis URL")
        .get_connection()
        .expect("connect");
    for ns in [NAME, MEMO, PLAIN, LEASED] {
        for kind in ["klepto", "klepto-lease", "rawkey"] {
            unlink_matching(&mut conn, &format!("{}*", redis_prefix(kind, ns)));
        }
    }
}

struct Redis {
    url: String,
    archive: RedisArchive<u64, String>,
    raw: Vec<Mutex<redis::Connection>>,
    /// `rawkey:<n>:<ns>:`, as long as the archive's prefix.
    prefix: Vec<u8>,
    len: usize,
}

impl Redis {
    fn open(url: &str) -> Redis {
        redis_cleanup(url);
        let archive: RedisArchive<u64, String> =
            RedisArchive::open(with_param(url, "ns", NAME)).expect("open the archive");
        archive
            .extend((KEY0..KEY0 + ROWS).map(|x| (x, value(x))).collect())
            .expect("fill the archive");
        let len = archive
            .backend()
            .get(&msgpack(&KEY0))
            .expect("read an envelope")
            .expect("stored")
            .len();
        let client = redis::Client::open(url).expect("a Redis URL");
        let raw: Vec<Mutex<redis::Connection>> = (0..THREADS)
            .map(|_| Mutex::new(client.get_connection().expect("connect")))
            .collect();
        let s = Redis {
            url: url.to_owned(),
            archive,
            raw,
            prefix: redis_prefix("rawkey", NAME).into_bytes(),
            len,
        };
        s.extend_raw(KEY0, ROWS);
        println!("redis: {ROWS} keys each; envelope (and raw value) {len} bytes");
        s
    }

    fn raw_key(&self, x: u64) -> Vec<u8> {
        [&self.prefix[..], &msgpack(&x)].concat()
    }

    /// One `MULTI`/`EXEC` pipeline of `SET`s.
    fn extend_raw(&self, first: u64, n: u64) {
        let mut pipe = redis::pipe();
        pipe.atomic();
        for x in first..first + n {
            pipe.cmd("SET")
                .arg(self.raw_key(x))
                .arg(raw_value(x, self.len))
                .ignore();
        }
        pipe.query::<()>(&mut *self.raw[0].lock().unwrap())
            .expect("raw pipeline");
    }
}

impl Redis {
    /// An archive of hashed keys, for memos (which name their namespace).
    fn hashed(&self) -> RedisArchive<HashKey, String> {
        RedisArchive::open(with_param(&self.url, "ns", NAME)).expect("open")
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        redis_cleanup(&self.url);
    }
}

impl Server for Redis {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn get(&self, klepto: bool, t: usize, x: u64) {
        if klepto {
            black_box(self.archive.get(&x).expect("get").expect("stored"));
        } else {
            let v: Option<Vec<u8>> = redis::cmd("GET")
                .arg(self.raw_key(x))
                .query(&mut *self.raw[t].lock().unwrap())
                .expect("raw get");
            black_box(v.expect("stored"));
        }
    }

    fn insert(&self, klepto: bool, t: usize, x: u64) {
        if klepto {
            self.archive.insert(x, value(x)).expect("insert");
        } else {
            redis::cmd("SET")
                .arg(self.raw_key(x))
                .arg(raw_value(x, self.len))
                .query::<()>(&mut *self.raw[t].lock().unwrap())
                .expect("raw set");
        }
    }

    fn extend(&self, how: Batch) {
        match how {
            Batch::Klepto => self
                .archive
                .extend((KEY0..KEY0 + BATCH).map(|x| (x, value(x))).collect())
                .expect("extend"),
            Batch::Raw => self.extend_raw(KEY0, BATCH),
            Batch::RawSingle => {
                let mut conn = self.raw[0].lock().unwrap();
                for x in KEY0..KEY0 + BATCH {
                    redis::cmd("SET")
                        .arg(self.raw_key(x))
                        .arg(raw_value(x, self.len))
                        .query::<()>(&mut *conn)
                        .expect("raw set");
                }
            }
        }
    }
}

/// A `.no_cache()` memo over Redis holding `ROWS` results, and the raw
/// Redis keys of those results.
struct MemoHit<'a> {
    memo: ServerMemo<NoCache, RedisArchive<HashKey, String>>,
    keys: Vec<u64>,
    redis: &'a Redis,
    raw_keys: Vec<Vec<u8>>,
}

impl<'a> MemoHit<'a> {
    fn new(redis: &'a Redis) -> MemoHit<'a> {
        let memo = Memo::builder()
            .no_cache()
            .name(MEMO)
            .archive(redis.hashed())
            .build(value as fn(u64) -> String);
        let keys: Vec<u64> = (KEY0..KEY0 + ROWS).collect();
        let hashed: Vec<HashKey> = keys.iter().map(|x| memo.key(x).expect("key")).collect();
        memo.archive()
            .extend(
                hashed
                    .iter()
                    .zip(&keys)
                    .map(|(k, &x)| (*k, value(x)))
                    .collect(),
            )
            .expect("fill the memo's namespace");
        let prefix = redis_prefix("klepto", MEMO);
        let raw_keys: Vec<Vec<u8>> = hashed
            .iter()
            .map(|k| [prefix.as_bytes(), &msgpack(k)].concat())
            .collect();
        let hit = MemoHit {
            memo,
            keys,
            redis,
            raw_keys,
        };
        assert!(hit.raw_get(0, 0).is_some(), "the raw key is the memo's key");
        hit
    }

    /// Calls the memo on the `i`-th key: a memory miss and an archive load.
    fn call(&self, i: usize) {
        black_box(self.memo.call(self.keys[i % self.keys.len()]));
    }

    /// A raw `GET` of the Redis key of the memo's `i`-th result.
    fn raw_get(&self, t: usize, i: usize) -> Option<Vec<u8>> {
        redis::cmd("GET")
            .arg(&self.raw_keys[i % self.raw_keys.len()])
            .query(&mut *self.redis.raw[t].lock().unwrap())
            .expect("raw get")
    }
}

// ------------------------------------------------------------------ benches

/// Runs `op(t, i)` for `i` in `0..iters/THREADS` (about) on each of
/// `THREADS` threads started together; the time from the first thread's
/// start to the last thread's end.
fn parallel(iters: u64, op: &(dyn Fn(usize, usize) + Sync)) -> Duration {
    let barrier = Barrier::new(THREADS);
    let spans: Vec<(Instant, Instant)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let n = iters / THREADS as u64 + u64::from((t as u64) < iters % THREADS as u64);
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    for i in 0..n as usize {
                        op(t, i);
                    }
                    (start, Instant::now())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let start = spans.iter().map(|s| s.0).min().unwrap();
    let end = spans.iter().map(|s| s.1).max().unwrap();
    end - start
}

/// Where the `i`-th operation of thread `t` looks in a key sequence.
fn index(t: usize, i: usize, len: usize) -> usize {
    (t * 1_031 + i) % len
}

fn single_ops(c: &mut Criterion, s: &dyn Server) {
    let keys = row_keys(4_096);
    for threads in [1, THREADS] {
        let label = if threads == 1 {
            "1_thread"
        } else {
            "4_threads"
        };
        let mut g = c.benchmark_group(format!("{}/{label}", s.name()));
        g.warm_up_time(Duration::from_secs(1));
        g.measurement_time(Duration::from_secs(3));
        g.sample_size(50);
        g.throughput(Throughput::Elements(1));
        for (op, insert) in [("get", false), ("insert", true)] {
            for (who, klepto) in [("klepto", true), ("raw", false)] {
                let run = |t: usize, i: usize| {
                    let x = keys[index(t, i, keys.len())];
                    if insert {
                        s.insert(klepto, t, x)
                    } else {
                        s.get(klepto, t, x)
                    }
                };
                g.bench_function(format!("{op}/{who}"), |b| {
                    if threads == 1 {
                        let mut i = 0;
                        b.iter(|| {
                            i += 1;
                            run(0, i)
                        })
                    } else {
                        b.iter_custom(|iters| parallel(iters, &run))
                    }
                });
            }
        }
        g.finish();
    }
}

fn extends(c: &mut Criterion, s: &dyn Server) {
    let mut g = c.benchmark_group(format!("{}/extend_1000", s.name()));
    g.throughput(Throughput::Elements(BATCH));
    g.sample_size(10);
    g.sampling_mode(SamplingMode::Flat);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(3));
    for (name, how) in [
        ("klepto", Batch::Klepto),
        ("raw_batch", Batch::Raw),
        ("raw_single", Batch::RawSingle),
    ] {
        g.bench_function(name, |b| b.iter(|| s.extend(how)));
    }
    g.finish();
}

fn memo_hits(c: &mut Criterion, hit: &MemoHit<'_>) {
    let mut g = c.benchmark_group("redis/memo_hit");
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(3));
    g.sample_size(50);
    g.throughput(Throughput::Elements(1));
    let order = row_keys(4_096);
    let mut i = 0;
    g.bench_function("klepto_memo", |b| {
        b.iter(|| {
            i += 1;
            hit.call((order[i % order.len()] - KEY0) as usize)
        })
    });
    g.bench_function("raw_get", |b| {
        b.iter(|| {
            i += 1;
            black_box(hit.raw_get(0, (order[i % order.len()] - KEY0) as usize))
        })
    });
    g.finish();
}

/// The memos of the lease benches, over one server's archive.
struct Misses<A: Archive<HashKey, String>> {
    plain: ServerMemo<Lru, A>,
    leased: ServerMemo<Lru, A>,
}

impl<A: Archive<HashKey, String> + Clone> Misses<A> {
    fn new(archive: A) -> Misses<A> {
        Misses {
            plain: miss_memo(archive.clone(), PLAIN, false),
            leased: miss_memo(archive, LEASED, true),
        }
    }
}

/// A miss of either memo of [`Misses`], on a key never asked for.
trait Miss: Sync {
    fn call(&self, lease: bool);
    fn check(&self, server: &str);
}

impl<A: Archive<HashKey, String>> Miss for Misses<A> {
    fn call(&self, lease: bool) {
        let memo = if lease { &self.leased } else { &self.plain };
        black_box(memo.call(fresh_key()));
    }

    fn check(&self, server: &str) {
        check_memo(&format!("{server} memo without lease"), &self.plain);
        check_memo(&format!("{server} memo with lease"), &self.leased);
    }
}

fn lease_misses(c: &mut Criterion, name: &str, m: &dyn Miss) {
    let mut g = c.benchmark_group(format!("{name}/lease_miss"));
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(3));
    g.sample_size(20);
    g.sampling_mode(SamplingMode::Flat);
    g.throughput(Throughput::Elements(1));
    g.bench_function("no_lease", |b| b.iter(|| m.call(false)));
    g.bench_function("lease", |b| b.iter(|| m.call(true)));
    g.finish();
}

// ------------------------------------------------------------ latency table

/// Throughput and per-operation latency of a run.
#[derive(Clone, Copy)]
struct Stats {
    rate: f64,
    p50: Duration,
    p99: Duration,
}

/// Every single operation's time, and the wall-clock time of the runs.
#[derive(Default)]
struct Timings {
    times: Vec<Duration>,
    wall: Duration,
}

impl Timings {
    /// The number of operations timed, and their statistics.
    fn stats(mut self) -> (usize, Stats) {
        self.times.sort_unstable();
        let times = &self.times;
        let pct = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
        let stats = Stats {
            rate: times.len() as f64 / self.wall.as_secs_f64(),
            p50: pct(0.50),
            p99: pct(0.99),
        };
        (times.len(), stats)
    }
}

/// Times `n` single operations `op(t, first + i)`, spread over `threads`
/// threads started together, each thread stopping early after `budget`;
/// adds them to `into`.
fn timed(
    threads: usize,
    n: usize,
    first: usize,
    budget: Duration,
    op: &(dyn Fn(usize, usize) + Sync),
    into: &mut Timings,
) {
    let barrier = Barrier::new(threads);
    let runs: Vec<(Instant, Instant, Vec<Duration>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let ops = n / threads + usize::from(t < n % threads);
                let barrier = &barrier;
                s.spawn(move || {
                    let mut times = Vec::with_capacity(ops);
                    barrier.wait();
                    let start = Instant::now();
                    for i in 0..ops {
                        let at = Instant::now();
                        op(t, first + i);
                        let end = Instant::now();
                        times.push(end - at);
                        if end - start > budget {
                            break;
                        }
                    }
                    (start, Instant::now(), times)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let start = runs.iter().map(|r| r.0).min().unwrap();
    let end = runs.iter().map(|r| r.1).max().unwrap();
    into.wall += end - start;
    into.times.extend(runs.into_iter().flat_map(|r| r.2));
}

/// `n` operations at one thread (at most [`BUDGET`]): their statistics.
fn latency(n: usize, op: &(dyn Fn(usize, usize) + Sync)) -> (usize, Stats) {
    let mut timings = Timings::default();
    timed(1, n, 0, BUDGET, op, &mut timings);
    timings.stats()
}

/// One row of the table: klepto (or the variant measured) against its peer.
struct Row {
    server: &'static str,
    op: String,
    threads: usize,
    ours: (&'static str, usize, Stats),
    peer: (&'static str, usize, Stats),
}

/// Measures `ours` and `peer` over `n` operations each (at most
/// [`BUDGET`] each), at 1 and at `THREADS` threads, interleaved in
/// [`CHUNKS`] chunks (alternating which goes first) so that both see the
/// same background.
fn rows(
    out: &mut Vec<Row>,
    server: &'static str,
    op: &str,
    n: usize,
    ours: (&'static str, &(dyn Fn(usize, usize) + Sync)),
    peer: (&'static str, &(dyn Fn(usize, usize) + Sync)),
) {
    for threads in [1, THREADS] {
        let (mut a, mut b) = (Timings::default(), Timings::default());
        let (chunk, budget) = (n / CHUNKS, BUDGET / CHUNKS as u32);
        for c in 0..CHUNKS {
            let first = c * chunk;
            if c % 2 == 0 {
                timed(threads, chunk, first, budget, ours.1, &mut a);
                timed(threads, chunk, first, budget, peer.1, &mut b);
            } else {
                timed(threads, chunk, first, budget, peer.1, &mut b);
                timed(threads, chunk, first, budget, ours.1, &mut a);
            }
        }
        let ((na, a), (nb, b)) = (a.stats(), b.stats());
        out.push(Row {
            server,
            op: op.to_owned(),
            threads,
            ours: (ours.0, na, a),
            peer: (peer.0, nb, b),
        });
    }
}

fn server_rows(
    out: &mut Vec<Row>,
    notes: &mut Vec<String>,
    s: &dyn Server,
    misses: &dyn Miss,
    slow: bool,
) {
    let keys = row_keys(LATENCY_OPS);
    let name = s.name();
    let at = |t: usize, i: usize| keys[index(t, i, keys.len())];
    rows(
        out,
        name,
        "get",
        LATENCY_OPS,
        ("klepto", &|t, i| s.get(true, t, at(t, i))),
        ("raw", &|t, i| s.get(false, t, at(t, i))),
    );
    rows(
        out,
        name,
        "insert",
        LATENCY_OPS,
        ("klepto", &|t, i| s.insert(true, t, at(t, i))),
        ("raw", &|t, i| s.insert(false, t, at(t, i))),
    );
    // Batches at one thread only (the raw single writes use connection 0).
    let n = if slow { 5 } else { 50 };
    let a = latency(50, &|_, _| s.extend(Batch::Klepto));
    let b = latency(50, &|_, _| s.extend(Batch::Raw));
    let single = latency(n, &|_, _| s.extend(Batch::RawSingle));
    let per_entry = |st: Stats| 1e6 / st.rate / BATCH as f64;
    notes.push(format!(
        "{name} extend, per entry (mean): klepto {:.2} µs, raw batch {:.2} µs, \
         1,000 single raw writes {:.2} µs: single writes / klepto extend = {:.1}x",
        per_entry(a.1),
        per_entry(b.1),
        per_entry(single.1),
        a.1.rate / single.1.rate,
    ));
    for peer in [
        ("raw batch", b.0, b.1),
        ("raw 1,000 single", single.0, single.1),
    ] {
        out.push(Row {
            server: name,
            op: "extend 1,000".to_owned(),
            threads: 1,
            ours: ("klepto", a.0, a.1),
            peer,
        });
    }
    rows(
        out,
        name,
        "memo miss, write-through",
        LATENCY_OPS,
        ("lease", &|_, _| misses.call(true)),
        ("no lease", &|_, _| misses.call(false)),
    );
}

fn latency_table(pg: Option<(&Pg, &dyn Miss)>, redis: Option<(&Redis, &dyn Miss, &MemoHit<'_>)>) {
    let (mut out, mut notes) = (Vec::new(), Vec::new());
    if let Some((pg, misses)) = pg {
        server_rows(&mut out, &mut notes, pg, misses, true);
    }
    if let Some((redis, misses, hit)) = redis {
        server_rows(&mut out, &mut notes, redis, misses, false);
        let order = row_keys(LATENCY_OPS);
        let at = |t: usize, i: usize| (order[index(t, i, order.len())] - KEY0) as usize;
        rows(
            &mut out,
            "redis",
            "memo hit via archive (no_cache)",
            LATENCY_OPS,
            ("klepto memo", &|t, i| hit.call(at(t, i))),
            ("raw GET", &|t, i| drop(black_box(hit.raw_get(t, at(t, i))))),
        );
    }
    println!(
        "\nlatency per single operation (ours and the peer interleaved in {CHUNKS} chunks, same keys):"
    );
    println!(
        "| server | operation | threads | ours | ops | ops/s | p50 | p99 | peer | ops | ops/s | p50 | p99 | \
         ours/peer time (1/ops/s) | ours/peer p50 |"
    );
    println!("|---|---|---:|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|");
    for r in &out {
        let (a, b) = (r.ours.2, r.peer.2);
        println!(
            "| {} | {} | {} | {} | {} | {:.0} | {:.1?} | {:.1?} | {} | {} | {:.0} | {:.1?} | {:.1?} | {:.2}x | {:.2}x |",
            r.server,
            r.op,
            r.threads,
            r.ours.0,
            r.ours.1,
            a.rate,
            a.p50,
            a.p99,
            r.peer.0,
            r.peer.1,
            b.rate,
            b.p50,
            b.p99,
            b.rate / a.rate,
            a.p50.as_secs_f64() / b.p50.as_secs_f64(),
        );
    }
    for note in notes {
        println!("{note}");
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let args: Vec<String> = std::env::args().skip(1).collect();
    // The table takes a while: only in a full run, not with a filter.
    let full = args.iter().all(|a| a.starts_with('-'))
        && !args.iter().any(|a| a == "--test" || a == "--list");

    let pg = server_url("KLEPTO_PG_URL", "PostgreSQL").map(|url| Pg::open(&url));
    let redis = server_url("KLEPTO_REDIS_URL", "Redis").map(|url| Redis::open(&url));
    let pg_misses = pg.as_ref().map(|pg| Misses::new(pg.hashed()));
    let redis_misses = redis.as_ref().map(|r| Misses::new(r.hashed()));
    let hit = redis.as_ref().map(MemoHit::new);

    if let (Some(pg), Some(misses)) = (&pg, &pg_misses) {
        single_ops(&mut c, pg);
        extends(&mut c, pg);
        lease_misses(&mut c, "postgres", misses);
    }
    if let (Some(redis), Some(misses), Some(hit)) = (&redis, &redis_misses, &hit) {
        single_ops(&mut c, redis);
        extends(&mut c, redis);
        memo_hits(&mut c, hit);
        lease_misses(&mut c, "redis", misses);
    }
    c.final_summary();

    if full && (pg.is_some() || redis.is_some()) {
        latency_table(
            match (&pg, &pg_misses) {
                (Some(pg), Some(m)) => Some((pg, m as &dyn Miss)),
                _ => None,
            },
            match (&redis, &redis_misses, &hit) {
                (Some(r), Some(m), Some(h)) => Some((r, m as &dyn Miss, h)),
                _ => None,
            },
        );
    }
    if let Some(m) = &pg_misses {
        m.check("postgres");
    }
    if let Some(m) = &redis_misses {
        m.check("redis");
    }
    if let Some(hit) = &hit {
        check_memo("redis no_cache memo (hits via the archive)", &hit.memo);
        assert_eq!(
            hit.memo.info().misses,
            0,
            "every memo hit came from the archive"
        );
    }
    // Dropping the servers' fixtures removes the bench's tables and keys.
}
