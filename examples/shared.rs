//! Two processes sharing one cache on a server.
//!
//! Start a server and say where it is, then run with the server features:
//!
//! ```text
//! bash scripts/services.sh start          # as root: PostgreSQL + Redis on 127.0.0.1
//! eval "$(bash scripts/services.sh env)"  # KLEPTO_REDIS_URL, KLEPTO_PG_URL
//! cargo run --example shared --features redis,postgres
//! ```
//!
//! The example starts two copies of itself at the same moment. Both call a
//! slow function on the same eight arguments (one from the first, the other
//! from the last) through a memo with a lease, so each result is computed
//! once in total: whichever process takes a key's lease computes it, the
//! other waits and loads the result, and together they finish in about half
//! the time. A third process started afterwards finds everything in the
//! archive.

use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use klepto::archive::Archive;
use klepto::keymap::HashKey;
use klepto::Memo;

const ROLE: &str = "KLEPTO_SHARED_EXAMPLE_ROLE";
const KEYS: u64 = 8;

/// A function worth sharing: 200 ms per call.
fn slow_square(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(200));
    x * x
}

fn main() -> ExitCode {
    match std::env::var(ROLE) {
        Ok(role) => child(&role),
        Err(_) => parent(),
    }
}

/// Which server to use: Redis first, then PostgreSQL, with a namespace
/// unique to this run.
fn target(run: &str) -> Option<(&'static str, String)> {
    let set = |var: &str| std::env::var(var).ok().filter(|url| !url.is_empty());
    if cfg!(feature = "redis") {
        if let Some(url) = set("KLEPTO_REDIS_URL") {
            return Some(("redis", with_param(&url, "ns", run)));
        }
    }
    if cfg!(feature = "postgres") {
        if let Some(url) = set("KLEPTO_PG_URL") {
            return Some(("postgres", with_param(&url, "table", run)));
        }
    }
    None
}

fn with_param(url: &str, name: &str, value: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{name}={value}")
}

fn parent() -> ExitCode {
    let run = format!("shared_example_{}", std::process::id());
    let Some((kind, url)) = target(&run) else {
        println!(
            "This example needs a server. Set KLEPTO_REDIS_URL (or KLEPTO_PG_URL) and \
             enable the feature, e.g.:\n\n  \
             bash scripts/services.sh start          # as root: installs and starts both on 127.0.0.1\n  \
             eval \"$(bash scripts/services.sh env)\"\n  \
             cargo run --example shared --features redis,postgres\n\n\
             (Or any server of your own: KLEPTO_REDIS_URL=redis://host:6379/0, \
             KLEPTO_PG_URL=postgres://user:password@host:5432/db.)"
        );
        return ExitCode::SUCCESS;
    };
    println!("sharing a cache on {kind} ({KEYS} keys, 200 ms each)");
    let exe = std::env::current_exe().expect("the example's own path");
    let spawn = |role: &str| {
        Command::new(&exe)
            .env(ROLE, role)
            .env("KLEPTO_SHARED_URL", &url)
            .env("KLEPTO_SHARED_KIND", kind)
            .spawn()
            .expect("start a copy of the example")
    };
    let start = Instant::now();
    let (a, b) = (spawn("A"), spawn("B"));
    let ok = [a, b]
        .into_iter()
        .all(|mut c| c.wait().is_ok_and(|s| s.success()));
    println!(
        "both done in {:.1} s (one process alone would take {:.1} s)",
        start.elapsed().as_secs_f64(),
        KEYS as f64 * 0.2
    );
    let later = spawn("C").wait().is_ok_and(|s| s.success());
    clean_up(kind, &url, &run);
    if ok && later {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn child(role: &str) -> ExitCode {
    let url = std::env::var("KLEPTO_SHARED_URL").expect("set by the parent");
    let kind = std::env::var("KLEPTO_SHARED_KIND").expect("set by the parent");
    with_archive(&kind, &url, role);
    ExitCode::SUCCESS
}

/// Removes what the example wrote: the Redis entries, or the PostgreSQL
/// table named `run`.
fn clean_up(kind: &str, url: &str, run: &str) {
    #[cfg(feature = "redis")]
    if kind == "redis" {
        use klepto::archive::RedisArchive;
        let archive: RedisArchive<HashKey, u64> = RedisArchive::open(url).expect("open Redis");
        return archive.clear().expect("clean up the example's entries");
    }
    #[cfg(feature = "postgres")]
    if kind == "postgres" {
        let base = std::env::var("KLEPTO_PG_URL").expect("set when the kind is postgres");
        let db = klepto::archive::SqlDatabase::open(base).expect("open the database");
        db.drop_table(run).expect("drop the example's table");
        return;
    }
    unreachable!("no {kind} archive in this build ({url}, {run})");
}

/// Opens the archive of `kind` at `url` and runs the memo on it as `role`.
fn with_archive(kind: &str, url: &str, role: &str) {
    #[cfg(feature = "redis")]
    if kind == "redis" {
        let archive = klepto::archive::RedisArchive::open(url).expect("open the Redis archive");
        return use_archive(archive, role);
    }
    #[cfg(feature = "postgres")]
    if kind == "postgres" {
        let archive = klepto::archive::SqlArchive::open(url).expect("open the PostgreSQL table");
        return use_archive(archive, role);
    }
    unreachable!("no {kind} archive in this build ({url}, {role})");
}

/// Calls the slow function through a leased memo and says what happened.
#[allow(dead_code)] // unused in a build without server features
fn use_archive<A: Archive<HashKey, u64>>(archive: A, role: &str) {
    let square = Memo::builder()
        .lru(100)
        .archive(archive)
        .lease(Duration::from_secs(5))
        .build(slow_square);
    // B walks the keys backwards, so the two meet in the middle.
    let keys: Vec<u64> = match role {
        "B" => (0..KEYS).rev().collect(),
        _ => (0..KEYS).collect(),
    };
    let sum: u64 = keys.into_iter().map(|x| square.call(x)).sum();
    let info = square.info();
    println!(
        "process {role}: sum {sum}, computed {} (misses), loaded {} from the server, errors {}",
        info.misses, info.loads, info.errors
    );
}
