//! The memo's public surface: calls, stats, recursion, masks and rounding in
//! a memo, lookup/clear/dump/load/archived, errors and fallbacks.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use klepto::archive::{Archive, DictArchive, Items};
use klepto::keymap::{HashKey, RawKeymap, SerialKeymap, StringKeymap};
use klepto::{Error, KeyGen, Memo};

fn counter() -> (Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let c = Arc::new(AtomicUsize::new(0));
    (c.clone(), c)
}

#[test]
fn memoizes_and_counts() {
    let (runs, r) = counter();
    let double = Memo::builder().lru(128).build(move |x: u64| {
        r.fetch_add(1, SeqCst);
        x * 2
    });
    assert_eq!(double.call(21), 42);
    assert_eq!(double.call(21), 42);
    assert_eq!(double.call(5), 10);
    assert_eq!(runs.load(SeqCst), 2);
    let info = double.info();
    assert_eq!(
        (info.hits, info.misses, info.loads, info.errors),
        (1, 2, 0, 0)
    );
    assert_eq!((info.maxsize, info.size), (Some(128), 2));
}

#[test]
fn several_arguments_are_a_tuple() {
    let area = Memo::builder().lfu(64).build(|(w, h): (f64, f64)| w * h);
    assert_eq!(area.call((2.0, 3.5)), 7.0);
    assert_eq!(area.call((3.5, 2.0)), 7.0);
    assert_eq!(area.info().misses, 2, "argument order is part of the key");
}

#[test]
fn recursive_fibonacci_trace() {
    let fib =
        Memo::builder().inf().build_recursive(
            |fib, n: u64| {
                if n < 2 {
                    n
                } else {
                    fib(n - 1) + fib(n - 2)
                }
            },
        );
    assert_eq!(fib.call(7), 13);
    assert_eq!(fib.call(9), 34);
    assert_eq!(fib.call(3), 2);
    let info = fib.info();
    assert_eq!((info.hits, info.misses), (9, 10));
    assert_eq!(fib.call(90), 2_880_067_194_370_816_120);
}

#[test]
fn recursion_works_with_a_bounded_memo_and_every_keymap() {
    let fib = Memo::builder()
        .lru(4)
        .keymap(StringKeymap::new())
        .build_recursive(|fib, n: u64| if n < 2 { n } else { fib(n - 1) + fib(n - 2) });
    assert_eq!(fib.call(50), 12_586_269_025);
    let fib = Memo::builder()
        .lfu(64)
        .keymap(RawKeymap::new())
        .build_recursive(|fib, n: u64| if n < 2 { n } else { fib(n - 1) + fib(n - 2) });
    assert_eq!(fib.call(60), 1_548_008_755_920);
}

#[test]
fn rounding_makes_near_floats_share_a_key() {
    let (runs, r) = counter();
    let f = Memo::builder()
        .inf()
        .tol(1)
        .build(move |(a, b): (f64, f64)| {
            r.fetch_add(1, SeqCst);
            a + b
        });
    assert_eq!(f.call((1.0, 2.54)), 3.54);
    // Rounding is in the key only: the stored result of (1.0, 2.54) answers.
    assert_eq!(f.call((1.0, 2.51)), 3.54);
    let info = f.info();
    assert_eq!((info.misses, info.hits), (1, 1));
    assert_eq!(runs.load(SeqCst), 1);
    f.call((1.0, 2.56));
    assert_eq!(f.info().misses, 2, "2.56 rounds to 2.6");
}

#[test]
fn rounding_receives_original_arguments() {
    let f = Memo::builder().inf().tol(0).build(|x: f64| x);
    assert_eq!(f.call(2.4), 2.4, "the function sees 2.4, not 2.0");
}

#[test]
fn shallow_and_deep_rounding_differ_on_nested_floats() {
    let shallow = Memo::builder()
        .inf()
        .tol(0)
        .build(|(x, v): (f64, Vec<f64>)| x + v.iter().sum::<f64>());
    shallow.call((1.2, vec![1.2]));
    shallow.call((1.4, vec![1.2])); // top-level float rounds: hit
    shallow.call((1.4, vec![1.4])); // nested float is not rounded: miss
    assert_eq!((shallow.info().hits, shallow.info().misses), (1, 2));

    let deep = Memo::builder()
        .inf()
        .tol(0)
        .deep(true)
        .build(|(x, v): (f64, Vec<f64>)| x + v.iter().sum::<f64>());
    deep.call((1.2, vec![1.2]));
    deep.call((1.4, vec![1.2]));
    deep.call((1.4, vec![1.4])); // nested rounds too: hit
    assert_eq!((deep.info().hits, deep.info().misses), (2, 1));
}

