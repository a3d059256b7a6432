//! Least frequently used, in O(1) per operation.

use super::list::{Links, List, NIL};
use super::{Policy, Slot};

/// Evicts the least frequently used entry, ties broken by least recently used
/// (the builder's `.lfu(n)`).
///
/// Inserting an entry gives it frequency 1 and each hit adds 1; recency is the
/// time of the last insert or hit. Every operation is O(1), following Shah,
/// Mitra and Matani, *An O(1) algorithm for implementing the LFU cache
/// eviction scheme* (2010): a list of frequency buckets in increasing
/// frequency, each holding the list of its entries, most recent first. A hit
/// moves an entry to the next bucket (creating it if needed); eviction takes
/// the oldest entry of the first bucket. No scan, no heap.
///
/// ```
/// use klepto::policy::{Lfu, Policy};
/// let mut p = Lfu::new(3);
/// assert_eq!(p.capacity(), Some(3));
/// p.on_insert(0);
/// p.on_insert(1);
/// p.on_insert(2);
/// p.on_hit(0); // 0 used twice; 1 and 2 once, 1 less recently
/// assert_eq!(p.evict(), Some(1));
/// assert_eq!(p.evict(), Some(2));
/// assert_eq!(p.evict(), Some(0));
/// assert_eq!(p.evict(), None);
/// ```
#[derive(Debug, Clone)]
pub struct Lfu {
    capacity: usize,
    /// Links of entry slots; every bucket's `items` list threads through them.
    slots: Links,
    /// The bucket of each tracked slot ([`NIL`] for untracked), by slot.
    bucket_of: Vec<u32>,
    /// Non-empty buckets in strictly increasing frequency, by bucket id.
    order: List,
    /// Links of bucket ids; `order` threads through them.
    bucket_links: Links,
    /// Buckets by id (live ones are in `order`, the others in `free`).
    buckets: Vec<Bucket>,
    /// Ids of unused buckets, for reuse.
    free: Vec<u32>,
    /// Number of tracked slots.
    len: usize,
}

/// The entries used exactly `freq` times.
#[derive(Debug, Clone)]
struct Bucket {
    freq: u64,
    /// Slots, most recently used first.
    items: List,
}

impl Lfu {
    /// Creates the policy for a memory of `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        Lfu {
            capacity,
            slots: Links::new(),
            bucket_of: Vec::new(),
            order: List::new(),
            bucket_links: Links::new(),
            buckets: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }

    /// Number of entries tracked.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no entry is tracked.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A bucket id for a new, empty bucket of frequency `freq` (not yet in
    /// `order`).
    fn alloc_bucket(&mut self, freq: u64) -> u32 {
        let bucket = Bucket {
            freq,
            items: List::new(),
        };
        match self.free.pop() {
            Some(b) => {
                self.buckets[b as usize] = bucket;
                b
            }
            None => {
                self.buckets.push(bucket);
                u32::try_from(self.buckets.len() - 1).expect("fewer buckets than slots")
            }
        }
    }

    /// Drops bucket `b` from `order` if it has no entry left.
    fn release_if_empty(&mut self, b: u32) {
        if self.buckets[b as usize].items.is_empty() {
            self.bucket_links.unlink(&mut self.order, b);
            self.free.push(b);
        }
    }

    /// Stops tracking `slot`, a tracked slot.
    fn detach(&mut self, slot: Slot) {
        let b = self.bucket_of[slot as usize];
        self.slots.unlink(&mut self.buckets[b as usize].items, slot);
        self.bucket_of[slot as usize] = NIL;
        self.release_if_empty(b);
        self.len -= 1;
    }

    /// The frequency of `slot`, if tracked.
    #[cfg(test)]
    fn frequency(&self, slot: Slot) -> Option<u64> {
        self.slots
            .contains(slot)
            .then(|| self.buckets[self.bucket_of[slot as usize] as usize].freq)
    }

    /// Panics unless the buckets and lists are consistent: bucket links well
    /// formed, frequencies strictly increasing from at least 1, no empty live
    /// bucket, every bucket id live or free exactly once, slot lists well
    /// formed and disjoint, `bucket_of` agreeing with them, counts matching.
    #[cfg(test)]
    fn validate(&self) {
        self.bucket_links.validate(&[&self.order]);
        let live = self.bucket_links.to_vec(&self.order);
        let mut last = 0;
        let mut lists = Vec::new();
        let mut total = 0;
        for &b in &live {
            let bucket = &self.buckets[b as usize];
            assert!(
                bucket.freq > last,
                "frequencies not increasing at bucket {b}"
            );
            last = bucket.freq;
            assert!(!bucket.items.is_empty(), "empty live bucket {b}");
            for s in self.slots.to_vec(&bucket.items) {
                assert_eq!(self.bucket_of[s as usize], b, "bucket_of[{s}]");
            }
            total += bucket.items.len();
            lists.push(&bucket.items);
        }
        self.slots.validate(&lists);
        assert_eq!(total, self.len, "len");
        let mut ids: Vec<u32> = live.iter().chain(&self.free).copied().collect();
        ids.sort_unstable();
        let expected: Vec<u32> = (0..self.buckets.len() as u32).collect();
        assert_eq!(
            ids, expected,
            "bucket ids: live {live:?}, free {:?}",
            self.free
        );
        let tracked = self.bucket_of.iter().filter(|&&b| b != NIL).count();
        assert_eq!(tracked, self.len, "bucket_of entries");
    }
}

