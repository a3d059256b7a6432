//! The generic archive-contract suite: [`contract`] runs every case on
//! a [`Store`]; `tests/contract.rs` has one `Store` per backend.

use crate::common;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::fmt::Debug;
use std::hash::Hash;

use klepto::archive::Archive;
use klepto::Error;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// What a value type needs to go through every archive.
pub trait Val:
    Serialize + DeserializeOwned + Clone + PartialEq + Debug + Send + Sync + 'static
{
}
impl<T: Serialize + DeserializeOwned + Clone + PartialEq + Debug + Send + Sync + 'static> Val
    for T
{
}
/// What a key type needs.
pub trait Key: Val + Eq + Hash + Ord {}
impl<T: Val + Eq + Hash + Ord> Key for T {}

/// One backend under test: opens archives of any types at a location named
/// by an id (a file stem, a subdirectory, a table, a namespace).
pub trait Store {
    type A<K: Key, V: Val>: Archive<K, V> + Clone;

    /// The archive at `id`; the same `id` is the same stored dictionary.
    fn open<K: Key, V: Val>(&self, id: &str) -> klepto::Result<Self::A<K, V>>;

    /// A short tag for names and messages.
    fn tag(&self) -> &'static str;

    /// Whether values are stored encoded (a wrong type is then detected).
    fn encoded(&self) -> bool {
        true
    }

    /// Whether `insert_with_args` keeps the arguments for `args`.
    fn keeps_args(&self) -> bool {
        true
    }

    /// Whether each entry is stored on its own, reachable through
    /// [`raw_get`](Store::raw_get) / [`raw_put`](Store::raw_put). A single
    /// checksummed file (`FileArchive`) or memory is not.
    fn raw(&self) -> bool {
        true
    }

    /// The bytes stored for the key whose MessagePack encoding is `key`.
    fn raw_get(&self, _id: &str, _key: &[u8]) -> Vec<u8> {
        unreachable!("no raw access")
    }

    /// Stores `bytes` for `key`, bypassing the archive.
    fn raw_put(&self, _id: &str, _key: &[u8], _bytes: &[u8]) {
        unreachable!("no raw access")
    }

    /// What an error about the entry of `key` must mention.
    fn entry_mark(&self, _id: &str, key: &[u8]) -> String {
        common::hex(key)
    }

    /// Removes what the archives at `ids` left (tables, namespaces).
    fn cleanup(&self, _ids: &[String]) {}
}

/// Runs the whole contract on `store`.
pub fn contract<S: Store>(store: &S) {
    let run = Run {
        store,
        base: common::unique(store.tag()),
        ids: RefCell::new(Vec::new()),
    };
    empty_and_single_entries(&run);
    batches_and_streaming(&run);
    arguments(&run);
    namespaces(&run);
    second_handle(&run);
    structs_and_odd_keys(&run);
    if store.encoded() {
        wrong_value_type(&run);
    }
    if store.raw() {
        tampering(&run);
    }
}

/// One run of the suite: hands out fresh ids and cleans them all up, even
/// when a case fails.
struct Run<'s, S: Store> {
    store: &'s S,
    base: String,
    ids: RefCell<Vec<String>>,
}

impl<S: Store> Run<'_, S> {
    /// A fresh id for the case `case`.
    fn id(&self, case: &str) -> String {
        let id = format!("{}{case}", self.base);
        self.ids.borrow_mut().push(id.clone());
        id
    }

    /// A namespace name derived from `id` (registered for cleanup).
    fn ns(&self, id: &str, suffix: &str) -> String {
        let ns = format!("{id}{suffix}");
        self.ids.borrow_mut().push(ns.clone());
        ns
    }

    fn open<K: Key, V: Val>(&self, id: &str) -> S::A<K, V> {
        self.store
            .open(id)
            .unwrap_or_else(|e| panic!("{}: open {id}: {e}", self.store.tag()))
    }
}

impl<S: Store> Drop for Run<'_, S> {
    fn drop(&mut self) {
        self.store.cleanup(&self.ids.borrow());
    }
}

fn collect<T>(items: klepto::Result<klepto::archive::Items<'_, T>>) -> Vec<T> {
    items.unwrap().map(Result::unwrap).collect()
}

