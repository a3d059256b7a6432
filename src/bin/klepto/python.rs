//! `klepto import-python`: archives written by Python klepto 0.2.x, read
//! with `serde-pickle` and stored as string-keyed entries.
//!
//! * `file_archive`: one file, a pickled `dict`;
//! * `dir_archive`: a directory of `K_<str(key)>` folders, each with the
//!   pickled value in `output.pkl` (and the pickled key in `input.pkl` when
//!   the key is not a string);
//! * `sqltable_archive`: an SQLite table (`memo` unless `--table`), either
//!   `Kkey`/`Kval` (with SQLAlchemy: the value pickled) or `argstr`/`fval`
//!   (without: plain SQLite values, the last row of a key winning).
//!
//! The key of each entry is Python's `str(key)`: `1`, `a`, `(1, 'b')`. A
//! value that is not plain data (a pickled class instance, a function)
//! cannot be decoded: it is reported with its key, never dropped silently.

use std::collections::BTreeMap;
use std::path::Path;

use klepto::archive::envelope::Envelope;
use rmpv::Value as Any;
use serde_pickle::{DeOptions, HashableValue, Value as Py};

use crate::progress::Progress;
use crate::target::open;
use crate::Failure;

/// One entry read: its key as text, and its value or why it cannot be read.
type Read = (String, Result<Any, String>);

/// Imports the Python klepto archive at `src` into `dst`.
pub fn import_python(src: &str, dst: &str, ns: Option<&str>, table: &str) -> Result<u8, Failure> {
    let path = Path::new(src);
    let entries = if path.is_dir() {
        read_dir_archive(path)?
    } else {
        let bytes = std::fs::read(path).map_err(|e| Failure::io(format!("{src}: {e}")))?;
        if bytes.starts_with(b"SQLite format 3\0") {
            read_sql_archive(path, table)?
        } else {
            read_file_archive(src, &bytes)?
        }
    };
    let archive = open(dst, ns, true)?;
    let mut progress = Progress::new("import-python", Some(entries.len() as u64));
    let (mut batch, mut imported, mut refused) = (Vec::new(), 0u64, 0u64);
    for (key, value) in entries {
        let value = match value {
            Ok(value) => value,
            Err(reason) => {
                eprintln!("klepto: {src}: entry `{key}` not imported: {reason}");
                refused += 1;
                continue;
            }
        };
        let key_bytes = rmp_serde::to_vec(&key).map_err(|e| Failure::io(e.to_string()))?;
        let value_bytes = rmp_serde::to_vec(&value).map_err(|e| Failure::io(e.to_string()))?;
        let envelope = Envelope {
            key: Some(&key_bytes),
            args: None,
            value: &value_bytes,
        }
        .encode();
        batch.push((key_bytes, envelope));
        if batch.len() == 1000 {
            imported += batch.len() as u64;
            progress.add(batch.len() as u64);
            archive.put_batch(std::mem::take(&mut batch))?;
        }
    }
    imported += batch.len() as u64;
    if !batch.is_empty() {
        archive.put_batch(batch)?;
    }
    progress.finish();
    eprintln!(
        "klepto: {imported} entries imported from {src} into {}{}",
        archive.location(),
        if refused > 0 {
            format!(", {refused} not imported (listed above)")
        } else {
            String::new()
        }
    );
    Ok(u8::from(refused > 0))
}

/// The plain data in a pickle; a pickle of anything else (an instance of
/// a class, a function: anything rebuilt by calling Python) is refused,
/// not turned into something that looks like data.
fn unpickle(bytes: &[u8]) -> Result<Py, String> {
    if let Some(op) = calls_python(bytes)? {
        return Err(format!(
            "not plain data: a pickled class instance or function (pickle opcode {op})"
        ));
    }
    serde_pickle::value_from_slice(bytes, DeOptions::new().decode_strings())
        .map_err(|e| format!("not a readable pickle: {e}"))
}