impl Policy for Lfu {
    fn tracked(&self) -> Option<usize> {
        Some(self.len())
    }

    fn capacity(&self) -> Option<usize> {
        Some(self.capacity)
    }

    /// Tracks `slot` with frequency 1 as the most recent; a tracked slot is
    /// first forgotten (a new entry starts afresh).
    fn on_insert(&mut self, slot: Slot) {
        if self.slots.contains(slot) {
            self.detach(slot);
        }
        let b = match self.order.head() {
            Some(h) if self.buckets[h as usize].freq == 1 => h,
            _ => {
                let b = self.alloc_bucket(1);
                self.bucket_links.push_front(&mut self.order, b);
                b
            }
        };
        self.slots
            .push_front(&mut self.buckets[b as usize].items, slot);
        let idx = slot as usize;
        if idx >= self.bucket_of.len() {
            self.bucket_of.resize(idx + 1, NIL);
        }
        self.bucket_of[idx] = b;
        self.len += 1;
    }

    fn on_hit(&mut self, slot: Slot) {
        if !self.slots.contains(slot) {
            return;
        }
        let b = self.bucket_of[slot as usize];
        let freq = self.buckets[b as usize].freq;
        let Some(up) = freq.checked_add(1) else {
            // Saturated: stays in its bucket, as the most recent.
            self.slots
                .move_to_front(&mut self.buckets[b as usize].items, slot);
            return;
        };
        let next = self
            .bucket_links
            .next(b)
            .filter(|&n| self.buckets[n as usize].freq == up);
        let target = match next {
            Some(n) => n,
            None if self.buckets[b as usize].items.len() == 1 => {
                // Alone in its bucket and no bucket `up`: bump in place.
                self.buckets[b as usize].freq = up;
                return;
            }
            None => {
                let t = self.alloc_bucket(up);
                self.bucket_links.insert_after(&mut self.order, b, t);
                t
            }
        };
        self.slots.unlink(&mut self.buckets[b as usize].items, slot);
        self.slots
            .push_front(&mut self.buckets[target as usize].items, slot);
        self.bucket_of[slot as usize] = target;
        self.release_if_empty(b);
    }

    fn on_remove(&mut self, slot: Slot) {
        if self.slots.contains(slot) {
            self.detach(slot);
        }
    }

    fn evict(&mut self) -> Option<Slot> {
        let b = self.order.head()?;
        let slot = self
            .slots
            .pop_back(&mut self.buckets[b as usize].items)
            .expect("live buckets are non-empty");
        self.bucket_of[slot as usize] = NIL;
        self.release_if_empty(b);
        self.len -= 1;
        Some(slot)
    }

