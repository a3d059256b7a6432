//! Redis archives (feature `redis`): [`RedisArchive`], the typed archive
//! over a [`RedisStore`] namespace of one Redis database.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use r2d2::ManageConnection;
use redis::{Client, Connection, ConnectionLike, ErrorKind, RedisError, ServerErrorKind};

use super::backend::{Backed, Backend, KeyHex, RawEntry, RawItems};
use super::server::ServerPool;
use super::target::{bad, encode_into, masked, params, parse_u64, parse_url};
use crate::{Error, Result};

/// The namespace used when the URL names none.
const DEFAULT_NAMESPACE: &str = "memo";
/// How long opening a connection may take, by default.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one command (or pipeline) may wait for its reply.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Keys asked for per `SCAN` step.
const SCAN_COUNT: usize = 1000;

/// An archive in one namespace of a Redis database (feature `redis`).
///
/// ```no_run
/// use klepto::archive::{Archive, RedisArchive};
/// let a: RedisArchive<u64, String> =
///     RedisArchive::open("redis://127.0.0.1:6379/0?ns=fib&ttl=86400")?;
/// a.insert(1, "one".into())?;
/// assert_eq!(a.get(&1)?, Some("one".to_string()));
/// # Ok::<(), klepto::Error>(())
/// ```
///
/// # Layout
///
/// One Redis string per entry, named `klepto:<n>:<namespace>:<key>`, where
/// `<n>` is the namespace's length in bytes (so no namespace's names are a
/// prefix of another's) and `<key>` the key's MessagePack bytes; its value
/// is the entry's [envelope](super::envelope), the same bytes an SQL
/// archive stores. Leases are `klepto-lease:<n>:<namespace>:<key>`.
///
/// One key per entry rather than one hash per namespace, because a cache
/// wants each entry to expire on its own: with `?ttl=` every entry lives
/// that many seconds after its last write (a hash can only expire whole,
/// and a busy one never would), and a server with a `maxmemory` eviction
/// policy can drop single entries. `get`/`insert` are plain `GET`/`SET`.
/// The cost: `len`, `keys`, `iter` and `clear` walk the database's key
/// space with `SCAN MATCH` (never `KEYS`), so they take time in proportion
/// to all keys of the database, not just the namespace's.
///
/// # Writes and failures
///
/// `insert` is one `SET`; `extend` is one `MULTI`/`EXEC` pipeline (one
/// round trip, applied all together); `remove` is `GETDEL`. The URL's
/// `?ttl=SECONDS` sets an expiry on every entry written. A server that
/// cannot be reached fails an operation after the connect timeout (2 s
/// unless `?connect_timeout=N`), and for half a second after that fails
/// at once; the pool reconnects when the server is back. A reply slower
/// than 10 s fails the operation. Errors and locations never show the
/// URL's password.
///
/// Iteration walks `SCAN` in steps of 1,000 keys and reads their values
/// with `MGET`: nothing is held on the server between steps, entries
/// written meanwhile may or may not show, and (as `SCAN` allows while
/// Redis resizes its tables) a key may rarely come twice.
pub type RedisArchive<K, V> = Backed<RedisStore, K, V>;

impl<K, V> Backed<RedisStore, K, V> {
    /// Opens the Redis database named by `url`,
    /// `redis://[user:password@]host[:port][/db]`, for the namespace it
    /// names. Parameters: `ns` (the namespace, default `memo`), `ttl`
    /// (seconds each entry lives after its write; default: no expiry) and
    /// `connect_timeout` (seconds, default 2).
    ///
    /// A server that cannot be reached now is not an error: the archive
    /// connects at its first use (and fails that use, quickly, while the
    /// server is down).
    ///
    /// # Errors
    /// [`Error::Config`] for a malformed URL or parameter;
    /// [`Error::Archive`] when the server refuses the connection (a wrong
    /// password).
    pub fn open(url: impl AsRef<str>) -> Result<Self> {
        RedisStore::open(url.as_ref()).map(Backed::new)
    }

    /// The namespace this archive reads and writes.
    pub fn namespace(&self) -> &str {
        &self.backend().ns.name
    }
}

/// The [`Backend`] of a [`RedisArchive`]: one namespace of a Redis
/// database, through a pool of connections. Clones share the pool.
#[derive(Clone)]
pub struct RedisStore {
    server: Arc<Server>,
    ns: Arc<Namespace>,
}

/// What every namespace of one server handle shares.
struct Server {
    pool: ServerPool<Manager>,
    /// The URL without query, password masked.
    url: String,
    ttl: Option<Duration>,
}

/// One namespace's key prefixes.
struct Namespace {
    name: String,
    /// `klepto:<n>:<name>:`
    prefix: Vec<u8>,
    /// `klepto-lease:<n>:<name>:`
    lease_prefix: Vec<u8>,
    /// `SCAN MATCH` pattern: the prefix with glob characters escaped, `*`.
    pattern: Vec<u8>,
    location: String,
}

