//! FileArchive's unit tests.

use super::*;
use crate::archive::fs::assert_corrupt;
use std::collections::{BTreeMap, HashMap};

fn open<V>(path: &Path) -> FileArchive<u64, V>
where
    V: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    FileArchive::open(path).unwrap().durable(false)
}

fn paths(dir: &Path) -> [PathBuf; 2] {
    [dir.join("memo.msgpack"), dir.join("memo.json")]
}

fn sorted<V: Ord>(items: Items<'_, (u64, V)>) -> Vec<(u64, V)> {
    let mut v: Vec<_> = items.map(Result::unwrap).collect();
    v.sort();
    v
}

#[test]
fn every_method_round_trips_in_both_formats() {
    let dir = tempfile::tempdir().unwrap();
    for path in paths(dir.path()) {
        let a: FileArchive<u64, String> = open(&path);
        assert!(a.is_empty().unwrap());
        assert!(!path.exists(), "created before the first write");
        a.insert(1, "one".into()).unwrap();
        a.insert_with_args(2, "two".into(), Some(vec![0, 1, 255]))
            .unwrap();
        a.extend(vec![(3, "three".into()), (4, "four".into())])
            .unwrap();
        a.extend_with_args(vec![
            (5, "five".into(), Some(vec![5])),
            (6, "six".into(), None),
        ])
        .unwrap();
        assert_eq!(a.len().unwrap(), 6);
        assert_eq!(a.get(&2).unwrap().as_deref(), Some("two"));
        assert_eq!(a.get(&9).unwrap(), None);
        assert!(a.contains_key(&4).unwrap());
        assert_eq!(a.args(&2).unwrap(), Some(vec![0, 1, 255]));
        assert_eq!(a.args(&5).unwrap(), Some(vec![5]));
        assert_eq!(a.args(&1).unwrap(), None);
        assert_eq!(a.remove(&3).unwrap().as_deref(), Some("three"));
        assert_eq!(a.remove(&3).unwrap(), None);

        // A fresh handle reads the same dictionary from the file.
        let b: FileArchive<u64, String> = open(&path);
        let mut keys: Vec<u64> = b.keys().unwrap().map(Result::unwrap).collect();
        keys.sort_unstable();
        assert_eq!(keys, [1, 2, 4, 5, 6]);
        let mut values: Vec<String> = b.values().unwrap().map(Result::unwrap).collect();
        values.sort();
        assert_eq!(values, ["five", "four", "one", "six", "two"]);
        assert_eq!(sorted(b.items().unwrap()).len(), 5);
        assert_eq!(b.args(&2).unwrap(), Some(vec![0, 1, 255]));

        // Overwriting without args drops the old args.
        b.insert(2, "deux".into()).unwrap();
        assert_eq!(a.args(&2).unwrap(), None);
        assert_eq!(a.get(&2).unwrap().as_deref(), Some("deux"));

        a.clear().unwrap();
        assert_eq!(b.len().unwrap(), 0);
        assert!(path.exists());
        assert_eq!(a.location(), path.display().to_string());
    }
}

#[test]
fn no_change_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.msgpack");
    let a: FileArchive<u64, u64> = open(&path);
    assert_eq!(a.remove(&1).unwrap(), None);
    a.clear().unwrap();
    a.extend(vec![]).unwrap();
    assert!(!path.exists());
}

#[test]
fn iteration_is_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let a: FileArchive<u64, u64> = open(&dir.path().join("m"));
    a.extend((0..10).map(|i| (i, i)).collect()).unwrap();
    let it = a.iter().unwrap();
    a.clear().unwrap();
    assert_eq!(sorted(it), (0..10).map(|i| (i, i)).collect::<Vec<_>>());
    assert_eq!(a.len().unwrap(), 0);
}

