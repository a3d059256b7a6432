//! `SqlArchive`: one SQL table as an archive.

use std::collections::VecDeque;
use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::atomic::{
    AtomicBool,
    Ordering::{Acquire, Release},
};
use std::sync::Arc;

use rusqlite::types::ValueRef;
use rusqlite::TransactionBehavior;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::sqlite::{ConnRef, Db};
use super::url::{check_table_name, quote_identifier, table_url, Target, DEFAULT_TABLE};
use crate::archive::envelope::{from_msgpack, to_msgpack, Envelope};
use crate::archive::{Archive, Items, WithArgs};
use crate::{Error, Result};

/// Rows fetched per query while iterating.
const PAGE: usize = 512;

/// One table and the SQL text of every statement on it, built once so the
/// hot path formats nothing.
#[derive(Debug)]
pub(crate) struct Table {
    pub(crate) name: String,
    /// Whether the table is known to exist (created at first use).
    created: AtomicBool,
    location: String,
    get: String,
    contains: String,
    insert: String,
    remove: String,
    count: String,
    clear: String,
    page_keys: String,
    page_items: String,
}

impl Table {
    fn new(db: &Db, name: &str, created: bool) -> Table {
        let q = quote_identifier(name);
        Table {
            name: name.to_owned(),
            created: AtomicBool::new(created),
            location: table_url(&db.url, name, db.durable),
            get: format!("SELECT value FROM {q} WHERE key = ?1"),
            contains: format!("SELECT 1 FROM {q} WHERE key = ?1"),
            insert: format!("INSERT OR REPLACE INTO {q} (key, value) VALUES (?1, ?2)"),
            remove: format!("DELETE FROM {q} WHERE key = ?1 RETURNING value"),
            count: format!("SELECT count(*) FROM {q}"),
            clear: format!("DELETE FROM {q}"),
            page_keys: format!("SELECT key FROM {q} WHERE key > ?1 ORDER BY key LIMIT {PAGE}"),
            page_items: format!(
                "SELECT key, value FROM {q} WHERE key > ?1 ORDER BY key LIMIT {PAGE}"
            ),
        }
    }
}

/// An archive in one table of an SQLite database (feature `sqlite`).
///
/// The table is `key BLOB PRIMARY KEY, value BLOB` (`WITHOUT ROWID`): the key
/// column holds the key as MessagePack, the value column an
/// [envelope](crate::archive::envelope) (checksum, format version, the
/// call's encoded arguments when given, the value as MessagePack). The
/// database runs in WAL mode through a pool of connections, so threads and
/// processes may read and write one archive at once; a writer waits up to
/// 10 s for another instead of failing.
///
/// Every write is one transaction; [`extend`](Archive::extend) (a memo's
/// `dump`) writes its whole batch in one. A committed write survives a crash
/// or kill of the process; with `?durable=true` in the URL
/// (`synchronous=FULL`) it also survives a power loss, at some cost per
/// write.
///
/// A damaged entry (or one written for another value type) reads as
/// [`Error::Corrupt`] naming the database, table and key, and stays in
/// place until overwritten; other entries are unaffected.
///
/// Clones share the connection pool. [`namespaced`](Archive::namespaced)
/// gives another table of the same database. Table names are quoted, so
/// any name works (`fib@2`, `a"b`), but SQLite compares them without regard
/// to ASCII case: `Fib` and `fib` are one table.
///
/// ```
/// use klepto::archive::{Archive, SqlArchive};
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("cache.db");
/// let a: SqlArchive<u64, String> = SqlArchive::open(path.to_str().unwrap())?;
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
pub struct SqlArchive<K, V> {
    db: Arc<Db>,
    table: Arc<Table>,
    types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Clone for SqlArchive<K, V> {
    fn clone(&self) -> Self {
        SqlArchive {
            db: Arc::clone(&self.db),
            table: Arc::clone(&self.table),
            types: PhantomData,
        }
    }
}

impl<K, V> fmt::Debug for SqlArchive<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlArchive")
            .field("location", &self.table.location)
            .finish()
    }
}

