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
//! its policy directly ([`Striped::sole`] is that path without a general
//! guard). Once readers are seen waiting for each other, the next
//! acquisition puts every stripe in use, for good.

use std::cell::Cell;

use super::spin::SpinLock;
use super::sync::{AtomicBool, AtomicU32, AtomicUsize, Ordering, UnsafeCell};

/// Contended acquisitions after which every stripe is put in use (under
/// loom: the first, so that a model reaches the growth).
#[cfg(not(loom))]
const GROW_AFTER: u32 = 16;
#[cfg(loom)]
const GROW_AFTER: u32 = 1;

/// Stripes per lock: a power of two, at least twice the cores (under loom:
/// two, which keeps the models small).
fn stripe_count() -> usize {
    #[cfg(loom)]
    return 2;
    #[cfg(not(loom))]
    {
        let cores = std::thread::available_parallelism().map_or(4, |n| n.get());
        (cores * 2).next_power_of_two().clamp(4, 64)
    }
}

#[cfg(not(loom))]
thread_local! {
    /// This thread's number, for picking a stripe (0: not yet assigned).
    static THREAD: Cell<usize> = const { Cell::new(0) };
}
#[cfg(loom)]
loom::thread_local! {
    static THREAD: Cell<usize> = Cell::new(0);
}
#[cfg(loom)]
loom::lazy_static! {
    static ref NEXT: AtomicUsize = AtomicUsize::new(1);
}

/// A small number that differs between live threads, assigned on first use.
#[inline]
fn thread_number() -> usize {
    #[cfg(not(loom))]
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
    lock: SpinLock,
    local: UnsafeCell<S>,
}

/// Keeps its content on cache lines of its own.
#[repr(align(128))]
struct Padded<X>(X);

/// Shared data `T`, per-stripe data `S` and ordering data `X`, behind a
/// striped lock.
///
/// `X` is for work readers do now and then without stopping the others (a
/// memo's eviction order): while one stripe is in use it goes with the
/// whole lock; once every stripe is, it has a spin lock of its own, taken
/// after stripes, never before.
pub(crate) struct Striped<T, S, X> {
    stripes: Box<[Stripe<S>]>,
    /// Stripes in use: 1, or all of them. Changed only by a holder of
    /// every stripe in use, so it is stable while stripe 0 is held.
    active: AtomicUsize,
    /// Set once readers have waited for each other often enough.
    grow: AtomicBool,
    contended: AtomicU32,
    /// Away from the header, which readers read on every acquisition.
    data: Padded<UnsafeCell<T>>,
    order: Padded<(SpinLock, UnsafeCell<X>)>,
}

// SAFETY: readers on several threads share `&T` (so `T: Sync`); a writer
// gets `&mut T`, `&mut S` and `&mut X` on whatever thread it runs (so all
// `Send`). The locks make the accesses exclusive as described on `Guard`
// and `OrderGuard`.
unsafe impl<T: Send + Sync, S: Send, X: Send> Sync for Striped<T, S, X> {}
// SAFETY: moving the lock moves `T`, `X` and every `S` with it.
unsafe impl<T: Send, S: Send, X: Send> Send for Striped<T, S, X> {}

impl<T, S, X> Striped<T, S, X> {
    /// A lock over `data` and `order`, with `local()` as every stripe's data.
    pub fn new(data: T, order: X, local: impl Fn() -> S) -> Self {
        let stripes = (0..stripe_count())
            .map(|_| Stripe {
                lock: SpinLock::new(),
                local: UnsafeCell::new(local()),
            })
            .collect();
        Striped {
            stripes,
            active: AtomicUsize::new(1),
            grow: AtomicBool::new(false),
            contended: AtomicU32::new(0),
            data: Padded(UnsafeCell::new(data)),
            order: Padded((SpinLock::new(), UnsafeCell::new(order))),
        }
    }

    /// Puts every stripe in use at the next acquisition, as contention would.
    #[cfg(any(test, loom))]
    pub fn spread(&self) {
        self.grow.store(true, Ordering::Relaxed);
    }

    /// Counts a contended acquisition; enough of them ask for every stripe.
    #[cold]
    fn waited(&self) {
        if self.contended.fetch_add(1, Ordering::Relaxed) + 1 >= GROW_AFTER {
            self.grow.store(true, Ordering::Relaxed);
        }
    }

