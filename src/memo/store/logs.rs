//! The hits that readers make while threads contend: each stripe logs
//! them ([`Local`]), stamped with a global epoch ([`stamp`]), and a writer
//! replays every log into the policy in stamp order before it decides
//! anything ([`Store::replay`]); on one stripe, hits reach the policy at
//! once and nothing is logged.

use std::cell::Cell;
use std::hash::Hash;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

use super::memory::Order;
use super::{MemoryParts, Store};
use crate::policy::{Policy, Slot};

/// A stripe's log is replayed once it holds this many touches, if the
/// eviction order is free: 96 KiB of 12-byte touches. A longer log replays
/// less often, and skips more of the hits that a later hit on the same
/// entry makes moot (8,192 against 4,096 of 16 bytes: 5-10% more hits per
/// second from two threads on the project's VM).
pub(super) const LOG_LIMIT: usize = 8192;
/// A stripe's log is replayed, waiting for the order, at this many touches.
pub(super) const LOG_CAP: usize = 4 * LOG_LIMIT;

/// A recorded hit, replayed into the policy later.
#[derive(Clone, Copy)]
pub(super) struct Touch {
    pub(super) stamp: u32,
    pub(super) slot: Slot,
    pub(super) generation: u32,
}

/// The epoch: a touch is stamped with it, and a thread that took stamps
/// advances it when it ends (in its thread-local destructors). A touch made
/// after a thread ended (and was joined by its handle) thus has a higher
/// stamp than every touch of that thread, and replays after them; touches
/// of threads running at the same time may share a stamp, and then replay
/// in their logs' order (one order they could have happened in). A
/// thread's own touches are in one log, in order. Read on every logged
/// hit, written when threads end: the cache line stays shared.
static EPOCH: AtomicU32 = AtomicU32::new(0);

thread_local! {
    /// Whether this thread will advance [`EPOCH`] when it ends. Without a
    /// destructor, checking it is one load.
    static STAMPING: Cell<bool> = const { Cell::new(false) };
    /// Advances [`EPOCH`] when the thread ends; registered by its first
    /// stamp.
    static AT_EXIT: AdvanceAtExit = const { AdvanceAtExit };
}

/// See [`AT_EXIT`].
struct AdvanceAtExit;

impl Drop for AdvanceAtExit {
    fn drop(&mut self) {
        // Saturating: after 4 billion threads, touches of threads that ended
        // and of later ones may share a stamp (their order is then the
        // logs', as for threads running at the same time).
        let _ = EPOCH.fetch_update(Relaxed, Relaxed, |e| e.checked_add(1));
    }
}

/// Makes this thread advance the epoch when it ends.
#[cold]
#[inline(never)]
fn advance_at_exit() {
    // Fails only while the thread's destructors run: its touches from then
    // on may share a stamp with a later thread's, and are then ordered as
    // those of threads running at the same time.
    if AT_EXIT.try_with(|_| ()).is_ok() {
        STAMPING.with(|s| s.set(true));
    }
}

/// The stamp of a touch made now: the epoch.
#[inline]
pub(super) fn stamp() -> u32 {
    if !STAMPING.with(Cell::get) {
        advance_at_exit();
    }
    EPOCH.load(Relaxed)
}

/// What one stripe guards: the hits its readers made and did not yet
/// replay.
#[derive(Default)]
pub(super) struct Local {
    pub(super) log: Vec<Touch>,
    pub(super) hits: u64,
}

impl<P: Policy> Order<P> {
    /// Applies `touches` (in stamp order) to the policy, skipping those of
    /// entries evicted since; leaves `touches` empty.
    pub(super) fn apply(&mut self, touches: &mut Vec<Touch>) {
        let first = if P::LAST_HIT_ONLY {
            self.last_hits(touches)
        } else {
            0
        };
        for t in touches.drain(..).skip(first) {
            let meta = self.slots[t.slot as usize];
            if meta.generation == t.generation {
                self.policy.on_hit(t.slot);
            }
        }
    }
}

impl<P> Order<P> {
    /// Moves the last hit on each slot to the end of `touches`, in order,
    /// and returns where they start: the earlier hits need no replay.
    pub(super) fn last_hits(&mut self, touches: &mut [Touch]) -> usize {
        self.batch = self.batch.wrapping_add(1);
        if self.batch == 0 {
            self.seen.fill(0);
            self.batch = 1;
        }
        if self.seen.len() < self.slots.len() {
            self.seen.resize(self.slots.len(), 0);
        }
        let mut first = touches.len();
        for i in (0..touches.len()).rev() {
            let t = touches[i];
            let seen = &mut self.seen[t.slot as usize];
            if *seen != self.batch {
                *seen = self.batch;
                first -= 1;
                touches[first] = t;
            }
        }
        first
    }
}

impl<K: Eq + Hash + Clone, V: Clone, P: Policy> Store<K, V, P> {
    /// Replays every stripe's recorded hits into the policy, in stamp
    /// order, under the whole lock.
    #[inline]
    pub(super) fn replay(parts: &mut MemoryParts<'_, K, V, P>) {
        // With one stripe in use, hits tell the policy at once: no logs.
        if P::TRACKS_HITS && !parts.single {
            Self::replay_logs(parts);
        }
    }

    #[inline(never)]
    pub(super) fn replay_logs(parts: &mut MemoryParts<'_, K, V, P>) {
        let order = &mut *parts.order;
        let mut merged = std::mem::take(&mut order.merged);
        let mut logs = 0;
        parts.locals.for_each(|local| {
            logs += usize::from(!local.log.is_empty());
            merged.append(&mut local.log);
        });
        if logs > 1 {
            // Each log is in stamp order already: a stable sort merges runs.
            merged.sort_by_key(|t| t.stamp);
        }
        order.apply(&mut merged);
        order.merged = merged;
    }
}
