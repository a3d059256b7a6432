//! An in-memory dictionary in front of another archive.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use parking_lot::RwLock;

use super::{Archive, Items, WithArgs};
use crate::Result;

/// One entry kept in memory.
#[derive(Clone)]
struct Slot<V> {
    value: V,
    /// The arguments' encoding, if given with the value.
    args: Option<Vec<u8>>,
    /// Same as the archive's entry (loaded, or dumped and not replaced
    /// since): a dump skips it.
    clean: bool,
    /// Tells a dumped slot from one that replaced it meanwhile.
    stamp: u64,
}

static STAMPS: AtomicU64 = AtomicU64::new(0);

impl<V> Slot<V> {
    fn new(value: V, args: Option<Vec<u8>>) -> Self {
        let stamp = STAMPS.fetch_add(1, Relaxed);
        Slot {
            value,
            args,
            clean: false,
            stamp,
        }
    }

    fn loaded(value: V) -> Self {
        Slot {
            clean: true,
            ..Slot::new(value, None)
        }
    }
}

/// An in-memory dictionary in front of an archive (Python klepto's
/// `cached=True`): the dictionary methods read and write memory only, and
/// [`load`](Cached::load), [`dump`](Cached::dump) and [`sync`](Cached::sync)
/// move entries between memory and the archive when you say so. A dump
/// writes only what changed in memory since it was loaded.
///
/// Clones share the same memory and archive.
///
/// ```
/// use klepto::archive::{Archive, Cached, DictArchive};
/// let disk: DictArchive<String, i64> = DictArchive::new();
/// disk.insert("old".into(), 1)?;
///
/// let cached = Cached::new(disk.clone());
/// cached.insert("new".into(), 2)?;         // memory only
/// assert_eq!(disk.len()?, 1);
/// cached.dump()?;                          // memory -> archive
/// assert_eq!(disk.get(&"new".into())?, Some(2));
/// cached.load()?;                          // archive -> memory
/// assert_eq!(cached.get(&"old".into())?, Some(1));
/// # Ok::<(), klepto::Error>(())
/// ```
pub struct Cached<A, K, V> {
    memory: Arc<RwLock<HashMap<K, Slot<V>>>>,
    archive: A,
    types: PhantomData<fn(K, V)>,
}

impl<A: Clone, K, V> Clone for Cached<A, K, V> {
    fn clone(&self) -> Self {
        Cached {
            memory: Arc::clone(&self.memory),
            archive: self.archive.clone(),
            types: PhantomData,
        }
    }
}

impl<A: Archive<K, V>, K, V> fmt::Debug for Cached<A, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cached")
            .field("in_memory", &self.memory.read().len())
            .field("archive", &self.archive.location())
            .finish()
    }
}

