//! Tests of `SqlArchive` and `SqlDatabase` against real SQLite files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{SqlArchive, SqlDatabase};
use crate::archive::envelope::to_msgpack;
use crate::archive::Archive;
use crate::Error;

fn db_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("cache.db")
}

fn open<K, V>(path: &Path, table: &str) -> SqlArchive<K, V> {
    SqlArchive::open(format!("sqlite://{}?table={table}", path.display())).unwrap()
}

fn sorted<T: Ord>(items: impl Iterator<Item = crate::Result<T>>) -> Vec<T> {
    let mut v: Vec<T> = items.map(|r| r.unwrap()).collect();
    v.sort();
    v
}

/// Overwrites the stored value of `key` in `table` with `f(old bytes)`.
fn tamper(path: &Path, table: &str, key: &impl Serialize, f: impl FnOnce(&mut Vec<u8>)) {
    let conn = rusqlite::Connection::open(path).unwrap();
    let key = to_msgpack(key, "key").unwrap();
    let sql = format!("SELECT value FROM \"{table}\" WHERE key = ?1");
    let mut value: Vec<u8> = conn.query_row(&sql, [&key], |r| r.get(0)).unwrap();
    f(&mut value);
    let sql = format!("UPDATE \"{table}\" SET value = ?2 WHERE key = ?1");
    assert_eq!(conn.execute(&sql, (&key, &value)).unwrap(), 1);
}

#[test]
fn every_method_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let a: SqlArchive<String, Vec<u64>> =
        SqlArchive::open(db_path(&dir).to_str().unwrap()).unwrap();
    assert_eq!(a.table(), "memo");
    assert!(a.is_empty().unwrap());
    assert_eq!(a.get(&"x".into()).unwrap(), None);
    assert_eq!(a.remove(&"x".into()).unwrap(), None);

    a.insert("x".into(), vec![1, 2]).unwrap();
    a.insert("x".into(), vec![3]).unwrap(); // replaces
    assert_eq!(a.get(&"x".into()).unwrap(), Some(vec![3]));
    assert!(a.contains_key(&"x".into()).unwrap());
    assert!(!a.contains_key(&"y".into()).unwrap());
    assert_eq!(a.len().unwrap(), 1);
    assert_eq!(a.args(&"x".into()).unwrap(), None);

    a.insert_with_args("h".into(), vec![7], Some(b"encoded args".to_vec()))
        .unwrap();
    assert_eq!(a.args(&"h".into()).unwrap(), Some(b"encoded args".to_vec()));
    assert_eq!(a.get(&"h".into()).unwrap(), Some(vec![7]));
    assert_eq!(a.args(&"missing".into()).unwrap(), None);

    a.extend(vec![("a".into(), vec![]), ("b".into(), vec![9; 3])])
        .unwrap();
    a.extend_with_args(vec![
        ("c".into(), vec![1], Some(vec![0xc1])),
        ("d".into(), vec![2], None),
    ])
    .unwrap();
    a.extend(Vec::new()).unwrap();
    assert_eq!(a.args(&"c".into()).unwrap(), Some(vec![0xc1]));
    assert_eq!(a.args(&"d".into()).unwrap(), None);
    assert_eq!(a.len().unwrap(), 6);
    assert_eq!(
        sorted(a.keys().unwrap()),
        ["a", "b", "c", "d", "h", "x"].map(String::from)
    );
    let all: BTreeMap<_, _> = a.iter().unwrap().map(|r| r.unwrap()).collect();
    assert_eq!(all["b"], vec![9; 3]);
    assert_eq!(all.len(), 6);
    assert_eq!(sorted(a.values().unwrap()).len(), 6);
    assert_eq!(a.items().unwrap().count(), 6);

    assert_eq!(a.remove(&"b".into()).unwrap(), Some(vec![9; 3]));
    assert_eq!(a.remove(&"b".into()).unwrap(), None);
    assert_eq!(a.len().unwrap(), 5);
    a.clear().unwrap();
    assert!(a.is_empty().unwrap());
    assert_eq!(a.keys().unwrap().count(), 0);
}

