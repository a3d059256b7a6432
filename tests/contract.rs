//! The archive contract: one suite that every archive runs unchanged.
//!
//! A backend enters the suite by implementing [`Store`] (how to open an
//! archive of any key and value type at a location, and, if it stores
//! entries separately, how to read and write an entry's raw bytes) and
//! adding one `#[test]` that calls [`contract`]. The suite covers every
//! method of [`Archive`]: empty archives, insert/get/overwrite, remove,
//! contains_key, len/is_empty, batches (`extend`, repeated keys), streamed
//! `keys`/`iter`/`values`/`items` over more than two 512-row pages, clear,
//! arguments kept with entries, namespaces, a second handle on the same
//! location, struct values with odd string keys, reading with the wrong
//! value type, and entries swapped or overwritten with garbage behind the
//! archive's back.
//!
//! Server backends (features `postgres`, `redis`) read their URL from
//! `KLEPTO_PG_URL` / `KLEPTO_REDIS_URL` and skip with one line when it is
//! unset (never under `CI=true`). Every test uses fresh, uniquely named
//! tables, namespaces or directories and removes them at the end.

mod common;
#[path = "contract/suite.rs"]
mod suite;

use std::path::PathBuf;

use klepto::archive::{Archive, DictArchive, DirArchive, FileArchive, SqlArchive};
use suite::{contract, Key, Store, Val};

// ---------------------------------------------------------------- backends --

/// `FileArchive`: `<dir>/<id>.msgpack` or `.json`.
struct Files {
    dir: tempfile::TempDir,
    ext: &'static str,
}

impl Store for Files {
    type A<K: Key, V: Val> = FileArchive<K, V>;
    fn open<K: Key, V: Val>(&self, id: &str) -> klepto::Result<Self::A<K, V>> {
        FileArchive::open(self.dir.path().join(format!("{id}.{}", self.ext)))
    }
    fn tag(&self) -> &'static str {
        if self.ext == "json" {
            "filejson"
        } else {
            "file"
        }
    }
    /// One checksummed file for the whole dictionary: there is no single
    /// entry to swap; damage to the file is covered in `tests/persistence.rs`.
    fn raw(&self) -> bool {
        false
    }
}

/// `DirArchive`: `<dir>/<id>/`, one `<digest>.kle` file per entry.
struct Dirs(tempfile::TempDir);

impl Dirs {
    fn entry(&self, id: &str, key: &[u8]) -> PathBuf {
        self.0.path().join(id).join(dir_entry_name(key))
    }
}

/// The entry file name: the first 16 bytes of blake3(key) in hex, `.kle`.
fn dir_entry_name(key: &[u8]) -> String {
    format!("{}.kle", common::hex(&blake3::hash(key).as_bytes()[..16]))
}

impl Store for Dirs {
    type A<K: Key, V: Val> = DirArchive<K, V>;
    fn open<K: Key, V: Val>(&self, id: &str) -> klepto::Result<Self::A<K, V>> {
        DirArchive::open(self.0.path().join(id))
    }
    fn tag(&self) -> &'static str {
        "dir"
    }
    fn raw_get(&self, id: &str, key: &[u8]) -> Vec<u8> {
        std::fs::read(self.entry(id, key)).unwrap()
    }
    fn raw_put(&self, id: &str, key: &[u8], bytes: &[u8]) {
        std::fs::write(self.entry(id, key), bytes).unwrap()
    }
    /// The entry file, named by the key's digest.
    fn entry_mark(&self, _id: &str, key: &[u8]) -> String {
        dir_entry_name(key)
    }
}

/// `SqlArchive` on SQLite: table `<id>` of one database file.
struct Sqlite {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Sqlite {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("contract.db");
        Sqlite { _dir: dir, path }
    }

    fn conn(&self) -> rusqlite::Connection {
        let c = rusqlite::Connection::open(&self.path).unwrap();
        c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
        c
    }
}

