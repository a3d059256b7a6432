//! The store's unit tests: hits, misses, flights, eviction, and the
//! striped logs under threads.

use super::*;
use crate::policy::{Lru, Unbounded};
use std::sync::Arc;

/// A deterministic hash, the same in every thread.
fn hasher() -> impl Fn(&u64) -> u64 {
    |k| k.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29)
}

#[test]
fn insert_get_drain_reuses_slots() {
    let h = hasher();
    let s: Store<u64, u64, Unbounded> = Store::new(Unbounded);
    for k in 0..100 {
        assert!(matches!(
            s.insert(h(&k), k, k * 2, true, false, Count::Nothing, &h),
            Displaced::None
        ));
    }
    assert_eq!(s.tally().len, 100);
    assert_eq!(s.get(h(&7), &7), Some(14));
    assert_eq!(s.tally().hits, 1);
    assert_eq!(s.peek(h(&100), &100), None);
    assert_eq!(s.take_unsaved().len(), 100);
    assert_eq!(s.take_unsaved().len(), 0, "dump marks entries clean");
    s.clear();
    assert_eq!((s.tally().len, s.tally().hits), (0, 0));
    assert_eq!(s.get(h(&7), &7), None);
}

/// A store, with its stripes spread as under contention when `shared`
/// (hits then go through the logs).
fn store<P: Policy>(policy: P, shared: bool) -> Store<u64, u64, P> {
    let s = Store::new(policy);
    if shared {
        s.memory.spread();
    }
    s
}

#[test]
fn hits_replay_in_order_before_eviction() {
    for shared in [false, true] {
        let h = hasher();
        let s = store(Lru::new(3), shared);
        for k in [1, 2, 3] {
            s.insert(h(&k), k, k, false, false, Count::Nothing, &h);
        }
        // Touch 1 and 2: 3 is now the LRU.
        s.get(h(&1), &1);
        s.get(h(&2), &2);
        match s.insert(h(&4), 4, 4, false, false, Count::Nothing, &h) {
            Displaced::Evicted { key, .. } => assert_eq!(key, 3),
            _ => panic!("expected an eviction"),
        }
        // Slot of 3 is reused by 4; a long run of hits fills logs and replays.
        for _ in 0..(LOG_LIMIT * 3) {
            s.get(h(&4), &4);
            s.get(h(&1), &1);
        }
        match s.insert(h(&5), 5, 5, false, false, Count::Nothing, &h) {
            Displaced::Evicted { key, .. } => assert_eq!(key, 2),
            _ => panic!("expected an eviction"),
        }
        assert_eq!(s.tally().hits, 2 + 2 * LOG_LIMIT as u64 * 3);
    }
}

#[test]
fn only_the_last_hit_on_each_slot_is_replayed_when_that_is_all_that_matters() {
    let mut order = Order {
        policy: Lru::new(8),
        slots: vec![
            SlotMeta {
                hash: 0,
                generation: 0,
            };
            4
        ],
        merged: Vec::new(),
        seen: Vec::new(),
        batch: u32::MAX, // the next batch wraps: marks are reset
    };
    let touch = |stamp, slot| Touch {
        stamp,
        slot,
        generation: 0,
    };
    let mut touches: Vec<Touch> = [(1, 0), (2, 1), (3, 0), (4, 2), (5, 1), (6, 0)]
        .into_iter()
        .map(|(stamp, slot)| touch(stamp, slot))
        .collect();
    let first = order.last_hits(&mut touches);
    let kept: Vec<(u32, Slot)> = touches[first..].iter().map(|t| (t.stamp, t.slot)).collect();
    assert_eq!(kept, vec![(4, 2), (5, 1), (6, 0)]);
    // A new batch forgets the marks of the last one.
    let mut again = vec![touch(7, 2), touch(8, 2)];
    assert_eq!(order.last_hits(&mut again), 1);
    // Replayed into LRU: 3 (never hit) is the least recent, then 2, 1, 0.
    for slot in 0..4 {
        order.policy.on_insert(slot);
    }
    order.apply(&mut touches);
    assert!(touches.is_empty());
    assert_eq!(order.policy.evict(), Some(3));
    assert_eq!(order.policy.evict(), Some(2));
    assert_eq!(order.policy.evict(), Some(1));
}

#[test]
fn stale_touches_of_evicted_entries_are_skipped() {
    for shared in [false, true] {
        let h = hasher();
        let s = store(Lru::new(1), shared);
        s.insert(h(&1), 1, 1, false, false, Count::Nothing, &h);
        // Record a touch of 1 and leave it in the log...
        s.get(h(&1), &1);
        // ...evict 1 (the replay applies it first), reuse its slot for 2.
        s.insert(h(&2), 2, 2, false, false, Count::Nothing, &h);
        s.get(h(&2), &2);
        match s.insert(h(&3), 3, 3, false, false, Count::Nothing, &h) {
            Displaced::Evicted { key, .. } => assert_eq!(key, 2),
            _ => panic!("expected an eviction"),
        }
        assert_eq!(s.tally().len, 1);
    }
}

