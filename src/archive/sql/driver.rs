//! The seam between the SQL logic and a database driver: a [`Driver`]
//! runs statement texts (from [`Dialect`]) with byte parameters and hands
//! rows back as bytes. Everything above it (tables, paging, batching,
//! leases' use, the typed archive) is shared by every dialect.

use std::fmt;
use std::time::Duration;

use super::dialect::{Dialect, Statements};
use crate::archive::RawEntry;
use crate::Result;

/// One connected database. Each method runs one statement (or one
/// transaction) on a pooled connection; `at` names the table or database
/// in errors.
pub(crate) trait Driver: Send + Sync + fmt::Debug {
    /// The database's SQL dialect.
    fn dialect(&self) -> Dialect;

    /// The database's URL, without table and with any password masked.
    fn url(&self) -> &str;

    /// How the database is named at the start of an entry's location (a
    /// path, or the URL).
    fn name(&self) -> &str;

    /// The schema tables live in (PostgreSQL), `None` for SQLite.
    fn schema(&self) -> Option<&str>;

    /// Whether commits are durable across power loss (SQLite `durable`).
    fn durable(&self) -> bool {
        false
    }

    /// Hands `found` the first column of the first row of `sql` run with
    /// the key, as bytes lent by the driver (no copy), if there is a row.
    fn query_value_with(
        &self,
        at: &str,
        sql: &str,
        key: &[u8],
        found: &mut dyn FnMut(&[u8]),
    ) -> Result<()>;

    /// [`query_value_with`](Self::query_value_with)'s bytes, copied.
    fn query_value(&self, at: &str, sql: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let mut out = None;
        self.query_value_with(at, sql, key, &mut |bytes| out = Some(bytes.to_vec()))?;
        Ok(out)
    }

    /// Whether `sql` run with the key returns a row.
    fn exists(&self, at: &str, sql: &str, key: &[u8]) -> Result<bool>;

    /// Runs `sql` with the key and value.
    fn put(&self, at: &str, sql: &str, key: &[u8], value: &[u8]) -> Result<()>;

    /// Upserts every row (keys distinct) in one transaction: all or
    /// nothing. `sql` holds the table's statements; each driver picks the
    /// form it batches best (one statement per row, or one for all).
    fn put_batch(&self, at: &str, sql: &Statements, rows: &[RawEntry]) -> Result<()>;

    /// The single integer `sql` returns (a count).
    fn count(&self, at: &str, sql: &str) -> Result<u64>;

    /// Up to a page of rows of `sql` run with `after`: keys and (with
    /// `values`) values, else empty values.
    fn page(&self, at: &str, sql: &str, after: &[u8], values: bool) -> Result<Vec<RawEntry>>;

    /// The first column of every row of `sql` run with text parameters.
    fn texts(&self, at: &str, sql: &str, params: &[&str]) -> Result<Vec<String>>;

    /// Runs `sql`, without parameters and without rows (DDL, `DELETE`).
    fn run(&self, at: &str, sql: &str) -> Result<()>;

    /// Tries to take the lease on `key` of `table` (see
    /// [`Backend::try_lease`](crate::archive::Backend::try_lease)). The
    /// default, for embedded databases, always grants.
    fn try_lease(&self, table: &str, key: &[u8], ttl: Duration, token: &[u8]) -> Result<bool> {
        let _ = (table, key, ttl, token);
        Ok(true)
    }

    /// Gives up the lease on `key` of `table` if `token` holds it.
    fn release(&self, table: &str, key: &[u8], token: &[u8]) -> Result<()> {
        let _ = (table, key, token);
        Ok(())
    }

    /// Removes every lease kept for `table` (when the table is dropped).
    fn forget_leases(&self, table: &str) -> Result<()> {
        let _ = table;
        Ok(())
    }
}