impl Store for Sqlite {
    type A<K: Key, V: Val> = SqlArchive<K, V>;
    fn open<K: Key, V: Val>(&self, id: &str) -> klepto::Result<Self::A<K, V>> {
        let url = format!("sqlite://{}", self.path.display());
        SqlArchive::open(common::with_param(&url, "table", id))
    }
    fn tag(&self) -> &'static str {
        "sqlite"
    }
    fn raw_get(&self, id: &str, key: &[u8]) -> Vec<u8> {
        let sql = format!("SELECT value FROM \"{id}\" WHERE key = ?1");
        self.conn().query_row(&sql, [key], |r| r.get(0)).unwrap()
    }
    fn raw_put(&self, id: &str, key: &[u8], bytes: &[u8]) {
        let sql = format!("UPDATE \"{id}\" SET value = ?2 WHERE key = ?1");
        assert_eq!(self.conn().execute(&sql, (key, bytes)).unwrap(), 1);
    }
}

/// `DictArchive`: one shared store per key and value type; ids are namespaces.
struct Dict;

impl Store for Dict {
    type A<K: Key, V: Val> = DictArchive<K, V>;
    fn open<K: Key, V: Val>(&self, id: &str) -> klepto::Result<Self::A<K, V>> {
        use std::any::{Any, TypeId};
        use std::collections::HashMap;
        use std::sync::{Mutex, OnceLock};
        type Roots = HashMap<(TypeId, TypeId), Box<dyn Any + Send>>;
        static ROOTS: OnceLock<Mutex<Roots>> = OnceLock::new();
        let mut roots = ROOTS.get_or_init(Default::default).lock().unwrap();
        let root = roots
            .entry((TypeId::of::<K>(), TypeId::of::<V>()))
            .or_insert_with(|| Box::new(DictArchive::<K, V>::new()))
            .downcast_ref::<DictArchive<K, V>>()
            .unwrap();
        root.namespaced(id)
    }
    fn tag(&self) -> &'static str {
        "dict"
    }
    /// Values are kept as Rust values: no encoding, no bytes to tamper with.
    fn encoded(&self) -> bool {
        false
    }
    fn keeps_args(&self) -> bool {
        false
    }
    fn raw(&self) -> bool {
        false
    }
}

#[test]
fn file_msgpack_archive_keeps_the_contract() {
    contract(&Files {
        dir: tempfile::tempdir().unwrap(),
        ext: "msgpack",
    });
}

#[test]
fn file_json_archive_keeps_the_contract() {
    contract(&Files {
        dir: tempfile::tempdir().unwrap(),
        ext: "json",
    });
}

#[test]
fn dir_archive_keeps_the_contract() {
    contract(&Dirs(tempfile::tempdir().unwrap()));
}

#[test]
fn sqlite_archive_keeps_the_contract() {
    contract(&Sqlite::new());
}

#[test]
fn dict_archive_keeps_the_contract() {
    contract(&Dict);
}

/// `SqlArchive` on PostgreSQL: table `public.<id>`.
#[cfg(feature = "postgres")]
struct Postgres(String);

#[cfg(feature = "postgres")]
impl Store for Postgres {
    type A<K: Key, V: Val> = SqlArchive<K, V>;
    fn open<K: Key, V: Val>(&self, id: &str) -> klepto::Result<Self::A<K, V>> {
        SqlArchive::open(common::with_param(&self.0, "table", id))
    }
    fn tag(&self) -> &'static str {
        "pg"
    }
    fn raw_get(&self, id: &str, key: &[u8]) -> Vec<u8> {
        common::pg_raw_get(&self.0, id, key)
    }
    fn raw_put(&self, id: &str, key: &[u8], bytes: &[u8]) {
        common::pg_raw_put(&self.0, id, key, bytes)
    }
    fn cleanup(&self, ids: &[String]) {
        let db = klepto::archive::SqlDatabase::open(&self.0).unwrap();
        for id in ids {
            db.drop_table(id).unwrap();
        }
    }
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_archive_keeps_the_contract() {
    if let Some(url) = common::server_url("KLEPTO_PG_URL") {
        contract(&Postgres(url));
    }
}

/// `RedisArchive`: namespace `<id>`, one Redis key per entry.
#[cfg(feature = "redis")]
struct Redis(String);

