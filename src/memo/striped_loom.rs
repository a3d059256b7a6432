//! Model checks of the striped lock with loom (`--cfg loom`): every
//! interleaving of the lock's atomic operations (bounded by
//! `LOOM_MAX_PREEMPTIONS`), with loom tracking each access to the data
//! the lock guards. Run by `.ci/run`:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 \
//!     cargo test --release --lib memo::striped_loom
//! ```
//!
//! Each model reaches the unsafe blocks of `striped.rs` it names.

use loom::sync::Arc;
use loom::thread;

use super::striped::Striped;

/// Shared data whose two halves a writer changes together: a reader that
/// ever sees them differ saw a write in progress.
type Pair = (u64, u64);

/// Runs `f` under loom, with room for the branches of spinning waiters
/// (each spin is a point where loom may switch threads).
pub(super) fn model(f: impl Fn() + Sync + Send + 'static) {
    model_bounded(None, f);
}

/// [`model`] with at most `preemptions` preemptions per interleaving
/// (`None`: `LOOM_MAX_PREEMPTIONS`), for models of three threads, whose
/// spinning waiters multiply the interleavings.
pub(super) fn model_bounded(preemptions: Option<usize>, f: impl Fn() + Sync + Send + 'static) {
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    let runs = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&runs);
    let mut builder = loom::model::Builder::new();
    builder.max_branches = 100_000;
    if preemptions.is_some() {
        builder.preemption_bound = preemptions;
    }
    builder.check(move || {
        counted.fetch_add(1, Relaxed);
        f();
    });
    let runs = runs.load(Relaxed);
    println!("{runs} interleavings explored");
    assert!(runs > 1, "loom explored one interleaving only");
}

fn lock() -> Arc<Striped<Pair, u64, u64>> {
    Arc::new(Striped::new((0, 0), 0, || 0))
}

/// A writer's change: both halves and the order.
fn write(lock: &Striped<Pair, u64, u64>) {
    let mut w = lock.write();
    let parts = w.parts();
    parts.data.0 += 1;
    parts.data.1 += 1;
    let mut order = parts.order;
    *order += 1;
}

/// A reader: checks the halves, counts itself in its stripe (or, holding
/// the only stripe, in the shared data and the order).
fn read(lock: &Striped<Pair, u64, u64>) {
    let mut r = lock.read();
    if r.single() {
        let parts = r.parts().expect("the only stripe");
        assert_eq!(parts.data.0, parts.data.1, "a write seen half done");
        parts.data.0 += 1;
        parts.data.1 += 1;
        let mut order = parts.order;
        *order += 1;
    } else {
        let (data, local) = r.shared();
        assert_eq!(data.0, data.1, "a write seen half done");
        *local += 1;
    }
}

/// Every count the threads made: in the shared data, and still in stripes.
fn total(lock: &Striped<Pair, u64, u64>) -> (u64, u64) {
    let mut w = lock.write();
    let mut parts = w.parts();
    let mut logged = 0;
    parts.locals.for_each(|l| logged += *l);
    let data = parts.data.0;
    let order = *parts.order;
    (data + logged, order)
}

/// The lone-thread fast path (`sole`) against a second thread arriving
/// with a read: the data is never seen half written, nothing is lost.
/// Reaches `Sole::parts`, `Guard::shared`, `Guard::parts`, `Locals`.
#[test]
fn the_sole_path_against_a_second_thread_arriving() {
    model(|| {
        let lock = lock();
        let other = {
            let lock = Arc::clone(&lock);
            thread::spawn(move || read(&lock))
        };
        match lock.sole() {
            Some(mut sole) => {
                let (data, order) = sole.parts();
                data.0 += 1;
                data.1 += 1;
                *order += 1;
            }
            None => write(&lock),
        }
        other.join().unwrap();
        let (counted, _) = total(&lock);
        assert_eq!(counted, 2, "two acquisitions, two counts");
    });
}

/// A contended reader logs in its stripe while a writer folds the logs
/// into the shared data (as a replay does): every count ends up exactly
/// once. Reaches `Guard::shared`, `WriteGuard::parts`, `Locals::for_each`.
/// (Two readers and a writer, with their spinning, are beyond what loom
/// explores in CI's time: the reader reads twice instead.)
#[test]
fn a_reader_logs_while_a_writer_replays() {
    model(|| {
        let lock = lock();
        lock.spread();
        let readers: Vec<_> = (0..1)
            .map(|_| {
                let lock = Arc::clone(&lock);
                thread::spawn(move || {
                    read(&lock);
                    read(&lock);
                })
            })
            .collect();
        {
            // The replay: move every stripe's count into the data.
            let mut w = lock.write();
            let mut parts = w.parts();
            let mut moved = 0;
            parts.locals.for_each(|l| {
                moved += *l;
                *l = 0;
            });
            parts.data.0 += moved;
            parts.data.1 += moved;
        }
        for r in readers {
            r.join().unwrap();
        }
        assert_eq!(total(&lock).0, 2);
    });
}

/// Two readers contending on one stripe ask for every stripe; the growth
/// happens under the write path while the other thread reads or writes.
/// Reaches `write_slow`'s growth and both guard kinds.
#[test]
fn contention_grows_the_lock_without_losing_a_count() {
    model(|| {
        let lock = lock();
        let threads: Vec<_> = (0..2)
            .map(|i| {
                let lock = Arc::clone(&lock);
                thread::spawn(move || {
                    read(&lock);
                    if i == 0 {
                        write(&lock);
                    } else {
                        read(&lock);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let (counted, _) = total(&lock);
        assert_eq!(counted, 4, "three reads and a write");
    });
}

/// A writer's exclusive access against readers on every stripe: readers
/// never see a write half done. Reaches `WriteGuard::data`.
#[test]
fn an_exclusive_write_against_readers() {
    model(|| {
        let lock = lock();
        lock.spread();
        let reader = {
            let lock = Arc::clone(&lock);
            thread::spawn(move || read(&lock))
        };
        {
            let mut w = lock.write();
            let data = w.data();
            data.0 += 10;
            data.1 += 10;
        }
        reader.join().unwrap();
        assert_eq!(total(&lock).0, 11);
    });
}

/// Readers take the order's own lock (as a stripe replaying a full log
/// does) against a writer taking it with every stripe: the order's count
/// is exact. Reaches `shared_and_order` and `OrderGuard`.
#[test]
fn the_order_lock_against_a_writer() {
    model(|| {
        let lock = lock();
        lock.spread();
        let reader = {
            let lock = Arc::clone(&lock);
            thread::spawn(move || {
                let mut r = lock.read();
                let (_, _, order) = r.shared_and_order(true);
                *order.expect("waited for") += 1;
            })
        };
        write(&lock);
        reader.join().unwrap();
        assert_eq!(total(&lock).1, 2);
    });
}