#[test]
fn namespaces_are_sibling_files() {
    let dir = tempfile::tempdir().unwrap();
    for (name, ns_name) in [
        ("memo.msgpack", "memo.fib.msgpack"),
        ("memo.json", "memo.fib.json"),
        ("memo", "memo.fib"),
    ] {
        let a: FileArchive<u64, u64> = open(&dir.path().join(name));
        let fib = a.namespaced("fib").unwrap();
        assert_eq!(fib.path(), dir.path().join(ns_name));
        assert_eq!(fib.namespace(), "fib");
        fib.insert(1, 10).unwrap();
        a.insert(1, 20).unwrap();
        assert_eq!(fib.get(&1).unwrap(), Some(10));
        assert_eq!(a.get(&1).unwrap(), Some(20));
        // Namespaces are relative to the opened file, not nested.
        let g = fib.namespaced("g").unwrap();
        assert_eq!(g.path(), dir.path().join(ns_name.replace("fib", "g")));
        let root = g.namespaced("").unwrap();
        assert_eq!(root.path(), a.path());
        assert_eq!(root.get(&1).unwrap(), Some(20));
        for bad in ["a/b", "..", "x\0", "a\\b"] {
            assert!(
                matches!(a.namespaced(bad), Err(Error::Config { .. })),
                "{bad:?}"
            );
        }
    }
}

#[test]
fn json_file_is_readable_json_with_any_key_type() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.json");
    let a: FileArchive<(i32, String), Vec<f64>> = FileArchive::open(&path).unwrap();
    a.insert_with_args((1, "x".into()), vec![0.5], Some(vec![0xde, 0xad]))
        .unwrap();
    a.insert((-2, "y".into()), vec![]).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains('\n'), "pretty-printed: {text}");
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["format"], "klepto-file");
    assert_eq!(doc["version"], 1);
    let entries = doc["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    let first = entries.iter().find(|e| e[0][0] == 1).unwrap();
    assert_eq!(first[0], serde_json::json!([1, "x"]));
    assert_eq!(first[1], serde_json::json!([0.5]));
    assert_eq!(first[2], "dead");
    let second = entries.iter().find(|e| e[0][0] == -2).unwrap();
    assert!(second[2].is_null());
}

/// Checks that opening `bytes` as an archive of `V` fails with a
/// `Corrupt` error naming the path, and leaves the file as it was.
fn check_corrupt<V>(path: &Path, bytes: &[u8])
where
    V: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    std::fs::write(path, bytes).unwrap();
    assert_corrupt(FileArchive::<u64, V>::open(path).unwrap_err(), path);
    assert_eq!(std::fs::read(path).unwrap(), bytes);
}

#[test]
fn damaged_files_are_corrupt_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    for path in paths(dir.path()) {
        let a: FileArchive<u64, String> = open(&path);
        a.extend((0..20).map(|i| (i, format!("value {i}"))).collect())
            .unwrap();
        let good = std::fs::read(&path).unwrap();
        let n = good.len();
        for cut in [0, 1, 5, 12, 13, n / 2, n - 3, n - 1] {
            // A JSON document may end in whitespace.
            if path.extension().unwrap() == "json" && cut == n - 1 {
                continue;
            }
            check_corrupt::<String>(&path, &good[..cut]);
        }
        check_corrupt::<String>(&path, b"garbage bytes, not an archive at all");
        let mut flipped = good.clone();
        flipped[n / 2] ^= 0x40;
        if path.extension().unwrap() != "json" {
            check_corrupt::<String>(&path, &flipped);
        }
        // The right file read as the wrong value type.
        check_corrupt::<u64>(&path, &good);
        let err = FileArchive::<u64, u64>::open(&path).unwrap_err();
        assert!(err.to_string().contains("u64"), "{err}");
    }
}

