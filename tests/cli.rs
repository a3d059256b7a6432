//! The `klepto` command, end to end (`assert_cmd` runs the built binary):
//! every command on the file, directory and SQLite archives, damage found
//! by `verify`, `convert` between kinds (and again after a SIGKILL), and
//! bad input with its exit code (0 done, 1 damage or not found, 2 usage,
//! 3 I/O).
#![cfg(feature = "cli")]

use std::path::Path;
use std::process::Command as Process;
use std::time::Duration;

use assert_cmd::Command;
use klepto::archive::{Archive, DirArchive, FileArchive, SqlArchive};
use klepto::Memo;

fn klepto() -> Command {
    Command::cargo_bin("klepto").unwrap()
}

/// Runs `klepto args…`: its exit code and standard output.
fn run(args: &[&str]) -> (i32, String, String) {
    let out = klepto().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// A memo `sq` (x -> x * x for 0..n) stored in `archive`.
fn fill<A: Archive<klepto::keymap::HashKey, u64> + 'static>(archive: A, n: u64) {
    let memo = Memo::builder()
        .name("sq")
        .archive(archive)
        .build(|x: u64| x * x);
    for x in 0..n {
        memo.call(x);
    }
    memo.dump().unwrap();
}

/// The export of `target`'s namespace `sq`, sorted: equal for archives
/// holding the same entries.
fn exported(target: &str) -> Vec<String> {
    let (code, out, err) = run(&["export", target, "--ns", "sq"]);
    assert_eq!(code, 0, "{err}");
    let mut lines: Vec<String> = out.lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}