/// The message of an `Error::Corrupt`; anything else panics with `what`.
fn corrupt<T: Debug>(got: klepto::Result<T>, what: &str) -> String {
    match got {
        Err(e @ Error::Corrupt { .. }) => e.to_string(),
        other => panic!("{what}: expected Error::Corrupt, got {other:?}"),
    }
}

fn empty_and_single_entries<S: Store>(run: &Run<S>) {
    let t = run.store.tag();
    let a: S::A<String, u64> = run.open(&run.id("e"));
    let (ka, kb) = ("a".to_string(), "b".to_string());

    assert_eq!(a.len().unwrap(), 0, "{t}");
    assert!(a.is_empty().unwrap(), "{t}");
    assert_eq!(a.get(&ka).unwrap(), None, "{t}");
    assert!(!a.contains_key(&ka).unwrap(), "{t}");
    assert_eq!(a.remove(&ka).unwrap(), None, "{t}");
    assert_eq!(a.args(&ka).unwrap(), None, "{t}");
    assert!(collect(a.keys()).is_empty(), "{t}");
    assert!(collect(a.iter()).is_empty(), "{t}");
    assert!(collect(a.values()).is_empty(), "{t}");
    assert!(collect(a.items()).is_empty(), "{t}");
    a.clear().unwrap(); // clearing an empty archive is fine
    a.extend(Vec::new()).unwrap();
    assert!(!a.location().is_empty(), "{t}");

    a.insert(ka.clone(), 1).unwrap();
    assert_eq!(a.get(&ka).unwrap(), Some(1), "{t}");
    assert!(a.contains_key(&ka).unwrap(), "{t}");
    assert!(!a.contains_key(&kb).unwrap(), "{t}");
    assert_eq!((a.len().unwrap(), a.is_empty().unwrap()), (1, false), "{t}");

    a.insert(ka.clone(), 2).unwrap(); // overwrite
    assert_eq!(a.get(&ka).unwrap(), Some(2), "{t}");
    assert_eq!(a.len().unwrap(), 1, "{t}");

    a.insert(kb.clone(), 3).unwrap();
    assert_eq!(a.len().unwrap(), 2, "{t}");
    assert_eq!(
        a.remove(&ka).unwrap(),
        Some(2),
        "{t}: remove returns the old value"
    );
    assert_eq!(a.remove(&ka).unwrap(), None, "{t}: then nothing");
    assert_eq!(a.get(&ka).unwrap(), None, "{t}");
    assert!(!a.contains_key(&ka).unwrap(), "{t}");
    assert_eq!(collect(a.iter()), [(kb.clone(), 3)], "{t}");

    a.clear().unwrap();
    assert!(a.is_empty().unwrap(), "{t}");
    assert_eq!(a.get(&kb).unwrap(), None, "{t}");
    a.insert(kb.clone(), 4).unwrap(); // usable after clear
    assert_eq!(a.get(&kb).unwrap(), Some(4), "{t}");
}

fn f(x: u64) -> u64 {
    x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11
}