#[test]
fn ignored_arguments_never_trigger_recomputation() {
    let (runs, r) = counter();
    let f = Memo::builder()
        .inf()
        .names(["x", "y", "verbose"])
        .ignore("verbose")
        .build(move |(x, y, verbose): (f64, Vec<f64>, bool)| {
            r.fetch_add(1, SeqCst);
            if verbose {
                eprintln!("computing");
            }
            x + y.iter().sum::<f64>()
        });
    assert_eq!(f.call((1.0, vec![2.0], true)), 3.0);
    assert_eq!(f.call((1.0, vec![2.0], false)), 3.0);
    assert_eq!(runs.load(SeqCst), 1);
    f.call((1.0, vec![3.0], false));
    assert_eq!(runs.load(SeqCst), 2, "a non-ignored argument still counts");

    let by_index = Memo::builder().ignore(1).build(|(a, _b): (u32, u32)| a);
    by_index.call((1, 2));
    by_index.call((1, 99));
    assert_eq!((by_index.info().hits, by_index.info().misses), (1, 1));
}

#[test]
fn ignore_by_struct_field_name() {
    #[derive(serde::Serialize)]
    struct Args {
        n: u32,
        trace: bool,
    }
    let f = Memo::builder().ignore("trace").build(|a: Args| a.n * 2);
    assert_eq!(f.call(Args { n: 2, trace: true }), 4);
    assert_eq!(f.call(Args { n: 2, trace: false }), 4);
    assert_eq!((f.info().hits, f.info().misses), (1, 1));
}

#[test]
fn bad_configuration_is_a_clear_error() {
    let raw = Memo::builder()
        .keymap(RawKeymap::new())
        .tol(2)
        .try_build(|x: u64| x);
    match raw {
        Err(Error::Config { reason }) => assert!(reason.contains("keymap"), "{reason}"),
        other => panic!("expected a config error, got {other:?}"),
    }
    let unknown = Memo::builder()
        .names(["a", "b"])
        .ignore("c")
        .try_build(|(a, b): (u8, u8)| a + b);
    assert!(matches!(unknown, Err(Error::Config { .. })));
    let out_of_range = Memo::builder()
        .names(["a", "b"])
        .ignore(2)
        .try_build(|(a, b): (u8, u8)| a + b);
    assert!(matches!(out_of_range, Err(Error::Config { .. })));
}

#[test]
#[should_panic(expected = "keymap")]
fn build_panics_on_bad_configuration() {
    let _ = Memo::builder()
        .keymap(RawKeymap::new())
        .ignore(0)
        .build(|x: u64| x);
}

#[test]
fn key_errors_fall_back_in_call_and_are_returned_by_try_call() {
    let (runs, r) = counter();
    // Position 4 does not exist: every key fails at call time.
    let f = Memo::builder().ignore(4).build(move |(a, b): (u8, u8)| {
        r.fetch_add(1, SeqCst);
        a + b
    });
    assert_eq!(f.call((1, 2)), 3);
    assert_eq!(f.call((1, 2)), 3);
    assert_eq!(runs.load(SeqCst), 2, "no caching without a key");
    match f.try_call((1, 2)) {
        Err(Error::Key { reason }) => assert!(reason.contains('4'), "{reason}"),
        other => panic!("expected a key error, got {other:?}"),
    }
    assert_eq!(runs.load(SeqCst), 2, "try_call does not compute on error");
    let info = f.info();
    assert_eq!((info.errors, info.misses, info.size), (3, 0, 0));
    assert!(f.key(&(1, 2)).is_err());
    assert_eq!(f.lookup(&(1, 2)), None);
}

#[test]
fn lookup_neither_counts_nor_reorders() {
    let f = Memo::builder().lru(2).build(|x: u8| x);
    f.call(1);
    f.call(2);
    assert_eq!(f.lookup(&1), Some(1)); // a peek: 1 stays least recent
    f.call(3); // evicts 1
    assert_eq!(f.lookup(&1), None);
    assert_eq!(f.lookup(&2), Some(2));
    let info = f.info();
    assert_eq!((info.hits, info.misses), (0, 3));
}

