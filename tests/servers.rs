//! Server archives (PostgreSQL: feature `postgres`, `KLEPTO_PG_URL`; Redis:
//! feature `redis`, `KLEPTO_REDIS_URL`) shared by real processes: this
//! test binary re-executed with a role in its environment.
//!
//! For each server: a restart (a second process loads what the first
//! computed), four writers at once, the distributed single flight of
//! `.lease` (each key computed once by four processes; a lease holder
//! killed with SIGKILL holds nobody up for long), entries swapped or
//! overwritten with garbage behind the archive's back, and hostile table
//! and namespace names. Each test uses its own table or namespace and
//! removes it at the end; without its URL a test prints one `skipped:`
//! line (a failure under `CI=true`).

#![cfg(any(feature = "postgres", feature = "redis"))]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use klepto::archive::Archive;
#[cfg(feature = "redis")]
use klepto::archive::RedisArchive;
#[cfg(feature = "postgres")]
use klepto::archive::{SqlArchive, SqlDatabase};
use klepto::keymap::HashKey;
use klepto::{CacheInfo, KeyGen, Memo};

const ROLE: &str = "KLEPTO_SERVERS_ROLE";
const SERVER: &str = "KLEPTO_SERVERS_SERVER";
const TARGET: &str = "KLEPTO_SERVERS_TARGET";
const SIDE: &str = "KLEPTO_SERVERS_SIDE";
const ARG: &str = "KLEPTO_SERVERS_ARG";
const START_AT: &str = "KLEPTO_SERVERS_START_AT";

const CALLS: u64 = 1_000;
/// The slow keys of the single-flight test, and how slow each is.
const SLOW_KEYS: u64 = 20;
const SLOW: Duration = Duration::from_millis(100);
/// The key whose lease holder gets killed.
const KILLED_KEY: u64 = 777;
const CHILD_LIMIT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    #[cfg(feature = "postgres")]
    Pg,
    #[cfg(feature = "redis")]
    Redis,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            #[cfg(feature = "postgres")]
            Kind::Pg => "pg",
            #[cfg(feature = "redis")]
            Kind::Redis => "redis",
        }
    }

    fn parse(s: &str) -> Kind {
        match s {
            #[cfg(feature = "postgres")]
            "pg" => Kind::Pg,
            #[cfg(feature = "redis")]
            "redis" => Kind::Redis,
            other => panic!("unknown server {other}"),
        }
    }
}

/// Runs `$body` with `$a` bound to the `HashKey -> u64` archive of
/// `$kind` at `$target`.
macro_rules! with_archive {
    ($kind:expr, $target:expr, |$a:ident| $body:expr) => {
        match $kind {
            #[cfg(feature = "postgres")]
            Kind::Pg => {
                let $a: SqlArchive<HashKey, u64> = SqlArchive::open($target).unwrap();
                $body
            }
            #[cfg(feature = "redis")]
            Kind::Redis => {
                let $a: RedisArchive<HashKey, u64> = RedisArchive::open($target).unwrap();
                $body
            }
        }
    };
}

/// A server under test.
struct Server {
    kind: Kind,
    url: String,
}

/// A fresh table or namespace on a server, removed when dropped.
struct Place<'s> {
    server: &'s Server,
    /// The table or namespace.
    name: String,
    /// The archive URL naming it.
    target: String,
}

impl Server {
    fn place(&self, tag: &str) -> Place<'_> {
        let name = common::unique(tag);
        let param = match self.kind {
            #[cfg(feature = "postgres")]
            Kind::Pg => "table",
            #[cfg(feature = "redis")]
            Kind::Redis => "ns",
        };
        Place {
            server: self,
            target: common::with_param(&self.url, param, &name),
            name,
        }
    }
}

