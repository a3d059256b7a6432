//! What a [`Store`](super::Store)'s lock guards: the table and its
//! entries, the eviction order, the per-stripe logs of hits, and the
//! Lamport clock that stamps them (see the [store](super) docs).

use std::cell::Cell;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

use hashbrown::HashTable;

use super::super::flight::Flights;
use crate::policy::{Policy, Slot};

/// A bounded store allocates room for up to this many slots up front (the
/// table itself grows as it fills: a table sized for a capacity far from
/// reached spreads its few entries over many cache lines, and every hit
/// pays for that).
pub(super) const PREALLOCATE_MAX: usize = 1 << 16;

/// A stripe's log is replayed once it holds this many touches, if the
/// eviction order is free: 96 KiB of 12-byte touches. A longer log replays
/// less often, and skips more of the hits that a later hit on the same
/// entry makes moot (8,192 against 4,096 of 16 bytes: 5-10% more hits per
/// second from two threads on the project's VM).
pub(super) const LOG_LIMIT: usize = 8192;
/// A stripe's log is replayed, waiting for the order, at this many touches.
pub(super) const LOG_CAP: usize = 4 * LOG_LIMIT;

pub(super) struct Entry<K, V> {
    pub(super) key: K,
    pub(super) value: V,
    pub(super) slot: Slot,
    /// `generation << 1 | dirty`; dirty: computed here, not yet in the archive.
    pub(super) tag: u32,
}

impl<K, V> Entry<K, V> {
    pub(super) fn dirty(&self) -> bool {
        self.tag & 1 == 1
    }
    pub(super) fn set_dirty(&mut self, dirty: bool) {
        self.tag = (self.tag & !1) | u32::from(dirty);
    }
}

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

/// Where a slot's entry is, and which entry it is (the generation grows
/// each time the slot passes to a new entry).
#[derive(Clone, Copy)]
pub(super) struct SlotMeta {
    pub(super) hash: u64,
    pub(super) generation: u32,
}

/// Counts kept under the whole lock (hits also per stripe, see [`Local`]).
#[derive(Default, Clone, Copy)]
pub(super) struct Counts {
    pub(super) hits: u64,
    pub(super) misses: u64,
    pub(super) loads: u64,
}

/// What readers share, and writers change under the whole lock.
pub(super) struct Memory<K, V> {
    pub(super) table: HashTable<Entry<K, V>>,
    pub(super) flights: Flights<K, V>,
    pub(super) capacity: Option<usize>,
    pub(super) counts: Counts,
}

/// The eviction order: the policy and what it needs to replay touches.
/// Goes with the whole lock, and has a lock of its own once threads
/// contend, so that replaying a full log does not stop the readers.
pub(super) struct Order<P> {
    pub(super) policy: P,
    /// Per slot; slots are numbered densely (an evicted entry's slot goes
    /// to the entry that replaces it).
    pub(super) slots: Vec<SlotMeta>,
    /// Scratch space for merging the stripes' logs.
    pub(super) merged: Vec<Touch>,
    /// Per slot, the last batch that had a hit on it (see `apply`).
    pub(super) seen: Vec<u32>,
    pub(super) batch: u32,
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

/// What one stripe guards: the hits its readers made and did not yet
/// replay.
#[derive(Default)]
pub(super) struct Local {
    pub(super) log: Vec<Touch>,
    pub(super) hits: u64,
}
