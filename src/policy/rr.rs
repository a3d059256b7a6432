//! Random replacement.

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

use super::list::NIL;
use super::{Policy, Slot};

/// Evicts an entry chosen uniformly at random (the builder's `.rr(n)`).
///
/// The store calls [`evict`](Policy::evict) *before* inserting the entry that
/// needs room, so the victim is drawn among the entries already there, never
/// the new one. Hits are not tracked. The random source is a [`SmallRng`]
/// seeded from OS entropy; [`reseed`](Policy::reseed) (the builder's
/// `.seed(u64)`) or [`Rr::with_seed`] makes the victims reproducible. Each
/// operation is O(1): members sit in a dense vector with a per-slot position
/// index, and leave it by `swap_remove`.
///
/// ```
/// use klepto::policy::{Policy, Rr};
/// let mut p = Rr::new(2);
/// assert_eq!(p.capacity(), Some(2));
/// p.reseed(7);
/// p.on_insert(0);
/// p.on_insert(1);
/// let victim = p.evict().unwrap();
/// assert!(victim == 0 || victim == 1);
/// assert_eq!(p.evict(), Some(1 - victim));
/// assert_eq!(p.evict(), None);
///
/// // The same seed gives the same victims.
/// let (mut a, mut b) = (Rr::with_seed(8, 42), Rr::with_seed(8, 42));
/// for s in 0..8 {
///     a.on_insert(s);
///     b.on_insert(s);
/// }
/// for _ in 0..8 {
///     assert_eq!(a.evict(), b.evict());
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Rr {
    capacity: usize,
    /// Tracked slots, in no particular order.
    members: Vec<Slot>,
    /// Index of each tracked slot in `members` ([`NIL`] for untracked), by slot.
    position: Vec<u32>,
    rng: SmallRng,
}

impl Rr {
    /// Creates the policy for a memory of `capacity` entries, seeded from OS
    /// entropy.
    pub fn new(capacity: usize) -> Self {
        Self::with_rng(capacity, rand::make_rng())
    }

    /// Creates the policy with a fixed seed: the same operations then give
    /// the same victims.
    pub fn with_seed(capacity: usize, seed: u64) -> Self {
        Self::with_rng(capacity, SmallRng::seed_from_u64(seed))
    }

    fn with_rng(capacity: usize, rng: SmallRng) -> Self {
        Rr {
            capacity,
            members: Vec::new(),
            position: Vec::new(),
            rng,
        }
    }

    /// Number of entries tracked.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether no entry is tracked.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    fn contains(&self, slot: Slot) -> bool {
        self.position.get(slot as usize).is_some_and(|&p| p != NIL)
    }

    /// Removes the member at index `i` of `members` and returns its slot.
    fn take(&mut self, i: usize) -> Slot {
        let slot = self.members.swap_remove(i);
        if let Some(&moved) = self.members.get(i) {
            self.position[moved as usize] = i as u32;
        }
        self.position[slot as usize] = NIL;
        slot
    }

    /// Panics unless `members` and `position` mirror each other.
    #[cfg(test)]
    fn validate(&self) {
        for (i, &s) in self.members.iter().enumerate() {
            assert_eq!(self.position[s as usize], i as u32, "position of slot {s}");
        }
        let tracked = self.position.iter().filter(|&&p| p != NIL).count();
        assert_eq!(tracked, self.members.len(), "member count");
    }
}

impl Policy for Rr {
    fn tracked(&self) -> Option<usize> {
        Some(self.len())
    }

    const TRACKS_HITS: bool = false;

    fn capacity(&self) -> Option<usize> {
        Some(self.capacity)
    }

    /// Tracks `slot` (a slot already tracked stays tracked once).
    fn on_insert(&mut self, slot: Slot) {
        assert!(slot != NIL, "slot {NIL} is reserved");
        if self.contains(slot) {
            return;
        }
        let idx = slot as usize;
        if idx >= self.position.len() {
            self.position.resize(idx + 1, NIL);
        }
        self.position[idx] =
            u32::try_from(self.members.len()).expect("at most u32::MAX - 1 members");
        self.members.push(slot);
    }

    fn on_hit(&mut self, _slot: Slot) {}

    fn on_remove(&mut self, slot: Slot) {
        if self.contains(slot) {
            let i = self.position[slot as usize] as usize;
            self.take(i);
        }
    }

    fn evict(&mut self) -> Option<Slot> {
        if self.members.is_empty() {
            return None;
        }
        let i = self.rng.random_range(0..self.members.len());
        Some(self.take(i))
    }

    fn clear(&mut self) {
        self.members.clear();
        self.position.clear();
    }

    fn reseed(&mut self, seed: u64) {
        self.rng = SmallRng::seed_from_u64(seed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn victims_are_members_and_all_leave() {
        let mut p = Rr::with_seed(5, 1);
        for s in 0..5 {
            p.on_insert(s);
            p.validate();
        }
        p.on_remove(2);
        p.validate();
        let mut out = Vec::new();
        while let Some(s) = p.evict() {
            p.validate();
            out.push(s);
        }
        out.sort_unstable();
        assert_eq!(out, vec![0, 1, 3, 4]);
        assert!(p.is_empty());
    }

    #[test]
    fn remove_fixes_moved_position_and_slots_are_reused() {
        let mut p = Rr::with_seed(4, 2);
        for s in 0..4 {
            p.on_insert(s);
        }
        p.on_remove(0); // 3 moves to index 0
        p.validate();
        p.on_remove(3);
        p.validate();
        p.on_remove(3); // already gone: ignored
        p.on_remove(9); // never tracked: ignored
        p.on_hit(9);
        p.validate();
        p.on_insert(0);
        p.on_insert(0); // already tracked: once
        p.validate();
        assert_eq!(p.len(), 3);
    }

    #[test]
    fn reference_trace_keeps_the_new_entry_and_two_others() {
        use super::super::list::trace;
        for seed in 0..50 {
            let mut p = Rr::with_seed(3, seed);
            let out = trace::run(&mut p, &trace::REFERENCE, Rr::validate);
            assert_eq!(out.keys.len(), 3);
            assert!(out.keys.contains(&6), "seed {seed}: {out:?}");
        }
    }

    #[test]
    fn reseed_reproduces_and_clear_forgets() {
        let run = |p: &mut Rr| {
            p.reseed(99);
            for s in 0..10 {
                p.on_insert(s);
            }
            (0..10).map(|_| p.evict().unwrap()).collect::<Vec<_>>()
        };
        let mut a = Rr::new(10);
        let first = run(&mut a);
        a.on_insert(3);
        a.clear();
        a.validate();
        assert_eq!(a.evict(), None);
        assert_eq!(run(&mut a), first);
        assert_eq!(run(&mut Rr::new(10)), first);
    }
}