impl<K, V> SqlArchive<K, V> {
    /// Opens (creating if needed) the database named by `target`, for the
    /// table it names (created at the archive's first use):
    /// a path (`cache.db`, table `memo`) or a URL such as
    /// `sqlite:///abs/path/cache.db?table=fib`, `sqlite://relative/cache.db`
    /// or `sqlite::memory:`. URL parameters: `table` (default `memo`; any
    /// name but empty, NUL-containing or `sqlite_…`) and `durable`
    /// (`true`: commits also survive power loss).
    ///
    /// # Errors
    /// [`Error::Config`] for a malformed target, an unknown parameter, a bad
    /// table name or a `postgres://` URL (that backend is not in this build);
    /// [`Error::Archive`] when the database cannot be opened or the table
    /// exists with other columns.
    pub fn open(target: &str) -> Result<Self> {
        let target = Target::parse(target)?;
        let db = Arc::new(Db::open(&target)?);
        let table = target.table.as_deref().unwrap_or(DEFAULT_TABLE);
        check_table_name(table)?;
        // Created at first use, so that a handle opened only to be
        // `namespaced` leaves no empty table behind; an existing table is
        // checked now.
        db.check_table(table)?;
        Ok(Self::with_table(db, table, false))
    }

    /// An archive on `table` of an open database, creating the table.
    pub(crate) fn on_table(db: Arc<Db>, table: &str) -> Result<Self> {
        check_table_name(table)?;
        db.create_table(table)?;
        Ok(Self::with_table(db, table, true))
    }

    fn with_table(db: Arc<Db>, table: &str, created: bool) -> Self {
        let table = Arc::new(Table::new(&db, table, created));
        SqlArchive {
            db,
            table,
            types: PhantomData,
        }
    }

    /// A connection, once the table exists.
    fn conn(&self) -> Result<ConnRef<'_>> {
        if !self.table.created.load(Acquire) {
            self.db.create_table(&self.table.name)?;
            self.table.created.store(true, Release);
        }
        self.db.conn()
    }

    /// The name of the table this archive reads and writes.
    pub fn table(&self) -> &str {
        &self.table.name
    }

    /// The error for a failed statement.
    fn sql_error(&self, e: rusqlite::Error) -> Error {
        Error::archive(self.table.location.clone(), e)
    }

    /// Where one entry lives, for [`Error::Corrupt`]; formatted only on error.
    fn entry<'a>(&'a self, key: &'a [u8]) -> EntryLocation<'a> {
        EntryLocation {
            db: &self.db.name,
            table: &self.table.name,
            key,
        }
    }
}

impl<K, V> SqlArchive<K, V>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
{
    /// The key column's bytes for `key`.
    fn encode_key(key: &K) -> Result<Vec<u8>> {
        to_msgpack(key, "an SQL archive key")
    }

    fn encode_entry(key: &K, value: &V, args: Option<&[u8]>) -> Result<(Vec<u8>, Vec<u8>)> {
        let key = Self::encode_key(key)?;
        let value = to_msgpack(value, "an SQL archive value")?;
        let envelope = Envelope {
            key: None,
            args,
            value: &value,
        }
        .encode();
        Ok((key, envelope))
    }

    fn decode_value(&self, key: &[u8], stored: &[u8]) -> Result<V> {
        let envelope = Envelope::decode(stored, self.entry(key))?;
        from_msgpack(envelope.value, self.entry(key))
    }

    /// Runs `sql`, a statement on `key` returning at most one stored value,
    /// and `f` on that value, borrowed from the row (not copied).
    fn query_value<T>(
        &self,
        sql: &str,
        key: &[u8],
        f: impl FnOnce(&[u8]) -> Result<T>,
    ) -> Result<Option<T>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(sql).map_err(|e| self.sql_error(e))?;
        let mut rows = stmt.query([key]).map_err(|e| self.sql_error(e))?;
        match rows.next().map_err(|e| self.sql_error(e))? {
            None => Ok(None),
            Some(row) => {
                let stored = row.get_ref(0).map_err(|e| self.sql_error(e))?;
                f(stored_bytes(stored)).map(Some)
            }
        }
    }

    /// Writes `rows` (encoded key, envelope) in one transaction.
    fn write_batch(&self, mut rows: Vec<(Vec<u8>, Vec<u8>)>) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        // In key order the B-tree fills page by page instead of at random
        // places (hashed keys are random): far fewer page reads and splits.
        rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut conn = self.conn()?;
        // IMMEDIATE: take the write lock now (waiting up to the busy
        // timeout) rather than failing on a read-to-write upgrade later.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.sql_error(e))?;
        {
            let mut stmt = tx
                .prepare_cached(&self.table.insert)
                .map_err(|e| self.sql_error(e))?;
            for (key, value) in &rows {
                stmt.execute((key, value)).map_err(|e| self.sql_error(e))?;
            }
        }
        // Dropping `tx` on an error above rolls the whole batch back.
        tx.commit().map_err(|e| self.sql_error(e))
    }

    fn pages(&self, with_values: bool) -> Pages<'_, K, V> {
        Pages {
            archive: self,
            with_values,
            after: Vec::new(),
            buffer: VecDeque::new(),
            done: false,
        }
    }
}

