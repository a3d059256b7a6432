//! A reader-writer lock striped by thread, for a memo's memory.
//!
//! The shared data `T` is guarded by an array of small spin locks
//! (*stripes*), each with some per-stripe data `S`. A reader takes one
//! stripe, picked by its thread, and may read `T` and write its stripe's
//! `S`; a writer takes every stripe in use and may write everything. Readers
//! on different threads take different stripes, so hits touch no cache line
//! another thread writes, and they scale with the cores.
//!
//! A lock is one compare-and-swap and an unlock one plain store: on the
//! machines this crate is measured on an atomic read-modify-write costs as
//! much as the rest of a hit, and the usual mutexes take two. A lock is held
//! for a table lookup and a clone, never while user code computes; a waiter
//! spins briefly, then yields its time slice.
//!
//! A new lock starts with a single stripe in use: a reader then holds the
//! only stripe, which makes it a writer too ([`Guard::exclusive`]), so a
//! memo used by one thread at a time pays for one lock per call and updates
//! its policy directly. Once readers are seen waiting for each other, the
//! next acquisition puts every stripe in use, for good.

use std::cell::{Cell, UnsafeCell};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

/// Spins before a waiter starts yielding its time slice.
const SPINS: u32 = 64;
/// Contended acquisitions after which every stripe is put in use.
const GROW_AFTER: u32 = 16;

/// Stripes per lock: a power of two, at least twice the cores.
fn stripe_count() -> usize {
    let cores = std::thread::available_parallelism().map_or(4, |n| n.get());
    (cores * 2).next_power_of_two().clamp(4, 64)
}

thread_local! {
    /// This thread's number, for picking a stripe (0: not yet assigned).
    static THREAD: Cell<usize> = const { Cell::new(0) };
}

/// A small number that differs between live threads, assigned on first use.
#[inline]
fn thread_number() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(1);
    THREAD.with(|n| {
        if n.get() == 0 {
            n.set(NEXT.fetch_add(1, Ordering::Relaxed));
        }
        n.get()
    })
}

/// One stripe: a spin lock and the data it guards, on its own cache lines.
#[repr(align(128))]
struct Stripe<S> {
    locked: AtomicBool,
    local: UnsafeCell<S>,
}

impl<S> Stripe<S> {
    /// Takes the lock; `true` when it had to wait.
    #[inline]
    fn lock(&self) -> bool {
        if self
            .locked
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return false;
        }
        self.lock_slow();
        true
    }

    #[cold]
    fn lock_slow(&self) {
        let mut spins = 0;
        loop {
            while self.locked.load(Ordering::Relaxed) {
                if spins < SPINS {
                    spins += 1;
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
            }
            if self
                .locked
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
        }
    }

    #[inline]
    fn unlock(&self) {
        self.locked.store(false, Ordering::Release);
    }
}

/// Shared data `T` with per-stripe data `S`, behind a striped lock.
pub(crate) struct Striped<T, S> {
    stripes: Box<[Stripe<S>]>,
    /// Stripes in use: 1, or all of them. Changed only by a holder of
    /// every stripe in use, so it is stable while stripe 0 is held.
    active: AtomicUsize,
    /// Set once readers have waited for each other often enough.
    grow: AtomicBool,
    contended: AtomicU32,
    /// Away from the header, which readers read on every acquisition.
    data: Padded<UnsafeCell<T>>,
}

/// Keeps its content on cache lines of its own.
#[repr(align(128))]
struct Padded<X>(X);

// SAFETY: readers on several threads share `&T` (so `T: Sync`); a writer
// gets `&mut T` and `&mut S` on whatever thread it runs (so both `Send`).
// The locks make the accesses exclusive as described on `Guard`.
unsafe impl<T: Send + Sync, S: Send> Sync for Striped<T, S> {}
// SAFETY: moving the lock moves `T` and every `S` with it.
unsafe impl<T: Send, S: Send> Send for Striped<T, S> {}