impl Place<'_> {
    /// The entry's stored bytes, read behind the archive's back.
    fn raw_get(&self, key: &[u8]) -> Vec<u8> {
        match self.server.kind {
            #[cfg(feature = "postgres")]
            Kind::Pg => common::pg_raw_get(&self.server.url, &self.name, key),
            #[cfg(feature = "redis")]
            Kind::Redis => common::redis_raw_get(&self.server.url, &self.name, key),
        }
    }

    /// Overwrites the entry's stored bytes behind the archive's back.
    fn raw_put(&self, key: &[u8], bytes: &[u8]) {
        match self.server.kind {
            #[cfg(feature = "postgres")]
            Kind::Pg => common::pg_raw_put(&self.server.url, &self.name, key, bytes),
            #[cfg(feature = "redis")]
            Kind::Redis => common::redis_raw_put(&self.server.url, &self.name, key, bytes),
        }
    }

    /// How errors name this table or namespace.
    fn named(&self) -> String {
        match self.server.kind {
            #[cfg(feature = "postgres")]
            Kind::Pg => format!("table {}", self.name),
            #[cfg(feature = "redis")]
            Kind::Redis => format!("namespace {}", self.name),
        }
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        let removed = match self.server.kind {
            #[cfg(feature = "postgres")]
            Kind::Pg => SqlDatabase::open(&self.server.url)
                .and_then(|db| db.drop_table(&self.name))
                .map(drop),
            #[cfg(feature = "redis")]
            Kind::Redis => RedisArchive::<HashKey, u64>::open(&self.target).and_then(|a| a.clear()),
        };
        if let Err(e) = removed {
            eprintln!("cleanup of {} failed: {e}", self.name);
        }
    }
}

fn f(x: u64) -> u64 {
    x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 7
}

fn key(x: u64) -> HashKey {
    KeyGen::new().key(&x).unwrap()
}

fn key_bytes(x: u64) -> Vec<u8> {
    rmp_serde::to_vec(&key(x)).unwrap()
}

// ------------------------------------------------------------- children --

/// Starts this test binary as a child with `role` on `place`.
fn spawn(role: &str, place: &Place, side: &Path, extra: &[(&str, String)]) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["child", "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env(SERVER, place.server.kind.name())
        .env(TARGET, &place.target)
        .env(SIDE, side)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn the child test process")
}

/// Waits (bounded) for a child that must succeed; its `OUT ` lines.
fn output(mut child: Child, what: &str) -> Vec<String> {
    let status = common::wait_bounded(&mut child, CHILD_LIMIT, what);
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    assert!(status.success(), "{what}: child failed: {status:?}\n{out}");
    out.lines()
        .filter_map(|l| l.find("OUT ").map(|i| l[i + 4..].to_owned()))
        .collect()
}

fn info_line(info: CacheInfo) -> String {
    format!(
        "info hits={} misses={} loads={} errors={}",
        info.hits, info.misses, info.loads, info.errors
    )
}

/// (hits, misses, loads, errors) from an `info ...` line.
fn parse_info(line: &str) -> [u64; 4] {
    let nums: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|kv| kv.split_once('=').unwrap().1.parse().unwrap())
        .collect();
    nums.try_into().unwrap()
}

/// Appends one line to the side channel (one `write` on an O_APPEND file).
fn note(path: &Path, line: &str) {
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap();
    file.write_all(format!("{line}\n").as_bytes()).unwrap();
}

fn side_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The child side: does nothing in a normal test run.
#[test]
fn child() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let kind = Kind::parse(&std::env::var(SERVER).unwrap());
    let target = std::env::var(TARGET).unwrap();
    let side = std::path::PathBuf::from(std::env::var(SIDE).unwrap());
    let arg = std::env::var(ARG).unwrap_or_default();
    if let Ok(at) = std::env::var(START_AT) {
        let at: u64 = at.parse().unwrap();
        std::thread::sleep(Duration::from_millis(at.saturating_sub(common::unix_ms())));
    }
    with_archive!(kind, &target, |a| match role.as_str() {
        "first" => first_run(a),
        "second" => second_run(a),
        "writer" => writer(a, arg.parse().unwrap()),
        "flight" => flight(a, &side, arg == "desc"),
        "holder" => holder(a, &side),
        "waiter" => waiter(a, &side),
        other => panic!("unknown role {other}"),
    });
}

/// Memoizes `CALLS` calls: evictions and the drop write them.
fn first_run<A: Archive<HashKey, u64>>(a: A) {
    let memo = Memo::builder().lru(100).archive(a).build(f);
    for x in 0..CALLS {
        assert_eq!(memo.call(x), f(x));
    }
    println!("OUT {}", info_line(memo.info()));
}

