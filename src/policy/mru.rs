//! Most recently used.

use super::list::{recency_policy, Recency};
use super::{Policy, Slot};

recency_policy! {
    /// Evicts the most recently used entry (the builder's `.mru(n)`).
    ///
    /// Inserting an entry counts as a use, and so does every hit. The store calls
    /// [`evict`](Policy::evict) *before* inserting the entry that needs room, so
    /// the victim is the most recently used of the entries already there, never
    /// the new one. Each operation is O(1): the entries form one slot-indexed
    /// list, most recent first.
    ///
    /// ```
    /// use klepto::policy::{Mru, Policy};
    /// let mut p = Mru::new(2);
    /// assert_eq!(p.capacity(), Some(2));
    /// p.on_insert(0);
    /// p.on_insert(1);
    /// p.on_hit(0); // 0 is now the most recent
    /// assert_eq!(p.evict(), Some(0));
    /// assert_eq!(p.evict(), Some(1));
    /// assert_eq!(p.evict(), None);
    /// ```
    Mru,
    evict: pop_most_recent
}

#[cfg(test)]
mod tests {
    use super::super::list::trace;
    use super::*;

    #[test]
    fn reference_trace() {
        let mut p = Mru::new(3);
        let out = trace::run(&mut p, &trace::REFERENCE, Mru::validate);
        assert_eq!(out.keys, vec![2, 3, 6]);
        assert_eq!(out.evicted, vec![1, 4, 5, 1]);
        assert_eq!(out.hits, 1);
        assert_eq!(p.len(), 3);
    }

    #[test]
    fn evicts_most_recent_with_removals_and_reuse() {
        let mut p = Mru::new(4);
        for s in 0..4 {
            p.on_insert(s);
            p.validate();
        }
        p.on_hit(1);
        p.validate();
        p.on_remove(1);
        p.validate();
        assert_eq!(p.evict(), Some(3));
        p.validate();
        p.on_insert(3); // slot reused
        p.on_hit(0);
        p.validate();
        assert_eq!(p.evict(), Some(0));
        assert_eq!(p.evict(), Some(3));
        assert_eq!(p.evict(), Some(2));
        assert_eq!(p.evict(), None);
        assert!(p.is_empty());
        p.validate();
    }

    #[test]
    fn unknown_slots_are_ignored_and_clear_forgets() {
        let mut p = Mru::new(2);
        p.on_hit(5);
        p.on_remove(5);
        p.validate();
        p.on_insert(0);
        p.on_insert(1);
        p.clear();
        p.validate();
        assert!(p.is_empty());
        assert_eq!(p.evict(), None);
    }
}