    fn clear(&mut self) {
        self.slots.clear();
        self.bucket_of.clear();
        self.order = List::new();
        self.bucket_links.clear();
        self.buckets.clear();
        self.free.clear();
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::super::list::trace;
    use super::*;

    #[test]
    fn reference_trace() {
        let mut p = Lfu::new(3);
        let out = trace::run(&mut p, &trace::REFERENCE, Lfu::validate);
        assert_eq!(out.keys, vec![1, 5, 6]);
        assert_eq!(out.evicted, vec![2, 3, 4]);
        assert_eq!(out.hits, 2);
        assert_eq!(p.len(), 3);
    }

    #[test]
    fn frequencies_and_lru_tie_break() {
        let mut p = Lfu::new(8);
        for s in 0..5 {
            p.on_insert(s);
            p.validate();
        }
        // Frequencies: 0:3, 1:1, 2:2, 3:2, 4:1.
        for s in [0, 2, 0, 3] {
            p.on_hit(s);
            p.validate();
        }
        assert_eq!(p.frequency(0), Some(3));
        assert_eq!(p.frequency(2), Some(2));
        assert_eq!(p.frequency(9), None);
        assert_eq!(p.evict(), Some(1)); // freq 1, older than 4
        p.validate();
        assert_eq!(p.evict(), Some(4));
        p.validate();
        assert_eq!(p.evict(), Some(2)); // freq 2, hit before 3
        p.validate();
        assert_eq!(p.evict(), Some(3));
        assert_eq!(p.evict(), Some(0));
        assert_eq!(p.evict(), None);
        p.validate();
    }

    #[test]
    fn bump_in_place_keeps_order() {
        let mut p = Lfu::new(4);
        p.on_insert(0);
        p.on_insert(1);
        p.on_hit(1); // bucket 1 -> new bucket 2
        p.validate();
        p.on_hit(1); // alone in bucket 2, no bucket 3: bumped in place
        p.validate();
        p.on_hit(0); // 0 -> new bucket 2, between 1 (freed) and 3
        p.validate();
        assert_eq!((p.frequency(0), p.frequency(1)), (Some(2), Some(3)));
        p.on_hit(0); // 0 joins bucket 3 as its most recent
        p.validate();
        assert_eq!(p.evict(), Some(1));
        assert_eq!(p.evict(), Some(0));
        p.validate();
    }

    #[test]
    fn remove_and_reinsert_starts_afresh() {
        let mut p = Lfu::new(3);
        p.on_insert(0);
        p.on_insert(1);
        p.on_hit(0);
        p.on_hit(0);
        p.on_remove(0);
        p.validate();
        p.on_remove(0); // no longer tracked: ignored
        p.on_hit(7); // never tracked: ignored
        p.validate();
        p.on_insert(0); // reused slot, frequency 1, most recent
        p.validate();
        assert_eq!(p.frequency(0), Some(1));
        assert_eq!(p.evict(), Some(1));
        p.on_hit(0);
        p.on_insert(0); // re-insert of a tracked slot: back to frequency 1
        p.validate();
        assert_eq!(p.frequency(0), Some(1));
        assert_eq!(p.len(), 1);
    }

    #[test]
    fn saturated_frequency_stays_put() {
        let mut p = Lfu::new(3);
        p.on_insert(1);
        p.on_insert(0);
        p.on_insert(2);
        p.on_hit(0); // 0 alone in the last bucket, frequency 2
        p.on_hit(2); // 2 joins it, more recent
        let top = p.bucket_of[0];
        p.buckets[top as usize].freq = u64::MAX; // still the last bucket
        p.validate();
        p.on_hit(0); // cannot count higher: becomes the most recent there
        p.validate();
        assert_eq!(p.frequency(0), Some(u64::MAX));
        assert_eq!(p.evict(), Some(1));
        assert_eq!(p.evict(), Some(2));
        assert_eq!(p.evict(), Some(0));
        p.validate();
    }

    #[test]
    fn clear_forgets_and_buckets_are_reused() {
        let mut p = Lfu::new(4);
        for round in 0..3 {
            for s in 0..4 {
                p.on_insert(s);
            }
            for s in 0..4 {
                for _ in 0..s {
                    p.on_hit(s);
                    p.validate();
                }
            }
            assert!(
                p.buckets.len() <= 5,
                "round {round}: {} buckets",
                p.buckets.len()
            );
            for s in 0..4 {
                assert_eq!(p.evict(), Some(s));
                p.validate();
            }
        }
        p.on_insert(2);
        p.clear();
        p.validate();
        assert!(p.is_empty());
        assert_eq!(p.evict(), None);
    }
}