#[test]
fn every_command_on_an_sqlite_archive() {
    let dir = tempfile::tempdir().unwrap();
    let db = path(dir.path(), "cache.db");
    fill(SqlArchive::open(&db).unwrap(), 50);

    let (code, out, _) = run(&["ls", &db]);
    assert_eq!(code, 0);
    assert!(out.lines().any(|l| l == "sq\t50 entries"), "{out}");

    let (code, out, _) = run(&["ls", &db, "--ns", "sq", "--limit", "3"]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(out.lines().all(|l| l.starts_with("sq(")), "{out}");

    // The call `sq(7)` and its key, then its value.
    let (_, out, _) = run(&["ls", &db, "--ns", "sq", "--json"]);
    let seven: serde_json::Value = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["call"] == "sq(7)")
        .unwrap_or_else(|| panic!("sq(7) is listed: {out}"));
    let key = seven["key"].as_str().unwrap();
    let (code, out, _) = run(&["get", &db, "--ns", "sq", key]);
    assert_eq!((code, out.trim()), (0, "49"));
    // The same entry by its call's arguments.
    let (code, out, _) = run(&["get", &db, "--ns", "sq", "--args", "(7)"]);
    assert_eq!((code, out.trim()), (0, "49"));
    let (code, _, err) = run(&["get", &db, "--ns", "sq", "--args", "(70)"]);
    assert_eq!(code, 1, "{err}");

    let (code, out, _) = run(&["export", &db, "--ns", "sq", "--csv"]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().next(), Some("key,call,args,value"));
    assert_eq!(out.lines().count(), 51);
    assert!(
        out.lines()
            .any(|l| l.contains(",\"(7,)\",") && l.ends_with(",49")),
        "{out}"
    );
    // The CSV imports back to the same entries.
    let csv = dir.path().join("sq.csv");
    std::fs::write(&csv, &out).unwrap();
    let from_csv = path(dir.path(), "from-csv.db");
    let (code, _, err) = run(&[
        "import",
        &csv.display().to_string(),
        &from_csv,
        "--ns",
        "sq",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(exported(&from_csv), exported(&db));

    let (code, out, _) = run(&["stat", &db, "--ns", "sq", "--json"]);
    assert_eq!(code, 0);
    let stat: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(stat["entries"], 50);

    let (code, out, _) = run(&["verify", &db, "--ns", "sq"]);
    assert_eq!(code, 0);
    assert!(out.contains("50 entries, 0 damaged"), "{out}");

    assert_eq!(run(&["rm", &db, "--ns", "sq", key]).0, 0);
    let (code, _, err) = run(&["get", &db, "--ns", "sq", key]);
    assert_eq!(code, 1, "a removed key is not found");
    assert!(err.contains("no entry under key"), "{err}");
    assert_eq!(run(&["rm", &db, "--ns", "sq", key]).0, 1);

    // export, import into a new database, export again: the same lines.
    let lines = exported(&db);
    assert_eq!(lines.len(), 49);
    let jsonl = dir.path().join("sq.jsonl");
    std::fs::write(&jsonl, lines.join("\n")).unwrap();
    let copy = path(dir.path(), "copy.db");
    let (code, _, err) = run(&["import", &jsonl.display().to_string(), &copy, "--ns", "sq"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(exported(&copy), lines);

    let (code, out, _) = run(&["vacuum", &db, "--ns", "sq"]);
    assert_eq!(code, 0);
    assert!(out.contains("VACUUM"), "{out}");

    assert_eq!(run(&["clear", &db, "--ns", "sq"]).0, 0);
    assert!(exported(&db).is_empty());
}

#[test]
fn convert_file_to_sqlite_to_directory_keeps_every_value() {
    let dir = tempfile::tempdir().unwrap();
    let file = path(dir.path(), "cache.msgpack");
    fill(FileArchive::open(&file).unwrap(), 200);
    let db = path(dir.path(), "cache.db");
    let entries = path(dir.path(), "entries");

    let (code, out, _) = run(&["ls", &file]);
    assert_eq!(code, 0);
    assert!(out.contains("sq\t200 entries"), "{out}");

    let (code, _, err) = run(&["convert", &file, &db, "--ns", "sq"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(&["convert", &db, &entries, "--ns", "sq", "--batch", "7"]);
    assert_eq!(code, 0, "{err}");
    let original = exported(&file);
    assert_eq!(original.len(), 200);
    assert_eq!(exported(&db), original);
    assert_eq!(exported(&entries), original);

    // A memo reading the converted directory loads every value.
    let memo = Memo::builder()
        .name("sq")
        .archive(DirArchive::open(&entries).unwrap())
        .build(|x: u64| x * x);
    for x in 0..200 {
        assert_eq!(memo.call(x), x * x);
    }
    assert_eq!((memo.info().misses, memo.info().loads), (0, 200));
}

#[test]
fn verify_lists_damage_and_leaves_the_file_alone() {
    let dir = tempfile::tempdir().unwrap();
    let root = path(dir.path(), "entries");
    fill(DirArchive::open(&root).unwrap(), 20);
    let (code, _, _) = run(&["verify", &root, "--ns", "sq"]);
    assert_eq!(code, 0);
    // A directory archive knows when its entries were written.
    let (code, out, _) = run(&["stat", &root, "--ns", "sq", "--json"]);
    assert_eq!(code, 0);
    let stat: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(stat["entries"], 20);
    let (oldest, newest) = (
        stat["oldest"].as_str().unwrap(),
        stat["newest"].as_str().unwrap(),
    );
    assert!(oldest.ends_with('Z') && oldest <= newest, "{out}");

    // Flip one byte in the middle of one entry file.
    let ns = dir.path().join("entries").join("sq");
    let victim = std::fs::read_dir(&ns)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "kle"))
        .unwrap();
    let mut bytes = std::fs::read(&victim).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&victim, &bytes).unwrap();

    let (code, out, _) = run(&["verify", &root, "--ns", "sq"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("20 entries, 1 damaged"), "{out}");
    let damaged: Vec<_> = out.lines().filter(|l| l.starts_with("damaged ")).collect();
    assert_eq!(damaged.len(), 1, "{out}");
    assert!(damaged[0].contains("checksum"), "{out}");
    assert_eq!(
        std::fs::read(&victim).unwrap(),
        bytes,
        "verify changes nothing"
    );

    let (code, out, _) = run(&["verify", &root, "--ns", "sq", "--json"]);
    assert_eq!(code, 1);
    let last: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(last["damaged"], 1);

    // vacuum reports it, and drops it only when asked.
    let (code, out, _) = run(&["vacuum", &root, "--ns", "sq"]);
    assert_eq!(code, 1, "{out}");
    assert!(victim.exists());
    let (code, out, _) = run(&["vacuum", &root, "--ns", "sq", "--drop-damaged"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("dropped 1 damaged entries"), "{out}");
    assert!(!victim.exists());
    let (code, out, _) = run(&["verify", &root, "--ns", "sq"]);
    assert_eq!(code, 0);
    assert!(out.contains("19 entries, 0 damaged"), "{out}");
}

#[test]
fn vacuum_folds_a_file_archive_log() {
    let dir = tempfile::tempdir().unwrap();
    let file = path(dir.path(), "cache.msgpack");
    let archive: FileArchive<u64, u64> = FileArchive::open(&file).unwrap();
    for round in 0..20 {
        archive.insert(1, round).unwrap();
    }
    let before = std::fs::metadata(&file).unwrap().len();
    let (code, out, _) = run(&["vacuum", &file, "--ns", ""]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("one snapshot"), "{out}");
    assert!(std::fs::metadata(&file).unwrap().len() < before);
    assert_eq!(archive.get(&1).unwrap(), Some(19));
}

/// An SQLite database `big.db` in `dir` with 3,000 entries in table `sq`.
fn big_database(dir: &Path) -> String {
    let db = path(dir, "big.db");
    let archive: SqlArchive<u64, Vec<u64>> = SqlDatabase_table(&db);
    archive
        .extend((0..3000u64).map(|k| (k, vec![k; 20])).collect())
        .unwrap();
    db
}

/// The entry files in namespace `sq` of the directory archive `root`.
fn entry_files(root: &str) -> usize {
    let Ok(dir) = std::fs::read_dir(Path::new(root).join("sq")) else {
        return 0;
    };
    dir.filter(|e| {
        let path = e.as_ref().unwrap().path();
        path.extension().is_some_and(|x| x == "kle")
    })
    .count()
}

/// `klepto convert db root --ns sq --batch batch` started, and left running
/// until `root` holds `at_least` entries (a durable directory archive
/// fsyncs every entry: slow enough to stop halfway).
fn convert_under_way(db: &str, root: &str, batch: &str, at_least: usize) -> std::process::Child {
    let binary = assert_cmd::cargo::cargo_bin("klepto");
    let child = Process::new(&binary)
        .args(["convert", db, root, "--ns", "sq", "--batch", batch])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while entry_files(root) < at_least && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(5));
    }
    child
}

#[test]
fn ctrl_c_stops_a_convert_between_batches() {
    let dir = tempfile::tempdir().unwrap();
    let db = big_database(dir.path());
    let entries = path(dir.path(), "entries");
    let child = convert_under_way(&db, &entries, "50", 200);
    let pid = child.id().to_string();
    let sent = Process::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("stopped by Ctrl-C"), "{err}");
    let written = entry_files(&entries);
    assert!(
        written > 0 && written < 3000 && written.is_multiple_of(50),
        "whole batches: {written}"
    );
    assert_eq!(run(&["convert", &db, &entries, "--ns", "sq"]).0, 0);
    assert_eq!(entry_files(&entries), 3000);
}

#[test]
fn a_convert_killed_halfway_completes_when_run_again() {
    let dir = tempfile::tempdir().unwrap();
    let db = big_database(dir.path());
    let entries = path(dir.path(), "entries");
    let mut child = convert_under_way(&db, &entries, "100", 300);
    child.kill().unwrap();
    child.wait().unwrap();
    let halfway = entry_files(&entries);
    assert!(
        halfway > 0 && halfway < 3000,
        "killed halfway: {halfway} entries"
    );

    let (code, _, err) = run(&["convert", &db, &entries, "--ns", "sq"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(entry_files(&entries), 3000, "complete, and no entry twice");
    assert_eq!(exported(&entries), exported(&db));
    assert_eq!(run(&["verify", &entries, "--ns", "sq"]).0, 0);
}

/// The table `sq` of the SQLite database at `db`.
#[allow(non_snake_case)]
fn SqlDatabase_table(db: &str) -> SqlArchive<u64, Vec<u64>> {
    klepto::archive::SqlDatabase::open(db)
        .unwrap()
        .table("sq")
        .unwrap()
}

/// Runs `klepto args…`, which must fail with `code` and one line on
/// standard error, never a panic or a backtrace; that line.
fn fails(args: &[&str], code: i32) -> String {
    let (got, _, err) = run(args);
    assert_eq!(got, code, "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
    err
}

#[test]
fn bad_input_is_one_line_and_a_documented_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let missing = path(dir.path(), "missing.db");
    let err = fails(&["ls", &missing], 3);
    assert!(
        err.contains("missing.db") && err.contains("no such file"),
        "{err}"
    );

    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "hello").unwrap();
    let err = fails(&["ls", &notes.display().to_string()], 2);
    assert!(err.contains("not an archive"), "{err}");

    // A file named like a database that is not one.
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, vec![7u8; 4096]).unwrap();
    let err = fails(&["ls", &junk.display().to_string()], 3);
    assert!(err.contains("junk.db"), "{err}");
    assert_eq!(std::fs::read(&junk).unwrap(), vec![7u8; 4096], "left alone");

    let err = fails(&["ls", "ftp://user:secret@host/x"], 2);
    assert!(
        err.contains("unsupported URL scheme") && !err.contains("secret"),
        "{err}"
    );

    let db = path(dir.path(), "cache.db");
    fill(SqlArchive::open(&db).unwrap(), 3);
    let err = fails(&["ls", &db, "--ns", "nope"], 1);
    assert!(
        err.contains("no namespace `nope`") && err.contains("sq"),
        "{err}"
    );

    let err = fails(&["get", &db, "--ns", "sq", "not-hex"], 2);
    assert!(err.contains("not a key in hexadecimal"), "{err}");
    let (code, _, _) = run(&["frobnicate"]);
    assert_eq!(code, 2, "an unknown command is a usage error");
}

#[test]
fn every_command_has_help_with_an_example() {
    for command in [
        "ls", "get", "stat", "verify", "rm", "clear", "export", "import", "convert", "vacuum",
    ] {
        let (code, out, _) = run(&[command, "--help"]);
        assert_eq!(code, 0, "{command}");
        assert!(out.contains("Example: `klepto"), "{command}: {out}");
    }
}

#[cfg(feature = "hdf5")]
#[test]
fn convert_through_hdf5_archives_keeps_every_value() {
    let dir = tempfile::tempdir().unwrap();
    let db = path(dir.path(), "cache.db");
    fill(SqlArchive::open(&db).unwrap(), 40);
    let h5 = path(dir.path(), "results.h5");
    let h5dir = path(dir.path(), "results.h5d");
    let (code, _, err) = run(&["convert", &db, &h5, "--ns", "sq"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = run(&["ls", &h5]);
    assert_eq!(code, 0);
    assert!(out.contains("sq\t40 entries"), "{out}");
    let (code, _, err) = run(&["convert", &h5, &h5dir, "--ns", "sq"]);
    assert_eq!(code, 0, "{err}");
    let original = exported(&db);
    assert_eq!(exported(&h5), original);
    assert_eq!(exported(&h5dir), original);
    assert_eq!(run(&["verify", &h5dir, "--ns", "sq"]).0, 0);
    let h5_files = std::fs::read_dir(Path::new(&h5dir).join("sq"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "h5")
        })
        .count();
    assert_eq!(h5_files, 40, "an HdfDirArchive: one .h5 file per entry");
    let (code, out, _) = run(&["get", &h5, "--ns", "sq", "--args", "(6)"]);
    assert_eq!((code, out.trim()), (0, "36"));
}

/// Every command on each local backend the default build has: a file
/// archive (MessagePack and JSON), a directory archive and SQLite.
#[test]
fn every_command_on_every_local_backend() {
    let dir = tempfile::tempdir().unwrap();
    let targets = [
        path(dir.path(), "cache.msgpack"),
        path(dir.path(), "cache.json"),
        path(dir.path(), "entries"),
        path(dir.path(), "cache.db"),
    ];
    fill(FileArchive::open(&targets[0]).unwrap(), 10);
    fill(FileArchive::open(&targets[1]).unwrap(), 10);
    fill(DirArchive::open(&targets[2]).unwrap(), 10);
    fill(SqlArchive::open(&targets[3]).unwrap(), 10);
    let jsonl = dir.path().join("sq.jsonl").display().to_string();
    for target in &targets {
        let t = target.as_str();
        let (code, out, err) = run(&["ls", t]);
        assert_eq!(code, 0, "{t}: {err}");
        assert!(out.lines().any(|l| l == "sq\t10 entries"), "{t}: {out}");
        let (code, out, _) = run(&["ls", t, "--ns", "sq", "--json", "--limit", "4"]);
        assert_eq!((code, out.lines().count()), (0, 4), "{t}");
        let (code, out, _) = run(&["get", t, "--ns", "sq", "--args", "(3)"]);
        assert_eq!((code, out.trim()), (0, "9"), "{t}");
        let (code, out, _) = run(&["stat", t, "--ns", "sq", "--json"]);
        assert_eq!(code, 0, "{t}");
        assert!(out.contains("\"entries\":10"), "{t}: {out}");
        assert_eq!(run(&["verify", t, "--ns", "sq"]).0, 0, "{t}");
        let exported_lines = exported(t);
        std::fs::write(&jsonl, exported_lines.join("\n")).unwrap();
        let key = serde_json::from_str::<serde_json::Value>(&exported_lines[0]).unwrap()["key"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(run(&["rm", t, "--ns", "sq", &key]).0, 0, "{t}");
        assert_eq!(exported(t).len(), 9, "{t}");
        assert_eq!(run(&["clear", t, "--ns", "sq"]).0, 0, "{t}");
        assert!(exported(t).is_empty(), "{t}");
        let (code, _, err) = run(&["import", &jsonl, t, "--ns", "sq"]);
        assert_eq!(code, 0, "{t}: {err}");
        assert_eq!(exported(t), exported_lines, "{t}: import restores export");
        let (code, _, err) = run(&["vacuum", t, "--ns", "sq"]);
        assert_eq!(code, 0, "{t}: {err}");
        assert_eq!(exported(t), exported_lines, "{t}: vacuum keeps every entry");
    }
}
