//! The primitives of the striped lock: the standard library's, or loom's
//! when the crate is built with `--cfg loom` to model-check the lock
//! (`src/memo/striped_loom.rs`; see the README's reliability section).

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

/// An `UnsafeCell` whose pointers are taken for reading ([`get`](Self::get))
/// or writing ([`get_mut`](Self::get_mut)). Under loom each is a tracked
/// access, so loom checks that it is ordered after every conflicting
/// access of another thread.
pub(crate) struct UnsafeCell<T>(
    #[cfg(not(loom))] std::cell::UnsafeCell<T>,
    #[cfg(loom)] loom::cell::UnsafeCell<T>,
);

impl<T> UnsafeCell<T> {
    pub(crate) fn new(value: T) -> Self {
        #[cfg(not(loom))]
        return UnsafeCell(std::cell::UnsafeCell::new(value));
        #[cfg(loom)]
        return UnsafeCell(loom::cell::UnsafeCell::new(value));
    }

    /// A pointer to read through.
    #[inline]
    pub(crate) fn get(&self) -> *const T {
        #[cfg(not(loom))]
        return self.0.get();
        #[cfg(loom)]
        return self.0.with(|p| p);
    }

    /// A pointer to write through.
    #[inline]
    pub(crate) fn get_mut(&self) -> *mut T {
        #[cfg(not(loom))]
        return self.0.get();
        #[cfg(loom)]
        return self.0.with_mut(|p| p);
    }
}

/// A hint inside a spin loop (under loom: a point where another thread runs).
#[inline]
pub(crate) fn spin_loop() {
    #[cfg(not(loom))]
    std::hint::spin_loop();
    #[cfg(loom)]
    loom::hint::spin_loop();
}

/// Gives up the rest of the time slice.
#[inline]
pub(crate) fn yield_now() {
    #[cfg(not(loom))]
    std::thread::yield_now();
    #[cfg(loom)]
    loom::thread::yield_now();
}
