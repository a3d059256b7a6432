//! A memo's memory: keys and values in a slab, found through a hash table,
//! ordered for eviction by the policy.
//!
//! The store is not synchronised; the memo keeps it behind one lock. Entries
//! live in a `Vec` of slots; the hash table holds slot numbers, and the
//! policy orders slot numbers. Freed slots are reused, so slot numbers stay
//! dense and the policy's per-slot arrays stay small.

use std::hash::Hash;

use hashbrown::HashTable;

use crate::policy::{Policy, Slot};

struct Entry<K, V> {
    key: K,
    value: V,
    /// Computed here and not yet written to the archive.
    dirty: bool,
}

/// What an insertion pushed out of memory.
pub(crate) enum Displaced<K, V> {
    /// Nothing.
    None,
    /// The policy evicted one entry (`dirty`: not yet in the archive).
    Evicted { key: K, value: V, dirty: bool },
    /// Memory was full and purging is on: every entry, the new one included,
    /// left memory and must go to the archive.
    Purged(Vec<(K, V)>),
    /// The policy keeps nothing in memory; the new entry was not stored.
    NotStored { key: K, value: V },
}

pub(crate) struct Store<K, V, P> {
    table: HashTable<Slot>,
    slots: Vec<Option<Entry<K, V>>>,
    free: Vec<Slot>,
    policy: P,
    pub hits: u64,
}

impl<K: Eq + Hash, V: Clone, P: Policy> Store<K, V, P> {
    pub fn new(policy: P) -> Self {
        Store {
            table: HashTable::new(),
            slots: Vec::new(),
            free: Vec::new(),
            policy,
            hits: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn capacity(&self) -> Option<usize> {
        self.policy.capacity()
    }

    fn entry(&self, slot: Slot) -> &Entry<K, V> {
        match &self.slots[slot as usize] {
            Some(e) => e,
            None => unreachable!("the table points at a vacant slot {slot}"),
        }
    }

    fn find(&self, hash: u64, key: &K) -> Option<Slot> {
        let slots = &self.slots;
        self.table
            .find(hash, |&s| {
                slots[s as usize]
                    .as_ref()
                    .is_some_and(|entry| entry.key == *key)
            })
            .copied()
    }

    /// A hit: the value, with the policy told of the use and the hit counted.
    #[inline]
    pub fn get(&mut self, hash: u64, key: &K) -> Option<V> {
        let slot = self.find(hash, key)?;
        if P::TRACKS_HITS {
            self.policy.on_hit(slot);
        }
        self.hits += 1;
        Some(self.entry(slot).value.clone())
    }

    /// The value without touching policy or stats.
    pub fn peek(&self, hash: u64, key: &K) -> Option<V> {
        self.find(hash, key).map(|s| self.entry(s).value.clone())
    }

    /// Adds an entry, making room first. `purge` empties the whole memory
    /// into the result instead of evicting one entry. `hasher` rehashes keys
    /// when the table grows.
    pub fn insert(
        &mut self,
        hash: u64,
        key: K,
        value: V,
        dirty: bool,
        purge: bool,
        hasher: impl Fn(&K) -> u64,
    ) -> Displaced<K, V> {
        if let Some(slot) = self.find(hash, &key) {
            // Another path stored the key meanwhile: keep the newer value.
            if let Some(e) = &mut self.slots[slot as usize] {
                e.value = value;
                e.dirty |= dirty;
            }
            return Displaced::None;
        }
        let mut displaced = Displaced::None;
        match self.policy.capacity() {
            Some(0) => return Displaced::NotStored { key, value },
            Some(cap) if self.len() >= cap => {
                if purge {
                    let mut all = self.drain();
                    all.push((key, value));
                    return Displaced::Purged(all);
                }
                if let Some(victim) = self.policy.evict() {
                    displaced = self.take(victim, &hasher);
                }
            }
            _ => {}
        }
        let slot = match self.free.pop() {
            Some(s) => {
                self.slots[s as usize] = Some(Entry { key, value, dirty });
                s
            }
            None => {
                let s = Slot::try_from(self.slots.len()).expect("more than u32::MAX entries");
                self.slots.push(Some(Entry { key, value, dirty }));
                s
            }
        };
        let slots = &self.slots;
        self.table
            .insert_unique(hash, slot, |&s| match &slots[s as usize] {
                Some(e) => hasher(&e.key),
                None => 0,
            });
        self.policy.on_insert(slot);
        displaced
    }

    /// Removes the entry in `slot` (already forgotten by the policy).
    fn take(&mut self, slot: Slot, hasher: impl Fn(&K) -> u64) -> Displaced<K, V> {
        let Some(entry) = self.slots[slot as usize].take() else {
            return Displaced::None;
        };
        let hash = hasher(&entry.key);
        if let Ok(found) = self.table.find_entry(hash, |&s| s == slot) {
            found.remove();
        }
        self.free.push(slot);
        Displaced::Evicted {
            key: entry.key,
            value: entry.value,
            dirty: entry.dirty,
        }
    }

    /// Empties memory, returning every entry.
    pub fn drain(&mut self) -> Vec<(K, V)> {
        self.table.clear();
        self.policy.clear();
        self.free.clear();
        let all = self
            .slots
            .drain(..)
            .flatten()
            .map(|e| (e.key, e.value))
            .collect();
        self.slots.shrink_to(16);
        all
    }

    /// Copies of the entries `pick` selects (by their dirty flag), marking
    /// them clean: the caller is about to write them to the archive.
    pub fn take_for_dump(&mut self, only_dirty: bool) -> Vec<(K, V)>
    where
        K: Clone,
    {
        self.slots
            .iter_mut()
            .flatten()
            .filter(|e| e.dirty || !only_dirty)
            .map(|e| {
                e.dirty = false;
                (e.key.clone(), e.value.clone())
            })
            .collect()
    }

    /// Marks the given keys dirty again (their write failed).
    pub fn mark_dirty(&mut self, keys: impl Iterator<Item = (u64, K)>) {
        for (hash, key) in keys {
            if let Some(slot) = self.find(hash, &key) {
                if let Some(e) = &mut self.slots[slot as usize] {
                    e.dirty = true;
                }
            }
        }
    }

    /// Forgets every entry and the hit count.
    pub fn clear(&mut self) {
        self.drain();
        self.hits = 0;
    }

    /// The keys in memory (any order).
    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.slots.iter().flatten().map(|e| &e.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Unbounded;
    use std::hash::BuildHasher;

    #[test]
    fn insert_get_drain_reuses_slots() {
        let hb = hashbrown::DefaultHashBuilder::default();
        let h = |k: &u64| hb.hash_one(k);
        let mut s: Store<u64, u64, Unbounded> = Store::new(Unbounded);
        for k in 0..100 {
            assert!(matches!(
                s.insert(h(&k), k, k * 2, true, false, h),
                Displaced::None
            ));
        }
        assert_eq!(s.len(), 100);
        assert_eq!(s.get(h(&7), &7), Some(14));
        assert_eq!(s.peek(h(&100), &100), None);
        assert_eq!(s.take_for_dump(true).len(), 100);
        assert_eq!(s.take_for_dump(true).len(), 0, "dump marks entries clean");
        let all = s.drain();
        assert_eq!(all.len(), 100);
        assert_eq!(s.len(), 0);
        assert_eq!(s.get(h(&7), &7), None);
    }
}