    /// Everything, for the price of one stripe, while only one stripe is in
    /// use (and no acquisition asked for more); `None` otherwise, and then
    /// [`read`](Self::read) or [`write`](Self::write) serve. The fast path
    /// of a memo used by one thread at a time: no guard bookkeeping.
    #[inline]
    pub fn sole(&self) -> Option<Sole<'_, T, S, X>> {
        if self.active.load(Ordering::Acquire) != 1 || self.grow.load(Ordering::Relaxed) {
            return None;
        }
        let stripe = &self.stripes[0];
        if stripe.lock.lock() {
            self.waited();
        }
        // `active` changes only under every stripe in use, so holding
        // stripe 0 freezes it; it may have grown while this thread waited.
        if self.active.load(Ordering::Relaxed) != 1 {
            stripe.lock.unlock();
            return None;
        }
        Some(Sole { lock: self })
    }

    /// Shared access to `T` and this thread's stripe; exclusive access when
    /// only one stripe is in use.
    #[inline]
    pub fn read(&self) -> Guard<'_, T, S, X> {
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
            if stripe.lock.lock() && active == 1 {
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
            stripe.lock.unlock();
        }
    }

    /// Exclusive access to `T` and every stripe's data.
    #[inline]
    pub fn write(&self) -> WriteGuard<'_, T, S, X> {
        let contended = self.stripes[0].lock.lock();
        if !contended
            && self.active.load(Ordering::Relaxed) == 1
            && !self.grow.load(Ordering::Relaxed)
        {
            return WriteGuard(Guard {
                lock: self,
                first: 0,
                held: 1,
                exclusive: true,
            });
        }
        self.write_slow(contended)
    }

    /// [`write`](Self::write) with stripe 0 held, when other stripes are
    /// in use, or readers waited, or every stripe is to be put in use.
    #[cold]
    fn write_slow(&self, contended: bool) -> WriteGuard<'_, T, S, X> {
        if contended && self.active.load(Ordering::Relaxed) == 1 {
            self.waited();
        }
        let mut active = self.active.load(Ordering::Relaxed);
        for stripe in &self.stripes[1..active] {
            stripe.lock.lock();
        }
        if self.grow.load(Ordering::Relaxed) {
            if active < self.stripes.len() {
                // Readers that see the new count wait for these stripes too.
                for stripe in &self.stripes[active..] {
                    stripe.lock.lock();
                }
                active = self.stripes.len();
                self.active.store(active, Ordering::Release);
            }
            // Also when a late waiter asked again after the growth.
            self.grow.store(false, Ordering::Relaxed);
        }
        WriteGuard(Guard {
            lock: self,
            first: 0,
            held: active,
            exclusive: true,
        })
    }
}

/// Holds stripes `first .. first + held` of a [`Striped`] lock.
///
/// The guard gives `&T` while it holds any stripe, `&mut T` and every
/// stripe's `&mut S` when it holds every stripe in use (`exclusive`), and
/// its own stripe's `&mut S` always: no other guard can then hold the same
/// stripe, and a guard holding all of them excludes every other guard.
pub(crate) struct Guard<'a, T, S, X> {
    lock: &'a Striped<T, S, X>,
    first: usize,
    held: usize,
    exclusive: bool,
}

/// Holds stripe 0 while it is the only stripe in use: then no other guard
/// exists, and this one reaches `T` and `X` (see [`Striped::sole`]).
pub(crate) struct Sole<'a, T, S, X> {
    lock: &'a Striped<T, S, X>,
}

impl<T, S, X> Sole<'_, T, S, X> {
    /// The shared data and the ordering data.
    #[inline]
    pub fn parts(&mut self) -> (&mut T, &mut X) {
        // SAFETY: every guard holds stripe 0 while only one stripe is in
        // use, and `active` cannot grow while this one holds it: no other
        // guard exists. `X` goes with the whole lock in that mode.
        unsafe {
            (
                &mut *self.lock.data.0.get_mut(),
                &mut *self.lock.order.0 .1.get_mut(),
            )
        }
    }
}

impl<T, S, X> Drop for Sole<'_, T, S, X> {
    #[inline]
    fn drop(&mut self) {
        self.lock.stripes[0].lock.unlock();
    }
}

/// What a guard holding every stripe in use reaches.
pub(crate) struct Parts<'g, T, S, X> {
    /// Only one stripe is in use.
    pub single: bool,
    pub data: &'g mut T,
    pub locals: Locals<'g, S>,
    pub order: OrderGuard<'g, X>,
}

/// The data of every stripe in use, held by a guard.
pub(crate) struct Locals<'g, S> {
    stripes: &'g [Stripe<S>],
}

impl<S> Locals<'_, S> {
    /// Calls `f` with each stripe's data.
    pub fn for_each(&mut self, mut f: impl FnMut(&mut S)) {
        for stripe in self.stripes {
            // SAFETY: the guard these came from holds every one of them,
            // and `&mut self` makes the calls one at a time.
            f(unsafe { &mut *stripe.local.get_mut() });
        }
    }
}