/// Walks the pickle's opcodes (their argument sizes as in Python's
/// `pickletools`): the name of the first opcode that looks up or calls
/// Python code (`GLOBAL`, `STACK_GLOBAL`, `REDUCE`, `BUILD`, `NEWOBJ`, ...),
/// if any. Plain data (numbers, strings, bytes, lists, tuples, dicts,
/// sets) pickled with protocol 4 or 5 has none.
fn calls_python(bytes: &[u8]) -> Result<Option<&'static str>, String> {
    let truncated = || "a truncated pickle".to_owned();
    let mut at = 0usize;
    // Skips `n` bytes of argument.
    let skip = |at: &mut usize, n: usize| -> Result<(), String> {
        *at = at
            .checked_add(n)
            .filter(|&e| e <= bytes.len())
            .ok_or_else(truncated)?;
        Ok(())
    };
    // Reads a little-endian length of `width` bytes.
    let length = |at: &mut usize, width: usize| -> Result<usize, String> {
        let field = bytes.get(*at..*at + width).ok_or_else(truncated)?;
        *at += width;
        let mut n = 0u64;
        for (i, b) in field.iter().enumerate() {
            n |= u64::from(*b) << (8 * i);
        }
        usize::try_from(n).map_err(|_| truncated())
    };
    // Skips to after the next newline.
    let line = |at: &mut usize| -> Result<(), String> {
        let end = bytes[*at..]
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(truncated)?;
        *at += end + 1;
        Ok(())
    };
    while at < bytes.len() {
        let op = bytes[at];
        at += 1;
        match op {
            b'.' => return Ok(None), // STOP
            b'c' => return Ok(Some("GLOBAL")),
            0x93 => return Ok(Some("STACK_GLOBAL")),
            b'i' => return Ok(Some("INST")),
            b'o' => return Ok(Some("OBJ")),
            b'R' => return Ok(Some("REDUCE")),
            b'b' => return Ok(Some("BUILD")),
            0x81 => return Ok(Some("NEWOBJ")),
            0x92 => return Ok(Some("NEWOBJ_EX")),
            b'P' | b'Q' => return Ok(Some("PERSID")),
            0x82..=0x84 => return Ok(Some("EXT")),
            // No argument.
            b'('
            | b')'
            | b'0'
            | b'1'
            | b'2'
            | b'N'
            | b'a'
            | b'e'
            | b'd'
            | b'}'
            | b'l'
            | b']'
            | b's'
            | b'u'
            | b't'
            | 0x85..=0x89
            | 0x8f
            | 0x90
            | 0x91
            | 0x94
            | 0x97
            | 0x98 => {}
            // Newline-terminated arguments.
            b'I' | b'L' | b'F' | b'S' | b'V' | b'g' | b'p' => line(&mut at)?,
            // Fixed-size arguments.
            b'K' | b'q' | b'h' | 0x80 => skip(&mut at, 1)?,
            b'M' => skip(&mut at, 2)?,
            b'J' | b'j' | b'r' => skip(&mut at, 4)?,
            b'G' | 0x95 => skip(&mut at, 8)?,
            // Length-prefixed arguments.
            0x8a | b'U' | b'C' | 0x8c => {
                let n = length(&mut at, 1)?;
                skip(&mut at, n)?;
            }
            0x8b | b'T' | b'X' | b'B' => {
                let n = length(&mut at, 4)?;
                skip(&mut at, n)?;
            }
            0x8d | 0x8e | 0x96 => {
                let n = length(&mut at, 8)?;
                skip(&mut at, n)?;
            }
            other => return Err(format!("not a pickle (opcode {other:#04x})")),
        }
    }
    Err(truncated())
}

/// A `file_archive`: the whole dictionary is one pickle.
fn read_file_archive(src: &str, bytes: &[u8]) -> Result<Vec<Read>, Failure> {
    match unpickle(bytes) {
        Ok(Py::Dict(map)) => Ok(map
            .into_iter()
            .map(|(k, v)| (py_str(&k), Ok(to_any(v))))
            .collect()),
        Ok(_) => Err(Failure::usage(format!(
            "{src}: a pickle, but not of a dict: not a Python klepto file_archive"
        ))),
        Err(reason) => Err(Failure::not_found(format!(
            "{src}: not a Python klepto archive, or one holding values that are not plain data \
             (its dictionary is one pickle, so nothing can be imported): {reason}"
        ))),
    }
}

