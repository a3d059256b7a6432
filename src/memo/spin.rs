//! The lock of one stripe of [`Striped`](super::striped::Striped): a spin
//! lock that yields its time slice after a short spin.
//!
//! Built with `--cfg klepto_parking_stripes`, the stripes are parking_lot's
//! mutexes instead (spin, then park the thread): the comparison that
//! `outside/memo`'s `oversubscribed` measures (see the README's
//! reliability section). Not a supported configuration.

#[cfg(not(klepto_parking_stripes))]
use super::sync::{spin_loop, yield_now, AtomicBool, Ordering};

/// Spins before a waiter starts yielding its time slice.
#[cfg(not(klepto_parking_stripes))]
const SPINS: u32 = 64;

/// A spin lock: one compare-and-swap to take, one store to release.
#[cfg(not(klepto_parking_stripes))]
pub(crate) struct SpinLock {
    locked: AtomicBool,
}

#[cfg(not(klepto_parking_stripes))]
impl SpinLock {
    pub(crate) fn new() -> Self {
        SpinLock {
            locked: AtomicBool::new(false),
        }
    }

    /// One attempt to take the lock.
    #[inline]
    fn acquire(&self) -> bool {
        self.locked
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Takes the lock; `true` when it had to wait.
    #[inline]
    pub(crate) fn lock(&self) -> bool {
        if self.acquire() {
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
                    spin_loop();
                } else {
                    yield_now();
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

    /// Takes the lock if it is free (looking first: a failed attempt
    /// would take the cache line from its holder).
    #[inline]
    pub(crate) fn try_lock(&self) -> bool {
        !self.locked.load(Ordering::Relaxed) && self.acquire()
    }

    #[inline]
    pub(crate) fn unlock(&self) {
        self.locked.store(false, Ordering::Release);
    }
}

/// parking_lot's mutex in the spin lock's place (see the module's doc).
#[cfg(klepto_parking_stripes)]
pub(crate) struct SpinLock(parking_lot::RawMutex);

#[cfg(klepto_parking_stripes)]
impl SpinLock {
    pub(crate) fn new() -> Self {
        SpinLock(<parking_lot::RawMutex as parking_lot::lock_api::RawMutex>::INIT)
    }

    /// Takes the lock; `true` when it had to wait.
    #[inline]
    pub(crate) fn lock(&self) -> bool {
        use parking_lot::lock_api::RawMutex;
        if self.0.try_lock() {
            return false;
        }
        self.0.lock();
        true
    }

    /// Takes the lock if it is free.
    #[inline]
    pub(crate) fn try_lock(&self) -> bool {
        use parking_lot::lock_api::RawMutex;
        self.0.try_lock()
    }

    #[inline]
    pub(crate) fn unlock(&self) {
        use parking_lot::lock_api::RawMutex;
        // SAFETY: only the holder unlocks (the callers in `striped.rs`
        // unlock what they locked, once).
        unsafe { self.0.unlock() }
    }
}
