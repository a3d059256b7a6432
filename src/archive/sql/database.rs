//! `SqlDatabase`: a database as a dictionary of tables.

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;

use rusqlite::{OptionalExtension, TransactionBehavior};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::archive::SqlArchive;
use super::sqlite::Db;
use super::url::{check_table_name, quote_identifier, Target};
use crate::{Error, Result};

const USER_TABLES: &str = "SELECT name FROM sqlite_schema \
     WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name";
const HAS_TABLE: &str = "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1";

/// A whole SQLite database as a dictionary (feature `sqlite`): keys are
/// table names, each value an [`SqlArchive`] of that table. Removing a key
/// ([`drop_table`](SqlDatabase::drop_table)) drops the table and its
/// entries.
///
/// Every archive obtained with [`table`](SqlDatabase::table) shares this
/// database's connection pool; clones share it too.
///
/// ```
/// use klepto::archive::{Archive, SqlDatabase};
/// let dir = tempfile::tempdir()?;
/// let db = SqlDatabase::open(dir.path().join("all.db").to_str().unwrap())?;
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
    db: Arc<Db>,
}

impl fmt::Debug for SqlDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlDatabase")
            .field("location", &self.db.url)
            .finish()
    }
}

impl SqlDatabase {
    /// Opens (creating if needed) the database named by `target`: a path or
    /// a URL as for [`SqlArchive::open`], without a `table` parameter.
    ///
    /// # Errors
    /// [`Error::Config`] for a malformed target or one naming a table;
    /// [`Error::Archive`] when the database cannot be opened.
    pub fn open(target: &str) -> Result<Self> {
        let parsed = Target::parse(target)?;
        if parsed.table.is_some() {
            return Err(Error::config(format!(
                "SQL target `{target}`: a database takes no `table` parameter \
                 (open a table with `SqlDatabase::table`)"
            )));
        }
        Ok(SqlDatabase {
            db: Arc::new(Db::open(&parsed)?),
        })
    }

    /// The names of the user tables (not SQLite's own), sorted.
    pub fn tables(&self) -> Result<Vec<String>> {
        let conn = self.db.conn()?;
        let mut stmt = conn.prepare_cached(USER_TABLES).map_err(|e| self.err(e))?;
        let names = stmt
            .query_map([], |row| row.get(0))
            .map_err(|e| self.err(e))?;
        names
            .collect::<rusqlite::Result<Vec<String>>>()
            .map_err(|e| self.err(e))
    }

    /// Whether the table `name` exists.
    pub fn contains(&self, name: &str) -> Result<bool> {
        let conn = self.db.conn()?;
        let mut stmt = conn.prepare_cached(HAS_TABLE).map_err(|e| self.err(e))?;
        stmt.exists([name]).map_err(|e| self.err(e))
    }

    /// The number of user tables.
    pub fn len(&self) -> Result<usize> {
        Ok(self.tables()?.len())
    }

    /// Whether the database has no user table.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// The archive of table `name`, created if missing, sharing this
    /// database's connections.
    ///
    /// # Errors
    /// [`Error::Config`] for an empty, NUL-containing or `sqlite_…` name;
    /// [`Error::Archive`] if the table exists with other columns.
    pub fn table<K, V>(&self, name: &str) -> Result<SqlArchive<K, V>>
    where
        K: Serialize + DeserializeOwned + Eq + Hash + Clone + Send + Sync + 'static,
        V: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    {
        SqlArchive::on_table(Arc::clone(&self.db), name)
    }

    /// Drops the table `name` and its entries; `true` if it existed.
    /// Archives still open on it then fail with [`Error::Archive`] ("no such
    /// table") until it is created again.
    pub fn drop_table(&self, name: &str) -> Result<bool> {
        check_table_name(name)?;
        let mut conn = self.db.conn()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let existed = tx
            .query_row(HAS_TABLE, [name], |_| Ok(()))
            .optional()
            .map_err(|e| self.err(e))?
            .is_some();
        if existed {
            tx.execute_batch(&format!("DROP TABLE {}", quote_identifier(name)))
                .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(existed)
    }

    /// The database's URL, e.g. `sqlite:///path/to/all.db`.
    pub fn location(&self) -> String {
        self.db.url.clone()
    }

    fn err(&self, e: rusqlite::Error) -> Error {
        Error::archive(self.db.url.clone(), e)
    }
}
