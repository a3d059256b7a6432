//! The SQLite driver: the pool, per-connection settings, and the
//! [`Driver`] operations on rusqlite connections.

mod fast;
mod wal;

use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, MutexGuard};
use r2d2::{ManageConnection, Pool, PooledConnection};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, ErrorCode, Transaction, TransactionBehavior};
use scheduled_thread_pool::ScheduledThreadPool;

use self::fast::FastConn;
use super::dialect::{Dialect, Statements};
use super::driver::Driver;
use super::target::{Backend, Target};
use crate::archive::RawEntry;
use crate::{Error, Result};

/// How long a connection waits for another writer (thread or process)
/// before a statement fails with "database is locked".
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections per pool for a file database. Writers are serialized by
/// SQLite anyway; a few connections let readers proceed in parallel (WAL).
const POOL_SIZE: u32 = 8;

/// Database files up to this size are checked for damage (see
/// [`SqliteDriver::check`]): about 70 ms of `PRAGMA integrity_check`.
const CHECK_MAX: u64 = 64 << 20;

/// Prepared statements kept per connection: about eight per table, so this
/// covers a handful of tables sharing one pool.
const STATEMENT_CACHE: usize = 64;

/// One open SQLite database: its connection pool and its URL, shared (via
/// `Arc`) by every archive and table handle opened from it.
pub(crate) struct SqliteDriver {
    /// The pool, built when the fast connection is first found busy.
    /// Building it starts r2d2's worker thread, and in a process with a
    /// second thread the kernel counts references to the file on every
    /// `fcntl` and `fstat` SQLite makes (three per read transaction): about
    /// 2% of a reload. A program that uses one connection at a time never
    /// starts it.
    pool: OnceLock<Pool<SqliteConnectionManager>>,
    /// The pool's manager, until the pool is built.
    manager: Mutex<Option<SqliteConnectionManager>>,
    /// Connections the pool may open.
    size: u32,
    /// One connection kept out of the pool for the common, uncontended
    /// case: taking it is a `try_lock` (about 20 ns) where a pool checkout
    /// costs about 200 ns (a mutex, a condvar and two clock reads). It
    /// holds its lookup statements prepared.
    fast: Mutex<FastConn>,
    /// The pool has no connection but `fast` (a memory database): wait
    /// for it instead of the pool.
    single: bool,
    /// `sqlite:///abs/path` (no query), for `location()`.
    url: String,
    /// The path (or `:memory:`), the start of an entry's location in errors.
    name: String,
    /// Whether connections run with `synchronous=FULL`.
    durable: bool,
    /// The database file's damage, if any, found by [`check`](Self::check)
    /// at the first lookup that finds nothing.
    damage: OnceLock<Option<String>>,
}

impl fmt::Debug for SqliteDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteDriver")
            .field("url", &self.url)
            .field("durable", &self.durable)
            .finish_non_exhaustive()
    }
}

pub(crate) type Conn = PooledConnection<SqliteConnectionManager>;

/// A connection lent by [`Db::conn`]: the fast one or one from the pool.
pub(crate) enum ConnRef<'a> {
    Fast(MutexGuard<'a, FastConn>),
    Pooled(Conn),
}

impl Deref for ConnRef<'_> {
    type Target = Connection;
    #[inline]
    fn deref(&self) -> &Connection {
        match self {
            ConnRef::Fast(guard) => guard.conn(),
            ConnRef::Pooled(conn) => conn,
        }
    }
}

