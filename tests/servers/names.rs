//! Table and namespace names that look like SQL or `SCAN` patterns, and
//! Redis expiry: single-process server tests of the `servers` binary.

use super::*;

/// A table named like SQL is a table of that name, in a schema of its own:
/// the existing `memo` table and its row survive.
#[cfg(feature = "postgres")]
#[test]
fn a_hostile_table_name_is_a_table_name_not_sql() {
    let Some(url) = common::server_url("KLEPTO_PG_URL") else {
        return;
    };
    let schema = common::unique("sc");
    common::pg_client(&url)
        .batch_execute(&format!("CREATE SCHEMA \"{schema}\""))
        .unwrap();
    struct DropSchema<'a>(&'a str, &'a str);
    impl Drop for DropSchema<'_> {
        fn drop(&mut self) {
            let sql = format!("DROP SCHEMA \"{}\" CASCADE", self.1);
            if let Err(e) = common::pg_client(self.0).batch_execute(&sql) {
                eprintln!("cleanup: {sql}: {e}");
            }
        }
    }
    let _guard = DropSchema(&url, &schema);
    let in_schema = common::with_param(&url, "schema", &schema);
    let hostile = "x'; DROP TABLE memo; --";

    let memo_table: SqlArchive<HashKey, u64> =
        SqlArchive::open(common::with_param(&in_schema, "table", "memo")).unwrap();
    memo_table.insert(key(1), 1).unwrap();
    {
        let memo = Memo::builder()
            .name(hostile)
            .write_through()
            .archive(SqlArchive::open(&in_schema).unwrap())
            .build(f);
        for x in 0..10 {
            memo.call(x);
        }
        assert_eq!(memo.info().errors, 0);
        assert_eq!(memo.archive().table(), hostile);
    }
    let db = SqlDatabase::open(&in_schema).unwrap();
    assert_eq!(db.tables().unwrap(), ["memo", hostile]);
    assert_eq!(memo_table.len().unwrap(), 1, "the memo table lost its row");
    assert_eq!(memo_table.get(&key(1)).unwrap(), Some(1));
    // The same name given in the URL, percent-encoded, is the same table.
    let again: SqlArchive<HashKey, u64> =
        SqlArchive::open(common::with_param(&in_schema, "table", hostile)).unwrap();
    assert_eq!(again.len().unwrap(), 10);
    assert_eq!(again.get(&key(9)).unwrap(), Some(f(9)));
    assert!(db.drop_table(hostile).unwrap());
    assert_eq!(db.tables().unwrap(), ["memo"]);
    // The public schema's tables were never touched: nothing named `memo`
    // outside this schema was created or dropped by it.
    assert!(memo_table.contains_key(&key(1)).unwrap());
}

/// Namespaces with SQL and `SCAN`-pattern characters are names, never
/// patterns: a namespace `…*` sees nothing of `…x` of the same length.
#[cfg(feature = "redis")]
#[test]
fn hostile_namespaces_are_names_not_patterns() {
    let Some(url) = common::server_url("KLEPTO_REDIS_URL") else {
        return;
    };
    let u = common::unique("ns");
    let open = |ns: &str| -> RedisArchive<HashKey, u64> {
        RedisArchive::open(common::with_param(&url, "ns", ns)).unwrap()
    };
    let plain = open(&format!("{u}x"));
    let hostile = [
        format!("{u}*"),
        format!("{u}?"),
        format!("{u}["),
        format!("{u}\\"),
        format!("x'; DROP TABLE memo; -- {u}"),
    ];
    let cleanup = || {
        plain.clear().unwrap();
        for ns in &hostile {
            open(ns).clear().unwrap();
        }
    };
    struct Guard<F: Fn()>(F);
    impl<F: Fn()> Drop for Guard<F> {
        fn drop(&mut self) {
            (self.0)()
        }
    }
    let _guard = Guard(cleanup);
    plain
        .extend((0..20).map(|x| (key(x), f(x))).collect())
        .unwrap();
    for ns in &hostile {
        let a = open(ns);
        assert_eq!(
            a.len().unwrap(),
            0,
            "{ns:?} sees another namespace's entries"
        );
        assert_eq!(a.keys().unwrap().count(), 0, "{ns:?}");
        a.insert(key(100), 1).unwrap();
        assert_eq!(a.len().unwrap(), 1, "{ns:?}");
        a.clear().unwrap();
        assert_eq!(
            plain.len().unwrap(),
            20,
            "clearing {ns:?} removed another namespace's entries"
        );
    }
    let memo = Memo::builder()
        .name(hostile[4].clone())
        .write_through()
        .archive(open("memo"))
        .build(f);
    memo.call(1);
    let k = common::redis_entry_key(&hostile[4], &key_bytes(1));
    let exists: bool = redis::cmd("EXISTS")
        .arg(&k)
        .query(&mut common::redis_conn(&url))
        .unwrap();
    assert!(exists, "the entry is under the namespace's own prefix");
    assert_eq!(plain.len().unwrap(), 20);
}

/// `?ttl=` gives every entry an expiry; without it entries do not expire.
#[cfg(feature = "redis")]
#[test]
fn a_redis_ttl_expires_entries() {
    let Some(url) = common::server_url("KLEPTO_REDIS_URL") else {
        return;
    };
    let ns = common::unique("ttl");
    let with_ttl: RedisArchive<u64, u64> = RedisArchive::open(common::with_param(
        &common::with_param(&url, "ns", &ns),
        "ttl",
        "60",
    ))
    .unwrap();
    let ns2 = format!("{ns}n");
    let without: RedisArchive<u64, u64> =
        RedisArchive::open(common::with_param(&url, "ns", &ns2)).unwrap();
    with_ttl.insert(1, 1).unwrap();
    with_ttl.extend(vec![(2, 2), (3, 3)]).unwrap();
    without.insert(1, 1).unwrap();
    let mut conn = common::redis_conn(&url);
    let mut pttl = |ns: &str, k: u64| -> i64 {
        let rk = common::redis_entry_key(ns, &rmp_serde::to_vec(&k).unwrap());
        redis::cmd("PTTL").arg(&rk).query(&mut conn).unwrap()
    };
    for k in 1..=3 {
        let t = pttl(&ns, k);
        assert!(t > 0 && t <= 60_000, "entry {k}: PTTL {t}");
    }
    assert_eq!(pttl(&ns2, 1), -1, "no ttl: no expiry");
    with_ttl.clear().unwrap();
    without.clear().unwrap();
}
