//! A server stopped and started during a run of calls (its own test
//! binary, since it disturbs the servers every other server test uses).
//!
//! For Redis, then PostgreSQL: a memo over the server's archive calls in
//! a loop; the server is stopped (`scripts/services.sh stop-redis` /
//! `stop-pg`) mid-run and calls go on for about 2 s: none panics, every
//! one returns the right value, none takes 3 s or more, and
//! `info().errors` grows. Then the server is started again, and within
//! 10 s calls load from it and a result written through is readable by a
//! fresh handle. A guard starts the server again even if the test fails.
//!
//! Runs only with `KLEPTO_ALLOW_SERVER_RESTART=1` or `CI=true`; otherwise
//! it prints one `skipped:` line.

#![cfg(any(feature = "postgres", feature = "redis"))]

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use klepto::archive::Archive;
use klepto::keymap::HashKey;
use klepto::{KeyGen, Memo};

/// Keys written before the stop, called over and over.
const KEYS: u64 = 300;
const SLOWEST_CALL: Duration = Duration::from_secs(3);
const DOWN_FOR: Duration = Duration::from_secs(2);
const BACK_WITHIN: Duration = Duration::from_secs(10);

fn f(x: u64) -> u64 {
    x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 5
}

fn key(x: u64) -> HashKey {
    KeyGen::new().key(&x).unwrap()
}

/// Runs `scripts/services.sh <command>`; its status, after at most 120 s.
fn services(command: &str) -> Result<(), String> {
    let mut child = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/services.sh"))
        .arg(command)
        .spawn()
        .map_err(|e| format!("services.sh {command}: {e}"))?;
    let status = common::wait_bounded(&mut child, Duration::from_secs(120), command);
    if status.success() {
        Ok(())
    } else {
        Err(format!("services.sh {command}: {status}"))
    }
}

/// Starts the server again when dropped, if it was stopped (also when
/// the test panics).
struct Restarter {
    start: &'static str,
    stopped: Arc<AtomicBool>,
}

impl Drop for Restarter {
    fn drop(&mut self) {
        if self.stopped.load(SeqCst) {
            if let Err(e) = services(self.start) {
                eprintln!("could not start the server again: {e}");
            }
        }
    }
}

/// Calls `memo` on `x` and checks the value and the time taken.
fn timed_call(memo: &impl Fn(u64) -> u64, x: u64, slowest: &mut Duration) {
    let t = Instant::now();
    assert_eq!(memo(x), f(x), "call {x} returned a wrong value");
    let took = t.elapsed();
    *slowest = (*slowest).max(took);
    assert!(took < SLOWEST_CALL, "call {x} took {took:?}");
}

/// The scenario on one server. `open` opens the archive (a fresh handle
/// each time); `stop`/`start` are the services.sh commands.
fn stop_and_start<A: Archive<HashKey, u64>>(
    name: &str,
    open: impl Fn() -> A,
    stop: &'static str,
    start: &'static str,
) {
    let memo = Memo::builder()
        .no_cache()
        .write_through()
        .archive(open())
        .build(f);
    let call = |x: u64| memo.call(x);
    let mut slowest = Duration::ZERO;

    // Up: every key computed and written, then loaded, by 4 threads (so
    // the archive's pool holds several connections when the server stops).
    for _pass in 0..2 {
        std::thread::scope(|s| {
            for t in 0..4 {
                s.spawn(move || {
                    let mut slowest = Duration::ZERO;
                    for x in (t..KEYS).step_by(4) {
                        timed_call(&call, x, &mut slowest);
                    }
                });
            }
        });
    }
    let up = memo.info();
    assert_eq!(
        (up.misses, up.loads, up.errors),
        (KEYS, KEYS, 0),
        "{name} up"
    );

    // Stop the server while calls go on, and keep calling ~2 s after.
    let stopped = Arc::new(AtomicBool::new(false));
    let _restarter = Restarter {
        start,
        stopped: Arc::clone(&stopped),
    };
    let stopper = {
        let stopped = Arc::clone(&stopped);
        std::thread::spawn(move || {
            stopped.store(true, SeqCst);
            services(stop)
        })
    };
    let mut x = 0;
    let mut calls_down = 0;
    while !stopper.is_finished() {
        timed_call(&call, x % KEYS, &mut slowest);
        x += 1;
    }
    stopper.join().unwrap().unwrap();
    let stopped_at = Instant::now();
    let before = memo.info().errors;
    while stopped_at.elapsed() < DOWN_FOR {
        timed_call(&call, x % KEYS, &mut slowest);
        x += 1;
        calls_down += 1;
    }
    let down = memo.info();
    assert!(
        down.errors > before,
        "{name}: {calls_down} calls while the server was down counted no error"
    );

    // Start it again (calls go on meanwhile): within 10 s, loads and writes work.
    let starter = std::thread::spawn(move || services(start));
    while !starter.is_finished() {
        timed_call(&call, x % KEYS, &mut slowest);
        x += 1;
    }
    starter.join().unwrap().unwrap();
    stopped.store(false, SeqCst);
    // A Redis started again may have lost its data (the test servers keep
    // none on disk): each round writes a new key through, reads it with a
    // fresh handle, and calls the previous round's key, a load once the
    // archive works again.
    let started_at = Instant::now();
    let (mut loaded, mut written) = (false, false);
    let mut fresh = 1_000_000;
    while !(loaded && written) && started_at.elapsed() < BACK_WITHIN {
        fresh += 1;
        timed_call(&call, fresh, &mut slowest);
        written |= open().get(&key(fresh)).ok().flatten() == Some(f(fresh));
        let loads = memo.info().loads;
        timed_call(&call, fresh - 1, &mut slowest);
        loaded |= memo.info().loads > loads;
        std::thread::sleep(Duration::from_millis(10));
    }
    let back = started_at.elapsed();
    assert!(
        loaded,
        "{name}: no call loaded from the server within {BACK_WITHIN:?} of its start"
    );
    assert!(
        written,
        "{name}: no written-through result was readable within {BACK_WITHIN:?} of its start"
    );
    let end = memo.info();
    println!(
        "{name}: {calls_down} calls in {DOWN_FOR:?} while down, errors {} -> {} -> {}, \
         back {back:?} after start, slowest call {slowest:?}",
        up.errors, down.errors, end.errors
    );
}

#[test]
fn calls_survive_a_server_stopped_and_started_mid_run() {
    let allowed = std::env::var("KLEPTO_ALLOW_SERVER_RESTART").is_ok_and(|v| v == "1");
    if !(allowed || common::in_ci()) {
        common::skip(
            "KLEPTO_ALLOW_SERVER_RESTART not set (this test stops and starts the servers)",
        );
        return;
    }

    #[cfg(feature = "redis")]
    if let Some(url) = common::server_url("KLEPTO_REDIS_URL") {
        use klepto::archive::RedisArchive;
        let target = common::with_param(&url, "ns", &common::unique("restart"));
        let open = || RedisArchive::<HashKey, u64>::open(&target).unwrap();
        stop_and_start("redis", open, "stop-redis", "start-redis");
        open().clear().unwrap();
    }

    #[cfg(feature = "postgres")]
    if let Some(url) = common::server_url("KLEPTO_PG_URL") {
        use klepto::archive::{SqlArchive, SqlDatabase};
        let table = common::unique("restart");
        let target = common::with_param(&url, "table", &table);
        let open = || SqlArchive::<HashKey, u64>::open(&target).unwrap();
        stop_and_start("postgres", open, "stop-pg", "start-pg");
        SqlDatabase::open(&url).unwrap().drop_table(&table).unwrap();
    }
}
