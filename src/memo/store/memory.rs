//! What a [`Store`](super::Store)'s lock guards: the table and its
//! entries, the slots, the eviction order and the counts (the per-stripe
//! logs of hits are in [`logs`](super::logs)).

use hashbrown::HashTable;

use super::super::flight::Flights;
use super::logs::Touch;
use crate::policy::Slot;

/// A bounded store allocates room for up to this many slots up front (the
/// table itself grows as it fills: a table sized for a capacity far from
/// reached spreads its few entries over many cache lines, and every hit
/// pays for that).
pub(super) const PREALLOCATE_MAX: usize = 1 << 16;

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