impl SqliteDriver {
    /// Opens the database of `target` (creating the file if missing) and
    /// switches it to WAL mode.
    pub(crate) fn open(target: &Target) -> Result<SqliteDriver> {
        let durable = target.durable;
        let (manager, name, size) = match &target.backend {
            Backend::SqliteFile(path) => {
                let path = std::path::absolute(path).map_err(|source| Error::Io {
                    path: path.clone(),
                    source,
                })?;
                let name = path.display().to_string();
                (SqliteConnectionManager::file(&path), name, POOL_SIZE)
            }
            // A shared-cache memory database locks whole tables and ignores
            // the busy timeout: one connection avoids "database table is
            // locked" errors between threads.
            Backend::SqliteMemory => (SqliteConnectionManager::memory(), ":memory:".into(), 1),
            Backend::Postgres(_) => unreachable!("a PostgreSQL target has its own driver"),
        };
        let url = Target {
            backend: match &target.backend {
                Backend::SqliteFile(_) => Backend::SqliteFile(name.clone().into()),
                _ => Backend::SqliteMemory,
            },
            table: None,
            durable,
        }
        .database_url();
        let writable = manager.with_init(move |conn| init_connection(conn, durable));
        // The first connection, outside the pool: it reports a precise error
        // at once (a missing directory, a file that is not a database), where
        // the pool would retry until its timeout, and it stays as the fast
        // connection (so that opening costs one connection, not two: a
        // program that starts again pays it before its first result).
        let (manager, first) = match writable.connect() {
            Ok(first) => (writable, first),
            Err(e) => match &target.backend {
                // On a read-only filesystem (or a directory this process
                // may not write), serve reads: writes fail and are counted.
                Backend::SqliteFile(_) if read_only_location(std::path::Path::new(&name)) => {
                    let manager = read_only_manager(std::path::Path::new(&name));
                    let first = manager.connect().map_err(|ro| {
                        Error::archive(
                            url.clone(),
                            format!("cannot open the database: {e} (read-only: {ro})"),
                        )
                    })?;
                    log::warn!("klepto: {url}: the location is read-only; opened for reading only");
                    (manager, first)
                }
                _ => {
                    return Err(Error::archive(
                        url.clone(),
                        format!("cannot open the database: {e}"),
                    ))
                }
            },
        };
        let writable = !first.is_readonly(rusqlite::MAIN_DB).unwrap_or(true);
        if matches!(target.backend, Backend::SqliteFile(_)) && writable {
            check_log(&first, &name)?;
        }
        Ok(SqliteDriver {
            pool: OnceLock::new(),
            manager: Mutex::new(Some(manager)),
            size,
            fast: Mutex::new(FastConn::hold(first)),
            single: size == 1,
            url,
            name,
            durable,
            damage: OnceLock::new(),
        })
    }

    /// Checks the database file for damage, once per open: run at the
    /// first lookup that finds nothing, because damage that SQLite does not
    /// notice shows as entries that are no longer found. `PRAGMA
    /// integrity_check` reads every page (about 5 ms per 10,000 small entries),
    /// so a reload whose lookups all hit pays nothing; files larger than
    /// [`CHECK_MAX`] are not checked. A damaged file makes every lookup
    /// that finds nothing an [`Error::Corrupt`] naming the file.
    /// (`integrity_check`, not `quick_check`: only it sees rows out of key
    /// order, which is how a damaged key hides its entry; on an archive's
    /// tables, which have no secondary index, both take the same time.)
    fn check(&self) -> Result<()> {
        let damage = self.damage.get_or_init(|| self.integrity_check());
        match damage {
            None => Ok(()),
            Some(reason) => Err(Error::Corrupt {
                location: self.name.clone(),
                reason: format!(
                    "the SQLite database is damaged, entries may be missing \
                     (PRAGMA integrity_check: {reason})"
                ),
            }),
        }
    }

    /// What `PRAGMA integrity_check` finds wrong (its first finding), or `None`.
    fn integrity_check(&self) -> Option<String> {
        if self.single {
            return None; // a memory database: nothing on disk to damage
        }
        let size = std::fs::metadata(&self.name).map_or(0, |m| m.len());
        if size > CHECK_MAX {
            log::debug!(
                "klepto: {}: {size} bytes, not checked for damage (over {CHECK_MAX})",
                self.url
            );
            return None;
        }
        let conn = match self.conn() {
            Ok(conn) => conn,
            Err(e) => return Some(e.to_string()),
        };
        let found = conn.query_row("PRAGMA integrity_check(1)", [], |row| {
            row.get::<_, String>(0)
        });
        match found {
            Ok(ok) if ok == "ok" => None,
            Ok(finding) => Some(finding),
            Err(e) => Some(e.to_string()),
        }
    }

