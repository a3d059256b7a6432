//! The archive that keeps nothing.

use super::{Archive, Items};
use crate::Result;

/// An archive that keeps nothing: every lookup misses, every write is
/// dropped. The default archive of a memo, which then lives in memory only.
///
/// ```
/// use klepto::archive::{Archive, NullArchive};
/// let a = NullArchive;
/// Archive::<u64, u64>::insert(&a, 1, 2)?;
/// assert_eq!(Archive::<u64, u64>::get(&a, &1)?, None);
/// # Ok::<(), klepto::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NullArchive;

impl NullArchive {
    /// Creates the archive.
    pub fn new() -> Self {
        NullArchive
    }
}

impl<K: 'static, V: 'static> Archive<K, V> for NullArchive {
    fn get(&self, _key: &K) -> Result<Option<V>> {
        Ok(None)
    }
    fn insert(&self, _key: K, _value: V) -> Result<()> {
        Ok(())
    }
    fn remove(&self, _key: &K) -> Result<Option<V>> {
        Ok(None)
    }
    fn len(&self) -> Result<usize> {
        Ok(0)
    }
    fn keys(&self) -> Result<Items<'_, K>> {
        Ok(Box::new(std::iter::empty()))
    }
    fn iter(&self) -> Result<Items<'_, (K, V)>> {
        Ok(Box::new(std::iter::empty()))
    }
    fn clear(&self) -> Result<()> {
        Ok(())
    }
    fn extend(&self, _items: Vec<(K, V)>) -> Result<()> {
        Ok(())
    }
    fn namespaced(&self, _namespace: &str) -> Result<Self> {
        Ok(NullArchive)
    }
    fn is_null(&self) -> bool {
        true
    }
    fn location(&self) -> String {
        "null".to_owned()
    }
}
