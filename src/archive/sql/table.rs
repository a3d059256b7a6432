//! [`SqlTable`]: one SQL table as a byte-level [`Backend`], on any driver.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{
    AtomicBool,
    Ordering::{Acquire, Release},
};
use std::sync::Arc;
use std::time::Duration;

use super::dialect::{Dialect, Statements, PAGE};
use super::driver::Driver;
use super::target::table_url;
use crate::archive::backend::KeyHex;
use crate::archive::{Backend, RawEntry, RawItems};
use crate::{Error, Result};

/// The [`Backend`] of an [`SqlArchive`](super::SqlArchive): one table
/// (`key` and `value` columns) of an SQLite or PostgreSQL database,
/// through its connection pool. Clones share the pool and the table.
#[derive(Clone)]
pub struct SqlTable {
    driver: Arc<dyn Driver>,
    table: Arc<Table>,
}

/// One table and the text of every statement on it, built once so the
/// hot path formats nothing.
#[derive(Debug)]
struct Table {
    name: String,
    /// Whether the table is known to exist (created at first use).
    created: AtomicBool,
    location: String,
    sql: Statements,
}

impl fmt::Debug for SqlTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlArchive")
            .field("location", &self.table.location)
            .finish()
    }
}

impl SqlTable {
    /// The table `name` of the database behind `driver`; `created` if it
    /// is known to exist already (else it is created at first use).
    pub(crate) fn new(driver: Arc<dyn Driver>, name: &str, created: bool) -> Result<Self> {
        driver.dialect().check_table_name(name)?;
        let q = Dialect::qualified(driver.schema(), name);
        let table = Table {
            name: name.to_owned(),
            created: AtomicBool::new(created),
            location: table_url(driver.url(), name, driver.durable()),
            sql: driver.dialect().statements(&q),
        };
        Ok(SqlTable {
            driver,
            table: Arc::new(table),
        })
    }

    /// The name of the table.
    pub fn table(&self) -> &str {
        &self.table.name
    }

    /// The driver, once the table exists.
    #[inline]
    fn ready(&self) -> Result<&dyn Driver> {
        if !self.table.created.load(Acquire) {
            self.create()?;
        }
        Ok(&*self.driver)
    }

    /// Creates the table now if missing (and checks its columns).
    pub(crate) fn create(&self) -> Result<()> {
        create_table(&*self.driver, &self.table.name)?;
        self.table.created.store(true, Release);
        Ok(())
    }

    fn at(&self) -> &str {
        &self.table.location
    }

    /// Checks now that the table, if it exists, is an archive's; a
    /// database that cannot be reached now is checked at first use.
    pub(crate) fn check_unless_unreachable(&self) -> Result<()> {
        let checked = has_table(&*self.driver, &self.table.name).and_then(|exists| {
            if exists {
                check_columns(&*self.driver, &self.table.name)?;
            }
            Ok(())
        });
        match checked {
            Err(e) if !e.is_transient() => Err(e),
            _ => Ok(()),
        }
    }
}

