//! Model checks of single flight with loom (`--cfg loom`, run by `.ci/run`
//! with the striped lock's): a leader storing its value against a follower
//! arriving and waiting on the flight's own wait, and a leader that panics
//! against a follower that must take over. Loom explores every order of
//! the lock's atomics and of the wait's mutex and condition variable, and
//! fails a model in which a follower waits forever (a lost wake-up) or a
//! count goes astray.

use loom::sync::Arc;
use loom::thread;

use super::{Count, Store};
use crate::memo::striped_loom::{model, model_bounded};
use crate::policy::Unbounded;

const KEY: u64 = 7;
const HASH: u64 = 0x5151;
const VALUE: u64 = 49;

fn store() -> Arc<Store<u64, u64, Unbounded>> {
    Arc::new(Store::new(Unbounded))
}

/// A call of `KEY`: the value found or waited for (`true`: a hit), or
/// computed as the flight's leader (`false`). `panics`: the leader gives
/// its flight up instead of storing (a user function that panicked).
fn call(store: &Store<u64, u64, Unbounded>, panics: bool) -> Option<(u64, bool)> {
    match store.lookup(HASH, &KEY) {
        Ok(value) => Some((value, true)),
        Err(lead) => {
            let leader = lead.leader(store, HASH, KEY);
            if panics {
                drop(leader);
                return None;
            }
            leader.store(VALUE, true, false, Count::Miss, |_| HASH);
            Some((VALUE, false))
        }
    }
}

/// [`call`] of `KEY` in another loom thread.
fn spawn_call(
    s: &Arc<Store<u64, u64, Unbounded>>,
    panics: bool,
) -> thread::JoinHandle<Option<(u64, bool)>> {
    let s = Arc::clone(s);
    thread::spawn(move || call(&s, panics))
}

#[test]
fn a_leader_stores_while_a_follower_waits() {
    model(|| {
        let s = store();
        let other = spawn_call(&s, false);
        let mine = call(&s, false).expect("no panic");
        let theirs = other.join().unwrap().expect("no panic");
        assert_eq!((mine.0, theirs.0), (VALUE, VALUE));
        assert!(mine.1 != theirs.1, "one leads, the other hits");
        let tally = s.tally();
        assert_eq!((tally.misses, tally.hits, tally.len), (1, 1, 1));
        assert!(s.flights_empty(), "the flight is forgotten");
    });
}

#[test]
fn a_follower_takes_over_from_a_leader_that_panics() {
    model(|| {
        let s = store();
        let panicking = spawn_call(&s, true);
        let mine = call(&s, false).expect("this caller never panics");
        let theirs = panicking.join().unwrap();
        assert_eq!(mine.0, VALUE);
        let tally = s.tally();
        match theirs {
            // It led and gave up: this caller computed the value.
            None => assert_eq!((mine.1, tally.misses, tally.hits), (false, 1, 0)),
            // This caller led first; the other one got the value.
            Some(theirs) => {
                assert_eq!(theirs, (VALUE, true));
                assert_eq!((mine.1, tally.misses, tally.hits), (false, 1, 1));
            }
        }
        assert!(s.flights_empty(), "the flight is forgotten");
    });
}

/// Three threads, at most one preemption each interleaving: the second
/// follower arrives while the first waits, or after the value is handed
/// over and before the first has taken it.
#[test]
fn two_followers_wait_for_one_leader() {
    model_bounded(Some(1), || {
        let s = store();
        let others: Vec<_> = (0..2).map(|_| spawn_call(&s, false)).collect();
        let mut led = usize::from(!call(&s, false).expect("no panic").1);
        for other in others {
            let (value, hit) = other.join().unwrap().expect("no panic");
            assert_eq!(value, VALUE);
            led += usize::from(!hit);
        }
        assert_eq!(led, 1, "one call computes");
        let tally = s.tally();
        assert_eq!((tally.misses, tally.hits), (1, 2));
        assert!(s.flights_empty(), "the flight is forgotten");
    });
}