/// A `dir_archive`: `K_<key>/output.pkl` (and `input.pkl`).
fn read_dir_archive(dir: &Path) -> Result<Vec<Read>, Failure> {
    let io = |e: std::io::Error| Failure::io(format!("{}: {e}", dir.display()));
    let mut entries = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .map_err(io)?
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(io)?;
    names.sort_by_key(|e| e.file_name());
    for entry in names {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(stored) = name.strip_prefix("K_") else {
            continue;
        };
        let folder = entry.path();
        let key = match std::fs::read(folder.join("input.pkl")) {
            Ok(bytes) => unpickle(&bytes)
                .and_then(|k| k.into_hashable().map_err(|e| e.to_string()))
                .map_or_else(|_| stored.to_owned(), |k| py_str(&k)),
            Err(_) => stored.to_owned(),
        };
        let value = std::fs::read(folder.join("output.pkl"))
            .map_err(|e| format!("{}: {e}", folder.join("output.pkl").display()))
            .and_then(|bytes| unpickle(&bytes))
            .map(to_any);
        entries.push((key, value));
    }
    if entries.is_empty() {
        return Err(Failure::usage(format!(
            "{}: not a Python klepto dir_archive (no K_* folders)",
            dir.display()
        )));
    }
    Ok(entries)
}

/// A `sqltable_archive` in an SQLite file.
fn read_sql_archive(path: &Path, table: &str) -> Result<Vec<Read>, Failure> {
    use rusqlite::{types::ValueRef, Connection, OpenFlags};
    let at = |e: rusqlite::Error| Failure::io(format!("{}: {e}", path.display()));
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(at)?;
    let columns: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info(?1)")
        .and_then(|mut s| s.query_map([table], |r| r.get(0))?.collect())
        .map_err(at)?;
    let has = |c: &str| columns.iter().any(|n| n == c);
    let (key, value, pickled) = if has("Kkey") && has("Kval") {
        ("\"Kkey\"", "\"Kval\"", true)
    } else if has("argstr") && has("fval") {
        ("argstr", "fval", false)
    } else {
        return Err(Failure::not_found(format!(
            "{}: no Python klepto table `{table}` (columns Kkey/Kval or argstr/fval; --table picks another)",
            path.display()
        )));
    };
    let sql = format!("SELECT {key}, {value} FROM \"{table}\" ORDER BY rowid");
    let mut stmt = conn.prepare(&sql).map_err(at)?;
    let mut rows = stmt.query([]).map_err(at)?;
    // Without SQLAlchemy every write is a new row: the last one wins.
    let mut entries = BTreeMap::new();
    while let Some(row) = rows.next().map_err(at)? {
        let key = match row.get_ref(0).map_err(at)? {
            ValueRef::Text(t) | ValueRef::Blob(t) => String::from_utf8_lossy(t).into_owned(),
            ValueRef::Integer(i) => i.to_string(),
            ValueRef::Real(f) => py_float(f),
            ValueRef::Null => "None".to_owned(),
        };
        let value = match row.get_ref(1).map_err(at)? {
            ValueRef::Blob(b) if pickled => unpickle(b).map(to_any),
            ValueRef::Blob(b) => Ok(Any::Binary(b.to_vec())),
            ValueRef::Text(t) => Ok(Any::from(String::from_utf8_lossy(t).as_ref())),
            ValueRef::Integer(i) => Ok(Any::from(i)),
            ValueRef::Real(f) => Ok(Any::F64(f)),
            ValueRef::Null => Ok(Any::Nil),
        };
        entries.insert(key, value);
    }
    Ok(entries.into_iter().collect())
}