#[test]
fn url_forms_and_location() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let by_path: SqlArchive<u64, u64> = SqlArchive::open(path.to_str().unwrap()).unwrap();
    by_path.insert(1, 10).unwrap();
    let url = format!("sqlite://{}", path.display());
    let by_url: SqlArchive<u64, u64> = SqlArchive::open(&url).unwrap();
    assert_eq!(by_url.get(&1).unwrap(), Some(10));
    assert_eq!(by_url.location(), format!("{url}?table=memo"));

    let t: SqlArchive<u64, u64> = SqlArchive::open(format!("{url}?table=t")).unwrap();
    assert_eq!(t.table(), "t");
    assert_eq!(t.get(&1).unwrap(), None);
    // The location opens the same table again.
    t.insert(2, 20).unwrap();
    let again: SqlArchive<u64, u64> = SqlArchive::open(t.location()).unwrap();
    assert_eq!(again.get(&2).unwrap(), Some(20));

    let durable: SqlArchive<u64, u64> =
        SqlArchive::open(format!("{url}?table=t&durable=true")).unwrap();
    assert_eq!(durable.get(&2).unwrap(), Some(20));
    assert!(durable.location().ends_with("?table=t&durable=true"));

    let mem: SqlArchive<u64, u64> = SqlArchive::open("sqlite::memory:?table=m").unwrap();
    mem.insert(1, 1).unwrap();
    assert_eq!(mem.clone().get(&1).unwrap(), Some(1));
    assert_eq!(mem.namespaced("n").unwrap().len().unwrap(), 0);
    let other: SqlArchive<u64, u64> = SqlArchive::open("sqlite::memory:?table=m").unwrap();
    assert_eq!(other.len().unwrap(), 0, "each memory database is private");
}

#[test]
fn bad_targets_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", db_path(&dir).display());
    for bad in [
        // With the feature, this is a real server's answer instead.
        #[cfg(not(feature = "postgres"))]
        "postgres://user@localhost/db".to_owned(),
        format!("{url}?tabel=t"),
        format!("{url}?table="),
        format!("{url}?table=sqlite_x"),
        format!("{url}?table=a%00b"),
    ] {
        let err = SqlArchive::<u64, u64>::open(&bad).unwrap_err();
        assert!(matches!(err, Error::Config { .. }), "{bad}: {err}");
    }
    let a: SqlArchive<u64, u64> = SqlArchive::open(&url).unwrap();
    assert!(matches!(
        a.namespaced("sqlite_master"),
        Err(Error::Config { .. })
    ));
    // A database in a missing directory fails at once, naming it.
    let missing = dir.path().join("no/such/dir/x.db");
    let err = SqlArchive::<u64, u64>::open(missing.to_str().unwrap()).unwrap_err();
    assert!(matches!(err, Error::Archive { .. }), "{err}");
    assert!(err.to_string().contains("no/such/dir"), "{err}");
    // A file that is not a database.
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, vec![0x42; 8192]).unwrap();
    assert!(SqlArchive::<u64, u64>::open(junk.to_str().unwrap()).is_err());
}

#[test]
fn a_foreign_table_of_the_same_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE memo (id INTEGER, name TEXT)")
        .unwrap();
    let err = SqlArchive::<u64, u64>::open(path.to_str().unwrap()).unwrap_err();
    assert!(err.to_string().contains("not a klepto archive"), "{err}");
}