/// Access to the ordering data `X`: through its own lock, or (`lock`
/// `None`) through a guard holding the only stripe in use.
pub(crate) struct OrderGuard<'g, X> {
    cell: &'g UnsafeCell<X>,
    lock: Option<&'g SpinLock>,
}

impl<X> std::ops::Deref for OrderGuard<'_, X> {
    type Target = X;
    fn deref(&self) -> &X {
        // SAFETY: see `deref_mut`.
        unsafe { &*self.cell.get() }
    }
}

impl<X> std::ops::DerefMut for OrderGuard<'_, X> {
    fn deref_mut(&mut self) -> &mut X {
        // SAFETY: either this holds the order lock, which every user of `X`
        // takes while more than one stripe is in use, or it borrows a guard
        // holding the only stripe in use (`active` never shrinks).
        unsafe { &mut *self.cell.get_mut() }
    }
}

impl<X> Drop for OrderGuard<'_, X> {
    fn drop(&mut self) {
        if let Some(lock) = self.lock {
            lock.unlock();
        }
    }
}

impl<T, S, X> Guard<'_, T, S, X> {
    /// The shared data and this guard's stripe data (any guard).
    #[inline]
    pub fn shared(&mut self) -> (&T, &mut S) {
        // SAFETY: the guard holds stripe `first`; writers of `T` hold every
        // stripe in use, so none is active; `S` of a held stripe is ours.
        unsafe {
            (
                &*self.lock.data.0.get(),
                &mut *self.lock.stripes[self.first].local.get_mut(),
            )
        }
    }

    /// The shared data, this guard's stripe data and the ordering data:
    /// at once with one stripe in use, else if its lock is free or (`wait`)
    /// once it is.
    pub fn shared_and_order(&mut self, wait: bool) -> (&T, &mut S, Option<OrderGuard<'_, X>>) {
        let lock = &self.lock.order.0 .0;
        let order = if self.single() {
            Some(None)
        } else if wait {
            lock.lock();
            Some(Some(lock))
        } else {
            lock.try_lock().then_some(Some(lock))
        };
        let order = order.map(|lock| OrderGuard {
            cell: &self.lock.order.0 .1,
            lock,
        });
        let (data, local) = self.shared();
        (data, local, order)
    }

    /// Whether only one stripe is in use (readers then hold everything).
    #[inline]
    pub fn single(&self) -> bool {
        self.exclusive && self.held == 1
    }

    /// The shared data, writable, when this guard holds every stripe in use
    /// (a lone reader's; writers have [`WriteGuard`]).
    #[cfg(test)]
    pub fn exclusive(&mut self) -> Option<&mut T> {
        self.exclusive.then(|| self.data_held())
    }

    /// The shared data, writable. The caller has checked `exclusive`.
    #[inline]
    fn data_held(&mut self) -> &mut T {
        debug_assert!(self.exclusive);
        // SAFETY: every stripe in use is held (`exclusive`, checked by the
        // caller): no other guard exists.
        unsafe { &mut *self.lock.data.0.get_mut() }
    }

    /// Everything, when this guard holds every stripe in use: the shared
    /// data, the stripes' data and the ordering data (whose lock this takes
    /// when more than one stripe is in use). A lone reader's; writers have
    /// [`WriteGuard`].
    #[cfg(test)]
    pub fn parts(&mut self) -> Option<Parts<'_, T, S, X>> {
        self.exclusive.then(|| self.parts_held())
    }

    /// [`parts`](Self::parts); the caller has checked `exclusive`.
    #[inline]
    fn parts_held(&mut self) -> Parts<'_, T, S, X> {
        debug_assert!(self.exclusive);
        let lock = &self.lock.order.0 .0;
        let lock = if self.held == 1 {
            None
        } else {
            lock.lock();
            Some(lock)
        };
        Parts {
            single: self.held == 1,
            // SAFETY: every stripe in use is held (`exclusive`, checked by
            // the caller): no other guard exists.
            data: unsafe { &mut *self.lock.data.0.get_mut() },
            locals: Locals {
                stripes: &self.lock.stripes[..self.held],
            },
            order: OrderGuard {
                cell: &self.lock.order.0 .1,
                lock,
            },
        }
    }
}

/// A [`Guard`] that holds every stripe in use, from [`Striped::write`]:
/// its shared data and parts are always there.
pub(crate) struct WriteGuard<'a, T, S, X>(Guard<'a, T, S, X>);

impl<T, S, X> WriteGuard<'_, T, S, X> {
    /// The shared data, writable.
    #[inline]
    pub fn data(&mut self) -> &mut T {
        self.0.data_held()
    }

    /// The shared data, the stripes' data and the ordering data.
    #[inline]
    pub fn parts(&mut self) -> Parts<'_, T, S, X> {
        self.0.parts_held()
    }

    /// Whether only one stripe is in use.
    #[cfg(test)]
    pub fn single(&self) -> bool {
        self.0.single()
    }
}