/// A Python value as a MessagePack tree: tuples, sets and lists as arrays,
/// integers beyond 64 bits as their decimal text.
fn to_any(value: Py) -> Any {
    match value {
        Py::None => Any::Nil,
        Py::Bool(b) => Any::Boolean(b),
        Py::I64(i) => Any::from(i),
        Py::Int(big) => Any::from(big.to_string()),
        Py::F64(f) => Any::F64(f),
        Py::Bytes(b) => Any::Binary(b),
        Py::String(s) => Any::from(s),
        Py::List(items) | Py::Tuple(items) => Any::Array(items.into_iter().map(to_any).collect()),
        Py::Set(items) | Py::FrozenSet(items) => {
            Any::Array(items.into_iter().map(|h| to_any(h.into_value())).collect())
        }
        Py::Dict(map) => Any::Map(
            map.into_iter()
                .map(|(k, v)| (to_any(k.into_value()), to_any(v)))
                .collect(),
        ),
    }
}

/// Python's `str()` of a key.
fn py_str(key: &HashableValue) -> String {
    match key {
        HashableValue::String(s) => s.clone(),
        other => py_repr(other),
    }
}

/// Python's `repr()` of a key.
fn py_repr(key: &HashableValue) -> String {
    match key {
        HashableValue::None => "None".into(),
        HashableValue::Bool(b) => if *b { "True" } else { "False" }.into(),
        HashableValue::I64(i) => i.to_string(),
        HashableValue::Int(big) => big.to_string(),
        HashableValue::F64(f) => py_float(*f),
        HashableValue::Bytes(b) => format!("b{:?}", String::from_utf8_lossy(b)),
        HashableValue::String(s) => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")),
        HashableValue::Tuple(items) => {
            let inner: Vec<_> = items.iter().map(py_repr).collect();
            if inner.len() == 1 {
                format!("({},)", inner[0])
            } else {
                format!("({})", inner.join(", "))
            }
        }
        HashableValue::FrozenSet(items) => {
            let inner: Vec<_> = items.iter().map(py_repr).collect();
            format!("frozenset({{{}}})", inner.join(", "))
        }
    }
}

/// Python's `repr()` of a float: `1.0`, `2.5`, `inf`.
fn py_float(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e16 {
        format!("{f:.1}")
    } else if f.is_nan() {
        "nan".into()
    } else if f.is_infinite() {
        if f > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        f.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_read_as_python_prints_them() {
        let tuple = HashableValue::Tuple(vec![
            HashableValue::I64(1),
            HashableValue::String("b".into()),
        ]);
        assert_eq!(py_str(&tuple), "(1, 'b')");
        assert_eq!(py_str(&HashableValue::String("a".into())), "a");
        assert_eq!(py_str(&HashableValue::F64(2.0)), "2.0");
        assert_eq!(
            py_str(&HashableValue::Tuple(vec![HashableValue::I64(3)])),
            "(3,)"
        );
    }

    #[test]
    fn pickles_of_plain_data_pass_and_of_classes_do_not() {
        // pickle.dumps({1: 1.5, 'a': [1, 2], (1, 'b'): 'x', 'big': 2**70}, 4)
        let plain = b"\x80\x04\x959\x00\x00\x00\x00\x00\x00\x00}\x94(K\x01G?\xf8\x00\x00\x00\x00\x00\x00\x8c\x01a\x94]\x94(K\x01K\x02eK\x01\x8c\x01b\x94\x86\x94\x8c\x01x\x94\x8c\x03big\x94\x8a\t\x00\x00\x00\x00\x00\x00\x00\x00@u.";
        assert_eq!(calls_python(plain), Ok(None));
        assert!(matches!(unpickle(plain), Ok(Py::Dict(_))));
        // pickle.dumps(collections.OrderedDict(), 4)
        let class = b"\x80\x04\x95\"\x00\x00\x00\x00\x00\x00\x00\x8c\x0bcollections\x94\x8c\x0bOrderedDict\x94\x93\x94)R\x94.";
        assert_eq!(calls_python(class), Ok(Some("STACK_GLOBAL")));
        assert!(unpickle(class).unwrap_err().contains("class instance"));
        assert!(calls_python(&plain[..20]).is_err(), "truncated");
        assert!(calls_python(b"\xff\xff").is_err(), "not a pickle");
    }
}
