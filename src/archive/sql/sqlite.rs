//! SQLite connections: the pool, per-connection settings, table creation.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, MutexGuard};
use r2d2::{ManageConnection, Pool, PooledConnection};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, ErrorCode};

use super::url::{quote_identifier, Backend, Target};
use crate::{Error, Result};

/// How long a connection waits for another writer (thread or process)
/// before a statement fails with "database is locked".
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections per pool for a file database. Writers are serialized by
/// SQLite anyway; a few connections let readers proceed in parallel (WAL).
const POOL_SIZE: u32 = 8;

/// Prepared statements kept per connection: about eight per table, so this
/// covers a handful of tables sharing one pool.
const STATEMENT_CACHE: usize = 64;

/// One open database: its connection pool and its URL, shared (via `Arc`)
/// by every archive and table handle opened from it.
pub(crate) struct Db {
    pool: Pool<SqliteConnectionManager>,
    /// One connection kept out of the pool for the common, uncontended
    /// case: taking it is a `try_lock` (about 20 ns) where a pool checkout
    /// costs about 200 ns (a mutex, a condvar and two clock reads).
    fast: Mutex<Conn>,
    /// The pool has no connection but `fast` (a memory database): wait
    /// for it instead of the pool.
    single: bool,
    /// `sqlite:///abs/path` (no query), for `location()`.
    pub(crate) url: String,
    /// The path (or `:memory:`), the start of an entry's location in errors.
    pub(crate) name: String,
    /// Whether connections run with `synchronous=FULL`.
    pub(crate) durable: bool,
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Db")
            .field("url", &self.url)
            .field("durable", &self.durable)
            .finish_non_exhaustive()
    }
}

pub(crate) type Conn = PooledConnection<SqliteConnectionManager>;

/// A connection lent by [`Db::conn`]: the fast one or one from the pool.
pub(crate) enum ConnRef<'a> {
    Fast(MutexGuard<'a, Conn>),
    Pooled(Conn),
}

impl Deref for ConnRef<'_> {
    type Target = Connection;
    #[inline]
    fn deref(&self) -> &Connection {
        match self {
            ConnRef::Fast(guard) => guard,
            ConnRef::Pooled(conn) => conn,
        }
    }
}

impl DerefMut for ConnRef<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut Connection {
        match self {
            ConnRef::Fast(guard) => guard,
            ConnRef::Pooled(conn) => conn,
        }
    }
}

impl Db {
    /// Opens the database of `target` (creating the file if missing) and
    /// switches it to WAL mode.
    pub(crate) fn open(target: &Target) -> Result<Db> {
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
        };
        let url = Target {
            backend: match &target.backend {
                Backend::SqliteFile(_) => Backend::SqliteFile(name.clone().into()),
                Backend::SqliteMemory => Backend::SqliteMemory,
            },
            table: None,
            durable,
        }
        .database_url();
        let manager = manager.with_init(move |conn| init_connection(conn, durable));
        // A first connection outside the pool: it reports a precise error at
        // once (a missing directory, a file that is not a database), where
        // the pool would retry until its timeout. For a memory database it
        // also keeps the database alive: the manager holds it.
        let first = manager
            .connect()
            .map_err(|e| Error::archive(url.clone(), format!("cannot open the database: {e}")))?;
        drop(first);
        let pool = Pool::builder()
            .max_size(size)
            .min_idle(Some(0))
            .test_on_check_out(false)
            .idle_timeout(None)
            .max_lifetime(None)
            .connection_timeout(BUSY_TIMEOUT * 3)
            .build_unchecked(manager);
        let fast = pool.get().map_err(|e| no_connection(&url, e))?;
        Ok(Db {
            pool,
            fast: Mutex::new(fast),
            single: size == 1,
            url,
            name,
            durable,
        })
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
        self.pool
            .get()
            .map(ConnRef::Pooled)
            .map_err(|e| no_connection(&self.url, e))
    }

    /// Creates `table` if missing and checks it has `key` and `value`
    /// columns. Safe when several processes create the same table at once.
    pub(crate) fn create_table(&self, table: &str) -> Result<()> {
        let quoted = quote_identifier(table);
        let conn = self.conn()?;
        conn.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {quoted} \
             (key BLOB PRIMARY KEY NOT NULL, value BLOB NOT NULL) WITHOUT ROWID"
        ))
        .map_err(|e| self.table_error(table, e))?;
        drop(conn);
        self.check_columns(table)
    }

    /// Checks that `table`, if it exists, has `key` and `value` columns.
    pub(crate) fn check_table(&self, table: &str) -> Result<()> {
        let conn = self.conn()?;
        let exists = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1 COLLATE NOCASE",
                [table],
                |r| r.get::<_, i64>(0),
            )
            .map_err(|e| self.table_error(table, e))?
            > 0;
        drop(conn);
        if exists {
            self.check_columns(table)?;
        }
        Ok(())
    }

    /// A table of the same name made by someone else: fail now, clearly.
    fn check_columns(&self, table: &str) -> Result<()> {
        let quoted = quote_identifier(table);
        let conn = self.conn()?;
        conn.prepare(&format!("SELECT key, value FROM {quoted} LIMIT 0"))
            .map_err(|e| {
                self.table_error(
                    table,
                    format_args!("the table exists but is not a klepto archive: {e}"),
                )
            })?;
        Ok(())
    }

    /// An [`Error::Archive`] about `table` of this database.
    fn table_error(&self, table: &str, reason: impl fmt::Display) -> Error {
        Error::archive(format!("{} table {table}", self.url), reason)
    }
}

/// The error when the pool of the database at `url` lends no connection.
fn no_connection(url: &str, e: r2d2::Error) -> Error {
    Error::archive(url, format!("no database connection: {e}"))
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