/// The same calls again: all from the archive (a recomputation would
/// return a wrong value).
fn second_run<A: Archive<HashKey, u64>>(a: A) {
    let memo = Memo::builder().lru(100).archive(a).build(|_: u64| u64::MAX);
    let same = (0..CALLS).filter(|&x| memo.call(x) == f(x)).count();
    println!("OUT {}", info_line(memo.info()));
    println!("OUT same={same}");
}

fn writer<A: Archive<HashKey, u64>>(a: A, id: u64) {
    let memo = Memo::builder().lru(16).write_through().archive(a).build(f);
    for x in id * CALLS..(id + 1) * CALLS {
        assert_eq!(memo.try_call(x).unwrap(), f(x));
    }
    assert_eq!(memo.info().errors, 0);
}

/// Calls the slow keys under a lease, noting each computation.
fn flight<A: Archive<HashKey, u64>>(a: A, side: &Path, descending: bool) {
    let pid = std::process::id();
    let memo = Memo::builder()
        .inf()
        .lease(Duration::from_secs(5))
        .archive(a)
        .build(|x: u64| {
            note(side, &format!("{x} {pid}"));
            std::thread::sleep(SLOW);
            f(x)
        });
    let mut keys: Vec<u64> = (0..SLOW_KEYS).collect();
    if descending {
        keys.reverse();
    }
    for x in keys {
        assert_eq!(memo.call(x), f(x));
    }
    println!("OUT {}", info_line(memo.info()));
}

/// Takes the lease on `KILLED_KEY` and computes for far too long.
fn holder<A: Archive<HashKey, u64>>(a: A, side: &Path) {
    let memo = Memo::builder()
        .inf()
        .lease(Duration::from_secs(2))
        .archive(a)
        .build(|x: u64| {
            note(
                side,
                &format!("start {x} {} {}", std::process::id(), common::unix_ms()),
            );
            std::thread::sleep(Duration::from_secs(60));
            f(x)
        });
    memo.call(KILLED_KEY);
    panic!("the holder should have been killed");
}

fn waiter<A: Archive<HashKey, u64>>(a: A, side: &Path) {
    let memo = Memo::builder()
        .inf()
        .lease(Duration::from_secs(2))
        .archive(a)
        .build(|x: u64| {
            note(
                side,
                &format!("start {x} {} {}", std::process::id(), common::unix_ms()),
            );
            f(x)
        });
    assert_eq!(memo.call(KILLED_KEY), f(KILLED_KEY));
    println!("OUT {}", info_line(memo.info()));
}

// ------------------------------------------------------------ scenarios --

fn restart(s: &Server) {
    let place = s.place("rs");
    let side = tempfile::NamedTempFile::new().unwrap();
    let first = output(spawn("first", &place, side.path(), &[]), "first run");
    assert_eq!(
        first,
        [format!("info hits=0 misses={CALLS} loads=0 errors=0")]
    );
    with_archive!(s.kind, &place.target, |a| {
        assert_eq!(a.len().unwrap(), CALLS as usize);
    });
    let second = output(spawn("second", &place, side.path(), &[]), "second run");
    assert_eq!(
        second,
        [
            format!("info hits=0 misses=0 loads={CALLS} errors=0"),
            format!("same={CALLS}")
        ]
    );
}

fn many_writers(s: &Server) {
    let place = s.place("mw");
    let side = tempfile::NamedTempFile::new().unwrap();
    let writers: Vec<Child> = (0..4)
        .map(|id| spawn("writer", &place, side.path(), &[(ARG, id.to_string())]))
        .collect();
    for (id, w) in writers.into_iter().enumerate() {
        output(w, &format!("writer {id}"));
    }
    with_archive!(s.kind, &place.target, |a| {
        assert_eq!(a.len().unwrap(), 4 * CALLS as usize);
        for x in 0..4 * CALLS {
            assert_eq!(a.get(&key(x)).unwrap(), Some(f(x)), "key {x}");
        }
        let keys: BTreeSet<HashKey> = a.keys().unwrap().map(Result::unwrap).collect();
        assert_eq!(keys.len(), 4 * CALLS as usize);
    });
}