#[test]
fn followers_get_the_leaders_value_and_flights_empty() {
    use std::sync::Arc;
    let h = hasher();
    let s: Arc<Store<u64, u64, Lru>> = Arc::new(Store::new(Lru::new(4)));
    let Err(lead) = s.lookup(h(&1), &1) else {
        panic!("the first caller leads")
    };
    let leader = lead.leader(&s, h(&1), 1);
    let followers: Vec<_> = (0..3)
        .map(|_| {
            let (s, h) = (s.clone(), hasher());
            std::thread::spawn(move || match s.lookup(h(&1), &1) {
                Ok(v) => v,
                Err(_) => panic!("a follower must not lead"),
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(50));
    leader.store(7, true, false, Count::Miss, &h);
    for f in followers {
        assert_eq!(f.join().unwrap(), 7);
    }
    assert_eq!(s.tally().hits, 3);
    assert!(s.flights_empty());
}

#[test]
fn an_abandoned_flight_passes_to_one_follower() {
    use std::sync::Arc;
    let h = hasher();
    let s: Arc<Store<u64, u64, Lru>> = Arc::new(Store::new(Lru::new(4)));
    let Err(lead) = s.lookup(h(&1), &1) else {
        panic!("the first caller leads")
    };
    let leader = lead.leader(&s, h(&1), 1);
    let follower = {
        let (s, h) = (s.clone(), hasher());
        std::thread::spawn(move || match s.lookup(h(&1), &1) {
            Err(lead) => {
                lead.leader(&s, h(&1), 1)
                    .store(9, true, false, Count::Miss, &h);
                true
            }
            Ok(_) => false,
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(50));
    drop(leader); // as a panic would
    assert!(follower.join().unwrap(), "the follower took over");
    assert_eq!(s.get(h(&1), &1), Some(9));
    assert!(s.flights_empty());
}

#[test]
fn a_hit_after_a_thread_ended_counts_as_later_than_that_threads_hits() {
    // Each round's helper thread gets a new number, so over four rounds its
    // stripe comes before the main thread's in the merge at least once: a
    // stable merge by stripe alone would then put its hit last.
    let h = hasher();
    let s = Arc::new(store(Lru::new(2), true));
    for round in 0..8 {
        s.clear();
        for k in [1, 2] {
            s.insert(h(&k), k, k, false, false, Count::Nothing, &h);
        }
        // Logged on the helper's stripe, then the helper ends. (Joined by
        // its handle: a `thread::scope` may return before the thread's
        // destructors, which advance the epoch, have run.)
        let (store, hash) = (Arc::clone(&s), h(&1));
        let helper = std::thread::spawn(move || assert_eq!(store.get(hash, &1), Some(1)));
        helper.join().unwrap();
        // Logged on this thread's stripe: the most recent use.
        assert_eq!(s.get(h(&2), &2), Some(2));
        match s.insert(h(&3), 3, 3, false, false, Count::Nothing, &h) {
            Displaced::Evicted { key, .. } => assert_eq!(key, 1, "round {round}"),
            _ => panic!("expected an eviction"),
        }
    }
}

#[test]
fn a_touch_takes_twelve_bytes() {
    assert_eq!(std::mem::size_of::<Touch>(), 12);
}

#[cfg(debug_assertions)]
#[test]
fn validate_passes_a_sound_store_and_catches_a_policy_out_of_step() {
    for shared in [false, true] {
        let h = hasher();
        let s = store(Lru::new(4), shared);
        for k in 0..10 {
            s.insert(h(&k), k, k, false, false, Count::Nothing, &h);
            s.get(h(&k), &k);
            s.validate(&h);
        }
        // The policy forgets an entry that memory still holds.
        let slot = {
            let mut guard = s.memory.write();
            let mut parts = guard.parts();
            let slot = parts.data.table.iter().next().expect("an entry").slot;
            parts.order.policy.on_remove(slot);
            slot
        };
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| s.validate(&h)));
        assert!(
            caught.is_err(),
            "slot {slot}: the policy out of step went unnoticed"
        );
        // A wrong hash for the entries is caught too.
        let s = store(Lru::new(4), shared);
        s.insert(h(&1), 1, 1, false, false, Count::Nothing, &h);
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| s.validate(|_| 0)));
        assert!(caught.is_err(), "a wrong hash went unnoticed");
    }
}