    /// A connection: the fast one if free, else one from the pool. Callers
    /// never hold two at once (a memory database has only one).
    #[inline]
    pub(crate) fn conn(&self) -> Result<ConnRef<'_>> {
        if let Some(fast) = self.fast.try_lock() {
            return Ok(ConnRef::Fast(fast));
        }
        if self.single {
            return Ok(ConnRef::Fast(self.fast.lock()));
        }
        self.pool()
            .get()
            .map(ConnRef::Pooled)
            .map_err(|e| no_connection(&self.url, e))
    }

    /// The pool, built now if this is its first use.
    fn pool(&self) -> &Pool<SqliteConnectionManager> {
        self.pool.get_or_init(|| {
            let manager = (self.manager.lock().take()).expect("the pool is built once");
            log::debug!(
                "klepto: {}: a second connection is needed, starting the pool",
                self.url
            );
            Pool::builder()
                .thread_pool(pool_workers())
                .max_size(self.size)
                .min_idle(Some(0))
                .test_on_check_out(false)
                .idle_timeout(None)
                .max_lifetime(None)
                .connection_timeout(BUSY_TIMEOUT * 3)
                .build_unchecked(manager)
        })
    }

    /// Whether the pool was built (for tests).
    #[cfg(test)]
    pub(crate) fn pool_started(&self) -> bool {
        self.pool.get().is_some()
    }
}

/// The worker threads every SQLite pool shares (r2d2 opens connections on
/// them). r2d2 would start three per pool, which costs a program that
/// starts again more than the connection it opens; SQLite connections open
/// locally in well under a millisecond, so one thread serves every pool.
/// (Server pools keep their own: a connect to a server that is down must
/// not hold up another's.)
fn pool_workers() -> Arc<ScheduledThreadPool> {
    static WORKERS: OnceLock<Arc<ScheduledThreadPool>> = OnceLock::new();
    WORKERS
        .get_or_init(|| {
            Arc::new(
                ScheduledThreadPool::builder()
                    .num_threads(1)
                    .thread_name_pattern("klepto-sqlite-{}")
                    .build(),
            )
        })
        .clone()
}

/// The error when the pool of the database at `url` lends no connection.
fn no_connection(url: &str, e: r2d2::Error) -> Error {
    Error::driver(url, e, true)
}

/// A failed statement on `at`: transient when another writer held the
/// database past the busy timeout; [`Error::Corrupt`] when SQLite found
/// the file damaged.
fn sql_error(at: &str, e: rusqlite::Error) -> Error {
    if matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
    ) {
        return Error::Corrupt {
            location: at.to_string(),
            reason: format!("the SQLite database is damaged: {e}"),
        };
    }
    let transient = matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    );
    Error::driver(at, e, transient)
}

/// A stored key or value as bytes, whatever its SQL type: a blob as is,
/// text as its bytes, anything else (a number, NULL) as no bytes. Data
/// changed behind the archive's back then fails to decode and is reported
/// as [`Error::Corrupt`], like any damaged entry, instead of as an SQL
/// type error.
fn stored_bytes(value: ValueRef<'_>) -> &[u8] {
    match value {
        ValueRef::Blob(b) | ValueRef::Text(b) => b,
        ValueRef::Null | ValueRef::Integer(_) | ValueRef::Real(_) => &[],
    }
}

impl Driver for SqliteDriver {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn url(&self) -> &str {
        &self.url
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn schema(&self) -> Option<&str> {
        None
    }

    fn durable(&self) -> bool {
        self.durable
    }

    /// The bytes are lent from SQLite's row, valid until the next step.
    fn query_value_with(
        &self,
        at: &str,
        sql: &str,
        key: &[u8],
        found: &mut dyn FnMut(&[u8]),
    ) -> Result<()> {
        let mut hit = false;
        let mut lookup = |stmt: &mut rusqlite::Statement<'_>| {
            let mut rows = stmt.query([key])?;
            if let Some(row) = rows.next()? {
                hit = true;
                found(stored_bytes(row.get_ref(0)?));
            }
            Ok(())
        };
        match self.conn()? {
            // The hot path of a reload: the statement is held prepared.
            ConnRef::Fast(mut fast) => fast.with_held(sql, lookup),
            ConnRef::Pooled(conn) => conn.prepare_cached(sql).and_then(|mut s| lookup(&mut s)),
        }
        .map_err(|e| sql_error(at, e))?;
        if hit {
            Ok(())
        } else {
            self.check()
        }
    }

