//! `klepto import-python` on archives made by the real Python klepto
//! (0.2.x, installed by `scripts/python-klepto.sh install` into
//! `target/python-klepto`; `.ci/run` does it). Without it the test prints
//! one line and skips, except under `CI=true`, where it fails.
#![cfg(feature = "cli")]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command as Process;

use assert_cmd::Command;

/// The interpreter of Python klepto's virtual environment, if it works.
fn python() -> Option<String> {
    let out = Process::new("bash")
        .args(["scripts/python-klepto.sh", "python"])
        .output()
        .ok()?;
    let path = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !path.is_empty()).then_some(path)
}

/// Python klepto writes one archive of each kind in `dir`: the same plain
/// entries, and (in the directory archive) one class instance.
const MAKE: &str = r#"
import sys
from klepto.archives import file_archive, dir_archive, sqltable_archive
entries = {1: 1.5, 'a': [1, 2], (1, 'b'): 'x', 'd': {'k': None}, 'big': 2**70}
fa = file_archive(sys.argv[1] + '/f.pkl', cached=False)
for k, v in entries.items(): fa[k] = v
da = dir_archive(sys.argv[1] + '/d', cached=False)
for k, v in entries.items(): da[k] = v
class Point:
    def __init__(self): self.x = 1
da['obj'] = Point()
sa = sqltable_archive('sqlite:///' + sys.argv[1] + '/s.db', cached=False)
for k, v in entries.items():
    if not isinstance(k, tuple): sa[k] = v
"#;

/// The entries of namespace `py` of `target`: key text -> value as JSON.
fn imported(target: &str) -> BTreeMap<String, serde_json::Value> {
    let out = Command::cargo_bin("klepto")
        .unwrap()
        .args(["export", target, "--ns", "py"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let doc: serde_json::Value = serde_json::from_str(line).unwrap();
            let hex = doc["key"].as_str().unwrap();
            let bytes: Vec<u8> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            let key: String = rmp_serde::from_slice(&bytes).unwrap();
            (key, doc["value"].clone())
        })
        .collect()
}

fn import(src: &Path, dst: &str) -> (i32, String) {
    let out = Command::cargo_bin("klepto")
        .unwrap()
        .args([
            "import-python",
            &src.display().to_string(),
            dst,
            "--ns",
            "py",
        ])
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn archives_written_by_python_klepto_are_imported() {
    let Some(python) = python() else {
        let why = "Python klepto is not installed (bash scripts/python-klepto.sh install)";
        if common::in_ci() {
            panic!("{why}, but CI=true");
        }
        common::skip(why);
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let made = Process::new(&python)
        .args(["-c", MAKE, &dir.path().display().to_string()])
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let expected = |with_tuple: bool| {
        let mut all = BTreeMap::from([
            ("1".to_owned(), serde_json::json!(1.5)),
            ("a".to_owned(), serde_json::json!([1, 2])),
            ("d".to_owned(), serde_json::json!({ "k": null })),
            (
                "big".to_owned(),
                serde_json::json!("1180591620717411303424"),
            ),
        ]);
        if with_tuple {
            all.insert("(1, 'b')".to_owned(), serde_json::json!("x"));
        }
        all
    };

    // file_archive -> SQLite.
    let db = dir.path().join("out.db").display().to_string();
    let (code, err) = import(&dir.path().join("f.pkl"), &db);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("5 entries imported"), "{err}");
    assert_eq!(imported(&db), expected(true));

    // dir_archive -> a directory archive: the class instance is reported
    // by its key, the rest imported.
    let entries = dir.path().join("entries").display().to_string();
    let (code, err) = import(&dir.path().join("d"), &entries);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("entry `obj` not imported"), "{err}");
    assert!(
        err.contains("5 entries imported") && err.contains("1 not imported"),
        "{err}"
    );
    assert_eq!(imported(&entries), expected(true));

    // sqltable_archive (SQLAlchemy's Kkey/Kval table) -> a file archive.
    let file = dir.path().join("out.msgpack").display().to_string();
    let (code, err) = import(&dir.path().join("s.db"), &file);
    assert_eq!(code, 0, "{err}");
    assert_eq!(imported(&file), expected(false));

    // Not a Python klepto archive.
    let junk = dir.path().join("junk.pkl");
    std::fs::write(&junk, b"not a pickle").unwrap();
    let (code, err) = import(&junk, &db);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not a Python klepto archive"), "{err}");
}