#[test]
fn a_file_damaged_after_open_is_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    for path in paths(dir.path()) {
        let a: FileArchive<u64, u64> = open(&path);
        a.insert(1, 1).unwrap();
        let garbage = b"{ not json, not msgpack".to_vec();
        std::fs::write(&path, &garbage).unwrap();
        assert_corrupt(a.get(&1).unwrap_err(), &path);
        assert_corrupt(a.insert(2, 2).unwrap_err(), &path);
        assert_corrupt(a.remove(&1).unwrap_err(), &path);
        assert_corrupt(a.clear().unwrap_err(), &path);
        assert_corrupt(a.extend(vec![(3, 3)]).unwrap_err(), &path);
        assert!(a.iter().is_err());
        assert_eq!(std::fs::read(&path).unwrap(), garbage);
    }
}

#[test]
fn a_missing_directory_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing").join("m.msgpack");
    match FileArchive::<u64, u64>::open(&path).unwrap_err() {
        Error::Io { path: p, .. } => assert_eq!(p, path),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_second_handle_sees_every_write_of_the_first() {
    let dir = tempfile::tempdir().unwrap();
    for path in paths(dir.path()) {
        let a: FileArchive<u64, u64> = open(&path);
        let b: FileArchive<u64, u64> = open(&path);
        // Same-size rewrites in quick succession: only the inode tells
        // the versions apart.
        for i in 0..200 {
            a.insert(0, i % 10).unwrap();
            assert_eq!(b.get(&0).unwrap(), Some(i % 10));
            b.insert(1, i % 10).unwrap();
            assert_eq!(a.get(&1).unwrap(), Some(i % 10));
        }
        a.clear().unwrap();
        assert!(b.is_empty().unwrap());
        std::fs::remove_file(&path).unwrap();
        assert!(b.is_empty().unwrap());
        b.insert(5, 5).unwrap();
        assert_eq!(a.get(&5).unwrap(), Some(5));
    }
}

#[test]
fn a_reader_is_not_fooled_by_a_reused_inode() {
    // b parses a version, then a replaces it twice with files of the
    // same size within one timestamp tick: the second replacement may
    // get the first version's inode number unless b keeps it taken.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.msgpack");
    let a: FileArchive<u64, u64> = open(&path);
    let b: FileArchive<u64, u64> = open(&path);
    for i in 0..300 {
        a.insert(0, i % 100).unwrap();
        assert_eq!(b.get(&0).unwrap(), Some(i % 100));
        a.insert(0, 100 + i % 100).unwrap();
        a.insert(0, 200 + i % 50).unwrap();
        assert_eq!(b.get(&0).unwrap(), Some(200 + i % 50), "round {i}");
    }
}

#[test]
fn writers_with_separate_handles_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for path in paths(dir.path()) {
        std::thread::scope(|s| {
            for t in 0..4_u64 {
                let path = &path;
                s.spawn(move || {
                    let a: FileArchive<u64, u64> = open(path);
                    for i in 0..25 {
                        a.insert(t * 1000 + i, i).unwrap();
                        if i % 5 == 0 {
                            a.extend(vec![(t * 1000 + 500 + i, i)]).unwrap();
                        }
                        if i % 10 == 9 {
                            assert_eq!(a.remove(&(t * 1000 + i)).unwrap(), Some(i));
                        }
                    }
                });
            }
        });
        let a: FileArchive<u64, u64> = open(&path);
        let got: BTreeMap<u64, u64> = a.iter().unwrap().map(Result::unwrap).collect();
        let mut want = BTreeMap::new();
        for t in 0..4 {
            for i in 0..25 {
                if i % 10 != 9 {
                    want.insert(t * 1000 + i, i);
                }
                if i % 5 == 0 {
                    want.insert(t * 1000 + 500 + i, i);
                }
            }
        }
        assert_eq!(got, want);
    }
}

#[test]
fn clones_share_one_dictionary_and_debug_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.msgpack");
    let a: FileArchive<u64, u64> = FileArchive::open(&path).unwrap();
    let b = a.clone().durable(false);
    b.insert(1, 1).unwrap();
    assert_eq!(a.get(&1).unwrap(), Some(1));
    let debug = format!("{a:?}");
    assert!(
        debug.contains("m.msgpack") && debug.contains("durable: true"),
        "{debug}"
    );
    assert!(format!("{b:?}").contains("durable: false"));
}

