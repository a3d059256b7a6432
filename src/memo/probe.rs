//! What the store compares its keys with: the key itself, or a borrowed
//! form of it built without allocating (a keymap's probe).

/// A lookup's view of a key: compares with stored keys, and makes a stored
/// key when the lookup misses. Its hash (computed by the caller) must be the
/// hash of the keys it matches.
pub(crate) trait Probe<K> {
    /// Whether `key` is the one looked up.
    fn matches(&self, key: &K) -> bool;
    /// The key to store (a miss's flight, then its entry).
    fn to_key(&self) -> K;
}

impl<K: Eq + Clone> Probe<K> for K {
    #[inline]
    fn matches(&self, key: &K) -> bool {
        self == key
    }
    #[inline]
    fn to_key(&self) -> K {
        self.clone()
    }
}
