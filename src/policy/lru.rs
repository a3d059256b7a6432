//! Least recently used.

use super::list::{recency_policy, Recency};
use super::{Policy, Slot};

recency_policy! {
    /// Evicts the least recently used entry (the builder's `.lru(n)`).
    ///
    /// Inserting an entry counts as a use, and so does every hit. Each operation
    /// is O(1): the entries form one slot-indexed list, most recent first.
    ///
    /// ```
    /// use klepto::policy::{Lru, Policy};
    /// let mut p = Lru::new(2);
    /// assert_eq!(p.capacity(), Some(2));
    /// p.on_insert(0);
    /// p.on_insert(1);
    /// p.on_hit(0); // 0 is now the most recent
    /// assert_eq!(p.evict(), Some(1));
    /// assert_eq!(p.evict(), Some(0));
    /// assert_eq!(p.evict(), None);
    /// ```
    Lru,
    evict: pop_least_recent
}

#[cfg(test)]
mod tests {
    use super::super::list::trace;
    use super::*;

    #[test]
    fn reference_trace() {
        let mut p = Lru::new(3);
        let out = trace::run(&mut p, &trace::REFERENCE, Lru::validate);
        assert_eq!(out.keys, vec![1, 5, 6]);
        assert_eq!(out.evicted, vec![2, 3, 4]);
        assert_eq!(out.hits, 2);
        assert_eq!(p.len(), 3);
    }

    #[test]
    fn evicts_least_recent_with_removals_and_reuse() {
        let mut p = Lru::new(4);
        for s in 0..4 {
            p.on_insert(s);
            p.validate();
        }
        p.on_hit(0);
        p.validate();
        p.on_remove(1);
        p.validate();
        p.on_insert(1); // slot reused: a new entry, most recent
        p.validate();
        assert_eq!(p.evict(), Some(2));
        p.validate();
        assert_eq!(p.evict(), Some(3));
        assert_eq!(p.evict(), Some(0));
        assert_eq!(p.evict(), Some(1));
        assert_eq!(p.evict(), None);
        assert!(p.is_empty());
        p.validate();
    }

    #[test]
    fn unknown_slots_are_ignored_and_clear_forgets() {
        let mut p = Lru::new(2);
        p.on_hit(5);
        p.on_remove(5);
        p.validate();
        assert_eq!(p.evict(), None);
        p.on_insert(0);
        p.on_insert(1);
        p.clear();
        p.validate();
        assert!(p.is_empty());
        assert_eq!(p.evict(), None);
        p.on_insert(1);
        assert_eq!(p.evict(), Some(1));
    }
}
