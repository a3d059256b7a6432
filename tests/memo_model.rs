//! Model-based tests of a whole `Memo` (DESIGN.md 3.2 and 3.3).
//!
//! Random call sequences drive a real memo and a plain O(n) reference model
//! side by side. After every call the exact keys in memory, the exact keys in
//! the archive, `info()` (hits, misses, loads, size), the returned value and
//! the number of function executions are compared. LRU, MRU, LFU, `inf` and
//! `no_cache` are predicted exactly; for RR the model cannot know the victim,
//! so it takes the victim the memo chose (after checking it is a legal one)
//! and predicts everything else from there.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use klepto::archive::{Archive, DictArchive};
use klepto::keymap::{HashKey, HashKeymap};
use klepto::policy::Policy;
use klepto::{Memo, MemoBuilder};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// Arguments are drawn from `0..KEYS`.
const KEYS: u64 = 8;
/// Longest call sequence.
const MAX_CALLS: usize = 60;

fn f(x: u64) -> u64 {
    x * 10 + 1
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Lru,
    Mru,
    Lfu,
    Rr,
    Inf,
    NoCache,
}

/// One generated scenario.
#[derive(Debug, Clone)]
struct Case {
    kind: Kind,
    /// Bound for the bounded kinds (ignored by `Inf` and `NoCache`).
    cap: usize,
    archive: bool,
    purge: bool,
    write_through: bool,
    /// Keys put in the archive (with their correct values) before any call.
    preload: BTreeSet<u64>,
    /// Seed of random replacement.
    seed: u64,
    calls: Vec<u64>,
}

impl Case {
    fn capacity(&self) -> Option<usize> {
        match self.kind {
            Kind::Inf => None,
            Kind::NoCache => Some(0),
            _ => Some(self.cap),
        }
    }
}

// ---------------------------------------------------------------------------
// The reference model
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Entry {
    key: u64,
    /// Uses: the addition (miss or load) counts one, every hit one more.
    freq: u64,
    /// Clock value of the last use.
    last: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Hit,
    Load,
    Miss,
}

#[derive(Debug)]
struct Model {
    kind: Kind,
    cap: Option<usize>,
    archived: bool,
    purge: bool,
    write_through: bool,
    mem: Vec<Entry>,
    archive: BTreeSet<u64>,
    clock: u64,
    hits: u64,
    misses: u64,
    loads: u64,
}

impl Model {
    fn new(case: &Case) -> Self {
        Model {
            kind: case.kind,
            cap: case.capacity(),
            archived: case.archive,
            purge: case.purge,
            write_through: case.write_through,
            mem: Vec::new(),
            archive: if case.archive {
                case.preload.clone()
            } else {
                BTreeSet::new()
            },
            clock: 0,
            hits: 0,
            misses: 0,
            loads: 0,
        }
    }

    fn memory(&self) -> BTreeSet<u64> {
        self.mem.iter().map(|e| e.key).collect()
    }

    /// One call with `x`. `observed` is the memo's memory after the same
    /// call; only random replacement reads it, to learn its victim.
    fn call(&mut self, x: u64, observed: &BTreeSet<u64>) -> Result<Outcome, String> {
        self.clock += 1;
        if let Some(e) = self.mem.iter_mut().find(|e| e.key == x) {
            e.freq += 1;
            e.last = self.clock;
            self.hits += 1;
            return Ok(Outcome::Hit);
        }
        let outcome = if self.archived && self.archive.contains(&x) {
            self.loads += 1;
            Outcome::Load
        } else {
            self.misses += 1;
            if self.archived && self.write_through {
                self.archive.insert(x);
            }
            Outcome::Miss
        };
        self.add(x, observed)?;
        Ok(outcome)
    }