#[test]
fn odd_table_names_work() {
    let dir = tempfile::tempdir().unwrap();
    let base: SqlArchive<u64, String> = open(&db_path(&dir), "memo");
    let names = [
        "fib@2",
        "a\"b",
        "x y",
        "'; DROP TABLE memo; --",
        "ünïcode",
        "a.b",
        "[x]",
        "%",
        "select",
    ];
    for name in names {
        let t = base.namespaced(name).unwrap();
        assert_eq!(t.table(), name);
        t.insert(1, name.to_owned()).unwrap();
        // Reopen through its location: the URL round-trips the name.
        let again: SqlArchive<u64, String> = SqlArchive::open(t.location()).unwrap();
        assert_eq!(again.get(&1).unwrap().as_deref(), Some(name), "{name}");
        assert_eq!(again.keys().unwrap().count(), 1);
    }
    let db = SqlDatabase::open(db_path(&dir).to_str().unwrap()).unwrap();
    // `base` was only namespaced: its own table does not exist yet.
    assert_eq!(db.len().unwrap(), names.len());
    assert_eq!(base.len().unwrap(), 0);
    assert_eq!(db.len().unwrap(), names.len() + 1);
}

#[test]
fn namespaces_are_separate_tables() {
    let dir = tempfile::tempdir().unwrap();
    let a: SqlArchive<u64, u64> = open(&db_path(&dir), "memo");
    let f = a.namespaced("f").unwrap();
    let g = a.namespaced("g").unwrap();
    assert_eq!(a.namespaced("").unwrap().table(), "memo");
    f.insert(1, 100).unwrap();
    g.insert(1, 200).unwrap();
    assert_eq!(f.get(&1).unwrap(), Some(100));
    assert_eq!(g.get(&1).unwrap(), Some(200));
    assert_eq!(a.get(&1).unwrap(), None);
    f.clear().unwrap();
    assert_eq!(g.len().unwrap(), 1);
    assert!(f.location().ends_with("?table=f"));
}

#[test]
fn separate_handles_see_each_others_writes() {
    let dir = tempfile::tempdir().unwrap();
    let a: SqlArchive<u64, u64> = open(&db_path(&dir), "t");
    let b: SqlArchive<u64, u64> = open(&db_path(&dir), "t");
    a.insert(1, 1).unwrap();
    assert_eq!(b.get(&1).unwrap(), Some(1));
    b.extend(vec![(2, 2), (3, 3)]).unwrap();
    assert_eq!(a.len().unwrap(), 3);
    assert_eq!(a.remove(&2).unwrap(), Some(2));
    assert!(!b.contains_key(&2).unwrap());
    b.clear().unwrap();
    assert!(a.is_empty().unwrap());
}

#[test]
fn concurrent_writers_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    const THREADS: u64 = 6;
    const EACH: u64 = 200;
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let path = &path;
            s.spawn(move || {
                // A handle (and pool) per thread, as separate processes do.
                let a: SqlArchive<u64, u64> = open(path, "shared");
                for i in 0..EACH / 2 {
                    a.insert(t * 1_000 + i, i).unwrap();
                    assert_eq!(a.get(&(t * 1_000 + i)).unwrap(), Some(i));
                }
                let batch = (EACH / 2..EACH).map(|i| (t * 1_000 + i, i)).collect();
                a.extend(batch).unwrap();
            });
        }
    });
    let a: SqlArchive<u64, u64> = open(&path, "shared");
    assert_eq!(a.len().unwrap(), (THREADS * EACH) as usize);
    for t in 0..THREADS {
        for i in 0..EACH {
            assert_eq!(a.get(&(t * 1_000 + i)).unwrap(), Some(i));
        }
    }
}

#[test]
fn threads_share_one_handle() {
    let dir = tempfile::tempdir().unwrap();
    let a: SqlArchive<u64, u64> = open(&db_path(&dir), "t");
    std::thread::scope(|s| {
        for t in 0..4_u64 {
            let a = a.clone();
            s.spawn(move || {
                for i in 0..100 {
                    a.insert(t * 100 + i, i).unwrap();
                }
            });
        }
    });
    assert_eq!(a.len().unwrap(), 400);
}

