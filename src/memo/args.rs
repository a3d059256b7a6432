//! The encoded arguments of results not yet written to the archive.
//!
//! A hashed key does not show the call it stands for, so archives keep the
//! canonical encoding of the arguments next to it. The encoding is known when
//! the result is computed, but the result may reach the archive much later
//! (when it leaves memory, or at a dump); until then it waits here. Only
//! memos with an archive and a keymap that provides encodings use this.

use std::hash::Hash;

use hashbrown::HashMap;
use parking_lot::Mutex;

use crate::archive::WithArgs;

/// Encoded arguments by key, for results in memory and not yet archived.
pub(crate) struct PendingArgs<Key> {
    /// `None` when the memo has no archive: every method is then a no-op.
    map: Option<Mutex<HashMap<Key, Vec<u8>>>>,
}

impl<Key: Eq + Hash> PendingArgs<Key> {
    /// Keeps arguments only if `enabled` (the memo has an archive).
    pub(crate) fn new(enabled: bool) -> Self {
        PendingArgs {
            map: enabled.then(Default::default),
        }
    }

    /// Whether arguments are kept at all.
    #[inline]
    pub(crate) fn enabled(&self) -> bool {
        self.map.is_some()
    }

    /// Remembers the encoding of `key`'s arguments until it is archived (the
    /// key is copied only when there is something to keep).
    #[inline]
    pub(crate) fn keep(&self, key: &Key, args: Option<Vec<u8>>)
    where
        Key: Clone,
    {
        if let (Some(map), Some(args)) = (&self.map, args) {
            Self::insert(map, key.clone(), args);
        }
    }

    /// [`keep`](Self::keep)'s map work, out of the inlined check.
    #[inline(never)]
    fn insert(map: &Mutex<HashMap<Key, Vec<u8>>>, key: Key, args: Vec<u8>) {
        map.lock().insert(key, args);
    }

    /// Takes the encoding of `key`'s arguments (the entry is being archived
    /// or has left memory unsaved).
    #[inline]
    pub(crate) fn take(&self, key: &Key) -> Option<Vec<u8>> {
        Self::remove(self.map.as_ref()?, key)
    }

    /// [`take`](Self::take)'s map work, out of the inlined check.
    #[inline(never)]
    fn remove(map: &Mutex<HashMap<Key, Vec<u8>>>, key: &Key) -> Option<Vec<u8>> {
        map.lock().remove(key)
    }

    /// Pairs `entries` with the encodings of their arguments, taken out (the
    /// entries are being archived, or have left memory unsaved). One lock
    /// for the whole batch.
    pub(crate) fn take_all<V>(&self, entries: Vec<(Key, V)>) -> Vec<WithArgs<Key, V>> {
        self.attach(entries, |map, key| map.remove(key))
    }

    /// Pairs `entries` with copies of the encodings of their arguments, left
    /// in place until [`forget`](Self::forget) (the write may fail). One lock
    /// for the whole batch.
    pub(crate) fn copy_all<V>(&self, entries: Vec<(Key, V)>) -> Vec<WithArgs<Key, V>> {
        self.attach(entries, |map, key| map.get(key).cloned())
    }

    fn attach<V>(
        &self,
        entries: Vec<(Key, V)>,
        mut args_of: impl FnMut(&mut HashMap<Key, Vec<u8>>, &Key) -> Option<Vec<u8>>,
    ) -> Vec<WithArgs<Key, V>> {
        let mut map = self.map.as_ref().map(|m| m.lock());
        entries
            .into_iter()
            .map(|(k, v)| {
                let args = map.as_deref_mut().and_then(|m| args_of(m, &k));
                (k, v, args)
            })
            .collect()
    }

    /// Drops the encodings of `keys`' arguments (they were archived). One
    /// lock for the whole batch.
    pub(crate) fn forget(&self, keys: &[Key]) {
        if let Some(map) = &self.map {
            let mut map = map.lock();
            keys.iter().for_each(|k| drop(map.remove(k)));
        }
    }

    /// A copy of the encoding of `key`'s arguments, left in place (for tests).
    #[cfg(test)]
    pub(crate) fn get(&self, key: &Key) -> Option<Vec<u8>> {
        self.map.as_ref()?.lock().get(key).cloned()
    }

    /// Forgets everything (the memory was cleared).
    pub(crate) fn clear(&self) {
        if let Some(map) = &self.map {
            map.lock().clear();
        }
    }

    /// How many encodings wait (for tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.as_ref().map_or(0, |m| m.lock().len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_keeps_nothing() {
        let p = PendingArgs::new(false);
        p.keep(&1, Some(vec![1]));
        assert_eq!(p.take(&1), None);
        assert!(!p.enabled());
    }

    #[test]
    fn keep_take_and_clear() {
        let p = PendingArgs::new(true);
        p.keep(&1, Some(vec![1]));
        p.keep(&2, None);
        p.keep(&3, Some(vec![3]));
        assert_eq!(p.len(), 2);
        assert_eq!(p.get(&1), Some(vec![1]));
        assert_eq!(p.take(&1), Some(vec![1]));
        assert_eq!(p.take(&1), None);
        p.clear();
        assert_eq!(p.len(), 0);
    }
}