fn batches_and_streaming<S: Store>(run: &Run<S>) {
    let t = run.store.tag();
    let a: S::A<u64, u64> = run.open(&run.id("b"));
    a.extend((0..1_000).map(|x| (x, f(x))).collect()).unwrap();
    assert_eq!(a.len().unwrap(), 1_000, "{t}");
    for x in [0, 1, 511, 512, 999] {
        assert_eq!(a.get(&x).unwrap(), Some(f(x)), "{t} key {x}");
    }
    assert_eq!(a.get(&1_000).unwrap(), None, "{t}");

    // Repeated keys in one batch: the last one wins, as in a dictionary.
    a.extend(vec![(5, 1), (5000, 7), (5, 2), (7, 0), (5000, 8), (5, 3)])
        .unwrap();
    assert_eq!(
        a.get(&5).unwrap(),
        Some(3),
        "{t}: last of a repeated key wins"
    );
    assert_eq!(a.get(&5000).unwrap(), Some(8), "{t}");
    assert_eq!(a.get(&7).unwrap(), Some(0), "{t}");
    assert_eq!(a.len().unwrap(), 1_001, "{t}");

    // Streaming over more than two pages of 512 rows, exactly once each.
    a.remove(&5000).unwrap();
    a.extend((1_000..1_300).map(|x| (x, f(x))).collect())
        .unwrap();
    let mut expected: BTreeMap<u64, u64> = (0..1_300).map(|x| (x, f(x))).collect();
    expected.insert(5, 3);
    expected.insert(7, 0);
    assert_eq!(a.len().unwrap(), 1_300, "{t}");

    let keys = collect(a.keys());
    assert_eq!(keys.len(), 1_300, "{t}: keys() yields each key once");
    let key_set: HashSet<u64> = keys.into_iter().collect();
    assert_eq!(key_set, expected.keys().copied().collect(), "{t}");

    let items = collect(a.iter());
    assert_eq!(items.len(), 1_300, "{t}: iter() yields each entry once");
    assert_eq!(
        items.into_iter().collect::<BTreeMap<_, _>>(),
        expected,
        "{t}"
    );
    let items = collect(a.items());
    assert_eq!(
        items.into_iter().collect::<BTreeMap<_, _>>(),
        expected,
        "{t}"
    );

    let mut values = collect(a.values());
    values.sort_unstable();
    let mut want: Vec<u64> = expected.values().copied().collect();
    want.sort_unstable();
    assert_eq!(values, want, "{t}");

    // A scan may stop early.
    assert_eq!(a.keys().unwrap().take(3).count(), 3, "{t}");

    a.clear().unwrap();
    assert_eq!(a.len().unwrap(), 0, "{t}");
    assert!(collect(a.keys()).is_empty(), "{t}");
}

fn arguments<S: Store>(run: &Run<S>) {
    let t = run.store.tag();
    let keeps = run.store.keeps_args();
    let expect = |bytes: &[u8]| keeps.then(|| bytes.to_vec());
    let id = run.id("g");
    let a: S::A<u64, u64> = run.open(&id);
    // Arguments are opaque bytes: any byte survives.
    let args1: Vec<u8> = (0..=255).collect();
    a.insert_with_args(1, 10, Some(args1.clone())).unwrap();
    a.insert_with_args(2, 20, None).unwrap();
    a.extend_with_args(vec![
        (3, 30, Some(b"(3,)".to_vec())),
        (4, 40, None),
        (3, 31, Some(b"(3, again)".to_vec())),
    ])
    .unwrap();
    assert_eq!(a.get(&1).unwrap(), Some(10), "{t}");
    assert_eq!(a.get(&3).unwrap(), Some(31), "{t}");
    assert_eq!(a.args(&1).unwrap(), expect(&args1), "{t}");
    assert_eq!(a.args(&2).unwrap(), None, "{t}");
    assert_eq!(a.args(&3).unwrap(), expect(b"(3, again)"), "{t}");
    assert_eq!(a.args(&4).unwrap(), None, "{t}");
    assert_eq!(a.args(&99).unwrap(), None, "{t}: absent key");
    // Another handle reads them too.
    let b: S::A<u64, u64> = run.open(&id);
    assert_eq!(b.args(&1).unwrap(), expect(&args1), "{t}: second handle");
    // A plain insert replaces the entry, arguments included.
    a.insert(1, 11).unwrap();
    assert_eq!(a.get(&1).unwrap(), Some(11), "{t}");
    assert_eq!(
        a.args(&1).unwrap(),
        None,
        "{t}: overwritten without arguments"
    );
}