impl<T, S> Striped<T, S> {
    /// A lock over `data`, with `local()` as every stripe's data.
    pub fn new(data: T, local: impl Fn() -> S) -> Self {
        let stripes = (0..stripe_count())
            .map(|_| Stripe {
                locked: AtomicBool::new(false),
                local: UnsafeCell::new(local()),
            })
            .collect();
        Striped {
            stripes,
            active: AtomicUsize::new(1),
            grow: AtomicBool::new(false),
            contended: AtomicU32::new(0),
            data: Padded(UnsafeCell::new(data)),
        }
    }

    /// Counts a contended acquisition; enough of them ask for every stripe.
    #[cold]
    fn waited(&self) {
        if self.contended.fetch_add(1, Ordering::Relaxed) + 1 >= GROW_AFTER {
            self.grow.store(true, Ordering::Relaxed);
        }
    }

    /// Shared access to `T` and this thread's stripe; exclusive access when
    /// only one stripe is in use.
    #[inline]
    pub fn read(&self) -> Guard<'_, T, S> {
        loop {
            if self.grow.load(Ordering::Relaxed) {
                drop(self.write()); // puts every stripe in use
            }
            let active = self.active.load(Ordering::Acquire);
            let index = if active == 1 {
                0
            } else {
                thread_number() & (active - 1)
            };
            let stripe = &self.stripes[index];
            if stripe.lock() && active == 1 {
                self.waited();
            }
            // Holding a stripe below `active` freezes `active`: a change
            // needs every stripe in use. It moved only if it grew before
            // this stripe was taken; then the thread's stripe may differ.
            if self.active.load(Ordering::Relaxed) == active {
                return Guard {
                    lock: self,
                    first: index,
                    held: 1,
                    exclusive: active == 1,
                };
            }
            stripe.unlock();
        }
    }

    /// Exclusive access to `T` and every stripe's data.
    pub fn write(&self) -> Guard<'_, T, S> {
        if self.stripes[0].lock() && self.active.load(Ordering::Relaxed) == 1 {
            self.waited();
        }
        let mut active = self.active.load(Ordering::Relaxed);
        for stripe in &self.stripes[1..active] {
            stripe.lock();
        }
        if active < self.stripes.len() && self.grow.load(Ordering::Relaxed) {
            // Readers that see the new count wait for these stripes too.
            for stripe in &self.stripes[active..] {
                stripe.lock();
            }
            active = self.stripes.len();
            self.active.store(active, Ordering::Release);
            self.grow.store(false, Ordering::Relaxed);
        }
        Guard {
            lock: self,
            first: 0,
            held: active,
            exclusive: true,
        }
    }
}

/// Holds stripes `first .. first + held` of a [`Striped`] lock.
///
/// The guard gives `&T` while it holds any stripe, `&mut T` and every
/// stripe's `&mut S` when it holds every stripe in use (`exclusive`), and
/// its own stripe's `&mut S` always: no other guard can then hold the same
/// stripe, and a guard holding all of them excludes every other guard.
pub(crate) struct Guard<'a, T, S> {
    lock: &'a Striped<T, S>,
    first: usize,
    held: usize,
    exclusive: bool,
}

impl<T, S> Guard<'_, T, S> {
    /// The shared data and this guard's stripe data (any guard).
    #[inline]
    pub fn shared(&mut self) -> (&T, &mut S) {
        // SAFETY: the guard holds stripe `first`; writers of `T` hold every
        // stripe in use, so none is active; `S` of a held stripe is ours.
        unsafe {
            (
                &*self.lock.data.0.get(),
                &mut *self.lock.stripes[self.first].local.get(),
            )
        }
    }

    /// Whether only one stripe is in use (readers then hold everything).
    #[inline]
    pub fn single(&self) -> bool {
        self.exclusive && self.held == 1
    }

    /// The shared data, writable, when this guard holds every stripe in use.
    #[inline]
    pub fn exclusive(&mut self) -> Option<&mut T> {
        // SAFETY: every stripe in use is held: no other guard exists.
        self.exclusive
            .then(|| unsafe { &mut *self.lock.data.0.get() })
    }

    /// The shared data and the data of every stripe in use, when this guard
    /// holds every stripe in use.
    pub fn everything(&mut self) -> Option<(&mut T, impl Iterator<Item = &mut S> + '_)> {
        if !self.exclusive {
            return None;
        }
        let stripes = &self.lock.stripes[..self.held];
        // SAFETY: as for `exclusive`; stripes beyond `held` are not in use
        // and their data is never touched while they are not.
        Some(unsafe {
            (
                &mut *self.lock.data.0.get(),
                stripes.iter().map(|s| &mut *s.local.get()),
            )
        })
    }
}