#[test]
fn clear_empties_memory_and_stats_but_not_the_archive() {
    let archive = DictArchive::new();
    let f = Memo::builder()
        .lru(8)
        .archive(archive.clone())
        .write_through()
        .build(|x: u8| x);
    f.call(1);
    f.call(1);
    f.clear();
    let info = f.info();
    assert_eq!((info.hits, info.misses, info.size), (0, 0, 0));
    assert_eq!(archive.len().unwrap(), 1);
    f.call(1);
    assert_eq!(f.info().loads, 1);
}

#[test]
fn keymaps_give_their_key_types() {
    let s = Memo::builder()
        .keymap(StringKeymap::new())
        .build(|(a, b, c): (u8, f64, String)| format!("{a}{b}{c}"));
    assert_eq!(
        s.key(&(1, 2.5, "x".to_string())).unwrap(),
        "(1, 2.5, \"x\")"
    );
    let h = Memo::builder().build(|x: u64| x);
    let k: HashKey = h.key(&5).unwrap();
    assert_eq!(k, h.key(&5).unwrap());
    assert_ne!(k, h.key(&6).unwrap());
    let b = Memo::builder()
        .keymap(SerialKeymap::new())
        .build(|x: u64| x);
    assert!(!b.key(&5).unwrap().is_empty());
    let r = Memo::builder()
        .keymap(RawKeymap::new())
        .build(|x: (u8, u8)| x.0);
    assert_eq!(r.key(&(1, 2)).unwrap(), (1, 2));
}

#[test]
fn dump_and_load_move_memory_through_the_archive() {
    let archive: DictArchive<HashKey, u64> = DictArchive::new();
    let f = Memo::builder()
        .inf()
        .archive(archive.clone())
        .build(|x: u64| x + 100);
    for x in 0..5 {
        f.call(x);
    }
    assert_eq!(archive.len().unwrap(), 0, "nothing written before dump");
    f.dump().unwrap();
    assert_eq!(archive.len().unwrap(), 5);
    f.clear();
    f.load().unwrap();
    assert_eq!(f.info().size, 5);
    assert_eq!(f.lookup(&3), Some(103));
    assert_eq!(f.info().hits, 0, "load does not count");
}

#[test]
fn load_respects_the_memory_bound() {
    let archive: DictArchive<HashKey, u64> = DictArchive::new();
    let writer = Memo::builder()
        .inf()
        .archive(archive.clone())
        .build(|x: u64| x);
    for x in 0..10 {
        writer.call(x);
    }
    writer.dump().unwrap();
    let reader = Memo::builder()
        .lru(4)
        .archive(archive.clone())
        .build(|x: u64| x);
    reader.load().unwrap();
    assert_eq!(reader.info().size, 4);
    assert_eq!(archive.len().unwrap(), 10);
}

#[test]
fn dropping_a_memo_saves_unsaved_results() {
    let archive: DictArchive<HashKey, u64> = DictArchive::new();
    {
        let f = Memo::builder()
            .lru(100)
            .archive(archive.clone())
            .build(|x: u64| x * 3);
        for x in 0..20 {
            f.call(x);
        }
    }
    assert_eq!(archive.len().unwrap(), 20);
    let again = Memo::builder()
        .lru(100)
        .archive(archive.clone())
        .build(|_: u64| -> u64 { panic!("every result must come from the archive") });
    for x in 0..20 {
        assert_eq!(again.call(x), x * 3);
    }
    assert_eq!((again.info().loads, again.info().misses), (20, 0));
}

#[test]
fn set_archived_false_stops_using_the_archive() {
    let archive: DictArchive<HashKey, u64> = DictArchive::new();
    let f = Memo::builder()
        .lru(1)
        .archive(archive.clone())
        .build(|x: u64| x);
    assert!(f.archived());
    f.set_archived(false);
    f.call(1);
    f.call(2); // evicts 1, but archiving is off
    assert_eq!(archive.len().unwrap(), 0);
    f.set_archived(true);
    f.call(3); // evicts 2 into the archive
    assert_eq!(archive.len().unwrap(), 1);
    let plain = Memo::builder().build(|x: u8| x);
    plain.set_archived(true);
    assert!(!plain.archived(), "a NullArchive is never archived");
}

#[test]
fn functions_sharing_an_archive_keep_apart_by_name() {
    let archive: DictArchive<HashKey, u64> = DictArchive::new();
    let double = Memo::builder()
        .archive(archive.clone())
        .name("double")
        .write_through()
        .build(|x: u64| x * 2);
    let square = Memo::builder()
        .archive(archive.clone())
        .name("square")
        .write_through()
        .build(|x: u64| x * x);
    assert_eq!(double.call(5), 10);
    assert_eq!(square.call(5), 25);
    assert_eq!(double.archive().len().unwrap(), 1);
    assert_eq!(square.archive().len().unwrap(), 1);
    assert_eq!(double.archive().namespace(), "double");
}

