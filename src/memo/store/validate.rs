//! A consistency check of the whole store, for tests (compiled in debug
//! builds only, as quick_cache does): table, slots, policy and flights
//! agree, checked after every step of `tests/memo_model.rs`.

use std::hash::Hash;

use super::Store;
use crate::policy::Policy;

impl<K: Eq + Hash + Clone, V: Clone, P: Policy> Store<K, V, P> {
    /// Panics, saying what is wrong, unless: memory holds no more entries
    /// than its capacity; each entry has a slot of its own, with the
    /// entry's hash (by `hash`) and generation; the policy tracks exactly
    /// the entries in memory; and, no call being under way, no flight is
    /// registered. Replays the stripes' logs first (which changes nothing
    /// a caller can see).
    pub fn validate(&self, hash: impl Fn(&K) -> u64) {
        let mut guard = self.memory.write();
        let mut parts = guard.parts();
        Self::replay(&mut parts);
        let (memory, order) = (&*parts.data, &*parts.order);
        let len = memory.table.len();
        if let Some(cap) = memory.capacity {
            assert!(len <= cap, "{len} entries in a memory of {cap}");
        }
        let mut taken = vec![false; order.slots.len()];
        for entry in memory.table.iter() {
            let slot = entry.slot as usize;
            assert!(
                slot < order.slots.len(),
                "an entry in slot {slot} of {}",
                order.slots.len()
            );
            assert!(!taken[slot], "two entries in slot {slot}");
            taken[slot] = true;
            let meta = order.slots[slot];
            assert_eq!(meta.hash, hash(&entry.key), "slot {slot}: the entry's hash");
            assert_eq!(
                entry.tag >> 1,
                meta.generation,
                "slot {slot}: the entry's generation"
            );
        }
        if let Some(tracked) = order.policy.tracked() {
            assert_eq!(
                tracked, len,
                "the policy tracks {tracked} entries, memory holds {len}"
            );
        }
        assert!(memory.flights.is_empty(), "a flight outlived its call");
    }
}