impl<T, S> Drop for Guard<'_, T, S> {
    #[inline]
    fn drop(&mut self) {
        for stripe in self.lock.stripes[self.first..self.first + self.held]
            .iter()
            .rev()
        {
            stripe.unlock();
        }
    }
}

/// A value reachable only through `&mut`: shared references to it give
/// access to nothing, so it is `Sync` whenever it is `Send`. Lets data
/// that only writers use (a memo's policy) live beside data readers share.
pub(crate) struct Exclusive<X>(X);

// SAFETY: `&Exclusive<X>` exposes no `&X`; `get` needs `&mut self`.
unsafe impl<X: Send> Sync for Exclusive<X> {}

impl<X> Exclusive<X> {
    pub fn new(value: X) -> Self {
        Exclusive(value)
    }

    pub fn get(&mut self) -> &mut X {
        &mut self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;

    #[test]
    fn a_lone_reader_is_exclusive_until_readers_contend() {
        let lock: Striped<u64, u64> = Striped::new(0, || 0);
        {
            let mut g = lock.read();
            *g.exclusive().expect("one stripe in use") += 1;
        }
        // Contention makes the next acquisition put every stripe in use.
        for _ in 0..GROW_AFTER {
            lock.waited();
        }
        let mut g = lock.read();
        assert!(g.exclusive().is_none(), "readers now share");
        let (data, local) = g.shared();
        assert_eq!(*data, 1);
        *local += 1;
        drop(g);
        let mut w = lock.write();
        let (data, locals) = w.everything().expect("a writer holds everything");
        *data += 1;
        assert_eq!(locals.map(|l| *l).sum::<u64>(), 1);
        assert_eq!(lock.active.load(Ordering::Relaxed), lock.stripes.len());
    }

    #[test]
    fn readers_and_writers_exclude_each_other() {
        // Writers add 1 to both halves of a pair; readers must never see
        // them differ, and the sum of every increment must survive.
        let lock: Striped<(u64, u64), u64> = Striped::new((0, 0), || 0);
        let threads = 4;
        let rounds = 20_000;
        let start = Barrier::new(threads);
        std::thread::scope(|s| {
            for t in 0..threads {
                let (lock, start) = (&lock, &start);
                s.spawn(move || {
                    start.wait();
                    for i in 0..rounds {
                        if (i + t) % 4 == 0 {
                            let mut w = lock.write();
                            let (data, _) = w.everything().expect("exclusive");
                            data.0 += 1;
                            std::hint::black_box(&data);
                            data.1 += 1;
                        } else {
                            let mut r = lock.read();
                            match r.exclusive() {
                                Some(data) => {
                                    assert_eq!(data.0, data.1);
                                    data.0 += 1;
                                    data.1 += 1;
                                }
                                None => {
                                    let (data, local) = r.shared();
                                    assert_eq!(data.0, data.1);
                                    *local += 1;
                                }
                            }
                        }
                    }
                });
            }
        });
        let mut w = lock.write();
        let (data, locals) = w.everything().expect("exclusive");
        let shared_reads: u64 = locals.map(|l| *l).sum();
        assert_eq!(data.0, data.1);
        assert_eq!(data.0 + shared_reads, (threads * rounds) as u64);
    }
}