impl<A, K, V> Cached<A, K, V>
where
    A: Archive<K, V>,
    K: Eq + Hash + Clone + Send + Sync,
    V: Clone + Send + Sync,
{
    /// Puts an empty in-memory dictionary in front of `archive`.
    pub fn new(archive: A) -> Self {
        Cached {
            memory: Arc::default(),
            archive,
            types: PhantomData,
        }
    }

    /// The archive behind the memory.
    pub fn archive(&self) -> &A {
        &self.archive
    }

    /// Copies every archive entry into memory (replacing what memory holds
    /// under the same keys).
    pub fn load(&self) -> Result<()> {
        let mut loaded = Vec::new();
        for item in self.archive.iter()? {
            let (key, value) = item?;
            loaded.push((key, Slot::loaded(value)));
        }
        self.memory.write().extend(loaded);
        Ok(())
    }

    /// Copies the archive entries of `keys` into memory; keys the archive
    /// does not hold are skipped. Returns how many were loaded.
    pub fn load_keys(&self, keys: &[K]) -> Result<usize> {
        let mut loaded = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(value) = self.archive.get(key)? {
                loaded.push((key.clone(), Slot::loaded(value)));
            }
        }
        let count = loaded.len();
        self.memory.write().extend(loaded);
        Ok(count)
    }

    /// Writes every in-memory entry changed since it was loaded to the
    /// archive, as one batch.
    pub fn dump(&self) -> Result<()> {
        let batch: Vec<_> = self
            .memory
            .read()
            .iter()
            .filter(|(_, slot)| !slot.clean)
            .map(|(k, slot)| (k.clone(), slot.clone()))
            .collect();
        self.write(batch).map(drop)
    }

    /// Writes `batch` and marks its entries saved, unless they were
    /// replaced in memory meanwhile.
    fn write(&self, batch: Vec<(K, Slot<V>)>) -> Result<usize> {
        let count = batch.len();
        let stamps: Vec<(K, u64)> = batch.iter().map(|(k, s)| (k.clone(), s.stamp)).collect();
        self.archive.extend_with_args(
            batch
                .into_iter()
                .map(|(k, s)| (k, s.value, s.args))
                .collect(),
        )?;
        let mut memory = self.memory.write();
        for (key, stamp) in stamps {
            if let Some(slot) = memory.get_mut(&key).filter(|s| s.stamp == stamp) {
                slot.clean = true;
            }
        }
        Ok(count)
    }

    /// Writes the in-memory entries of `keys` to the archive, as one batch;
    /// keys not in memory are skipped. Returns how many were written.
    pub fn dump_keys(&self, keys: &[K]) -> Result<usize> {
        let batch: Vec<_> = {
            let memory = self.memory.read();
            keys.iter()
                .filter_map(|k| {
                    let slot = memory.get(k)?;
                    Some((k.clone(), slot.clone()))
                })
                .collect()
        };
        self.write(batch)
    }

    /// Makes memory and archive hold the same entries: memory is dumped
    /// (its values win), then the archive is loaded.
    pub fn sync(&self) -> Result<()> {
        self.dump()?;
        self.load()
    }

    /// Removes every entry from the archive; memory is kept.
    pub fn drop_archive(&self) -> Result<()> {
        self.archive.clear()
    }
}