impl Namespace {
    fn new(server: &Server, name: &str) -> Namespace {
        let prefix = format!("klepto:{}:{name}:", name.len()).into_bytes();
        let mut pattern = Vec::with_capacity(prefix.len() + 1);
        for &b in &prefix {
            if matches!(b, b'*' | b'?' | b'[' | b']' | b'\\') {
                pattern.push(b'\\');
            }
            pattern.push(b);
        }
        pattern.push(b'*');
        let mut location = server.url.clone();
        location.push_str(if server.url.contains('?') {
            "&ns="
        } else {
            "?ns="
        });
        encode_into(&mut location, name, "%&#=+");
        Namespace {
            name: name.to_owned(),
            lease_prefix: format!("klepto-lease:{}:{name}:", name.len()).into_bytes(),
            prefix,
            pattern,
            location,
        }
    }

    fn key(&self, key: &[u8]) -> Vec<u8> {
        [&self.prefix[..], key].concat()
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisArchive")
            .field("location", &self.ns.location)
            .finish()
    }
}

/// Makes connections with the connect timeout and command timeouts set.
struct Manager {
    client: Client,
    connect_timeout: Duration,
}

impl ManageConnection for Manager {
    type Connection = Connection;
    type Error = RedisError;

    fn connect(&self) -> std::result::Result<Connection, RedisError> {
        let conn = self
            .client
            .get_connection_with_timeout(self.connect_timeout)?;
        conn.set_read_timeout(Some(IO_TIMEOUT))?;
        conn.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(conn)
    }

    fn is_valid(&self, conn: &mut Connection) -> std::result::Result<(), RedisError> {
        redis::cmd("PING").query(conn)
    }

    fn has_broken(&self, conn: &mut Connection) -> bool {
        !conn.is_open()
    }
}

impl RedisStore {
    /// Opens the namespace named by `raw` (see [`RedisArchive::open`]).
    pub fn open(raw: &str) -> Result<Self> {
        let url = parse_url(raw)?;
        if url.scheme() != "redis" {
            return Err(bad(
                raw,
                format_args!("expected a `redis://` URL, not `{}:`", url.scheme()),
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad(raw, "no server host"));
        }
        let (mut ns, mut ttl, mut connect_timeout) = (None, None, CONNECT_TIMEOUT);
        for (name, value) in params(&url, raw, &["ns", "ttl", "connect_timeout"])? {
            let seconds = || match parse_u64(raw, &name, &value)? {
                0 => Err(bad(raw, format_args!("`{name}` must be at least 1 second"))),
                n => Ok(Duration::from_secs(n)),
            };
            match name.as_str() {
                "ns" if value.is_empty() => return Err(bad(raw, "`ns` is empty")),
                "ns" => ns = Some(value),
                "ttl" => ttl = Some(seconds()?),
                _ => connect_timeout = seconds()?,
            }
        }
        let mut server_url = url.clone();
        server_url.set_query(None);
        let client = Client::open(server_url.as_str())
            .map_err(|e| bad(raw, format_args!("not a Redis URL: {e}")))?;
        let manager = Manager {
            client,
            connect_timeout,
        };
        let masked_url = masked(&url);
        let pool = ServerPool::open(
            manager,
            connect_timeout,
            &masked_url,
            redis_error,
            |conn: &mut Connection| redis::cmd("PING").query::<()>(conn).is_ok(),
        )?;
        let server = Server {
            pool,
            url: masked_url,
            ttl,
        };
        let ns = Namespace::new(&server, ns.as_deref().unwrap_or(DEFAULT_NAMESPACE));
        Ok(RedisStore {
            server: Arc::new(server),
            ns: Arc::new(ns),
        })
    }

    /// The names of the namespaces that hold entries on this server's
    /// database, sorted: one `SCAN MATCH klepto:*` of the whole keyspace
    /// (time in proportion to the database's keys).
    ///
    /// ```no_run
    /// use klepto::archive::RedisStore;
    /// let store = RedisStore::open("redis://127.0.0.1:6379/0")?;
    /// for ns in store.namespaces()? {
    ///     println!("{ns}");
    /// }
    /// # Ok::<(), klepto::Error>(())
    /// ```
    pub fn namespaces(&self) -> Result<Vec<String>> {
        let mut names = std::collections::BTreeSet::new();
        let mut cursor = 0u64;
        loop {
            let (next, keys) = self.scan_step(cursor, b"klepto:*")?;
            names.extend(keys.iter().filter_map(|key| namespace_of(key)));
            if next == 0 {
                return Ok(names.into_iter().collect());
            }
            cursor = next;
        }
    }

    /// Runs `f` on a pooled connection (see [`ServerPool::with`]).
    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> std::result::Result<T, RedisError>,
    ) -> Result<T> {
        self.server.pool.with(&self.ns.location, f)
    }