#[test]
fn damaged_entries_are_corrupt_errors_and_others_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let a: SqlArchive<u64, String> = open(&path, "t");
    a.extend((0..10).map(|i| (i, format!("v{i}"))).collect())
        .unwrap();
    tamper(&path, "t", &3_u64, |v| *v = b"garbage".to_vec());
    tamper(&path, "t", &7_u64, |v| {
        let last = v.len() - 1;
        v[last] ^= 0x01;
    });

    for key in [3_u64, 7] {
        let err = a.get(&key).unwrap_err();
        let Error::Corrupt { location, .. } = &err else {
            panic!("{err}")
        };
        let hex: String = to_msgpack(&key, "k")
            .unwrap()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            location,
            &format!("{} table t key {hex}", path.display()),
            "{err}"
        );
        assert!(matches!(a.args(&key), Err(Error::Corrupt { .. })));
    }
    assert_eq!(a.get(&4).unwrap().as_deref(), Some("v4"));
    assert!(a.contains_key(&3).unwrap());

    let items: Vec<_> = a.iter().unwrap().collect();
    assert_eq!(items.len(), 10);
    assert_eq!(items.iter().filter(|r| r.is_err()).count(), 2);
    assert!(items
        .iter()
        .filter_map(|r| r.as_ref().err())
        .all(|e| matches!(e, Error::Corrupt { .. })));
    assert_eq!(a.keys().unwrap().filter(Result::is_ok).count(), 10);

    // Overwriting heals the entry; removing a damaged one removes it.
    a.insert(3, "new".into()).unwrap();
    assert_eq!(a.get(&3).unwrap().as_deref(), Some("new"));
    assert!(matches!(a.remove(&7), Err(Error::Corrupt { .. })));
    assert!(!a.contains_key(&7).unwrap());
}

#[test]
fn a_damaged_key_is_an_error_item() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let a: SqlArchive<u64, u64> = open(&path, "t");
    a.extend(vec![(1, 1), (2, 2)]).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    // 0xc1 is never valid MessagePack.
    conn.execute(
        "UPDATE t SET key = X'c1' WHERE key = ?1",
        [to_msgpack(&1_u64, "k").unwrap()],
    )
    .unwrap();
    let keys: Vec<_> = a.keys().unwrap().collect();
    assert_eq!(keys.len(), 2);
    assert!(matches!(
        keys.iter().find(|k| k.is_err()),
        Some(Err(Error::Corrupt { .. }))
    ));
    assert_eq!(a.iter().unwrap().filter(Result::is_ok).count(), 1);
}

#[test]
fn a_wrong_value_type_is_corrupt_naming_the_type() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let a: SqlArchive<u64, String> = open(&path, "t");
    a.insert(1, "text".into()).unwrap();
    let b: SqlArchive<u64, Vec<u64>> = open(&path, "t");
    let err = b.get(&1).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("Vec<u64>"), "{err}");
    assert!(err.to_string().contains("table t key 01"), "{err}");
}

#[test]
fn iteration_spans_many_pages() {
    let dir = tempfile::tempdir().unwrap();
    let a: SqlArchive<u64, u64> = open(&db_path(&dir), "t");
    let n = 512 * 2 + 300;
    a.extend((0..n).map(|i| (i, i * i)).collect()).unwrap();
    assert_eq!(sorted(a.keys().unwrap()), (0..n).collect::<Vec<_>>());
    let items = sorted(a.iter().unwrap());
    assert_eq!(items.len(), n as usize);
    assert!(items.iter().all(|&(k, v)| v == k * k));
    // Exactly one page, and an iterator interleaved with writes (one
    // connection is enough: pages hold none between queries).
    let b: SqlArchive<u64, u64> = SqlArchive::open("sqlite::memory:").unwrap();
    b.extend((0..512).map(|i| (i, i)).collect()).unwrap();
    let mut count = 0;
    for k in b.keys().unwrap() {
        let k = k.unwrap();
        b.insert(k, k + 1).unwrap();
        count += 1;
    }
    assert_eq!(count, 512);
    assert!(b.iter().unwrap().all(|r| r.is_ok_and(|(k, v)| v == k + 1)));
}

/// A value whose encoding fails for `13`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
struct Fussy(u64);

impl Serialize for Fussy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 == 13 {
            Err(serde::ser::Error::custom("unlucky"))
        } else {
            s.serialize_u64(self.0)
        }
    }
}