#[test]
fn unencodable_values_leave_the_file_and_the_handle_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.json");
    // JSON objects need string keys: a map keyed by tuples cannot be written.
    let a: FileArchive<u64, HashMap<(u8, u8), u8>> = open(&path);
    a.insert(1, HashMap::new()).unwrap();
    let before = std::fs::read(&path).unwrap();
    let bad = HashMap::from([((1, 2), 3)]);
    assert!(matches!(
        a.insert(2, bad).unwrap_err(),
        Error::Encode { .. }
    ));
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert_eq!(a.len().unwrap(), 1);
    assert_eq!(a.get(&2).unwrap(), None);
}

/// The byte length of the file at `path`.
fn size(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

#[test]
fn a_write_appends_one_record_and_a_new_handle_replays_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.msgpack");
    let a: FileArchive<u64, String> = open(&path);
    a.insert(0, "first".into()).unwrap();
    let first = size(&path);
    let b: FileArchive<u64, String> = open(&path);
    let mut grown = Vec::new();
    for i in 1..200 {
        let before = size(&path);
        a.insert(i, format!("value {i}")).unwrap();
        grown.push(size(&path) - before);
        // The other handle catches up on the new records only.
        assert_eq!(b.get(&i).unwrap(), Some(format!("value {i}")));
    }
    // Each write adds one small record: the cost does not grow with the file.
    assert!(grown.iter().all(|&g| g > 0 && g < 80), "{grown:?}");
    assert!(size(&path) > first);
    assert_eq!(b.remove(&5).unwrap().as_deref(), Some("value 5"));
    let c: FileArchive<u64, String> = open(&path);
    assert_eq!(c.len().unwrap(), 199);
    assert_eq!(c.get(&5).unwrap(), None);
    assert_eq!(a.get(&5).unwrap(), None);
    assert_eq!(c.get(&199).unwrap().as_deref(), Some("value 199"));
}

#[test]
fn the_log_is_compacted_when_it_outgrows_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.msgpack");
    let a: FileArchive<u64, Vec<u8>> = open(&path);
    let reader: FileArchive<u64, Vec<u8>> = open(&path);
    // Overwrite 10 keys with 1 KiB values: the live data stays ~10 KiB.
    for i in 0..2_000_u64 {
        a.insert(i % 10, vec![i as u8; 1024]).unwrap();
        if i % 97 == 0 {
            assert_eq!(reader.get(&(i % 10)).unwrap(), Some(vec![i as u8; 1024]));
        }
    }
    // Log bytes stay within max(snapshot, 256 KiB), so the file stays small.
    assert!(size(&path) < 2 * 256 * 1024 + 64 * 1024, "{}", size(&path));
    let b: FileArchive<u64, Vec<u8>> = open(&path);
    assert_eq!(b.len().unwrap(), 10);
    for k in 0..10 {
        let last = 1_990 + k;
        assert_eq!(b.get(&k).unwrap(), Some(vec![last as u8; 1024]));
        assert_eq!(reader.get(&k).unwrap(), Some(vec![last as u8; 1024]));
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        2,
        "file and lock only"
    );
}

/// An archive of 3 entries written as 1 snapshot and 2 appended records;
/// returns the file's bytes and the offset where the last record starts.
fn three_entries(path: &Path) -> (Vec<u8>, usize) {
    let a: FileArchive<u64, String> = open(path);
    a.insert(1, "one".into()).unwrap();
    a.insert(2, "two".into()).unwrap();
    let last = size(path) as usize;
    a.insert(3, "three".into()).unwrap();
    (std::fs::read(path).unwrap(), last)
}