    /// `SET key value [PX ttl]` as a command.
    fn set(&self, key: &[u8], value: &[u8]) -> redis::Cmd {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.ns.key(key)).arg(value);
        if let Some(ttl) = self.server.ttl {
            cmd.arg("PX").arg(ttl.as_millis() as u64);
        }
        cmd
    }

    /// One `SCAN MATCH pattern` step from `cursor`: the next cursor and
    /// full keys.
    fn scan_step(&self, cursor: u64, pattern: &[u8]) -> Result<(u64, Vec<Vec<u8>>)> {
        self.with(|c| {
            redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(SCAN_COUNT)
                .query(c)
        })
    }
}

/// The namespace of an entry's key `klepto:<n>:<name>:<key>` (`<name>`
/// being `<n>` bytes), if it is one.
fn namespace_of(key: &[u8]) -> Option<String> {
    let rest = key.strip_prefix(b"klepto:")?;
    let colon = rest.iter().position(|&b| b == b':')?;
    let n: usize = std::str::from_utf8(&rest[..colon]).ok()?.parse().ok()?;
    let name = rest.get(colon + 1..colon + 1 + n)?;
    (rest.get(colon + 1 + n) == Some(&b':')).then(|| String::from_utf8_lossy(name).into_owned())
}

/// A Redis error on `at`, transient when it concerns the connection or the
/// server's state (refused, dropped, timed out, loading, failing over).
fn redis_error(at: &str, e: RedisError) -> Error {
    let transient = e.is_io_error()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.is_connection_dropped()
        || matches!(
            e.kind(),
            ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::ClusterDown
            )
        );
    Error::driver(at, e, transient)
}

impl Backend for RedisStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.with(|c| redis::cmd("GET").arg(self.ns.key(key)).query(c))
    }

    fn put(&self, key: &[u8], envelope: &[u8]) -> Result<()> {
        self.with(|c| self.set(key, envelope).query(c))
    }

    /// One `MULTI`/`EXEC` pipeline: one round trip, applied together.
    fn put_batch(&self, entries: Vec<RawEntry>) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        for (key, envelope) in &entries {
            pipe.add_command(self.set(key, envelope)).ignore();
        }
        self.with(|c| pipe.query(c))
    }

    /// `GETDEL`: read and removed in one atomic command.
    fn delete(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.with(|c| redis::cmd("GETDEL").arg(self.ns.key(key)).query(c))
    }

    fn contains(&self, key: &[u8]) -> Result<bool> {
        self.with(|c| redis::cmd("EXISTS").arg(self.ns.key(key)).query(c))
    }

    /// Counted with `SCAN` over the database's keys.
    fn len(&self) -> Result<usize> {
        let (mut cursor, mut n) = (0, 0);
        loop {
            let (next, keys) = self.scan_step(cursor, &self.ns.pattern)?;
            n += keys.len();
            if next == 0 {
                return Ok(n);
            }
            cursor = next;
        }
    }

    /// Deleted step by step with `SCAN` and `UNLINK` (not atomic: entries
    /// written meanwhile may survive).
    fn clear(&self) -> Result<()> {
        let mut cursor = 0;
        loop {
            let (next, keys) = self.scan_step(cursor, &self.ns.pattern)?;
            if !keys.is_empty() {
                self.with(|c| redis::cmd("UNLINK").arg(&keys).query::<()>(c))?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }

    fn scan(&self, values: bool) -> Result<RawItems<'_>> {
        Ok(Box::new(Scan {
            store: self,
            values,
            cursor: 0,
            started: false,
            buffer: Vec::new(),
            failed: false,
        }))
    }

    /// Another namespace of the same database, sharing the pool (`""`:
    /// this one).
    fn namespace(&self, namespace: &str) -> Result<Self> {
        if namespace.is_empty() || namespace == self.ns.name {
            return Ok(self.clone());
        }
        Ok(RedisStore {
            server: Arc::clone(&self.server),
            ns: Arc::new(Namespace::new(&self.server, namespace)),
        })
    }

    /// `redis://host:port/db?ns=<namespace>` (never the password).
    fn location(&self) -> String {
        self.ns.location.clone()
    }

    /// `<url> namespace <ns> key <hex>`.
    fn entry_location(&self, key: &[u8]) -> String {
        format!(
            "{} namespace {} key {}",
            self.server.url,
            self.ns.name,
            KeyHex(key)
        )
    }

    /// `SET lease token NX PX ttl`: taken only if no live lease exists.
    fn try_lease(&self, key: &[u8], ttl: Duration, token: &[u8]) -> Result<bool> {
        let lease = [&self.ns.lease_prefix[..], key].concat();
        let ms = ttl.as_millis().max(1) as u64;
        let reply: Option<String> = self.with(|c| {
            redis::cmd("SET")
                .arg(lease)
                .arg(token)
                .arg("NX")
                .arg("PX")
                .arg(ms)
                .query(c)
        })?;
        Ok(reply.is_some())
    }

    /// Deletes the lease only if `token` still holds it (one Lua script,
    /// so a lease that expired and was taken by another stays theirs).
    fn release(&self, key: &[u8], token: &[u8]) -> Result<()> {
        const RELEASE: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
                               return redis.call('DEL', KEYS[1]) else return 0 end";
        let lease = [&self.ns.lease_prefix[..], key].concat();
        self.with(|c| {
            redis::Script::new(RELEASE)
                .key(lease)
                .arg(token)
                .invoke::<i64>(c)
        })
        .map(drop)
    }
}