    fn exists(&self, at: &str, sql: &str, key: &[u8]) -> Result<bool> {
        let found = {
            let conn = self.conn()?;
            let mut stmt = conn.prepare_cached(sql).map_err(|e| sql_error(at, e))?;
            stmt.exists([key]).map_err(|e| sql_error(at, e))?
        };
        if !found {
            self.check()?;
        }
        Ok(found)
    }

    fn put(&self, at: &str, sql: &str, key: &[u8], value: &[u8]) -> Result<()> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(sql).map_err(|e| sql_error(at, e))?;
        stmt.execute((key, value)).map_err(|e| sql_error(at, e))?;
        Ok(())
    }

    fn put_batch(&self, at: &str, sql: &Statements, rows: &[RawEntry]) -> Result<()> {
        let conn = self.conn()?;
        // IMMEDIATE: take the write lock now (waiting up to the busy
        // timeout) rather than failing on a read-to-write upgrade later.
        // (Unchecked: the fast connection is shared with its statements;
        // this connection is lent to this call alone, so no other
        // transaction is open on it.)
        let tx = Transaction::new_unchecked(&conn, TransactionBehavior::Immediate)
            .map_err(|e| sql_error(at, e))?;
        {
            let mut stmt = tx
                .prepare_cached(&sql.upsert)
                .map_err(|e| sql_error(at, e))?;
            for (key, value) in rows {
                stmt.execute((key, value)).map_err(|e| sql_error(at, e))?;
            }
        }
        // Dropping `tx` on an error above rolls the whole batch back.
        tx.commit().map_err(|e| sql_error(at, e))
    }

    fn count(&self, at: &str, sql: &str) -> Result<u64> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(sql).map_err(|e| sql_error(at, e))?;
        let n: i64 = stmt
            .query_row([], |row| row.get(0))
            .map_err(|e| sql_error(at, e))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn page(&self, at: &str, sql: &str, after: &[u8], values: bool) -> Result<Vec<RawEntry>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(sql).map_err(|e| sql_error(at, e))?;
        let rows = stmt
            .query_map([after], |row| {
                let key = stored_bytes(row.get_ref(0)?).to_vec();
                let value = if values {
                    stored_bytes(row.get_ref(1)?).to_vec()
                } else {
                    Vec::new()
                };
                Ok((key, value))
            })
            .map_err(|e| sql_error(at, e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| sql_error(at, e))
    }

    fn texts(&self, at: &str, sql: &str, params: &[&str]) -> Result<Vec<String>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(sql).map_err(|e| sql_error(at, e))?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(params), |row| {
                Ok(String::from_utf8_lossy(stored_bytes(row.get_ref(0)?)).into_owned())
            })
            .map_err(|e| sql_error(at, e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| sql_error(at, e))
    }

    fn run(&self, at: &str, sql: &str) -> Result<()> {
        self.conn()?
            .execute_batch(sql)
            .map_err(|e| sql_error(at, e))
    }
}

/// Refuses a database whose write-ahead log holds transactions that SQLite
/// would drop (see [`wal`]): [`Error::Corrupt`] naming the log, with the
/// database and its log left as they are. The log is read under the write
/// lock (`BEGIN IMMEDIATE`), so no other process appends to it meanwhile;
/// it exists at open only after a crash or while another process has the
/// database open, so a database closed cleanly costs nothing here.
fn check_log(conn: &Connection, name: &str) -> Result<()> {
    let wal = std::path::PathBuf::from(format!("{name}-wal"));
    if std::fs::metadata(&wal).map_or(true, |m| m.len() == 0) {
        return Ok(());
    }
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        log::warn!("klepto: {name}: the write-ahead log was not checked (no write lock: {e})");
        return Ok(());
    }
    let found = wal::lost_commits(&wal);
    let _ = conn.execute_batch("ROLLBACK");
    match found {
        Ok(None) => Ok(()),
        Ok(Some(lost)) => {
            // Closing this connection must not checkpoint what SQLite
            // reads of the log into the database, and so delete the log.
            let _ = conn.set_db_config(
                rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
                true,
            );
            Err(Error::Corrupt {
                location: wal.display().to_string(),
                reason: format!(
                    "the SQLite write-ahead log is damaged: {lost}. The database and its log \
                     are left as they are; move the log aside to open the database without \
                     those transactions"
                ),
            })
        }
        Err(source) => Err(Error::Io { path: wal, source }),
    }
}

