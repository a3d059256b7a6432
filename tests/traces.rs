//! The reference traces of DESIGN.md 3.3: maxsize 3, calls 1,2,3,1,4,5,1,6,
//! with and without an archive, checked after every call.

use std::collections::BTreeSet;

use klepto::archive::{Archive, DictArchive};
use klepto::keymap::HashKeymap;
use klepto::policy::Policy;
use klepto::{Memo, MemoBuilder, Plain};

const CALLS: [u64; 8] = [1, 2, 3, 1, 4, 5, 1, 6];

type F = Plain<fn(u64) -> u64, u64, u64>;

/// After each call: memory, archive, (hits, misses, loads).
struct Step {
    memory: &'static [u64],
    archive: &'static [u64],
    stats: (u64, u64, u64),
}

const fn s(memory: &'static [u64], archive: &'static [u64], stats: (u64, u64, u64)) -> Step {
    Step {
        memory,
        archive,
        stats,
    }
}

fn ten_times(x: u64) -> u64 {
    x * 10
}

fn memory_of<P: Policy, A: Archive<klepto::keymap::HashKey, u64>>(
    m: &Memo<F, HashKeymap, P, A>,
) -> BTreeSet<u64> {
    (0..10).filter(|x| m.lookup(x).is_some()).collect()
}

fn archive_of<P: Policy>(
    m: &Memo<F, HashKeymap, P, DictArchive<klepto::keymap::HashKey, u64>>,
) -> BTreeSet<u64> {
    (0..10)
        .filter(|x| m.archive().contains_key(&m.key(x).unwrap()).unwrap())
        .collect()
}

fn run_plain<P: Policy>(builder: MemoBuilder<HashKeymap, P>, steps: &[Step]) {
    let m = builder.build(ten_times as fn(u64) -> u64);
    for (i, (x, step)) in CALLS.iter().zip(steps).enumerate() {
        assert_eq!(m.call(*x), x * 10);
        let info = m.info();
        let want: BTreeSet<u64> = step.memory.iter().copied().collect();
        assert_eq!(memory_of(&m), want, "memory after call {i} (x={x})");
        assert_eq!(info.size, want.len(), "size after call {i}");
        assert_eq!(
            (info.hits, info.misses, info.loads),
            step.stats,
            "stats after call {i} (x={x})"
        );
    }
}

fn run_archived<P: Policy>(builder: MemoBuilder<HashKeymap, P>, purge: bool, steps: &[Step]) {
    let m = builder
        .archive(DictArchive::new())
        .purge(purge)
        .build(ten_times as fn(u64) -> u64);
    for (i, (x, step)) in CALLS.iter().zip(steps).enumerate() {
        assert_eq!(m.call(*x), x * 10);
        let info = m.info();
        let want: BTreeSet<u64> = step.memory.iter().copied().collect();
        assert_eq!(memory_of(&m), want, "memory after call {i} (x={x})");
        let want_archive: BTreeSet<u64> = step.archive.iter().copied().collect();
        assert_eq!(
            archive_of(&m),
            want_archive,
            "archive after call {i} (x={x})"
        );
        assert_eq!(
            (info.hits, info.misses, info.loads),
            step.stats,
            "stats after call {i} (x={x})"
        );
    }
    // Archived values are the computed ones.
    for x in archive_of(&m) {
        assert_eq!(m.archive().get(&m.key(&x).unwrap()).unwrap(), Some(x * 10));
    }
}

const LRU_STEPS: [Step; 8] = [
    s(&[1], &[], (0, 1, 0)),
    s(&[1, 2], &[], (0, 2, 0)),
    s(&[1, 2, 3], &[], (0, 3, 0)),
    s(&[1, 2, 3], &[], (1, 3, 0)),
    s(&[1, 3, 4], &[2], (1, 4, 0)),
    s(&[1, 4, 5], &[2, 3], (1, 5, 0)),
    s(&[1, 4, 5], &[2, 3], (2, 5, 0)),
    s(&[1, 5, 6], &[2, 3, 4], (2, 6, 0)),
];

#[test]
fn lru_trace_without_archive() {
    run_plain(Memo::builder().lru(3), &LRU_STEPS);
}

#[test]
fn lru_trace_with_archive() {
    run_archived(Memo::builder().lru(3), false, &LRU_STEPS);
}

#[test]
fn lfu_trace_without_archive() {
    // Same contents as LRU on this trace: 1 is the most used, ties by recency.
    run_plain(Memo::builder().lfu(3), &LRU_STEPS);
}

#[test]
fn lfu_trace_with_archive() {
    run_archived(Memo::builder().lfu(3), false, &LRU_STEPS);
}