fn namespaces<S: Store>(run: &Run<S>) {
    let t = run.store.tag();
    let id = run.id("n");
    let base: S::A<String, u64> = run.open(&id);
    let (na, nb) = (run.ns(&id, "a"), run.ns(&id, "b"));
    let a = base.namespaced(&na).unwrap();
    let b = base.namespaced(&nb).unwrap();
    let k = "shared key".to_string();
    base.insert(k.clone(), 0).unwrap();
    a.insert(k.clone(), 1).unwrap();
    b.insert(k.clone(), 2).unwrap();
    b.extend((0..10).map(|i| (format!("b{i}"), i)).collect())
        .unwrap();
    assert_eq!(base.get(&k).unwrap(), Some(0), "{t}");
    assert_eq!(a.get(&k).unwrap(), Some(1), "{t}");
    assert_eq!(b.get(&k).unwrap(), Some(2), "{t}");
    assert_eq!(
        (base.len().unwrap(), a.len().unwrap(), b.len().unwrap()),
        (1, 1, 11),
        "{t}"
    );
    assert_eq!(
        collect(a.keys()),
        vec![k.clone()],
        "{t}: a sees only its keys"
    );
    assert!(a.get(&"b3".to_string()).unwrap().is_none(), "{t}");
    assert_ne!(a.location(), b.location(), "{t}");

    // The same namespace through another handle is the same dictionary.
    let again: S::A<String, u64> = run.open::<String, u64>(&id).namespaced(&na).unwrap();
    assert_eq!(again.get(&k).unwrap(), Some(1), "{t}");

    a.clear().unwrap();
    assert_eq!(a.len().unwrap(), 0, "{t}");
    assert_eq!(again.len().unwrap(), 0, "{t}");
    assert_eq!(
        b.len().unwrap(),
        11,
        "{t}: clearing one namespace leaves the others"
    );
    assert_eq!(base.get(&k).unwrap(), Some(0), "{t}");
    b.remove(&k).unwrap();
    assert_eq!(base.get(&k).unwrap(), Some(0), "{t}");
    base.clear().unwrap();
    assert_eq!(b.len().unwrap(), 10, "{t}");
}

fn second_handle<S: Store>(run: &Run<S>) {
    let t = run.store.tag();
    let id = run.id("h");
    let a: S::A<u64, u64> = run.open(&id);
    let b: S::A<u64, u64> = run.open(&id);
    let c = a.clone();
    a.insert(1, 10).unwrap();
    assert_eq!(
        b.get(&1).unwrap(),
        Some(10),
        "{t}: another handle sees the write"
    );
    assert_eq!(c.get(&1).unwrap(), Some(10), "{t}: a clone sees the write");
    b.extend((2..50).map(|x| (x, x * 10)).collect()).unwrap();
    assert_eq!(a.len().unwrap(), 49, "{t}");
    assert_eq!(a.get(&49).unwrap(), Some(490), "{t}");
    b.insert(1, 11).unwrap();
    assert_eq!(a.get(&1).unwrap(), Some(11), "{t}: overwrite seen");
    assert_eq!(a.remove(&2).unwrap(), Some(20), "{t}");
    assert!(!b.contains_key(&2).unwrap(), "{t}: removal seen");
    c.clear().unwrap();
    assert!(b.is_empty().unwrap(), "{t}: clear seen");
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    id: u32,
    name: String,
    score: f64,
    tags: Vec<String>,
    parent: Option<Box<Record>>,
    pair: (i64, bool),
}

fn record(i: u32) -> Record {
    Record {
        id: i,
        name: format!("record {i} \u{2603} \"quoted\""),
        score: f64::from(i) / 3.0 - 1e-300,
        tags: (0..i % 4).map(|j| format!("t{j}")).collect(),
        parent: (i % 2 == 1).then(|| Box::new(record(i - 1))),
        pair: (-i64::from(i) * 1_000_000_007, i.is_multiple_of(3)),
    }
}

/// String keys no file name, URL or SQL literal could hold as they are.
fn odd_keys() -> Vec<String> {
    vec![
        String::new(),
        " ".into(),
        "a/b\\c".into(),
        "..".into(),
        ".".into(),
        "x'; DROP TABLE memo; --".into(),
        "a\"b".into(),
        "nul\0byte".into(),
        "line\nbreak\ttab\r".into(),
        "ключ 键 🦀".into(),
        "%41%00?table=x&ns=y".into(),
        "*".into(),
        "klepto:3:fib:".into(),
        "k".repeat(1_000),
    ]
}