#[test]
fn extend_is_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let a: SqlArchive<u64, Fussy> = open(&path, "t");
    a.insert(0, Fussy(0)).unwrap();

    // An encoding failure in the middle writes nothing.
    let err = a
        .extend((1..20).map(|i| (i, Fussy(i))).collect())
        .unwrap_err();
    assert!(matches!(err, Error::Encode { .. }), "{err}");
    assert_eq!(a.len().unwrap(), 1);

    // A database failure in the middle of the transaction rolls it back.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(&format!(
            "CREATE TRIGGER no_ten BEFORE INSERT ON t WHEN NEW.key = X'{:02x}' \
             BEGIN SELECT RAISE(ABORT, 'ten refused'); END",
            10
        ))
        .unwrap();
    let err = a
        .extend(
            (1..20)
                .filter(|&i| i != 13)
                .map(|i| (i, Fussy(i)))
                .collect(),
        )
        .unwrap_err();
    assert!(err.to_string().contains("ten refused"), "{err}");
    assert_eq!(a.len().unwrap(), 1);
    assert_eq!(a.get(&5).unwrap(), None);
    // The pool's connection is usable afterwards (no transaction left open).
    a.extend(vec![(5, Fussy(5))]).unwrap();
    assert_eq!(a.len().unwrap(), 2);
}

#[test]
fn database_is_a_dictionary_of_tables() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let db = SqlDatabase::open(path.to_str().unwrap()).unwrap();
    assert!(db.is_empty().unwrap());
    assert!(!db.contains("memo").unwrap());
    assert!(!db.drop_table("memo").unwrap());

    let fib = db.table::<u64, u64>("fib").unwrap();
    fib.insert(10, 55).unwrap();
    let odd = db.table::<String, String>("we\"ird name").unwrap();
    odd.insert("k".into(), "v".into()).unwrap();
    // A table made by another handle shows up too.
    // (An archive's table exists from its first use.)
    open::<u64, u64>(&path, "other").len().unwrap();
    assert_eq!(db.tables().unwrap(), ["fib", "other", "we\"ird name"]);
    assert!(db.contains("fib").unwrap());
    assert_eq!(db.clone().len().unwrap(), 3);
    // Opening an existing table keeps its entries.
    assert_eq!(
        db.table::<u64, u64>("fib").unwrap().get(&10).unwrap(),
        Some(55)
    );

    assert!(db.drop_table("we\"ird name").unwrap());
    assert!(!db.contains("we\"ird name").unwrap());
    assert!(matches!(odd.get(&"k".into()), Err(Error::Archive { .. })));
    assert_eq!(db.len().unwrap(), 2);
    assert!(matches!(db.drop_table(""), Err(Error::Config { .. })));
    assert!(matches!(
        db.table::<u64, u64>(""),
        Err(Error::Config { .. })
    ));
    assert!(db.location().starts_with("sqlite:///"));
    assert!(format!("{db:?}").contains("cache.db"));
    assert!(format!("{fib:?}").contains("table=fib"));

    let err = SqlDatabase::open(format!("sqlite://{}?table=t", path.display())).unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err}");
}

#[test]
fn a_memo_persists_through_an_sql_archive() {
    use crate::Memo;
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let run = || {
        let f = Memo::builder()
            .lru(2)
            .name("square")
            .archive(SqlArchive::open(path.to_str().unwrap()).unwrap())
            .build(|x: u64| x * x);
        for x in 0..5 {
            assert_eq!(f.call(x), x * x);
        }
        f.dump().unwrap();
        f.info()
    };
    let first = run();
    assert_eq!((first.misses, first.loads), (5, 0));
    let second = run();
    assert_eq!((second.misses, second.loads), (0, 5));
    let db = SqlDatabase::open(path.to_str().unwrap()).unwrap();
    assert!(db.contains("square").unwrap());
    // (The memo does not pass encoded arguments to archives yet.)
    let table = db.table::<crate::keymap::HashKey, u64>("square").unwrap();
    assert_eq!(table.len().unwrap(), 5);
}