/// Whether the database at `path` lies where this process cannot write:
/// the file or its directory (where SQLite keeps its `-wal` and `-shm`
/// files) refuses writes.
fn read_only_location(path: &std::path::Path) -> bool {
    use std::io::ErrorKind;
    let refused = |e: &std::io::Error| {
        matches!(
            e.kind(),
            ErrorKind::ReadOnlyFilesystem | ErrorKind::PermissionDenied
        )
    };
    let file = std::fs::OpenOptions::new().write(true).open(path);
    if file.as_ref().is_err_and(refused) {
        return true;
    }
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    tempfile::tempfile_in(dir).as_ref().is_err_and(refused)
}

/// Connections that only read the database at `path`, opened immutable:
/// where nothing can write (a read-only filesystem, a directory without
/// write permission), SQLite cannot create the `-shm` file a WAL database
/// needs, and nobody can change the file while it is read. Writes fail
/// with "attempt to write a readonly database".
fn read_only_manager(path: &std::path::Path) -> SqliteConnectionManager {
    use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
    const URI_PATH: &AsciiSet = &CONTROLS.add(b'%').add(b'?').add(b'#').add(b' ');
    let uri = format!(
        "file:{}?immutable=1",
        utf8_percent_encode(&path.display().to_string(), URI_PATH)
    );
    SqliteConnectionManager::file(uri)
        .with_flags(
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                | rusqlite::OpenFlags::SQLITE_OPEN_URI
                | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .with_init(|conn| {
            conn.busy_timeout(BUSY_TIMEOUT)?;
            conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
            conn.execute_batch("PRAGMA cache_size=-8192")
        })
}

/// Settings of every new connection: busy timeout, WAL, synchronous level.
fn init_connection(conn: &mut Connection, durable: bool) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // Switching a new database to WAL needs an exclusive lock and may
    // report SQLITE_BUSY without waiting when another process is doing the
    // same: retry until the busy timeout.
    let start = Instant::now();
    loop {
        match conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0)) {
            Ok(_) => break,
            Err(e)
                if matches!(
                    e.sqlite_error_code(),
                    Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
                ) && start.elapsed() < BUSY_TIMEOUT =>
            {
                thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(e),
        }
    }
    conn.execute_batch(if durable {
        "PRAGMA synchronous=FULL"
    } else {
        "PRAGMA synchronous=NORMAL"
    })?;
    // A page cache of up to 8 MiB per connection (SQLite's default is
    // 2 MiB), so a table of a few megabytes is read from memory.
    conn.execute_batch("PRAGMA cache_size=-8192")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_starts_only_when_the_fast_connection_is_busy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lazy.db");
        let driver = SqliteDriver::open(&Target::parse(path.as_os_str()).unwrap()).unwrap();
        driver
            .run("t", "CREATE TABLE t (key BLOB PRIMARY KEY, value BLOB)")
            .unwrap();
        let get = "SELECT value FROM t WHERE key = ?1";
        driver
            .put("t", "INSERT INTO t VALUES (?1, ?2)", b"k", b"v")
            .unwrap();
        assert_eq!(
            driver.query_value("t", get, b"k").unwrap(),
            Some(b"v".to_vec())
        );
        assert!(
            !driver.pool_started(),
            "one caller at a time: no pool, no thread"
        );
        // While the fast connection is lent, another caller gets a pooled one.
        let fast = driver.conn().unwrap();
        assert!(matches!(fast, ConnRef::Fast(_)));
        let pooled = driver.conn().unwrap();
        assert!(matches!(pooled, ConnRef::Pooled(_)));
        assert!(driver.pool_started());
        drop(fast);
        let n: i64 = pooled
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
    }
}