/// The scan of [`RedisStore::scan`]: `SCAN` steps, values by `MGET`.
struct Scan<'a> {
    store: &'a RedisStore,
    values: bool,
    cursor: u64,
    started: bool,
    /// The current step's entries, reversed (popped from the end).
    buffer: Vec<RawEntry>,
    failed: bool,
}

impl Scan<'_> {
    /// Fills the buffer with the next step's entries.
    fn step(&mut self) -> Result<()> {
        let (next, keys) = self.store.scan_step(self.cursor, &self.store.ns.pattern)?;
        self.cursor = next;
        self.started = true;
        let prefix = self.store.ns.prefix.len();
        let values: Vec<Option<Vec<u8>>> = if self.values && !keys.is_empty() {
            self.store
                .with(|c| redis::cmd("MGET").arg(&keys).query(c))?
        } else {
            vec![Some(Vec::new()); keys.len()]
        };
        self.buffer = keys
            .into_iter()
            .zip(values)
            // Gone since the scan saw it (deleted or expired): skip.
            .filter_map(|(key, value)| Some((key[prefix..].to_vec(), value?)))
            .rev()
            .collect();
        Ok(())
    }
}

impl Iterator for Scan<'_> {
    type Item = Result<RawEntry>;

    fn next(&mut self) -> Option<Self::Item> {
        while self.buffer.is_empty() {
            if self.failed || (self.started && self.cursor == 0) {
                return None;
            }
            if let Err(e) = self.step() {
                // A failed step ends the scan (retrying could loop forever).
                self.failed = true;
                return Some(Err(e));
            }
        }
        self.buffer.pop().map(Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_are_read_from_entry_keys() {
        assert_eq!(namespace_of(b"klepto:3:fib:\x07"), Some("fib".into()));
        assert_eq!(
            namespace_of(b"klepto:4:a:b:\x07"),
            None,
            "no `:` after the name"
        );
        assert_eq!(namespace_of(b"klepto:3:a:b:\x07"), Some("a:b".into()));
        assert_eq!(
            namespace_of(b"klepto:9:fib:"),
            None,
            "shorter than its length"
        );
        assert_eq!(namespace_of(b"klepto-lease:3:fib:k"), None);
        assert_eq!(namespace_of(b"other"), None);
    }

    #[test]
    fn urls_are_checked_and_passwords_never_shown() {
        for bad in [
            "redis://",
            "http://h/0",
            "redis://h/0?ns=",
            "redis://h/0?ttl=0",
            "redis://h/0?ttl=x",
            "redis://h/0?table=t",
            "redis://:secret@h/0?ns=a&ns=b",
        ] {
            let err = RedisStore::open(bad).unwrap_err();
            assert!(matches!(err, Error::Config { .. }), "{bad}: {err}");
            assert!(!err.to_string().contains("secret"), "{err}");
        }
    }

    #[test]
    fn an_unreachable_server_fails_fast_and_transiently() {
        // Nothing listens on port 1.
        let store = RedisStore::open("redis://:s3cret@127.0.0.1:1/0?ns=a%26b&connect_timeout=1")
            .expect("an unreachable server is not an open error");
        assert_eq!(store.location(), "redis://:***@127.0.0.1:1/0?ns=a%26b");
        let err = store.get(b"k").unwrap_err();
        assert!(err.is_transient(), "{err}");
        assert!(!format!("{err} {err:?}").contains("s3cret"));
    }

    #[test]
    fn namespaces_have_distinct_prefixes_and_escaped_patterns() {
        let store = RedisStore::open("redis://127.0.0.1:1/0?ns=a").unwrap();
        let other = store.namespace("a:b*").unwrap();
        assert_eq!(store.ns.prefix, b"klepto:1:a:");
        assert_eq!(other.ns.prefix, b"klepto:4:a:b*:");
        assert_eq!(other.ns.pattern, b"klepto:4:a:b\\*:*");
        assert_eq!(other.ns.key(b"\x01"), b"klepto:4:a:b*:\x01");
    }
}
