//! The `klepto` command on server archives (features `postgres`, `redis`;
//! servers from `scripts/services.sh`, URLs in `KLEPTO_PG_URL` and
//! `KLEPTO_REDIS_URL`): ls, get, verify, export, convert to a local
//! SQLite file and back, rm and clear, in a namespace of the test's own.
#![cfg(all(feature = "cli", any(feature = "postgres", feature = "redis")))]

mod common;

use assert_cmd::Command;
use klepto::archive::Archive;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::cargo_bin("klepto")
        .unwrap()
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn sorted_export(target: &str, ns: &str) -> Vec<String> {
    let (code, out, err) = run(&["export", target, "--ns", ns]);
    assert_eq!(code, 0, "{err}");
    let mut lines: Vec<String> = out.lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

/// Every command on `url`'s namespace `ns`, which holds k -> k * k for
/// 0..30 (no stored arguments).
fn every_command(url: &str, ns: &str) {
    let (code, out, err) = run(&["ls", url]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.lines().any(|l| l == format!("{ns}\t30 entries")),
        "{out}"
    );
    let (code, _, err) = run(&["ls", url, "--ns", "no_such_namespace_here"]);
    assert_eq!(code, 1, "{err}");

    let (code, out, err) = run(&["ls", url, "--ns", ns]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 30, "{out}");
    assert!(!out.contains("secret") && !err.contains("secret"));

    let (code, out, _) = run(&["verify", url, "--ns", ns]);
    assert_eq!(code, 0);
    assert!(out.contains("30 entries, 0 damaged"), "{out}");

    // Key 7 is the MessagePack byte 07.
    let (code, out, _) = run(&["get", url, "--ns", ns, "07"]);
    assert_eq!((code, out.trim()), (0, "49"));

    // To a local SQLite file and back into a second namespace.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("copy.db").display().to_string();
    assert_eq!(run(&["convert", url, &db, "--ns", ns]).0, 0);
    let original = sorted_export(url, ns);
    assert_eq!(sorted_export(&db, ns), original);

    assert_eq!(run(&["rm", url, "--ns", ns, "07"]).0, 0);
    assert_eq!(run(&["get", url, "--ns", ns, "07"]).0, 1);
    assert_eq!(run(&["convert", &db, url, "--ns", ns]).0, 0);
    assert_eq!(sorted_export(url, ns), original, "converted back");
    assert_eq!(run(&["clear", url, "--ns", ns]).0, 0);
    // An empty table stays; an empty Redis namespace is no longer listed.
    let (_, out, _) = run(&["ls", url]);
    let left = format!("{ns}\t0 entries");
    assert!(
        out.lines()
            .all(|l| !l.starts_with(&format!("{ns}\t")) || l == left),
        "{out}"
    );
}

#[cfg(feature = "postgres")]
#[test]
fn every_command_on_postgres() {
    let Some(url) = common::server_url("KLEPTO_PG_URL") else {
        return;
    };
    let table = common::unique("cli");
    let archive: klepto::archive::SqlArchive<u64, u64> =
        klepto::archive::SqlArchive::open(common::with_param(&url, "table", &table)).unwrap();
    archive
        .extend((0..30).map(|k| (k, k * k)).collect())
        .unwrap();
    every_command(&url, &table);
    let _ = klepto::archive::SqlDatabase::open(&url)
        .unwrap()
        .drop_table(&table);
}

#[cfg(feature = "redis")]
#[test]
fn every_command_on_redis() {
    let Some(url) = common::server_url("KLEPTO_REDIS_URL") else {
        return;
    };
    let ns = common::unique("cli");
    let archive: klepto::archive::RedisArchive<u64, u64> =
        klepto::archive::RedisArchive::open(common::with_param(&url, "ns", &ns)).unwrap();
    archive
        .extend((0..30).map(|k| (k, k * k)).collect())
        .unwrap();
    every_command(&url, &ns);
}