impl<T, S, X> Drop for Guard<'_, T, S, X> {
    #[inline]
    fn drop(&mut self) {
        if self.held == 1 {
            self.lock.stripes[self.first].lock.unlock();
            return;
        }
        for stripe in self.lock.stripes[self.first..self.first + self.held]
            .iter()
            .rev()
        {
            stripe.lock.unlock();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;

    #[test]
    fn a_lone_reader_is_exclusive_until_readers_contend() {
        let lock: Striped<u64, u64, u64> = Striped::new(0, 0, || 0);
        {
            let mut g = lock.read();
            assert!(g.single());
            let parts = g.parts().expect("one stripe in use");
            *parts.data += 1;
            let mut order = parts.order;
            *order += 1;
        }
        {
            let mut g = lock.read();
            let (_, _, order) = g.shared_and_order(false);
            assert_eq!(*order.expect("the order goes with the only stripe"), 1);
        }
        {
            let mut sole = lock.sole().expect("one stripe in use");
            let (data, order) = sole.parts();
            assert_eq!((*data, *order), (1, 1));
        }
        // Contention makes the next acquisition put every stripe in use.
        for _ in 0..GROW_AFTER {
            lock.waited();
        }
        assert!(
            lock.sole().is_none(),
            "a lock asked to grow has no sole path"
        );
        let mut g = lock.read();
        assert!(g.exclusive().is_none() && !g.single(), "readers now share");
        let (data, local) = g.shared();
        assert_eq!(*data, 1);
        *local += 1;
        let (_, _, order) = g.shared_and_order(false);
        *order.expect("its lock is free") += 1;
        drop(g);
        let mut w = lock.write();
        assert!(!w.single());
        let mut parts = w.parts();
        *parts.data += 1;
        assert_eq!(*parts.order, 2);
        let mut sum = 0;
        parts.locals.for_each(|l| sum += *l);
        assert_eq!(sum, 1);
        drop(parts);
        drop(w);
        assert_eq!(lock.active.load(Ordering::Relaxed), lock.stripes.len());
    }

    #[test]
    fn readers_writers_and_order_users_exclude_each_other() {
        // Writers add 1 to both halves of a pair; readers must never see
        // them differ, and the sum of every increment must survive. The
        // order counter is bumped by writers and by lone order users.
        let lock: Striped<(u64, u64), u64, u64> = Striped::new((0, 0), 0, || 0);
        let threads = 4;
        let rounds = 20_000;
        let start = Barrier::new(threads);
        std::thread::scope(|s| {
            for t in 0..threads {
                let (lock, start) = (&lock, &start);
                s.spawn(move || {
                    start.wait();
                    for i in 0..rounds {
                        match (i + t) % 8 {
                            0 | 4 => {
                                let mut w = lock.write();
                                let mut parts = w.parts();
                                parts.data.0 += 1;
                                std::hint::black_box(&parts.data);
                                parts.data.1 += 1;
                                *parts.order += 1;
                            }
                            1 => {
                                let mut r = lock.read();
                                let (_, _, order) = r.shared_and_order(t % 2 == 0);
                                match order {
                                    Some(mut order) => *order += 1,
                                    None => {
                                        drop(order);
                                        drop(r);
                                        *lock.write().parts().order += 1;
                                    }
                                }
                            }
                            7 if lock.sole().is_some() => {
                                // The sole path, until the lock grows (the
                                // probe above took and released it).
                                let mut sole = lock.sole();
                                match sole.as_mut().map(Sole::parts) {
                                    Some((data, _)) => {
                                        assert_eq!(data.0, data.1);
                                        data.0 += 1;
                                        data.1 += 1;
                                    }
                                    None => {
                                        drop(sole);
                                        let mut r = lock.read();
                                        let (data, local) = r.shared();
                                        assert_eq!(data.0, data.1);
                                        *local += 1;
                                    }
                                }
                            }
                            _ => {
                                let mut r = lock.read();
                                if r.single() {
                                    let parts = r.parts().expect("the only stripe");
                                    assert_eq!(parts.data.0, parts.data.1);
                                    parts.data.0 += 1;
                                    parts.data.1 += 1;
                                } else {
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
        let mut parts = w.parts();
        let mut shared_reads = 0;
        parts.locals.for_each(|l| shared_reads += *l);
        assert_eq!(parts.data.0, parts.data.1);
        let per_thread = rounds as u64 / 8;
        assert_eq!(*parts.order, threads as u64 * per_thread * 3);
        assert_eq!(
            parts.data.0 + shared_reads,
            threads as u64 * per_thread * 8 - threads as u64 * per_thread
        );
    }
}
