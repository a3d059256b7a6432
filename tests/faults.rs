//! Injected faults: an archive wrapper that fails chosen operations (before
//! or after the real one runs, as a failed write or a lost acknowledgement
//! would), under a memo driven by proptest through calls, `try_call`,
//! `dump`, `load` and `clear`, over real SQLite, file and directory
//! archives. After every step: `call` returned `f(x)`; `try_call` returned
//! `f(x)` or the injected error; the counts add up. At the end, the
//! archive reopened without faults holds every write acknowledged to the
//! memo, and only right values.

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use klepto::archive::{Archive, DirArchive, FileArchive, Items, SqlArchive, WithArgs};
use klepto::keymap::RawKeymap;
use klepto::{Error, Memo};
use proptest::prelude::*;

fn f(x: u64) -> u64 {
    x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11
}

/// Which operations fail, shared by the wrapper's clones.
#[derive(Default)]
struct Plan {
    /// Operations so far.
    ops: AtomicUsize,
    /// The operation numbers that fail.
    fail: BTreeSet<usize>,
    /// Fail after the real operation ran (a lost acknowledgement) rather
    /// than before it.
    after: bool,
    /// Keys whose write the archive acknowledged.
    acked: Mutex<HashSet<u64>>,
    /// Faults injected.
    injected: AtomicUsize,
}

/// An archive that fails the operations its plan names.
#[derive(Clone)]
struct Faulty<A> {
    inner: A,
    plan: Arc<Plan>,
}

const INJECTED: &str = "injected fault";

impl<A> Faulty<A> {
    /// Runs `op` (named `what`, a read or a write) under the plan.
    fn run<T>(&self, what: &str, op: impl FnOnce() -> klepto::Result<T>) -> klepto::Result<T> {
        let n = self.plan.ops.fetch_add(1, Relaxed);
        if !self.plan.fail.contains(&n) {
            return op();
        }
        self.plan.injected.fetch_add(1, Relaxed);
        if self.plan.after {
            let _ = op();
        }
        Err(Error::Io {
            path: "faulty-archive".into(),
            source: std::io::Error::other(format!("{INJECTED} in {what} #{n}")),
        })
    }

    fn acked(&self, keys: impl IntoIterator<Item = u64>) {
        self.plan.acked.lock().unwrap().extend(keys);
    }
}

impl<A: Archive<u64, u64>> Archive<u64, u64> for Faulty<A> {
    fn get(&self, key: &u64) -> klepto::Result<Option<u64>> {
        self.run("read", || self.inner.get(key))
    }
    fn insert(&self, key: u64, value: u64) -> klepto::Result<()> {
        self.run("write", || self.inner.insert(key, value))?;
        self.acked([key]);
        Ok(())
    }
    fn insert_with_args(&self, key: u64, value: u64, args: Option<Vec<u8>>) -> klepto::Result<()> {
        self.run("write", || self.inner.insert_with_args(key, value, args))?;
        self.acked([key]);
        Ok(())
    }
    fn remove(&self, key: &u64) -> klepto::Result<Option<u64>> {
        let removed = self.run("write", || self.inner.remove(key))?;
        self.plan.acked.lock().unwrap().remove(key);
        Ok(removed)
    }
    fn len(&self) -> klepto::Result<usize> {
        self.run("read", || self.inner.len())
    }
    fn keys(&self) -> klepto::Result<Items<'_, u64>> {
        self.run("read", || self.inner.keys())
    }
    fn iter(&self) -> klepto::Result<Items<'_, (u64, u64)>> {
        self.run("read", || self.inner.iter())
    }
    fn iter_with_args<'a>(&'a self) -> klepto::Result<Items<'a, WithArgs<u64, u64>>>
    where
        u64: 'a,
    {
        self.run("read", || self.inner.iter_with_args())
    }
    fn clear(&self) -> klepto::Result<()> {
        self.run("write", || self.inner.clear())?;
        self.plan.acked.lock().unwrap().clear();
        Ok(())
    }
    fn extend(&self, items: Vec<(u64, u64)>) -> klepto::Result<()> {
        let keys: Vec<u64> = items.iter().map(|(k, _)| *k).collect();
        self.run("write", || self.inner.extend(items))?;
        self.acked(keys);
        Ok(())
    }
    fn extend_with_args(&self, items: Vec<WithArgs<u64, u64>>) -> klepto::Result<()> {
        let keys: Vec<u64> = items.iter().map(|(k, _, _)| *k).collect();
        self.run("write", || self.inner.extend_with_args(items))?;
        self.acked(keys);
        Ok(())
    }
    fn namespaced(&self, namespace: &str) -> klepto::Result<Self> {
        Ok(Faulty {
            inner: self.inner.namespaced(namespace)?,
            plan: Arc::clone(&self.plan),
        })
    }
    fn location(&self) -> String {
        self.inner.location()
    }
}