/// An archive whose every operation fails, to prove the memo falls back.
#[derive(Clone, Default)]
struct Broken;

impl<K: 'static, V: 'static> Archive<K, V> for Broken {
    fn get(&self, _: &K) -> klepto::Result<Option<V>> {
        Err(broken())
    }
    fn insert(&self, _: K, _: V) -> klepto::Result<()> {
        Err(broken())
    }
    fn remove(&self, _: &K) -> klepto::Result<Option<V>> {
        Err(broken())
    }
    fn len(&self) -> klepto::Result<usize> {
        Err(broken())
    }
    fn keys(&self) -> klepto::Result<Items<'_, K>> {
        Err(broken())
    }
    fn iter(&self) -> klepto::Result<Items<'_, (K, V)>> {
        Err(broken())
    }
    fn clear(&self) -> klepto::Result<()> {
        Err(broken())
    }
    fn extend(&self, _: Vec<(K, V)>) -> klepto::Result<()> {
        Err(broken())
    }
    fn namespaced(&self, _: &str) -> klepto::Result<Self> {
        Ok(Broken)
    }
    fn location(&self) -> String {
        "broken".into()
    }
}

fn broken() -> Error {
    Error::Archive {
        location: "broken".into(),
        reason: "disk on fire".into(),
        transient: false,
        source: None,
    }
}

#[test]
fn archive_failures_fall_back_in_call_and_surface_in_try_call() {
    let f = Memo::builder().lru(1).archive(Broken).build(|x: u64| x + 1);
    assert_eq!(f.call(1), 2); // read fails: computes
    assert_eq!(f.call(2), 3); // read fails, eviction write of 1 fails
    assert_eq!(f.call(2), 3); // memory still serves
    let info = f.info();
    assert_eq!((info.hits, info.misses, info.errors), (1, 2, 3));
    match f.try_call(9) {
        Err(Error::Archive { location, .. }) => assert_eq!(location, "broken"),
        other => panic!("expected an archive error, got {other:?}"),
    }
    assert!(f.dump().is_err());
    assert!(f.load().is_err());
}

/// A value that counts how many of its instances are alive.
#[derive(Debug)]
struct Tracked(Arc<AtomicUsize>);

impl Tracked {
    fn new(live: &Arc<AtomicUsize>) -> Self {
        live.fetch_add(1, SeqCst);
        Tracked(live.clone())
    }
}

impl Clone for Tracked {
    fn clone(&self) -> Self {
        Tracked::new(&self.0)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

#[test]
fn no_value_leaks_through_eviction_purge_clear_or_drop() {
    let live = Arc::new(AtomicUsize::new(0));
    let archive: DictArchive<HashKey, Tracked> = DictArchive::new();
    {
        let l = live.clone();
        let f = Memo::builder()
            .lfu(3)
            .archive(archive.clone())
            .purge(true)
            .build(move |_: u64| Tracked::new(&l));
        for x in [1, 2, 3, 1, 4, 5, 1, 6, 7, 8, 2, 2] {
            drop(f.call(x));
        }
        assert_eq!(live.load(SeqCst), f.info().size + archive.len().unwrap());
        f.clear();
        assert_eq!(live.load(SeqCst), archive.len().unwrap());
    }
    archive.clear().unwrap();
    assert_eq!(live.load(SeqCst), 0, "every value was dropped");

    let l = live.clone();
    let f = Memo::builder().lru(2).build(move |_: u64| Tracked::new(&l));
    for x in 0..50 {
        drop(f.call(x % 7));
    }
    assert_eq!(live.load(SeqCst), 2, "only the two entries in memory live");
    drop(f);
    assert_eq!(live.load(SeqCst), 0);
}

/// A dictionary whose entries under `damaged` keys fail to decode.
struct Damaged {
    inner: DictArchive<HashKey, u64>,
    damaged: Mutex<Vec<HashKey>>,
}

impl Damaged {
    fn corrupt(&self, key: &HashKey) -> Option<Error> {
        self.damaged
            .lock()
            .unwrap()
            .contains(key)
            .then(|| Error::Corrupt {
                location: format!("damaged key {key}"),
                reason: "checksum mismatch".into(),
            })
    }
}

impl Archive<HashKey, u64> for Damaged {
    fn get(&self, key: &HashKey) -> klepto::Result<Option<u64>> {
        match self.corrupt(key) {
            Some(e) => Err(e),
            None => self.inner.get(key),
        }
    }
    fn insert(&self, key: HashKey, value: u64) -> klepto::Result<()> {
        self.damaged.lock().unwrap().retain(|k| *k != key);
        self.inner.insert(key, value)
    }
    fn remove(&self, key: &HashKey) -> klepto::Result<Option<u64>> {
        self.inner.remove(key)
    }
    fn len(&self) -> klepto::Result<usize> {
        self.inner.len()
    }
    fn keys(&self) -> klepto::Result<Items<'_, HashKey>> {
        self.inner.keys()
    }
    fn iter(&self) -> klepto::Result<Items<'_, (HashKey, u64)>> {
        Ok(Box::new(self.inner.iter()?.map(|item| {
            let (k, v) = item?;
            match self.corrupt(&k) {
                Some(e) => Err(e),
                None => Ok((k, v)),
            }
        })))
    }
    fn clear(&self) -> klepto::Result<()> {
        self.inner.clear()
    }
    fn extend(&self, items: Vec<(HashKey, u64)>) -> klepto::Result<()> {
        for (k, v) in items {
            self.insert(k, v)?;
        }
        Ok(())
    }
    fn namespaced(&self, _: &str) -> klepto::Result<Self> {
        unreachable!("not namespaced in these tests")
    }
    fn location(&self) -> String {
        "damaged".into()
    }
}