#[test]
fn a_torn_last_record_is_ignored_and_cut_off_by_the_next_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.msgpack");
    let (whole, last) = three_entries(&path);
    for cut in [last + 1, last + 15, last + 17, whole.len() - 1] {
        std::fs::write(&path, &whole[..cut]).unwrap();
        let a: FileArchive<u64, String> = open(&path);
        assert_eq!(a.len().unwrap(), 2, "cut {cut}");
        assert_eq!(a.get(&3).unwrap(), None);
        // The next write cuts the torn bytes off before appending.
        a.insert(4, "four".into()).unwrap();
        let b: FileArchive<u64, String> = open(&path);
        let got = sorted(b.iter().unwrap());
        assert_eq!(
            got,
            [(1, "one".into()), (2, "two".into()), (4, "four".into())]
        );
    }
    // Zeros where a crash extended the file without its data: torn too.
    let mut zeros = whole[..last].to_vec();
    zeros.resize(last + 100, 0);
    std::fs::write(&path, &zeros).unwrap();
    assert_eq!(open::<String>(&path).len().unwrap(), 2);
}

#[test]
fn a_damaged_record_is_corrupt_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.msgpack");
    let (whole, last) = three_entries(&path);
    // Damage in the middle record, and in the last record at full length:
    // both were acknowledged writes, so neither is dropped as torn.
    for at in [last - 3, last + 4, last + 20, whole.len() - 2] {
        let mut bad = whole.clone();
        bad[at] ^= 0x10;
        check_corrupt::<String>(&path, &bad);
    }
    // A whole record of another key type.
    let mut bad = whole[..last].to_vec();
    layout::push_frame(&mut bad, &codec::remove_record(&"not a u64").unwrap());
    check_corrupt::<String>(&path, &bad);
}

#[test]
fn a_file_from_an_earlier_version_is_read_and_rewritten_in_the_log_layout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.msgpack");
    let entries: Entries<u64, String> = (0..5)
        .map(|i| (i, (format!("v{i}"), Some(vec![i as u8]))))
        .collect();
    let value = crate::archive::envelope::to_msgpack(&codec::EntriesRef(&entries), "t").unwrap();
    let legacy = crate::archive::envelope::Envelope {
        key: None,
        args: None,
        value: &value,
    }
    .encode();
    std::fs::write(&path, &legacy).unwrap();
    let a: FileArchive<u64, String> = open(&path);
    assert_eq!(a.len().unwrap(), 5);
    assert_eq!(a.args(&3).unwrap(), Some(vec![3]));
    a.insert(5, "v5".into()).unwrap();
    assert!(std::fs::read(&path).unwrap().starts_with(&layout::MAGIC));
    let b: FileArchive<u64, String> = open(&path);
    assert_eq!(b.len().unwrap(), 6);
    assert_eq!(b.get(&0).unwrap().as_deref(), Some("v0"));
}

#[test]
fn temporary_files_left_by_dead_writers_are_removed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["m.msgpack", "m.json"] {
        let path = dir.path().join(name);
        open::<u64>(&path).insert(1, 1).unwrap();
        let litter: Vec<PathBuf> = ["abc123", "ZZZ999"]
            .iter()
            .map(|r| dir.path().join(format!(".{name}.tmp-{r}")))
            .collect();
        for l in &litter {
            std::fs::write(l, b"half a snapshot").unwrap();
        }
        // Not ours: a longer name that merely starts like our temp files.
        let neighbour = dir.path().join(format!(".{name}.tmp-abc123.x"));
        std::fs::write(&neighbour, b"x").unwrap();
        let a = open::<u64>(&path);
        assert!(litter.iter().all(|l| !l.exists()));
        assert!(neighbour.exists());
        assert_eq!(a.get(&1).unwrap(), Some(1));
    }
}

