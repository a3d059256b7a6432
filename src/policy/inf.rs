//! The unbounded policy: memory grows without limit, nothing is evicted.

use super::{Policy, Slot};

/// Keeps every entry; never evicts (the builder's `.inf()`).
///
/// ```
/// use klepto::Memo;
/// let square = Memo::builder().inf().build(|x: u64| x * x);
/// assert_eq!(square.call(12), 144);
/// assert_eq!(square.info().maxsize, None);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Unbounded;

impl Unbounded {
    /// Creates the policy.
    pub fn new() -> Self {
        Unbounded
    }
}

impl Policy for Unbounded {
    const TRACKS_HITS: bool = false;

    fn capacity(&self) -> Option<usize> {
        None
    }
    fn on_insert(&mut self, _slot: Slot) {}
    fn on_hit(&mut self, _slot: Slot) {}
    fn on_remove(&mut self, _slot: Slot) {}
    fn evict(&mut self) -> Option<Slot> {
        None
    }
    fn clear(&mut self) {}
}