    /// Puts a new entry in memory, making room as DESIGN.md 3.3 says.
    fn add(&mut self, x: u64, observed: &BTreeSet<u64>) -> Result<(), String> {
        match self.cap {
            Some(0) => {
                // Nothing kept; with an archive the result goes there (a
                // loaded one is there already).
                if self.archived {
                    self.archive.insert(x);
                }
                return Ok(());
            }
            Some(cap) if self.mem.len() >= cap => {
                if self.archived && self.purge {
                    self.archive.extend(self.mem.drain(..).map(|e| e.key));
                    self.archive.insert(x);
                    return Ok(());
                }
                let victim = self.victim(observed)?;
                let gone = self.mem.remove(victim);
                if self.archived {
                    self.archive.insert(gone.key);
                }
            }
            _ => {}
        }
        self.mem.push(Entry {
            key: x,
            freq: 1,
            last: self.clock,
        });
        Ok(())
    }

    /// Index in `mem` of the entry to evict (the new one is not in `mem` yet).
    fn victim(&self, observed: &BTreeSet<u64>) -> Result<usize, String> {
        let pick = |by: &dyn Fn(&Entry) -> (u64, u64), most: bool| {
            let it = self.mem.iter().enumerate();
            let found = if most {
                it.max_by_key(|(_, e)| by(e))
            } else {
                it.min_by_key(|(_, e)| by(e))
            };
            found.map(|(i, _)| i).ok_or("evicting from empty memory")
        };
        Ok(match self.kind {
            Kind::Lru => pick(&|e| (e.last, 0), false)?,
            Kind::Mru => pick(&|e| (e.last, 0), true)?,
            Kind::Lfu => pick(&|e| (e.freq, e.last), false)?,
            Kind::Rr => {
                let gone: Vec<usize> = (0..self.mem.len())
                    .filter(|&i| !observed.contains(&self.mem[i].key))
                    .collect();
                match gone[..] {
                    [i] => i,
                    _ => {
                        return Err(format!(
                            "random replacement must evict exactly one old entry: \
                             memory before {:?}, after {observed:?}",
                            self.memory()
                        ))
                    }
                }
            }
            Kind::Inf | Kind::NoCache => return Err("this policy never evicts".into()),
        })
    }
}

// ---------------------------------------------------------------------------
// Driving the memo
// ---------------------------------------------------------------------------

fn check(case: &Case) -> Result<(), TestCaseError> {
    let b = Memo::builder();
    match case.kind {
        Kind::Lru => configure(b.lru(case.cap), case),
        Kind::Mru => configure(b.mru(case.cap), case),
        Kind::Lfu => configure(b.lfu(case.cap), case),
        Kind::Rr => configure(b.rr(case.cap).seed(case.seed), case),
        Kind::Inf => configure(b.inf(), case),
        Kind::NoCache => configure(b.no_cache(), case),
    }
}

fn configure<P: Policy>(b: MemoBuilder<HashKeymap, P>, case: &Case) -> Result<(), TestCaseError> {
    let b = b.purge(case.purge);
    let b = if case.write_through {
        b.write_through()
    } else {
        b
    };
    if case.archive {
        run(b.archive(DictArchive::new()), case)
    } else {
        run(b, case)
    }
}