impl Backend for SqlTable {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.ready()?
            .query_value(self.at(), &self.table.sql.get, key)
    }

    fn get_with<R>(&self, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>> {
        let (mut f, mut out) = (Some(f), None);
        self.ready()?
            .query_value_with(self.at(), &self.table.sql.get, key, &mut |stored| {
                out = f.take().map(|f| f(stored));
            })?;
        Ok(out)
    }

    fn put(&self, key: &[u8], envelope: &[u8]) -> Result<()> {
        self.ready()?
            .put(self.at(), &self.table.sql.upsert, key, envelope)
    }

    /// One transaction, rows in key order: the B-tree then fills page by
    /// page instead of at random places (hashed keys are random).
    fn put_batch(&self, mut entries: Vec<RawEntry>) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        // Stable, so that of a key given twice the later entry stays later.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        // A batch may repeat a key: the last one wins, as in a dictionary
        // (and PostgreSQL refuses one statement that upserts a row twice).
        entries.dedup_by(|later, earlier| {
            let same = later.0 == earlier.0;
            if same {
                std::mem::swap(later, earlier);
            }
            same
        });
        self.ready()?
            .put_batch(self.at(), &self.table.sql, &entries)
    }

    /// One statement (`DELETE … RETURNING`), so the row is read and deleted
    /// atomically, even with other writers.
    fn delete(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.ready()?
            .query_value(self.at(), &self.table.sql.delete, key)
    }

    fn contains(&self, key: &[u8]) -> Result<bool> {
        self.ready()?
            .exists(self.at(), &self.table.sql.contains, key)
    }

    fn len(&self) -> Result<usize> {
        let n = self.ready()?.count(self.at(), &self.table.sql.count)?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    fn clear(&self) -> Result<()> {
        self.ready()?.run(self.at(), &self.table.sql.clear)
    }

    /// SQLite: `VACUUM` (the whole database file); PostgreSQL: `VACUUM`
    /// of the table.
    fn compact(&self) -> Result<String> {
        let driver = self.ready()?;
        let sql = match driver.dialect() {
            Dialect::Sqlite => "VACUUM".to_owned(),
            _ => format!(
                "VACUUM {}",
                Dialect::qualified(driver.schema(), &self.table.name)
            ),
        };
        driver.run(self.at(), &sql)?;
        Ok(sql)
    }

    /// Keyset paging in key order: each page is one short query
    /// (`key > last ORDER BY key LIMIT 512`) on a pooled connection given
    /// back at once, so the scan holds no cursor, lock or connection
    /// between pages. Not a snapshot: concurrent writes may or may not
    /// show, but no key is yielded twice.
    fn scan(&self, values: bool) -> Result<RawItems<'_>> {
        self.ready()?;
        Ok(Box::new(Pages {
            table: self,
            values,
            after: Vec::new(),
            buffer: VecDeque::new(),
            done: false,
        }))
    }

    /// Another table of the same database, sharing the pool (`""`: this
    /// table). It is created at its first use; an existing table of that
    /// name is checked now, when the database can be reached.
    fn namespace(&self, namespace: &str) -> Result<Self> {
        if namespace.is_empty() || namespace == self.table.name {
            return Ok(self.clone());
        }
        let table = SqlTable::new(Arc::clone(&self.driver), namespace, false)?;
        table.check_unless_unreachable()?;
        Ok(table)
    }

    /// The table's URL, e.g. `sqlite:///path/cache.db?table=memo`.
    fn location(&self) -> String {
        self.table.location.clone()
    }

    /// `<database> table <name> key <hex>`.
    fn entry_location(&self, key: &[u8]) -> String {
        format!(
            "{} table {} key {}",
            self.driver.name(),
            self.table.name,
            KeyHex(key)
        )
    }

    fn try_lease(&self, key: &[u8], ttl: Duration, token: &[u8]) -> Result<bool> {
        self.driver.try_lease(&self.table.name, key, ttl, token)
    }

    fn release(&self, key: &[u8], token: &[u8]) -> Result<()> {
        self.driver.release(&self.table.name, key, token)
    }
}

/// The scan of [`SqlTable::scan`].
struct Pages<'a> {
    table: &'a SqlTable,
    values: bool,
    /// The last key of the previous page (empty: from the start; no stored
    /// key is empty, MessagePack is at least one byte).
    after: Vec<u8>,
    buffer: VecDeque<RawEntry>,
    done: bool,
}

impl Iterator for Pages<'_> {
    type Item = Result<RawEntry>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buffer.is_empty() && !self.done {
            let t = self.table;
            let sql = if self.values {
                &t.table.sql.page_items
            } else {
                &t.table.sql.page_keys
            };
            match t.driver.page(t.at(), sql, &self.after, self.values) {
                Ok(rows) => {
                    self.done = rows.len() < PAGE;
                    if let Some((last, _)) = rows.last() {
                        self.after.clone_from(last);
                    }
                    self.buffer = rows.into();
                }
                Err(e) => {
                    // A failed query ends the scan (retrying could loop forever).
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        self.buffer.pop_front().map(Ok)
    }
}

/// Where the table `name` of `driver`'s database is, for errors.
fn table_at(driver: &dyn Driver, name: &str) -> String {
    format!("{} table {name}", driver.url())
}

/// Whether the table `name` exists.
pub(crate) fn has_table(driver: &dyn Driver, name: &str) -> Result<bool> {
    let at = table_at(driver, name);
    let found = match driver.schema() {
        Some(schema) => driver.texts(&at, driver.dialect().has_table(), &[schema, name])?,
        None => driver.texts(&at, driver.dialect().has_table(), &[name])?,
    };
    Ok(!found.is_empty())
}

/// Creates the table `name` if missing and checks it has `key` and `value`
/// columns. Safe when several processes create the same table at once.
fn create_table(driver: &dyn Driver, name: &str) -> Result<()> {
    let sql = driver
        .dialect()
        .statements(&Dialect::qualified(driver.schema(), name));
    if let Err(e) = driver.run(&table_at(driver, name), &sql.create) {
        // PostgreSQL's `IF NOT EXISTS` can still fail when another session
        // creates the table at the same moment; then the table is there.
        if !has_table(driver, name).unwrap_or(false) {
            return Err(e);
        }
    }
    check_columns(driver, name)
}

/// A table of the same name made by someone else: fail now, clearly.
fn check_columns(driver: &dyn Driver, name: &str) -> Result<()> {
    let sql = driver
        .dialect()
        .statements(&Dialect::qualified(driver.schema(), name));
    driver
        .run(&table_at(driver, name), &sql.check_columns)
        .map_err(|e| match e {
            Error::Archive {
                location,
                reason,
                transient: false,
                source,
            } => Error::Archive {
                location,
                reason: format!("the table exists but is not a klepto archive: {reason}"),
                transient: false,
                source,
            },
            other => other,
        })
}