fn single_flight(s: &Server) {
    let place = s.place("sf");
    let dir = tempfile::tempdir().unwrap();
    let side = dir.path().join("computations");
    let start_at = (common::unix_ms() + 1_500).to_string();
    let started = Instant::now();
    let children: Vec<Child> = ["asc", "asc", "desc", "desc"]
        .into_iter()
        .map(|order| {
            let extra = [(ARG, order.to_string()), (START_AT, start_at.clone())];
            spawn("flight", &place, &side, &extra)
        })
        .collect();
    let infos: Vec<[u64; 4]> = children
        .into_iter()
        .enumerate()
        .map(|(i, c)| parse_info(&output(c, &format!("flight child {i}"))[0]))
        .collect();
    let lines = side_lines(&side);
    let mut per_key: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for line in &lines {
        let (x, pid) = line.split_once(' ').unwrap();
        per_key
            .entry(x.parse().unwrap())
            .or_default()
            .push(pid.to_owned());
    }
    let twice: Vec<_> = per_key.iter().filter(|(_, p)| p.len() > 1).collect();
    assert!(
        twice.is_empty(),
        "keys computed more than once (key: pids): {twice:?}"
    );
    assert_eq!(lines.len() as u64, SLOW_KEYS, "computations: {lines:?}");
    assert_eq!(
        per_key.keys().copied().collect::<Vec<_>>(),
        (0..SLOW_KEYS).collect::<Vec<_>>()
    );
    for (i, [hits, misses, loads, errors]) in infos.iter().enumerate() {
        assert_eq!(
            hits + misses + loads,
            SLOW_KEYS,
            "child {i}: {:?}",
            infos[i]
        );
        assert_eq!(*errors, 0, "child {i}: {:?}", infos[i]);
    }
    let misses: u64 = infos.iter().map(|i| i[1]).sum();
    assert_eq!(misses, SLOW_KEYS, "misses across children: {infos:?}");
    println!(
        "{}: 4 processes x {SLOW_KEYS} slow keys, each computed once, in {:?} (with 1.5 s start delay); infos {infos:?}",
        s.kind.name(),
        started.elapsed()
    );
}

fn killed_holder(s: &Server) {
    let place = s.place("kh");
    let dir = tempfile::tempdir().unwrap();
    let side = dir.path().join("computations");
    let mut holder = spawn("holder", &place, &side, &[]);
    let began = common::wait_until(Duration::from_secs(30), || !side_lines(&side).is_empty());
    if !began {
        let _ = holder.kill();
        let _ = holder.wait();
        panic!("the lease holder never started computing");
    }
    holder.kill().unwrap(); // SIGKILL, mid-computation, lease held
    common::wait_bounded(&mut holder, Duration::from_secs(10), "killed holder");
    let killed_at = Instant::now();

    let waiter = spawn("waiter", &place, &side, &[]);
    let out = output(waiter, "waiter");
    let took = killed_at.elapsed();
    let lines = side_lines(&side);
    assert_eq!(
        lines.len(),
        2,
        "the holder's and the waiter's computations: {lines:?}"
    );
    let (holder_line, waiter_line) = (&lines[0], &lines[1]);
    let field = |l: &str, i: usize| l.split(' ').nth(i).unwrap().to_owned();
    assert_ne!(field(holder_line, 2), field(waiter_line, 2), "{lines:?}");
    assert!(took < Duration::from_secs(10), "the waiter took {took:?}");
    let [_, misses, loads, errors] = parse_info(&out[0]);
    assert_eq!((misses, loads, errors), (1, 0, 0), "waiter: {out:?}");
    with_archive!(s.kind, &place.target, |a| {
        assert_eq!(a.get(&key(KILLED_KEY)).unwrap(), Some(f(KILLED_KEY)));
    });
    let gap = field(waiter_line, 3).parse::<u64>().unwrap()
        - field(holder_line, 3).parse::<u64>().unwrap();
    println!(
        "{}: holder SIGKILLed; the waiter computed {gap} ms after the holder started, done {took:?} after the kill",
        s.kind.name()
    );
}