fn run<P, A>(b: MemoBuilder<HashKeymap, P, A>, case: &Case) -> Result<(), TestCaseError>
where
    P: Policy,
    A: Archive<HashKey, u64>,
{
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&runs);
    let m = b.build(move |x: u64| {
        counter.fetch_add(1, Ordering::Relaxed);
        f(x)
    });
    let keys: Vec<HashKey> = (0..KEYS).map(|x| m.key(&x).unwrap()).collect();
    let memory = || -> BTreeSet<u64> { (0..KEYS).filter(|x| m.lookup(x).is_some()).collect() };
    let archive = || -> BTreeSet<u64> {
        (0..KEYS)
            .filter(|&x| m.archive().contains_key(&keys[x as usize]).unwrap())
            .collect()
    };
    if case.archive {
        for &x in &case.preload {
            m.archive().insert(keys[x as usize], f(x)).unwrap();
        }
    }

    let mut model = Model::new(case);
    let cap = case.capacity();
    let mut computed = BTreeSet::new();
    for (i, &x) in case.calls.iter().enumerate() {
        let before = memory();
        let archive_before = archive();
        prop_assert_eq!(m.call(x), f(x), "value of call {} (x={})", i, x);
        // Memory, slots, policy and flights agree (debug builds).
        #[cfg(debug_assertions)]
        m.validate();
        let after = memory();
        let archive_after = archive();
        let info = m.info();

        let outcome = model
            .call(x, &after)
            .map_err(|e| TestCaseError::fail(format!("call {i} (x={x}): {e}")))?;
        if outcome == Outcome::Miss {
            computed.insert(x);
        }

        // The exact state.
        prop_assert_eq!(&after, &model.memory(), "memory after call {} (x={})", i, x);
        prop_assert_eq!(
            &archive_after,
            &model.archive,
            "archive after call {} (x={})",
            i,
            x
        );
        prop_assert_eq!(
            (info.hits, info.misses, info.loads, info.size),
            (model.hits, model.misses, model.loads, model.mem.len()),
            "hits, misses, loads, size after call {} (x={})",
            i,
            x
        );
        prop_assert_eq!(info.maxsize, cap);
        prop_assert_eq!(info.errors, 0);
        prop_assert_eq!(
            runs.load(Ordering::Relaxed) as u64,
            info.misses,
            "executions == misses after call {} (x={})",
            i,
            x
        );

        // Invariants that hold whatever the policy chose.
        prop_assert_eq!(info.hits + info.misses + info.loads, i as u64 + 1);
        prop_assert_eq!(info.size, after.len());
        if let Some(cap) = cap {
            prop_assert!(after.len() <= cap, "size over the bound at call {}", i);
        }
        let purged = case.archive && case.purge && after.is_empty();
        if cap != Some(0) && !purged {
            prop_assert!(
                after.contains(&x),
                "call {} (x={}) left x out of memory",
                i,
                x
            );
        }
        if !purged {
            prop_assert!(
                before.difference(&after).count() <= 1,
                "more than one entry left memory at call {}: {:?} -> {:?}",
                i,
                before,
                after
            );
        }
        prop_assert!(
            after.difference(&before).all(|&k| k == x),
            "a key other than {} appeared at call {}",
            x,
            i
        );
        prop_assert!(archive_before.is_subset(&archive_after), "archive shrank");
        if case.archive {
            prop_assert!(
                computed
                    .iter()
                    .all(|k| after.contains(k) || archive_after.contains(k)),
                "a computed result was lost at call {}: computed {:?}, memory {:?}, archive {:?}",
                i,
                computed,
                after,
                archive_after
            );
        }
        if case.archive && case.write_through && outcome == Outcome::Miss {
            prop_assert!(archive_after.contains(&x), "write-through missed {}", x);
        }
    }
    // Everything stored holds the right value.
    for x in 0..KEYS {
        if let Some(v) = m.lookup(&x) {
            prop_assert_eq!(v, f(x));
        }
        if let Some(v) = m.archive().get(&keys[x as usize]).unwrap() {
            prop_assert_eq!(v, f(x));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------

fn calls() -> impl Strategy<Value = Vec<u64>> {
    prop::collection::vec(0..KEYS, 0..=MAX_CALLS)
}

fn preload() -> impl Strategy<Value = BTreeSet<u64>> {
    prop_oneof![
        2 => Just(BTreeSet::new()),
        1 => prop::collection::btree_set(0..KEYS, 0..=KEYS as usize),
    ]
}

fn deterministic() -> impl Strategy<Value = Kind> {
    prop_oneof![Just(Kind::Lru), Just(Kind::Mru), Just(Kind::Lfu)]
}

/// A case of `kind` with the archive options fixed by the caller.
fn case(
    kind: impl Strategy<Value = Kind>,
    archive: impl Strategy<Value = bool>,
    purge: impl Strategy<Value = bool>,
    write_through: impl Strategy<Value = bool>,
) -> impl Strategy<Value = Case> {
    (
        kind,
        0..=5usize,
        archive,
        purge,
        write_through,
        preload(),
        any::<u64>(),
        calls(),
    )
        .prop_map(
            |(kind, cap, archive, purge, write_through, preload, seed, calls)| Case {
                kind,
                cap,
                archive,
                purge,
                write_through,
                preload,
                seed,
                calls,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    /// No archive; `.purge(true)` and `.write_through()` are then moot.
    #[test]
    fn bounded_without_archive(c in case(deterministic(), Just(false), any::<bool>(), any::<bool>())) {
        check(&c)?;
    }

    /// Evicted entries go to the archive; archived keys come back as loads.
    #[test]
    fn bounded_with_archive(c in case(deterministic(), Just(true), Just(false), Just(false))) {
        check(&c)?;
    }

    /// A full memory is dumped whole, with the new entry, to the archive.
    #[test]
    fn bounded_with_archive_and_purge(c in case(deterministic(), Just(true), Just(true), Just(false))) {
        check(&c)?;
    }

    /// Every computed result is in the archive right after its call.
    #[test]
    fn bounded_write_through(c in case(deterministic(), Just(true), any::<bool>(), Just(true))) {
        check(&c)?;
    }

    /// `.inf()` never evicts; `.no_cache()` keeps nothing, with or without an
    /// archive.
    #[test]
    fn inf_and_no_cache(c in case(
        prop_oneof![Just(Kind::Inf), Just(Kind::NoCache)],
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )) {
        check(&c)?;
    }

    /// Random replacement: the victim is the memo's choice (checked to be one
    /// old entry); everything else is predicted.
    #[test]
    fn rr_every_mode(c in case(Just(Kind::Rr), any::<bool>(), any::<bool>(), any::<bool>())) {
        check(&c)?;
    }
}

/// The model itself reproduces the reference traces of DESIGN.md 3.3, so a
/// model that drifted from the design cannot hide behind agreement.
#[test]
fn model_matches_reference_traces() {
    let calls = vec![1, 2, 3, 1, 4, 5, 1, 6];
    let end = |kind, archive, purge| {
        let c = Case {
            kind,
            cap: 3,
            archive,
            purge,
            write_through: false,
            preload: BTreeSet::new(),
            seed: 0,
            calls: calls.clone(),
        };
        let mut m = Model::new(&c);
        for &x in &calls {
            m.call(x, &BTreeSet::new()).unwrap();
        }
        (
            m.memory().into_iter().collect::<Vec<_>>(),
            m.archive.iter().copied().collect::<Vec<_>>(),
            (m.hits, m.misses, m.loads),
        )
    };
    for kind in [Kind::Lru, Kind::Lfu] {
        assert_eq!(end(kind, false, false), (vec![1, 5, 6], vec![], (2, 6, 0)));
        assert_eq!(
            end(kind, true, false),
            (vec![1, 5, 6], vec![2, 3, 4], (2, 6, 0))
        );
    }
    assert_eq!(
        end(Kind::Mru, false, false),
        (vec![2, 3, 6], vec![], (1, 7, 0))
    );
    assert_eq!(
        end(Kind::Mru, true, false),
        (vec![2, 3, 6], vec![1, 4, 5], (1, 6, 1))
    );
    for kind in [Kind::Lru, Kind::Lfu, Kind::Mru] {
        assert_eq!(
            end(kind, true, true),
            (vec![1, 5, 6], vec![1, 2, 3, 4], (1, 6, 1))
        );
    }
}

/// LFU is not LRU: a key used often survives a newer key used once.
#[test]
fn lfu_keeps_the_frequent_key() {
    let c = Case {
        kind: Kind::Lfu,
        cap: 2,
        archive: false,
        purge: false,
        write_through: false,
        preload: BTreeSet::new(),
        seed: 0,
        calls: vec![1, 1, 1, 2, 3, 4],
    };
    check(&c).unwrap();
    let m = Memo::builder().lfu(2).build(f);
    for x in [1, 1, 1, 2, 3, 4] {
        m.call(x);
    }
    assert_eq!(m.lookup(&1), Some(f(1)));
    assert_eq!(m.lookup(&4), Some(f(4)));
}
