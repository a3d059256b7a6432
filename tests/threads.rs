//! Threads: Send + Sync, single flight, no lock held while the function runs,
//! and panics that leave the memo usable.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use klepto::archive::DictArchive;
use klepto::keymap::{HashKey, RawKeymap};
use klepto::Memo;

fn assert_send_sync<T: Send + Sync>(_: &T) {}

#[test]
fn memo_is_send_and_sync() {
    let m = Memo::builder().lru(4).build(|x: u64| x);
    assert_send_sync(&m);
    let a: DictArchive<HashKey, String> = DictArchive::new();
    let m = Memo::builder()
        .lfu(4)
        .archive(a)
        .build(|x: u64| x.to_string());
    assert_send_sync(&m);
}

#[test]
fn concurrent_misses_on_one_key_compute_once() {
    const THREADS: usize = 8;
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    let memo = Arc::new(Memo::builder().lru(16).build(move |x: u64| {
        r.fetch_add(1, SeqCst);
        thread::sleep(Duration::from_millis(100)); // keep the flight open
        x * 2
    }));
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let (memo, barrier) = (memo.clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                memo.call(21)
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), 42);
    }
    assert_eq!(runs.load(SeqCst), 1, "the function ran once for 8 callers");
    let info = memo.info();
    assert_eq!((info.misses, info.hits), (1, (THREADS - 1) as u64));
}

#[test]
fn different_keys_compute_in_parallel() {
    // If a lock were held while the function runs, the second thread could
    // not enter the function while the first waits inside it.
    let inside = Arc::new(Barrier::new(2));
    let b = inside.clone();
    let memo = Arc::new(Memo::builder().inf().build(move |x: u64| {
        b.wait(); // both computations must be inside at once
        x
    }));
    let m2 = memo.clone();
    let t = thread::spawn(move || m2.call(1));
    assert_eq!(memo.call(2), 2);
    assert_eq!(t.join().unwrap(), 1);
}

#[test]
fn recursive_fib_90_does_not_deadlock() {
    let fib =
        Memo::builder().lru(8).build_recursive(
            |fib, n: u64| {
                if n < 2 {
                    n
                } else {
                    fib(n - 1) + fib(n - 2)
                }
            },
        );
    assert_eq!(fib.call(90), 2_880_067_194_370_816_120);
}

#[test]
fn a_panic_leaves_the_memo_usable() {
    let memo = Memo::builder().lru(4).build(|x: u64| {
        if x == 13 {
            panic!("unlucky");
        }
        x
    });
    assert_eq!(memo.call(1), 1);
    let err = catch_unwind(AssertUnwindSafe(|| memo.call(13)));
    assert!(err.is_err(), "the panic propagates");
    assert_eq!(memo.lookup(&13), None, "no half entry");
    assert_eq!(memo.call(1), 1);
    assert_eq!(memo.call(2), 2);
    let err = catch_unwind(AssertUnwindSafe(|| memo.call(13)));
    assert!(err.is_err(), "a second attempt computes again");
    let info = memo.info();
    assert_eq!((info.hits, info.misses, info.size), (1, 2, 2));
}

#[test]
fn waiters_recompute_after_the_leader_panics() {
    let attempts = Arc::new(AtomicUsize::new(0));
    let a = attempts.clone();
    let started = Arc::new(Barrier::new(2));
    let s = started.clone();
    let memo = Arc::new(Memo::builder().lru(4).build(move |x: u64| {
        if a.fetch_add(1, SeqCst) == 0 {
            s.wait(); // the follower is about to join the flight
            thread::sleep(Duration::from_millis(100));
            panic!("first attempt fails");
        }
        x + 1
    }));
    let leader = {
        let memo = memo.clone();
        thread::spawn(move || catch_unwind(AssertUnwindSafe(|| memo.call(5))).is_err())
    };
    started.wait();
    let follower = {
        let memo = memo.clone();
        thread::spawn(move || memo.call(5))
    };
    assert!(leader.join().unwrap(), "the leader's panic propagates");
    assert_eq!(follower.join().unwrap(), 6, "the follower recomputes");
    assert_eq!(attempts.load(SeqCst), 2);
    assert_eq!(memo.call(5), 6);
}

#[test]
fn many_threads_many_keys_stay_consistent() {
    let memo = Arc::new(Memo::builder().lru(64).build(|x: u64| x * x));
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let memo = memo.clone();
            thread::spawn(move || {
                for i in 0..5_000u64 {
                    let x = (i * 31 + t * 7) % 200;
                    assert_eq!(memo.call(x), x * x);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let info = memo.info();
    assert_eq!(info.hits + info.misses, 20_000);
    assert!(info.size <= 64);
}

#[test]
fn lru_order_stays_exact_for_one_thread_after_contention() {
    // Threads hammering hits spread the memo's lock over several stripes;
    // afterwards one thread's uses must still decide evictions exactly.
    let memo = Arc::new(
        Memo::builder()
            .lru(200)
            .keymap(RawKeymap::new())
            .build(|x: u64| x + 1),
    );
    for x in 0..200 {
        memo.call(x);
    }
    let start = Arc::new(Barrier::new(4));
    let handles: Vec<_> = (0..4u64)
        .map(|t| {
            let (memo, start) = (memo.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                for i in 0..50_000u64 {
                    let x = (i * 13 + t * 50) % 200;
                    assert_eq!(memo.call(x), x + 1);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(memo.info().misses, 200, "every contended call was a hit");
    // Use 0..100 again, in order: 100..200 are now the least recent.
    for x in 0..100 {
        memo.call(x);
    }
    for x in 200..300 {
        memo.call(x);
    }
    let info = memo.info();
    assert_eq!((info.misses, info.size), (300, 200));
    assert!(
        (0..100).all(|x| memo.lookup(&x).is_some()),
        "recently used stay"
    );
    assert!(
        (100..200).all(|x| memo.lookup(&x).is_none()),
        "least recent left"
    );
    assert_eq!(info.hits, 4 * 50_000 + 100);
}

/// Each flight has its own wait: followers of flights that end at
/// different times each get their own key's value, once per key, and a
/// leader that panics hands its flight to one of its own followers only.
#[test]
fn followers_of_several_flights_each_get_their_own_value() {
    const KEYS: u64 = 4;
    const PER_KEY: usize = 6;
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    let memo = Arc::new(Memo::builder().lru(16).build(move |x: u64| {
        let first = r.fetch_add(1, SeqCst) == 0;
        thread::sleep(Duration::from_millis(40 * (x + 1)));
        // The very first computation panics: its followers must take over.
        assert!(!(first && x == 0), "first leader fails");
        x * 10
    }));
    let barrier = Arc::new(Barrier::new(KEYS as usize * PER_KEY));
    let handles: Vec<_> = (0..KEYS)
        .flat_map(|x| (0..PER_KEY).map(move |_| x))
        .map(|x| {
            let (memo, barrier) = (memo.clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                (x, catch_unwind(AssertUnwindSafe(|| memo.call(x))))
            })
        })
        .collect();
    let mut panics = 0;
    for h in handles {
        let (x, got) = h.join().unwrap();
        match got {
            Ok(v) => assert_eq!(v, x * 10, "key {x} got another key's value"),
            Err(_) => panics += 1,
        }
    }
    assert!(panics <= 1, "only the failing leader itself panics");
    let computed = runs.load(SeqCst);
    assert!(
        (KEYS as usize..=KEYS as usize + 1).contains(&computed),
        "{computed} computations for {KEYS} keys (one retry after the panic)"
    );
}