#[derive(Debug, Clone)]
enum Step {
    Call(u64),
    TryCall(u64),
    Dump,
    Load,
    Clear,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0..16u64).prop_map(Step::Call),
        4 => (0..16u64).prop_map(Step::TryCall),
        1 => Just(Step::Dump),
        1 => Just(Step::Load),
        1 => Just(Step::Clear),
    ]
}

#[derive(Debug, Clone)]
struct Case {
    steps: Vec<Step>,
    capacity: usize,
    write_through: bool,
    fail: BTreeSet<usize>,
    after: bool,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(step(), 1..40),
        1..6usize,
        any::<bool>(),
        prop::collection::btree_set(0..30usize, 1..6),
        any::<bool>(),
    )
        .prop_map(|(steps, capacity, write_through, fail, after)| Case {
            steps,
            capacity,
            write_through,
            fail,
            after,
        })
}

/// Whether `e` is a fault the plan injected.
fn injected(e: &Error) -> bool {
    e.to_string().contains(INJECTED)
}

/// Runs `case` on the archive `open` makes (fresh, in `dir`), then checks
/// the archive reopened by `open` without faults.
fn run<A: Archive<u64, u64> + Clone + 'static>(
    case: &Case,
    open: impl Fn() -> A,
) -> Result<(), TestCaseError> {
    let plan = Arc::new(Plan {
        fail: case.fail.clone(),
        after: case.after,
        ..Plan::default()
    });
    let archive = Faulty {
        inner: open(),
        plan: Arc::clone(&plan),
    };
    let mut builder = Memo::builder()
        .lru(case.capacity)
        .keymap(RawKeymap::new())
        .archive(archive);
    if case.write_through {
        builder = builder.write_through();
    }
    let memo = builder.build(f);
    let mut returned = 0_u64;
    for (i, s) in case.steps.iter().enumerate() {
        match *s {
            Step::Call(x) => {
                prop_assert_eq!(memo.call(x), f(x), "step {}: call({})", i, x);
                returned += 1;
            }
            Step::TryCall(x) => match memo.try_call(x) {
                Ok(v) => {
                    prop_assert_eq!(v, f(x), "step {}: try_call({})", i, x);
                    returned += 1;
                }
                Err(e) => {
                    prop_assert!(injected(&e), "step {}: try_call({}): {}", i, x, e);
                    // Failed before computing (a read) or after (a write,
                    // the result then counted and kept in memory).
                    if !e.to_string().contains("in read") {
                        returned += 1;
                    }
                }
            },
            Step::Dump => {
                if let Err(e) = memo.dump() {
                    prop_assert!(injected(&e), "step {}: dump: {}", i, e);
                }
            }
            Step::Load => {
                if let Err(e) = memo.load() {
                    prop_assert!(injected(&e), "step {}: load: {}", i, e);
                }
            }
            Step::Clear => {
                // Statistics go with the memory: count from here.
                memo.clear();
                returned = 0;
            }
        }
        let info = memo.info();
        prop_assert_eq!(
            info.hits + info.misses + info.loads,
            returned,
            "step {}: hits {} + misses {} + loads {} against {} calls that returned",
            i,
            info.hits,
            info.misses,
            info.loads,
            returned
        );
        prop_assert!(info.size <= case.capacity);
    }
    let injected_faults = plan.injected.load(Relaxed) as u64;
    prop_assert!(
        memo.info().errors <= injected_faults,
        "more errors than faults"
    );
    drop(memo); // writes what is unsaved (faults may hit it too)

    // Reopened without faults: every acknowledged write, right values only.
    let reopened = open();
    let acked = plan.acked.lock().unwrap().clone();
    for x in acked {
        prop_assert_eq!(
            reopened.get(&x).unwrap(),
            Some(f(x)),
            "acknowledged {} lost",
            x
        );
    }
    for item in reopened.iter().unwrap() {
        let (k, v) = item.map_err(|e| TestCaseError::fail(format!("damaged entry: {e}")))?;
        prop_assert_eq!(v, f(k), "wrong value for {}", k);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn sqlite_under_faults(c in case()) {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("faults.db").to_str().unwrap().to_owned();
        run(&c, || SqlArchive::<u64, u64>::open(&db).unwrap())?;
    }

    #[test]
    fn file_archive_under_faults(c in case()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("faults.msgpack");
        run(&c, || FileArchive::<u64, u64>::open(&path).unwrap().durable(false))?;
        // No temporary file left that a later open could take for data.
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        prop_assert!(names.iter().all(|n| !n.contains(".tmp-")), "left behind: {:?}", names);
    }

    #[test]
    fn dir_archive_under_faults(c in case()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("faults.d");
        run(&c, || DirArchive::<u64, u64>::open(&path).unwrap().durable(false))?;
    }
}