const N: u64 = 50;

fn swapped_entries(s: &Server) {
    let place = s.place("sw");
    with_archive!(s.kind, &place.target, |a| {
        let memo = Memo::builder().inf().write_through().archive(a).build(f);
        for x in 0..N {
            memo.call(x);
        }
    });
    let (v3, v7) = (place.raw_get(&key_bytes(3)), place.raw_get(&key_bytes(7)));
    place.raw_put(&key_bytes(3), &v7);
    place.raw_put(&key_bytes(7), &v3);
    with_archive!(s.kind, &place.target, |a| {
        let err = a.get(&key(7)).unwrap_err();
        assert!(matches!(err, klepto::Error::Corrupt { .. }), "{err}");
        let memo = Memo::builder().inf().archive(a).build(f);
        for x in 0..N {
            assert_eq!(
                memo.call(x),
                f(x),
                "call {x} returned another call's result"
            );
        }
        let i = memo.info();
        assert_eq!((i.loads, i.misses, i.errors), (N - 2, 2, 2));
    });
    // Rewritten: a fresh memo loads all, with no error.
    with_archive!(s.kind, &place.target, |a| {
        let memo = Memo::builder().inf().archive(a).build(|_: u64| u64::MAX);
        for x in 0..N {
            assert_eq!(memo.call(x), f(x));
        }
        let i = memo.info();
        assert_eq!((i.loads, i.misses, i.errors), (N, 0, 0));
    });
}

fn garbage_entry(s: &Server) {
    let place = s.place("gb");
    with_archive!(s.kind, &place.target, |a| {
        a.extend((0..10).map(|x| (key(x), f(x))).collect()).unwrap();
    });
    place.raw_put(&key_bytes(5), b"\x00garbage, not an envelope\xff");
    with_archive!(s.kind, &place.target, |a| {
        let err = a.get(&key(5)).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, klepto::Error::Corrupt { .. }), "{msg}");
        assert!(
            msg.contains(&place.named()),
            "names {}: {msg}",
            place.named()
        );
        assert!(
            msg.contains(&common::hex(&key_bytes(5))),
            "names the key: {msg}"
        );
        assert!(!msg.contains(":klepto@"), "no password: {msg}");
        let memo = Memo::builder().inf().archive(a).build(f);
        for x in 0..10 {
            assert_eq!(memo.call(x), f(x));
        }
        let i = memo.info();
        assert_eq!((i.loads, i.misses, i.errors), (9, 1, 1));
        assert_eq!(
            memo.archive().get(&key(5)).unwrap(),
            Some(f(5)),
            "rewritten"
        );
    });
}

macro_rules! server_tests {
    ($feature:literal, $var:literal, $kind:expr, $module:ident) => {
        #[cfg(feature = $feature)]
        mod $module {
            use super::*;

            fn server() -> Option<Server> {
                common::server_url($var).map(|url| Server { kind: $kind, url })
            }

            #[test]
            fn a_second_process_loads_what_the_first_computed() {
                if let Some(s) = server() {
                    restart(&s);
                }
            }

            #[test]
            fn four_writing_processes_lose_nothing() {
                if let Some(s) = server() {
                    many_writers(&s);
                }
            }

            #[test]
            fn a_lease_computes_each_key_once_across_processes() {
                if let Some(s) = server() {
                    single_flight(&s);
                }
            }

            #[test]
            fn a_killed_lease_holder_holds_nobody_up() {
                if let Some(s) = server() {
                    killed_holder(&s);
                }
            }

            #[test]
            fn swapped_entries_are_errors_recomputed_and_rewritten() {
                if let Some(s) = server() {
                    swapped_entries(&s);
                }
            }

            #[test]
            fn a_garbage_entry_is_corrupt_naming_where_and_is_recomputed() {
                if let Some(s) = server() {
                    garbage_entry(&s);
                }
            }
        }
    };
}

server_tests!("postgres", "KLEPTO_PG_URL", Kind::Pg, pg);
server_tests!("redis", "KLEPTO_REDIS_URL", Kind::Redis, redis_server);

#[path = "servers/names.rs"]
mod names;
