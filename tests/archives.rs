//! Archives together with memos: namespaces and versions in one database,
//! `SqlDatabase` over the tables memos made, `Cached` in front of persistent
//! archives.

use klepto::archive::{Archive, Cached, DirArchive, FileArchive, SqlArchive, SqlDatabase};
use klepto::key::describe_args;
use klepto::keymap::HashKey;
use klepto::{KeyGen, Memo};

fn db_path(dir: &tempfile::TempDir) -> String {
    dir.path().join("cache.db").to_str().unwrap().to_owned()
}

#[test]
fn names_and_versions_are_tables_of_one_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_path(&dir);
    {
        let square = Memo::builder()
            .name("square")
            .archive(SqlArchive::open(&db).unwrap())
            .build(|x: u64| x * x);
        let cube_v1 = Memo::builder()
            .name("cube")
            .version("1")
            .archive(SqlArchive::open(&db).unwrap())
            .build(|x: u64| x * x); // a bug, fixed in version 2
        square.call(3);
        cube_v1.call(3);
    } // dropped: unsaved results are written

    let cube_v2 = Memo::builder()
        .name("cube")
        .version("2")
        .archive(SqlArchive::open(&db).unwrap())
        .build(|x: u64| x * x * x);
    assert_eq!(cube_v2.call(3), 27, "version 1's result must not be served");
    assert_eq!(cube_v2.info().loads, 0);
    drop(cube_v2);

    // No `memo` table: the handles were opened only to be namespaced.
    let tables = SqlDatabase::open(&db).unwrap().tables().unwrap();
    assert_eq!(tables, ["cube@1", "cube@2", "square"]);
}

#[test]
fn sql_database_opens_and_drops_the_tables_of_memos() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_path(&dir);
    let f = Memo::builder()
        .name("f")
        .write_through()
        .archive(SqlArchive::open(&db).unwrap())
        .build(|(a, b): (u64, f64)| a as f64 * b);
    f.call((2, 2.5));

    let database = SqlDatabase::open(&db).unwrap();
    assert!(database.contains("f").unwrap());
    let table: SqlArchive<HashKey, f64> = database.table("f").unwrap();
    let (key, value) = table.iter().unwrap().next().unwrap().unwrap();
    assert_eq!(value, 5.0);
    let args = table
        .args(&key)
        .unwrap()
        .expect("hashed keys keep arguments");
    assert_eq!(describe_args(&args).unwrap(), "(2, 2.5)");

    assert!(database.drop_table("f").unwrap());
    assert!(!database.contains("f").unwrap());
    assert!(!database.drop_table("f").unwrap());
}

#[test]
fn cached_moves_entries_between_memory_and_persistent_archives() {
    let dir = tempfile::tempdir().unwrap();
    let key = |x: u64| KeyGen::new().key(&x).unwrap();

    let file: FileArchive<HashKey, u64> =
        FileArchive::open(dir.path().join("memo.msgpack")).unwrap();
    let sql: SqlArchive<HashKey, u64> = SqlArchive::open(db_path(&dir)).unwrap();
    let folder: DirArchive<HashKey, u64> = DirArchive::open(dir.path().join("memo.d")).unwrap();
    file.insert(key(1), 10).unwrap();
    sql.insert(key(1), 10).unwrap();
    folder.insert(key(1), 10).unwrap();

    fn exercise<A: Archive<HashKey, u64> + Clone>(a: A, key: impl Fn(u64) -> HashKey) {
        let cached = Cached::new(a.clone());
        cached.insert(key(2), 20).unwrap();
        assert_eq!(a.len().unwrap(), 1, "{}: memory only", a.location());
        cached.sync().unwrap();
        assert_eq!(a.get(&key(2)).unwrap(), Some(20), "{}", a.location());
        assert_eq!(cached.get(&key(1)).unwrap(), Some(10), "{}", a.location());
        assert_eq!(cached.load_keys(&[key(1), key(9)]).unwrap(), 1);
        cached.drop_archive().unwrap();
        assert_eq!(a.len().unwrap(), 0, "{}", a.location());
        assert_eq!(cached.len().unwrap(), 2);
        assert_eq!(cached.dump_keys(&[key(2)]).unwrap(), 1);
        assert_eq!(a.len().unwrap(), 1, "{}", a.location());
    }
    exercise(file, key);
    exercise(sql, key);
    exercise(folder, key);
}
