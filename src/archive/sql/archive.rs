//! `SqlArchive`: one SQL table (SQLite or PostgreSQL) as an archive.

use std::ffi::OsStr;

use super::connect;
use super::table::SqlTable;
use super::target::{Target, DEFAULT_TABLE};
use crate::archive::Backed;
use crate::Result;

/// An archive in one table of an SQLite database (feature `sqlite`) or a
/// PostgreSQL database (feature `postgres`): the typed archive over an
/// [`SqlTable`].
///
/// The table is `key BLOB PRIMARY KEY, value BLOB` (SQLite, `WITHOUT
/// ROWID`) or `key BYTEA PRIMARY KEY, value BYTEA` (PostgreSQL): the key
/// column holds the key as MessagePack, the value column an
/// [envelope](crate::archive::envelope) (checksum, format version, the key
/// itself, the call's encoded arguments when given, the value as
/// MessagePack). Both backends store the same bytes, so an archive moves
/// between them row for row.
///
/// SQLite runs in WAL mode through a pool of connections, so threads and
/// processes may read and write one archive at once; a writer waits up to
/// 10 s for another instead of failing. PostgreSQL goes through a pool of
/// up to 8 connections with prepared statements; writes are upserts
/// (`INSERT … ON CONFLICT DO UPDATE`). A server that cannot be reached
/// fails an operation after the connect timeout (2 s unless the URL says
/// `connect_timeout=N`), and for half a second after that fails at once,
/// so a memo over a stopped server goes on computing; the pool reconnects
/// when the server is back. A server machine that vanishes in the middle
/// of a call is given up after about 10 s (TCP keepalives); a server
/// process that is alive but never answers blocks the call (the
/// synchronous `postgres` client has no reply timeout).
///
/// Every write is one transaction; [`extend`](crate::archive::Archive::extend)
/// (a memo's `dump`) writes its whole batch in one. A committed write
/// survives a crash or kill of the process; SQLite's `?durable=true`
/// (`synchronous=FULL`) also makes it survive a power loss, at some cost
/// per write.
///
/// A damaged entry, one written for another value type, or one found under
/// another key than its own (rows swapped or changed by hand) reads as
/// [`Error::Corrupt`](crate::Error::Corrupt) naming the database, table
/// and key, and stays in place until overwritten; other entries are
/// unaffected.
///
/// Clones share the connection pool.
/// [`namespaced`](crate::archive::Archive::namespaced) gives another table
/// of the same database. Table names are quoted, so any name works
/// (`fib@2`, `a"b`, even `x'; DROP TABLE memo; --`), but SQLite compares
/// them without regard to ASCII case: `Fib` and `fib` are one table.
///
/// ```
/// use klepto::archive::{Archive, SqlArchive};
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("cache.db");
/// let a: SqlArchive<u64, String> = SqlArchive::open(&path)?;
/// a.insert(1, "one".into())?;
/// assert_eq!(a.get(&1)?, Some("one".to_string()));
/// assert_eq!(a.table(), "memo");
///
/// // Another handle on the same file sees the write.
/// let url = format!("sqlite://{}?table=memo", path.display());
/// let b: SqlArchive<u64, String> = SqlArchive::open(&url)?;
/// assert_eq!(b.len()?, 1);
///
/// let other = a.namespaced("other")?;     // the table "other"
/// assert_eq!(other.get(&1)?, None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub type SqlArchive<K, V> = Backed<SqlTable, K, V>;

impl<K, V> Backed<SqlTable, K, V> {
    /// Opens the database named by `target`, for the table it names
    /// (created at the archive's first use): a path (`cache.db`, or a
    /// [`Path`](std::path::Path); table `memo`) or a URL such as
    /// `sqlite:///abs/path/cache.db?table=fib`, `sqlite://relative/cache.db`,
    /// `sqlite::memory:` or
    /// `postgres://user:password@host:5432/db?table=fib&schema=public`.
    ///
    /// Parameters: `table` (default `memo`; any name but empty,
    /// NUL-containing, SQLite's `sqlite_…` or PostgreSQL's over 63 bytes);
    /// for SQLite `durable` (`true`: commits also survive power loss); for
    /// PostgreSQL `schema` (default `public`) and `connect_timeout`
    /// (seconds, default 2).
    ///
    /// A PostgreSQL server that cannot be reached now is not an error: the
    /// archive connects at its first use (and fails that use, quickly,
    /// while the server is down).
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) for a malformed target, an
    /// unknown parameter, a bad table name or a backend this build lacks;
    /// [`Error::Archive`](crate::Error::Archive) when the database refuses
    /// the connection (a wrong password, no such database), cannot be
    /// opened, or the table exists with other columns.
    pub fn open(target: impl AsRef<OsStr>) -> Result<Self> {
        let target = Target::parse(target.as_ref())?;
        let driver = connect(&target)?;
        let table = target.table.as_deref().unwrap_or(DEFAULT_TABLE);
        // Created at first use, so that a handle opened only to be
        // `namespaced` leaves no empty table behind; an existing table is
        // checked now (when the server can be reached).
        let table = SqlTable::new(driver, table, false)?;
        table.check_unless_unreachable()?;
        Ok(Backed::new(table))
    }

    /// The name of the table this archive reads and writes.
    pub fn table(&self) -> &str {
        self.backend().table()
    }
}