fn damaged_archive(f: impl Fn(u64) -> u64) -> (Damaged, HashKey) {
    let keys = KeyGen::new();
    let inner = DictArchive::new();
    for x in 0..4_u64 {
        inner.insert(keys.key(&x).unwrap(), f(x)).unwrap();
    }
    let bad = keys.key(&2_u64).unwrap();
    let archive = Damaged {
        inner,
        damaged: Mutex::new(vec![bad]),
    };
    (archive, bad)
}

#[test]
fn a_damaged_entry_reads_as_absent_is_counted_recomputed_and_rewritten() {
    for strict in [false, true] {
        let (archive, bad) = damaged_archive(|x| x * 10);
        let f = Memo::builder()
            .inf()
            .archive(archive)
            .build(|x: u64| x * 10);
        let call = |x| {
            if strict {
                f.try_call(x).unwrap()
            } else {
                f.call(x)
            }
        };
        assert_eq!(call(1), 10);
        assert_eq!(call(2), 20);
        let info = f.info();
        assert_eq!(
            (info.loads, info.misses, info.errors),
            (1, 1, 1),
            "strict {strict}"
        );
        // Rewritten at once, not only when it leaves memory.
        assert_eq!(f.archive().get(&bad).unwrap(), Some(20));
        f.clear();
        assert_eq!(call(2), 20);
        assert_eq!(f.info().loads, 1);
    }
}

#[test]
fn load_skips_damaged_entries_and_counts_them() {
    let (archive, bad) = damaged_archive(|x| x + 100);
    let f = Memo::builder()
        .inf()
        .archive(archive)
        .build(|x: u64| x + 100);
    f.load().unwrap();
    assert_eq!(f.info().size, 3);
    assert_eq!(f.info().errors, 1);
    assert!(!f.keys().contains(&bad));
}

/// An archive filled by plain `insert` keeps no arguments: its entries load
/// known by their digest alone, and calls still find them in memory (by the
/// digest, on the way to the archive) without computing or reading again.
#[test]
fn entries_loaded_without_their_arguments_are_still_hits() {
    let keys = KeyGen::new();
    let archive = DictArchive::new();
    for x in 0..10_u64 {
        archive.insert(keys.key(&x).unwrap(), x * 3).unwrap();
    }
    let (calls, _) = counter();
    let seen = calls.clone();
    let f = Memo::builder().inf().archive(archive).build(move |x: u64| {
        seen.fetch_add(1, SeqCst);
        x * 3
    });
    f.load().unwrap();
    assert_eq!(f.info().size, 10);
    assert_eq!(f.lookup(&4), Some(12), "lookup finds a digest-only entry");
    for round in 0..2 {
        for x in 0..10_u64 {
            assert_eq!(f.try_call(x).unwrap(), x * 3, "round {round}");
        }
    }
    assert_eq!(f.call(11), 33);
    let info = f.info();
    assert_eq!(calls.load(SeqCst), 1, "only the new argument is computed");
    assert_eq!((info.hits, info.misses, info.loads), (20, 1, 0));
    assert_eq!(f.key(&4).unwrap(), keys.key(&4_u64).unwrap());
}