fn structs_and_odd_keys<S: Store>(run: &Run<S>) {
    let t = run.store.tag();
    let id = run.id("s");
    let a: S::A<String, Record> = run.open(&id);
    let keys = odd_keys();
    for (i, k) in keys.iter().enumerate().take(4) {
        a.insert(k.clone(), record(i as u32)).unwrap();
    }
    a.extend(
        keys.iter()
            .enumerate()
            .skip(4)
            .map(|(i, k)| (k.clone(), record(i as u32)))
            .collect(),
    )
    .unwrap();
    let b: S::A<String, Record> = run.open(&id);
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(a.get(k).unwrap(), Some(record(i as u32)), "{t}: key {k:?}");
        assert_eq!(b.get(k).unwrap(), Some(record(i as u32)), "{t}: key {k:?}");
        assert!(b.contains_key(k).unwrap(), "{t}: key {k:?}");
    }
    let all: BTreeMap<String, Record> = collect(b.iter()).into_iter().collect();
    let want: BTreeMap<String, Record> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.clone(), record(i as u32)))
        .collect();
    assert_eq!(all, want, "{t}");
    assert_eq!(b.remove(&keys[7]).unwrap(), Some(record(7)), "{t}");
    assert_eq!(a.len().unwrap(), keys.len() - 1, "{t}");
}

fn wrong_value_type<S: Store>(run: &Run<S>) {
    let t = run.store.tag();
    let id = run.id("w");
    let a: S::A<String, u64> = run.open(&id);
    let k = "seven".to_string();
    a.insert(k.clone(), 7).unwrap();
    let got = run
        .store
        .open::<String, String>(&id)
        .and_then(|s| s.get(&k));
    let msg = corrupt(got, &format!("{t}: u64 read as String"));
    assert!(
        msg.contains("String"),
        "{t}: the error names the type: {msg}"
    );
    let got = run
        .store
        .open::<String, Record>(&id)
        .and_then(|s| s.get(&k));
    let msg = corrupt(got, &format!("{t}: u64 read as Record"));
    assert!(
        msg.contains("Record"),
        "{t}: the error names the type: {msg}"
    );
}

fn tampering<S: Store>(run: &Run<S>) {
    let t = run.store.tag();
    let id = run.id("t");
    let a: S::A<String, u64> = run.open(&id);
    let key = |s: &str| s.to_string();
    let raw = |s: &str| rmp_serde::to_vec(s).unwrap();
    a.extend(vec![
        (key("a"), 1),
        (key("b"), 2),
        (key("c"), 3),
        (key("d"), 4),
    ])
    .unwrap();

    // Swap the stored values of a and b, intact.
    let (ra, rb) = (
        run.store.raw_get(&id, &raw("a")),
        run.store.raw_get(&id, &raw("b")),
    );
    run.store.raw_put(&id, &raw("a"), &rb);
    run.store.raw_put(&id, &raw("b"), &ra);
    for k in ["a", "b"] {
        let msg = corrupt(a.get(&key(k)), &format!("{t}: swapped entry {k}"));
        let mark = run.store.entry_mark(&id, &raw(k));
        assert!(
            msg.contains(&mark),
            "{t}: the error names {k}'s entry ({mark}): {msg}"
        );
        assert!(msg.contains("another key"), "{t}: says why: {msg}");
    }
    // Garbage in place of c's entry.
    run.store
        .raw_put(&id, &raw("c"), b"this is not an envelope");
    let msg = corrupt(a.get(&key("c")), &format!("{t}: garbage entry"));
    let mark = run.store.entry_mark(&id, &raw("c"));
    assert!(
        msg.contains(&mark),
        "{t}: the error names c's entry ({mark}): {msg}"
    );
    assert_eq!(
        a.get(&key("d")).unwrap(),
        Some(4),
        "{t}: other entries unaffected"
    );

    // Iteration reports each bad entry and goes on.
    let (mut ok, mut bad) = (Vec::new(), 0);
    for item in a.iter().unwrap() {
        match item {
            Ok(kv) => ok.push(kv),
            Err(Error::Corrupt { .. }) => bad += 1,
            Err(e) => panic!("{t}: unexpected error while iterating: {e}"),
        }
    }
    assert_eq!((ok, bad), (vec![(key("d"), 4)], 3), "{t}");

    // An insert repairs an entry; removing a bad one reports it and removes it.
    a.insert(key("a"), 1).unwrap();
    assert_eq!(a.get(&key("a")).unwrap(), Some(1), "{t}");
    corrupt(
        a.remove(&key("b")),
        &format!("{t}: removing a swapped entry"),
    );
    assert_eq!(
        a.get(&key("b")).unwrap(),
        None,
        "{t}: the bad entry is gone"
    );
    assert_eq!(a.len().unwrap(), 3, "{t}");
}