mod model {
    //! Random operations through two handles (and reopened ones) on one
    //! MessagePack file, against a `HashMap`: appends, catching up,
    //! compactions (values are large enough that a few dozen writes
    //! outgrow the 256 KiB bound) and torn tails must never change what a
    //! handle reads.

    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Insert {
            handle: bool,
            key: u8,
            size: u16,
        },
        Extend {
            handle: bool,
            keys: Vec<u8>,
            size: u16,
        },
        Remove {
            handle: bool,
            key: u8,
        },
        Clear {
            handle: bool,
        },
        /// A half-written record at the end, as a writer killed mid-append
        /// leaves it.
        Tear {
            bytes: u8,
        },
        Reopen {
            handle: bool,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            8 => (any::<bool>(), 0..24_u8, 0..12_000_u16)
                .prop_map(|(handle, key, size)| Op::Insert { handle, key, size }),
            2 => (any::<bool>(), proptest::collection::vec(0..24_u8, 0..5), 0..3_000_u16)
                .prop_map(|(handle, keys, size)| Op::Extend { handle, keys, size }),
            3 => (any::<bool>(), 0..24_u8).prop_map(|(handle, key)| Op::Remove { handle, key }),
            1 => any::<bool>().prop_map(|handle| Op::Clear { handle }),
            1 => (1..40_u8).prop_map(|bytes| Op::Tear { bytes }),
            1 => any::<bool>().prop_map(|handle| Op::Reopen { handle }),
        ]
    }

    fn value(key: u8, size: u16, step: usize) -> Vec<u8> {
        vec![key ^ step as u8; usize::from(size)]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        #[test]
        fn two_handles_agree_with_a_map(ops in proptest::collection::vec(op(), 1..120)) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("m.msgpack");
            let open = |path: &Path| -> FileArchive<u8, Vec<u8>> {
                FileArchive::open(path).unwrap().durable(false)
            };
            let mut handles = [open(&path), open(&path)];
            let mut model: HashMap<u8, Vec<u8>> = HashMap::new();
            // A torn tail is followed by a writer, which cuts it off, never
            // by a second torn append.
            let mut torn = false;
            for (step, op) in ops.into_iter().enumerate() {
                match op {
                    Op::Insert { handle, key, size } => {
                        let v = value(key, size, step);
                        handles[usize::from(handle)].insert(key, v.clone()).unwrap();
                        model.insert(key, v);
                        torn = false;
                    }
                    Op::Extend { handle, keys, size } => {
                        let items: Vec<(u8, Vec<u8>)> =
                            keys.iter().map(|&k| (k, value(k, size, step))).collect();
                        handles[usize::from(handle)].extend(items.clone()).unwrap();
                        torn &= items.is_empty();
                        model.extend(items);
                    }
                    Op::Remove { handle, key } => {
                        let got = handles[usize::from(handle)].remove(&key).unwrap();
                        torn &= got.is_none();
                        prop_assert_eq!(got, model.remove(&key));
                    }
                    Op::Clear { handle } => {
                        handles[usize::from(handle)].clear().unwrap();
                        torn &= model.is_empty();
                        model.clear();
                    }
                    Op::Tear { bytes } => {
                        if path.exists() && !torn {
                            torn = true;
                            let mut file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
                            // A frame header promising more than follows.
                            let len = 1_000_u64;
                            let mut torn = len.to_le_bytes().to_vec();
                            torn.extend_from_slice(&(!len).to_le_bytes());
                            torn.resize(usize::from(bytes).max(1), 0xab);
                            std::io::Write::write_all(&mut file, &torn).unwrap();
                        }
                    }
                    Op::Reopen { handle } => handles[usize::from(handle)] = open(&path),
                }
                for h in &handles {
                    let got: HashMap<u8, Vec<u8>> =
                        h.iter().unwrap().map(Result::unwrap).collect();
                    prop_assert_eq!(&got, &model, "after step {}", step);
                }
            }
            for entry in std::fs::read_dir(dir.path()).unwrap() {
                let name = entry.unwrap().file_name();
                prop_assert!(!name.to_string_lossy().contains(".tmp-"), "left {:?}", name);
            }
        }
    }
}
