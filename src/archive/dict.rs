//! An in-memory archive, shared between clones and threads.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

use parking_lot::RwLock;

use super::{Archive, Items};
use crate::Result;

type Namespaces<K, V> = HashMap<Arc<str>, HashMap<K, V>>;

/// An archive in memory: a thread-safe dictionary shared by all its clones.
///
/// Useful as a second-level store behind a small memo, and for tests of
/// archive behaviour without touching disk. Namespaces (a memo's `.name`)
/// are separate dictionaries inside one shared store.
///
/// ```
/// use klepto::archive::{Archive, DictArchive};
/// let a: DictArchive<u64, String> = DictArchive::new();
/// let b = a.clone();                     // shares the same data
/// a.insert(1, "one".into())?;
/// assert_eq!(b.get(&1)?, Some("one".to_string()));
/// let other = a.namespaced("other")?;    // a separate dictionary
/// assert_eq!(other.get(&1)?, None);
/// # Ok::<(), klepto::Error>(())
/// ```
#[derive(Debug)]
pub struct DictArchive<K, V> {
    data: Arc<RwLock<Namespaces<K, V>>>,
    namespace: Arc<str>,
}

impl<K, V> Clone for DictArchive<K, V> {
    fn clone(&self) -> Self {
        DictArchive {
            data: Arc::clone(&self.data),
            namespace: Arc::clone(&self.namespace),
        }
    }
}

impl<K: Eq + Hash, V> Default for DictArchive<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Eq + Hash, V> DictArchive<K, V> {
    /// Creates an empty archive (namespace `""`).
    pub fn new() -> Self {
        DictArchive {
            data: Arc::new(RwLock::new(HashMap::new())),
            namespace: Arc::from(""),
        }
    }

    /// The namespace this handle reads and writes.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    fn read<T>(&self, f: impl FnOnce(Option<&HashMap<K, V>>) -> T) -> T {
        let guard = self.data.read();
        f(guard.get(&self.namespace))
    }

    fn write<T>(&self, f: impl FnOnce(&mut HashMap<K, V>) -> T) -> T {
        let mut guard = self.data.write();
        f(guard.entry(Arc::clone(&self.namespace)).or_default())
    }

    fn snapshot<T>(&self, f: impl Fn(&K, &V) -> T) -> Vec<Result<T>> {
        self.read(|m| {
            m.map(|m| m.iter().map(|(k, v)| Ok(f(k, v))).collect())
                .unwrap_or_default()
        })
    }
}

impl<K, V> Archive<K, V> for DictArchive<K, V>
where
    K: Eq + Hash + Clone + Send + Sync,
    V: Clone + Send + Sync,
{
    fn get(&self, key: &K) -> Result<Option<V>> {
        Ok(self.read(|m| m.and_then(|m| m.get(key).cloned())))
    }
    fn insert(&self, key: K, value: V) -> Result<()> {
        self.write(|m| m.insert(key, value));
        Ok(())
    }
    fn remove(&self, key: &K) -> Result<Option<V>> {
        Ok(self.write(|m| m.remove(key)))
    }
    fn contains_key(&self, key: &K) -> Result<bool> {
        Ok(self.read(|m| m.is_some_and(|m| m.contains_key(key))))
    }
    fn len(&self) -> Result<usize> {
        Ok(self.read(|m| m.map_or(0, HashMap::len)))
    }
    fn keys(&self) -> Result<Items<'_, K>> {
        Ok(Box::new(self.snapshot(|k, _| k.clone()).into_iter()))
    }
    fn iter(&self) -> Result<Items<'_, (K, V)>> {
        Ok(Box::new(
            self.snapshot(|k, v| (k.clone(), v.clone())).into_iter(),
        ))
    }
    fn clear(&self) -> Result<()> {
        self.write(HashMap::clear);
        Ok(())
    }
    fn extend(&self, items: Vec<(K, V)>) -> Result<()> {
        self.write(|m| m.extend(items));
        Ok(())
    }
    fn namespaced(&self, namespace: &str) -> Result<Self> {
        Ok(DictArchive {
            data: Arc::clone(&self.data),
            namespace: Arc::from(namespace),
        })
    }
    fn location(&self) -> String {
        format!("memory:{}", self.namespace)
    }
}
