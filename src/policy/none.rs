//! The no-cache policy: nothing is kept in memory.

use super::{Policy, Slot};

/// Keeps nothing in memory (the builder's `.no_cache()`): every call computes,
/// unless an attached archive already holds the result.
///
/// ```
/// use klepto::Memo;
/// let f = Memo::builder().no_cache().build(|x: u64| x + 1);
/// f.call(1);
/// f.call(1);
/// assert_eq!((f.info().misses, f.info().size), (2, 0));
/// ```
#[derive(Debug, Clone, Default)]
pub struct NoCache;

impl NoCache {
    /// Creates the policy.
    pub fn new() -> Self {
        NoCache
    }
}

impl Policy for NoCache {
    const TRACKS_HITS: bool = false;

    fn capacity(&self) -> Option<usize> {
        Some(0)
    }
    fn on_insert(&mut self, _slot: Slot) {}
    fn on_hit(&mut self, _slot: Slot) {}
    fn on_remove(&mut self, _slot: Slot) {}
    fn evict(&mut self) -> Option<Slot> {
        None
    }
    fn clear(&mut self) {}
}