#[test]
fn mru_trace_without_archive() {
    run_plain(
        Memo::builder().mru(3),
        &[
            s(&[1], &[], (0, 1, 0)),
            s(&[1, 2], &[], (0, 2, 0)),
            s(&[1, 2, 3], &[], (0, 3, 0)),
            s(&[1, 2, 3], &[], (1, 3, 0)),
            s(&[2, 3, 4], &[], (1, 4, 0)),
            s(&[2, 3, 5], &[], (1, 5, 0)),
            s(&[1, 2, 3], &[], (1, 6, 0)),
            s(&[2, 3, 6], &[], (1, 7, 0)),
        ],
    );
}

#[test]
fn mru_trace_with_archive() {
    run_archived(
        Memo::builder().mru(3),
        false,
        &[
            s(&[1], &[], (0, 1, 0)),
            s(&[1, 2], &[], (0, 2, 0)),
            s(&[1, 2, 3], &[], (0, 3, 0)),
            s(&[1, 2, 3], &[], (1, 3, 0)),
            s(&[2, 3, 4], &[1], (1, 4, 0)),
            s(&[2, 3, 5], &[1, 4], (1, 5, 0)),
            s(&[1, 2, 3], &[1, 4, 5], (1, 5, 1)),
            s(&[2, 3, 6], &[1, 4, 5], (1, 6, 1)),
        ],
    );
}

const PURGE_STEPS: [Step; 8] = [
    s(&[1], &[], (0, 1, 0)),
    s(&[1, 2], &[], (0, 2, 0)),
    s(&[1, 2, 3], &[], (0, 3, 0)),
    s(&[1, 2, 3], &[], (1, 3, 0)),
    s(&[], &[1, 2, 3, 4], (1, 4, 0)),
    s(&[5], &[1, 2, 3, 4], (1, 5, 0)),
    s(&[1, 5], &[1, 2, 3, 4], (1, 5, 1)),
    s(&[1, 5, 6], &[1, 2, 3, 4], (1, 6, 1)),
];

#[test]
fn purge_trace_every_bounded_policy() {
    run_archived(Memo::builder().lru(3), true, &PURGE_STEPS);
    run_archived(Memo::builder().lfu(3), true, &PURGE_STEPS);
    run_archived(Memo::builder().mru(3), true, &PURGE_STEPS);
    run_archived(Memo::builder().rr(3).seed(7), true, &PURGE_STEPS);
}

#[test]
fn purge_without_archive_is_moot() {
    run_plain(Memo::builder().lru(3).purge(true), &LRU_STEPS);
}

#[test]
fn rr_evicts_exactly_one_other_entry() {
    let m = Memo::builder()
        .rr(3)
        .seed(42)
        .build(ten_times as fn(u64) -> u64);
    for (i, x) in CALLS.iter().enumerate() {
        let before = memory_of(&m);
        m.call(*x);
        let after = memory_of(&m);
        assert!(after.contains(x), "the new entry stays (call {i})");
        assert!(after.len() <= 3);
        if !before.contains(x) && before.len() == 3 {
            assert_eq!(
                before.difference(&after).count(),
                1,
                "one evicted (call {i})"
            );
        }
    }
}

#[test]
fn rr_with_same_seed_is_reproducible() {
    let run = |seed| {
        let m = Memo::builder()
            .rr(3)
            .seed(seed)
            .build(ten_times as fn(u64) -> u64);
        (0..50u64).map(|i| (i * 7919) % 11).for_each(|x| {
            m.call(x);
        });
        memory_of(&m)
    };
    assert_eq!(run(5), run(5));
}

#[test]
fn inf_never_evicts_and_no_cache_keeps_nothing() {
    let m = Memo::builder().inf().build(ten_times as fn(u64) -> u64);
    for x in CALLS {
        m.call(x);
    }
    let info = m.info();
    assert_eq!(
        (info.hits, info.misses, info.size, info.maxsize),
        (2, 6, 6, None)
    );

    let n = Memo::builder()
        .no_cache()
        .build(ten_times as fn(u64) -> u64);
    for x in CALLS {
        n.call(x);
    }
    let info = n.info();
    assert_eq!(
        (info.hits, info.misses, info.size, info.maxsize),
        (0, 8, 0, Some(0))
    );

    let zero = Memo::builder().lru(0).build(ten_times as fn(u64) -> u64);
    for x in CALLS {
        zero.call(x);
    }
    assert_eq!((zero.info().misses, zero.info().size), (8, 0));
}

#[test]
fn no_cache_with_archive_writes_every_result_and_loads_them() {
    let archive = DictArchive::new();
    let m = Memo::builder()
        .no_cache()
        .archive(archive.clone())
        .build(ten_times as fn(u64) -> u64);
    for x in CALLS {
        assert_eq!(m.call(x), x * 10);
    }
    let info = m.info();
    // 1 is computed once, then loaded twice from the archive.
    assert_eq!(
        (info.hits, info.misses, info.loads, info.size),
        (0, 6, 2, 0)
    );
    assert_eq!(archive.len().unwrap(), 6);
}
