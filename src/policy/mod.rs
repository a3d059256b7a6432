//! In-memory eviction policies.
//!
//! A policy does bookkeeping only: it orders the *slots* (small integer
//! handles) of the entries a memo keeps in memory, and names the slot to evict
//! when the memory is full. Keys and values live in the memo's store; the
//! policy never sees them. Every operation is O(1) (amortised).
//!
//! The store guarantees the protocol: a slot is inserted once, then hit any
//! number of times, then either removed or returned by [`Policy::evict`];
//! only after that may the same slot number be inserted again. Slot numbers
//! are dense (the store reuses freed ones), so policies index plain `Vec`s.

mod inf;
mod lfu;
mod list;
mod lru;
mod mru;
mod none;
mod rr;

pub use inf::Unbounded;
pub use lfu::Lfu;
pub use lru::Lru;
pub use mru::Mru;
pub use none::NoCache;
pub use rr::Rr;

/// Handle of an entry in a memo's store.
pub type Slot = u32;

/// An eviction policy: which entry leaves memory when a new one needs room.
///
/// Implemented by [`Lru`], [`Lfu`], [`Mru`], [`Rr`], [`Unbounded`] and
/// [`NoCache`]; the builder picks one with `.lru(n)`, `.lfu(n)`, ...
///
/// ```
/// use klepto::policy::{Policy, Unbounded};
/// let mut p = Unbounded::new();
/// p.on_insert(0);
/// assert_eq!(p.capacity(), None);
/// assert_eq!(p.evict(), None); // an unbounded policy never names a victim
/// ```
pub trait Policy: Send + 'static {
    /// Whether [`on_hit`](Policy::on_hit) does anything; when `false` the
    /// memo skips the call (and the lock it would need) on its hit path.
    const TRACKS_HITS: bool = true;

    /// Whether, of several hits on one entry, only the last one matters
    /// (true of LRU and MRU, not of LFU, which counts them): a memo that
    /// replays hits in batches then skips the earlier ones.
    const LAST_HIT_ONLY: bool = false;

    /// Maximum number of entries kept in memory; `None` means unbounded and
    /// `Some(0)` keeps nothing.
    fn capacity(&self) -> Option<usize>;

    /// A new entry was stored in `slot` (a miss or a load).
    fn on_insert(&mut self, slot: Slot);

    /// The entry in `slot` was used again (a hit).
    fn on_hit(&mut self, slot: Slot);

    /// The entry in `slot` left memory by other means than [`evict`](Policy::evict).
    fn on_remove(&mut self, slot: Slot);

    /// Chooses the entry to evict, forgets it and returns its slot; `None`
    /// when the policy tracks no entry or never evicts.
    fn evict(&mut self) -> Option<Slot>;

    /// Forgets every entry.
    fn clear(&mut self);

    /// Seeds the policy's random source, if it has one (random replacement).
    fn reseed(&mut self, _seed: u64) {}

    /// How many entries the policy tracks, if it counts them: a memo's
    /// consistency check compares it with the entries in memory.
    fn tracked(&self) -> Option<usize> {
        None
    }
}