impl<A, K, V> Archive<K, V> for Cached<A, K, V>
where
    A: Archive<K, V>,
    K: Eq + Hash + Clone + Send + Sync,
    V: Clone + Send + Sync,
{
    fn get(&self, key: &K) -> Result<Option<V>> {
        Ok(self.memory.read().get(key).map(|slot| slot.value.clone()))
    }
    fn insert(&self, key: K, value: V) -> Result<()> {
        self.memory.write().insert(key, Slot::new(value, None));
        Ok(())
    }
    fn remove(&self, key: &K) -> Result<Option<V>> {
        Ok(self.memory.write().remove(key).map(|slot| slot.value))
    }
    fn contains_key(&self, key: &K) -> Result<bool> {
        Ok(self.memory.read().contains_key(key))
    }
    fn len(&self) -> Result<usize> {
        Ok(self.memory.read().len())
    }
    fn keys(&self) -> Result<Items<'_, K>> {
        let keys: Vec<_> = self.memory.read().keys().cloned().map(Ok).collect();
        Ok(Box::new(keys.into_iter()))
    }
    fn iter(&self) -> Result<Items<'_, (K, V)>> {
        let items: Vec<_> = self
            .memory
            .read()
            .iter()
            .map(|(k, slot)| Ok((k.clone(), slot.value.clone())))
            .collect();
        Ok(Box::new(items.into_iter()))
    }
    fn clear(&self) -> Result<()> {
        self.memory.write().clear();
        Ok(())
    }
    fn extend(&self, items: Vec<(K, V)>) -> Result<()> {
        let mut memory = self.memory.write();
        memory.extend(items.into_iter().map(|(k, v)| (k, Slot::new(v, None))));
        Ok(())
    }
    fn insert_with_args(&self, key: K, value: V, args: Option<Vec<u8>>) -> Result<()> {
        self.memory.write().insert(key, Slot::new(value, args));
        Ok(())
    }
    fn extend_with_args(&self, items: Vec<WithArgs<K, V>>) -> Result<()> {
        let mut memory = self.memory.write();
        memory.extend(items.into_iter().map(|(k, v, a)| (k, Slot::new(v, a))));
        Ok(())
    }
    fn args(&self, key: &K) -> Result<Option<Vec<u8>>> {
        match self.memory.read().get(key) {
            Some(slot) if !slot.clean => Ok(slot.args.clone()),
            _ => self.archive.args(key),
        }
    }
    /// A new, empty memory in front of the archive's namespace.
    fn namespaced(&self, namespace: &str) -> Result<Self> {
        Ok(Cached::new(self.archive.namespaced(namespace)?))
    }
    fn location(&self) -> String {
        format!("cached:{}", self.archive.location())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::DictArchive;

    type Front = Cached<DictArchive<u32, String>, u32, String>;

    fn setup() -> (DictArchive<u32, String>, Front) {
        let disk = DictArchive::new();
        disk.extend(vec![(1, "one".into()), (2, "two".into())])
            .unwrap();
        let cached = Cached::new(disk.clone());
        (disk, cached)
    }

    #[test]
    fn dictionary_methods_touch_memory_only() {
        let (disk, cached) = setup();
        assert_eq!(cached.get(&1).unwrap(), None);
        cached.insert(3, "three".into()).unwrap();
        assert_eq!(cached.len().unwrap(), 1);
        assert_eq!(disk.len().unwrap(), 2);
        cached.clear().unwrap();
        assert_eq!(disk.len().unwrap(), 2);
    }

    #[test]
    fn load_and_dump_some_keys() {
        let (disk, cached) = setup();
        assert_eq!(cached.load_keys(&[2, 9]).unwrap(), 1);
        assert_eq!(cached.get(&2).unwrap().as_deref(), Some("two"));
        assert_eq!(cached.get(&1).unwrap(), None);
        cached.insert(5, "five".into()).unwrap();
        cached.insert(6, "six".into()).unwrap();
        assert_eq!(cached.dump_keys(&[5, 7]).unwrap(), 1);
        assert!(disk.contains_key(&5).unwrap());
        assert!(!disk.contains_key(&6).unwrap());
    }

    #[test]
    fn sync_makes_both_sides_equal_with_memory_winning() {
        let (disk, cached) = setup();
        cached.insert(1, "uno".into()).unwrap();
        cached.insert(3, "three".into()).unwrap();
        cached.sync().unwrap();
        let mut mem: Vec<_> = cached.iter().unwrap().map(Result::unwrap).collect();
        let mut arc: Vec<_> = disk.iter().unwrap().map(Result::unwrap).collect();
        mem.sort();
        arc.sort();
        assert_eq!(mem, arc);
        assert_eq!(disk.get(&1).unwrap().as_deref(), Some("uno"));
        assert_eq!(mem.len(), 3);
    }

    #[test]
    fn drop_archive_empties_the_archive_only() {
        let (disk, cached) = setup();
        cached.load().unwrap();
        cached.drop_archive().unwrap();
        assert_eq!(disk.len().unwrap(), 0);
        assert_eq!(cached.len().unwrap(), 2);
    }

    #[test]
    fn dump_writes_only_what_changed_since_load() {
        let (disk, cached) = setup();
        cached.load().unwrap();
        disk.insert(1, "changed elsewhere".into()).unwrap();
        cached.insert(2, "deux".into()).unwrap();
        cached.dump().unwrap();
        assert_eq!(disk.get(&1).unwrap().as_deref(), Some("changed elsewhere"));
        assert_eq!(disk.get(&2).unwrap().as_deref(), Some("deux"));
    }

    #[test]
    fn args_travel_through_dump() {
        let disk: DictArchive<u32, String> = DictArchive::new();
        let cached = Cached::new(disk);
        cached
            .insert_with_args(1, "x".into(), Some(vec![9]))
            .unwrap();
        assert_eq!(cached.args(&1).unwrap(), Some(vec![9]));
        cached.dump().unwrap();
        // DictArchive keeps no arguments; the default drops them.
        assert_eq!(cached.archive().args(&1).unwrap(), None);
    }

    #[test]
    fn clones_share_memory_and_namespaces_do_not() {
        let (_disk, cached) = setup();
        let twin = cached.clone();
        twin.insert(8, "eight".into()).unwrap();
        assert!(cached.contains_key(&8).unwrap());
        let other = cached.namespaced("other").unwrap();
        assert_eq!(other.len().unwrap(), 0);
        other.load().unwrap();
        assert_eq!(other.len().unwrap(), 0);
    }
}
