//! `SqlDatabase`: a database as a dictionary of tables.

use std::ffi::OsStr;
use std::fmt;
use std::sync::Arc;

use super::archive::SqlArchive;
use super::connect;
use super::dialect::{Dialect, LEASE_TABLE};
use super::driver::Driver;
use super::table::{has_table, SqlTable};
use super::target::Target;
use crate::archive::target::bad;
use crate::archive::Backed;
use crate::Result;

/// A whole database (SQLite, or one schema of a PostgreSQL database) as a
/// dictionary: keys are table names, each value an [`SqlArchive`] of that
/// table. Removing a key ([`drop_table`](SqlDatabase::drop_table)) drops
/// the table and its entries.
///
/// Every archive obtained with [`table`](SqlDatabase::table) shares this
/// database's connection pool; clones share it too.
///
/// ```
/// use klepto::archive::{Archive, SqlDatabase};
/// let dir = tempfile::tempdir()?;
/// let db = SqlDatabase::open(dir.path().join("all.db"))?;
/// let fib = db.table::<u64, u64>("fib")?;       // created if missing
/// fib.insert(10, 55)?;
/// db.table::<String, f64>("area")?;
/// assert_eq!(db.tables()?, ["area", "fib"]);
/// assert!(db.contains("fib")?);
/// assert!(db.drop_table("area")?);
/// assert_eq!(db.len()?, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct SqlDatabase {
    driver: Arc<dyn Driver>,
}

impl fmt::Debug for SqlDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlDatabase")
            .field("location", &self.driver.url())
            .finish()
    }
}

impl SqlDatabase {
    /// Opens the database named by `target`: a path or a URL as for
    /// [`SqlArchive::open`], without a `table` parameter. For PostgreSQL,
    /// `?schema=` picks the schema whose tables are listed (default
    /// `public`).
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) for a malformed target or one
    /// naming a table; [`Error::Archive`](crate::Error::Archive) when the
    /// database cannot be opened.
    pub fn open(target: impl AsRef<OsStr>) -> Result<Self> {
        let raw = target.as_ref();
        let parsed = Target::parse(raw)?;
        if parsed.table.is_some() {
            return Err(bad(
                &raw.to_string_lossy(),
                "a database takes no `table` parameter (open a table with `SqlDatabase::table`)",
            ));
        }
        Ok(SqlDatabase {
            driver: connect(&parsed)?,
        })
    }

    /// The names of the tables (not SQLite's own, nor the lease table),
    /// sorted.
    pub fn tables(&self) -> Result<Vec<String>> {
        let sql = self.driver.dialect().list_tables();
        let mut names = match self.driver.schema() {
            Some(schema) => self.driver.texts(self.driver.url(), sql, &[schema])?,
            None => self.driver.texts(self.driver.url(), sql, &[])?,
        };
        names.retain(|n| n != LEASE_TABLE);
        Ok(names)
    }

    /// Whether the table `name` exists.
    pub fn contains(&self, name: &str) -> Result<bool> {
        has_table(&*self.driver, name)
    }

    /// The number of tables.
    pub fn len(&self) -> Result<usize> {
        Ok(self.tables()?.len())
    }

    /// Whether the database has no table.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// The archive of table `name`, created if missing, sharing this
    /// database's connections.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) for a name the database
    /// cannot take (see [`SqlArchive::open`]);
    /// [`Error::Archive`](crate::Error::Archive) if the table exists with
    /// other columns.
    pub fn table<K, V>(&self, name: &str) -> Result<SqlArchive<K, V>> {
        let table = SqlTable::new(Arc::clone(&self.driver), name, false)?;
        table.create()?;
        Ok(Backed::new(table))
    }

    /// Drops the table `name` and its entries; `true` if it existed.
    /// Archives still open on it then fail with
    /// [`Error::Archive`](crate::Error::Archive) ("no such table") until it
    /// is created again.
    pub fn drop_table(&self, name: &str) -> Result<bool> {
        self.driver.dialect().check_table_name(name)?;
        if !self.contains(name)? {
            return Ok(false);
        }
        let sql = self
            .driver
            .dialect()
            .statements(&Dialect::qualified(self.driver.schema(), name));
        self.driver.run(self.driver.url(), &sql.drop)?;
        self.driver.forget_leases(name)?;
        Ok(true)
    }

    /// The database's URL, e.g. `sqlite:///path/to/all.db` or
    /// `postgres://user:***@host:5432/db` (never the password).
    pub fn location(&self) -> String {
        self.driver.url().to_owned()
    }
}