impl<K, V> Archive<K, V> for SqlArchive<K, V>
where
    K: Serialize + DeserializeOwned + Eq + Hash + Clone + Send + Sync + 'static,
    V: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    /// The value of `key`; a damaged entry is [`Error::Corrupt`].
    fn get(&self, key: &K) -> Result<Option<V>> {
        let key = Self::encode_key(key)?;
        self.query_value(&self.table.get, &key, |stored| {
            self.decode_value(&key, stored)
        })
    }

    fn insert(&self, key: K, value: V) -> Result<()> {
        self.insert_with_args(key, value, None)
    }

    /// Removes `key` and returns its value. A damaged entry is removed too,
    /// and reported as [`Error::Corrupt`].
    fn remove(&self, key: &K) -> Result<Option<V>> {
        let key = Self::encode_key(key)?;
        // One statement, so one transaction: the row is read and deleted
        // atomically, even with other writers; decoded after it has finished.
        let old = self.query_value(&self.table.remove, &key, |stored| Ok(stored.to_vec()))?;
        old.map(|stored| self.decode_value(&key, &stored))
            .transpose()
    }

    /// Whether a row exists for `key` (its value is not checked).
    fn contains_key(&self, key: &K) -> Result<bool> {
        let key = Self::encode_key(key)?;
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare_cached(&self.table.contains)
            .map_err(|e| self.sql_error(e))?;
        stmt.exists([&key]).map_err(|e| self.sql_error(e))
    }

    fn len(&self) -> Result<usize> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare_cached(&self.table.count)
            .map_err(|e| self.sql_error(e))?;
        let n: i64 = stmt
            .query_row([], |row| row.get(0))
            .map_err(|e| self.sql_error(e))?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// Every key, streamed in pages of 512 rows (ordered by their encoding).
    /// Not a snapshot: concurrent writes may or may not show, but no key is
    /// yielded twice.
    fn keys(&self) -> Result<Items<'_, K>> {
        Ok(Box::new(self.pages(false).map(move |row| {
            let (key, _) = row?;
            from_msgpack(&key, self.entry(&key))
        })))
    }

    /// Every `(key, value)` pair, streamed like [`keys`](Archive::keys). A
    /// damaged entry is an `Err` item; iteration goes on past it.
    fn iter(&self) -> Result<Items<'_, (K, V)>> {
        Ok(Box::new(self.pages(true).map(move |row| {
            let (key, stored) = row?;
            let k = from_msgpack(&key, self.entry(&key))?;
            Ok((k, self.decode_value(&key, &stored)?))
        })))
    }

    fn clear(&self) -> Result<()> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare_cached(&self.table.clear)
            .map_err(|e| self.sql_error(e))?;
        stmt.execute([]).map_err(|e| self.sql_error(e))?;
        Ok(())
    }

    /// Writes all entries in one transaction: all or nothing. Entries are
    /// encoded before the transaction starts, so an encoding error writes
    /// nothing and the write lock is held only for the inserts.
    fn extend(&self, items: Vec<(K, V)>) -> Result<()> {
        let rows = items
            .iter()
            .map(|(k, v)| Self::encode_entry(k, v, None))
            .collect::<Result<Vec<_>>>()?;
        drop(items);
        self.write_batch(rows)
    }

    fn insert_with_args(&self, key: K, value: V, args: Option<Vec<u8>>) -> Result<()> {
        let (key, value) = Self::encode_entry(&key, &value, args.as_deref())?;
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare_cached(&self.table.insert)
            .map_err(|e| self.sql_error(e))?;
        stmt.execute((&key, &value))
            .map_err(|e| self.sql_error(e))?;
        Ok(())
    }

    /// [`extend`](Archive::extend) with each entry's encoded arguments.
    fn extend_with_args(&self, items: Vec<WithArgs<K, V>>) -> Result<()> {
        let rows = items
            .iter()
            .map(|(k, v, a)| Self::encode_entry(k, v, a.as_deref()))
            .collect::<Result<Vec<_>>>()?;
        drop(items);
        self.write_batch(rows)
    }

    /// The encoded arguments stored with `key`; a damaged entry is
    /// [`Error::Corrupt`].
    fn args(&self, key: &K) -> Result<Option<Vec<u8>>> {
        let key = Self::encode_key(key)?;
        let args = self.query_value(&self.table.get, &key, |stored| {
            let envelope = Envelope::decode(stored, self.entry(&key))?;
            Ok(envelope.args.map(<[u8]>::to_vec))
        })?;
        Ok(args.flatten())
    }

    /// The table `namespace` of the same database (created if missing),
    /// sharing this archive's connections; `""` is this table.
    fn namespaced(&self, namespace: &str) -> Result<Self> {
        if namespace.is_empty() || namespace == self.table.name {
            return Ok(self.clone());
        }
        Self::on_table(Arc::clone(&self.db), namespace)
    }

    /// The table's URL, e.g. `sqlite:///path/cache.db?table=memo`.
    fn location(&self) -> String {
        self.table.location.clone()
    }
}

