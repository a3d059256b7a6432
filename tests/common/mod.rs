//! Helpers shared by the integration tests that need servers or child
//! processes: which server to use (or why the test is skipped), unique
//! table and namespace names, URLs with parameters, bounded child waits.

#![allow(dead_code)] // each test binary uses a part

use std::net::{TcpStream, ToSocketAddrs};
use std::process::{Child, ExitStatus};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};

/// Whether this run is in CI (`CI=true`), where a server test never skips.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The server URL in env `var` (`KLEPTO_PG_URL`, `KLEPTO_REDIS_URL`), or
/// `None` after printing the one line `skipped: <var> not set` to stderr.
///
/// Under `CI=true` a missing variable panics. A set variable whose server
/// cannot be reached (TCP connect within 2 s) panics too, in CI or not:
/// a set variable says the server is meant to be there.
pub fn server_url(var: &str) -> Option<String> {
    let url = match std::env::var(var) {
        Ok(url) if !url.trim().is_empty() => url,
        _ if in_ci() => panic!(
            "{var} is not set but CI=true: server tests must run in CI \
             (start the servers with `bash scripts/services.sh start` and \
             `eval \"$(bash scripts/services.sh env)\"`)"
        ),
        _ => {
            skip(&format!("{var} not set"));
            return None;
        }
    };
    if let Err(why) = reachable(&url) {
        panic!(
            "{var} is set but its server cannot be reached: {why} \
             (start it with `bash scripts/services.sh start`, or unset {var} to skip)"
        );
    }
    Some(url)
}

/// Prints the one line `skipped: <why>` to the process's stderr, past the
/// test harness's capture (which only `eprintln!` goes through), so that a
/// plain `cargo test` shows it.
pub fn skip(why: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "skipped: {why}");
}

/// Connects to the URL's host and port over TCP, within 2 s.
pub fn reachable(raw: &str) -> Result<(), String> {
    let url = url::Url::parse(raw).map_err(|e| format!("{}: {e}", mask(raw)))?;
    let host = url
        .host_str()
        .ok_or_else(|| format!("{}: no host", mask(raw)))?;
    let port = url
        .port_or_known_default()
        .or(match url.scheme() {
            "postgres" | "postgresql" => Some(5432),
            "redis" => Some(6379),
            _ => None,
        })
        .ok_or_else(|| format!("{}: no port", mask(raw)))?;
    let addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("{host}:{port}: {e}"))?;
    let mut last = format!("{host}:{port}: no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            Ok(_) => return Ok(()),
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    Err(last)
}

/// `raw` with any password replaced by `***`, for messages.
pub fn mask(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => raw.to_owned(),
    }
}

/// A name no other test, thread, process or concurrent run uses:
/// `k<tag>_<pid>_<counter>_<time>`, lowercase, at most 40 bytes for a
/// short `tag` (PostgreSQL allows 63).
pub fn unique(tag: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let name = format!(
        "k{}_{}_{}_{:x}",
        tag.to_lowercase(),
        std::process::id(),
        NEXT.fetch_add(1, Relaxed),
        nanos % (1 << 36)
    );
    assert!(name.len() <= 48, "name too long for a table: {name}");
    name
}

/// `url` with the query parameter `name=value` (value percent-encoded).
pub fn with_param(url: &str, name: &str, value: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!(
        "{url}{sep}{name}={}",
        utf8_percent_encode(value, NON_ALPHANUMERIC)
    )
}

/// Milliseconds since the Unix epoch (comparable between processes).
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Waits for `child` at most `limit`; on timeout kills it and panics
/// naming `what`.
pub fn wait_bounded(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait on a child") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {limit:?}; killed");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Polls `cond` every 10 ms until it holds or `limit` passes; whether it held.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Lowercase hex of `bytes` (how archives name keys in errors).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The Redis key of an entry: `klepto:<len(ns)>:<ns>:` then the key's
/// MessagePack bytes.
pub fn redis_entry_key(ns: &str, key: &[u8]) -> Vec<u8> {
    let mut k = format!("klepto:{}:{ns}:", ns.len()).into_bytes();
    k.extend_from_slice(key);
    k
}

/// `name` as a quoted SQL identifier.
pub fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A plain client of the PostgreSQL server at `url`, for raw access.
#[cfg(feature = "postgres")]
pub fn pg_client(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls).unwrap()
}

/// The value column of `key`'s row in `table` (schema `public`), read
/// behind the archive's back.
#[cfg(feature = "postgres")]
pub fn pg_raw_get(url: &str, table: &str, key: &[u8]) -> Vec<u8> {
    let sql = format!("SELECT value FROM {} WHERE key = $1", quoted(table));
    pg_client(url).query_one(&sql, &[&key]).unwrap().get(0)
}

/// Overwrites the value column of `key`'s row in `table`.
#[cfg(feature = "postgres")]
pub fn pg_raw_put(url: &str, table: &str, key: &[u8], bytes: &[u8]) {
    let sql = format!("UPDATE {} SET value = $2 WHERE key = $1", quoted(table));
    let n = pg_client(url).execute(&sql, &[&key, &bytes]).unwrap();
    assert_eq!(n, 1, "no row to update in {table}");
}

/// A plain connection to the Redis server at `url`, for raw access.
#[cfg(feature = "redis")]
pub fn redis_conn(url: &str) -> redis::Connection {
    redis::Client::open(url).unwrap().get_connection().unwrap()
}

/// The bytes stored for `key` in namespace `ns`, read behind the
/// archive's back.
#[cfg(feature = "redis")]
pub fn redis_raw_get(url: &str, ns: &str, key: &[u8]) -> Vec<u8> {
    let k = redis_entry_key(ns, key);
    let v: Option<Vec<u8>> = redis::cmd("GET")
        .arg(&k)
        .query(&mut redis_conn(url))
        .unwrap();
    v.unwrap_or_else(|| panic!("no Redis key for the entry in namespace {ns}"))
}

/// Overwrites the bytes stored for `key` in namespace `ns`.
#[cfg(feature = "redis")]
pub fn redis_raw_put(url: &str, ns: &str, key: &[u8], bytes: &[u8]) {
    let k = redis_entry_key(ns, key);
    let _: () = redis::cmd("SET")
        .arg(&k)
        .arg(bytes)
        .query(&mut redis_conn(url))
        .unwrap();
}