#[cfg(feature = "redis")]
impl Store for Redis {
    type A<K: Key, V: Val> = klepto::archive::RedisArchive<K, V>;
    fn open<K: Key, V: Val>(&self, id: &str) -> klepto::Result<Self::A<K, V>> {
        klepto::archive::RedisArchive::open(common::with_param(&self.0, "ns", id))
    }
    fn tag(&self) -> &'static str {
        "redis"
    }
    fn raw_get(&self, id: &str, key: &[u8]) -> Vec<u8> {
        common::redis_raw_get(&self.0, id, key)
    }
    fn raw_put(&self, id: &str, key: &[u8], bytes: &[u8]) {
        common::redis_raw_put(&self.0, id, key, bytes)
    }
    fn cleanup(&self, ids: &[String]) {
        for id in ids {
            self.open::<u64, u64>(id).unwrap().clear().unwrap();
        }
    }
}

#[cfg(feature = "redis")]
#[test]
fn redis_archive_keeps_the_contract() {
    if let Some(url) = common::server_url("KLEPTO_REDIS_URL") {
        contract(&Redis(url));
    }
}

/// `HdfArchive`: `<dir>/<id>.h5`, one HDF5 file with a dataset per entry.
#[cfg(feature = "hdf5")]
struct HdfFiles(tempfile::TempDir);

#[cfg(feature = "hdf5")]
impl Store for HdfFiles {
    type A<K: Key, V: Val> = klepto::archive::HdfArchive<K, V>;
    fn open<K: Key, V: Val>(&self, id: &str) -> klepto::Result<Self::A<K, V>> {
        Ok(
            klepto::archive::HdfArchive::open(self.0.path().join(format!("{id}.h5")))?
                .durable(false),
        )
    }
    fn tag(&self) -> &'static str {
        "hdf"
    }
    /// One HDF5 file: entries are datasets, not byte strings to swap; the
    /// tests in `tests/hdf5.rs` swap and damage datasets through HDF5.
    fn raw(&self) -> bool {
        false
    }
}

#[cfg(feature = "hdf5")]
#[test]
fn hdf_archive_keeps_the_contract() {
    contract(&HdfFiles(tempfile::tempdir().unwrap()));
}

/// `HdfDirArchive`: `<dir>/<id>/`, one `<digest>.h5` file per entry.
#[cfg(feature = "hdf5")]
struct HdfDirs(tempfile::TempDir);

#[cfg(feature = "hdf5")]
impl HdfDirs {
    fn entry(&self, id: &str, key: &[u8]) -> PathBuf {
        self.0.path().join(id).join(hdf_entry_name(key))
    }
}

/// The entry file name: the first 16 bytes of blake3(key) in hex, `.h5`.
#[cfg(feature = "hdf5")]
fn hdf_entry_name(key: &[u8]) -> String {
    format!("{}.h5", common::hex(&blake3::hash(key).as_bytes()[..16]))
}

#[cfg(feature = "hdf5")]
impl Store for HdfDirs {
    type A<K: Key, V: Val> = klepto::archive::HdfDirArchive<K, V>;
    fn open<K: Key, V: Val>(&self, id: &str) -> klepto::Result<Self::A<K, V>> {
        Ok(klepto::archive::HdfDirArchive::open(self.0.path().join(id))?.durable(false))
    }
    fn tag(&self) -> &'static str {
        "hdfdir"
    }
    fn raw_get(&self, id: &str, key: &[u8]) -> Vec<u8> {
        std::fs::read(self.entry(id, key)).unwrap()
    }
    fn raw_put(&self, id: &str, key: &[u8], bytes: &[u8]) {
        std::fs::write(self.entry(id, key), bytes).unwrap()
    }
    fn entry_mark(&self, _id: &str, key: &[u8]) -> String {
        hdf_entry_name(key)
    }
}

#[cfg(feature = "hdf5")]
#[test]
fn hdf_dir_archive_keeps_the_contract() {
    contract(&HdfDirs(tempfile::tempdir().unwrap()));
}