/// `<db path> table <t> key <hex>`: where a damaged entry is.
struct EntryLocation<'a> {
    db: &'a str,
    table: &'a str,
    key: &'a [u8],
}

impl fmt::Display for EntryLocation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 64;
        let shown = &self.key[..self.key.len().min(SHOWN)];
        write!(
            f,
            "{} table {} key {}",
            self.db,
            self.table,
            crate::hex::encode(shown)
        )?;
        if self.key.len() > SHOWN {
            write!(f, "… ({} bytes)", self.key.len())?;
        }
        Ok(())
    }
}

/// A keyset-paginated scan yielding raw `(key, value)` rows (value empty
/// when only keys are asked for): each page is one short query (`key > last
/// ORDER BY key LIMIT 512`) on a pooled connection returned at once, so the
/// iterator holds no statement, lock or connection between pages.
struct Pages<'a, K, V> {
    archive: &'a SqlArchive<K, V>,
    with_values: bool,
    /// The last key of the previous page (empty: from the start; no stored
    /// key is empty, MessagePack is at least one byte).
    after: Vec<u8>,
    buffer: VecDeque<(Vec<u8>, Vec<u8>)>,
    done: bool,
}

impl<K, V> Pages<'_, K, V> {
    fn fetch(&mut self) -> Result<()> {
        let archive = self.archive;
        let sql = if self.with_values {
            &archive.table.page_items
        } else {
            &archive.table.page_keys
        };
        let conn = archive.conn()?;
        let mut stmt = conn.prepare_cached(sql).map_err(|e| archive.sql_error(e))?;
        let with_values = self.with_values;
        let rows = stmt
            .query_map([&self.after], |row| {
                let value = if with_values {
                    stored_bytes(row.get_ref(1)?).to_vec()
                } else {
                    Vec::new()
                };
                Ok((stored_bytes(row.get_ref(0)?).to_vec(), value))
            })
            .map_err(|e| archive.sql_error(e))?;
        for row in rows {
            self.buffer
                .push_back(row.map_err(|e| archive.sql_error(e))?);
        }
        if self.buffer.len() < PAGE {
            self.done = true;
        }
        if let Some((last, _)) = self.buffer.back() {
            self.after.clone_from(last);
        }
        Ok(())
    }
}

impl<K, V> Iterator for Pages<'_, K, V> {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buffer.is_empty() && !self.done {
            if let Err(e) = self.fetch() {
                // A failed query ends the scan (retrying could loop forever).
                self.done = true;
                self.buffer.clear();
                return Some(Err(e));
            }
        }
        self.buffer.pop_front().map(Ok)
    }
}

/// A stored key or value as bytes, whatever its SQL type: a blob as is,
/// text as its bytes, anything else (a number, NULL) as no bytes. Data
/// changed behind the archive's back then fails to decode and is reported
/// as [`Error::Corrupt`](crate::Error::Corrupt), like any damaged entry,
/// instead of as an SQL type error.
fn stored_bytes(value: ValueRef<'_>) -> &[u8] {
    match value {
        ValueRef::Blob(b) | ValueRef::Text(b) => b,
        ValueRef::Null | ValueRef::Integer(_) | ValueRef::Real(_) => &[],
    }
}
