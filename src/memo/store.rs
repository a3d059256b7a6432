//! A memo's memory: sharded tables for the hit path, one core that orders
//! entries for eviction.
//!
//! Keys and values live in `shards`, each a hash table behind its own small
//! lock, so threads hitting different keys rarely meet. The eviction policy
//! lives in the `core`, behind one lock taken only to add entries (a miss or
//! a load) and to apply recorded hits.
//!
//! A hit does not take the core lock: it appends a *touch* (slot, slot
//! generation, stamp) to its shard's log. Before any eviction decision the
//! core drains every shard's log and replays the touches in stamp order, so
//! the policy sees every hit before it picks a victim. Stamps are Lamport
//! clocks: a stamp is above every stamp this thread took before and every
//! stamp of the shard, so a thread's own hits replay in exactly the order it
//! made them, and a single-threaded memo follows its policy exactly (the
//! reference traces and the model-based property tests check this). Hits of
//! different threads that no lock orders replay in stamp order, one valid
//! linearisation of concurrent events.
//!
//! Slot generations make a touch that arrives after its entry was evicted
//! (and the slot reused) harmless: it no longer matches and is skipped.
//!
//! Lock order: core, then one shard at a time. The hit path holds one shard
//! lock and nothing else.

use std::cell::Cell;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::OnceLock;

use hashbrown::HashTable;
use parking_lot::{Mutex, MutexGuard};

use crate::policy::{Policy, Slot};

/// A shard's log is replayed once it holds this many touches.
const LOG_LIMIT: usize = 128;

thread_local! {
    /// This thread's Lamport clock (shared by all memos: clocks only need to grow).
    static CLOCK: Cell<u64> = const { Cell::new(0) };
}

/// The next stamp: above this thread's last one and above the shard's.
#[inline]
fn next_stamp(shard_clock: &mut u64) -> u64 {
    CLOCK.with(|clock| {
        let stamp = clock.get().max(*shard_clock) + 1;
        clock.set(stamp);
        *shard_clock = stamp;
        stamp
    })
}

/// Shards per memo: a few per core, so two threads rarely want the same one.
fn shard_count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(4, |n| n.get());
        (cores * 4).next_power_of_two().clamp(8, 64)
    })
}

struct Entry<K, V> {
    key: K,
    value: V,
    slot: Slot,
    /// `generation << 1 | dirty`; dirty: computed here, not yet in the archive.
    tag: u32,
}

impl<K, V> Entry<K, V> {
    fn dirty(&self) -> bool {
        self.tag & 1 == 1
    }
    fn set_dirty(&mut self, dirty: bool) {
        self.tag = (self.tag & !1) | u32::from(dirty);
    }
}

/// A recorded hit, replayed into the policy later.
#[derive(Clone, Copy)]
struct Touch {
    stamp: u64,
    slot: Slot,
    generation: u32,
}

struct ShardData<K, V> {
    table: HashTable<Entry<K, V>>,
    log: Vec<Touch>,
    clock: u64,
    hits: u64,
}

/// One shard, on its own cache line so neighbours do not contend.
#[repr(align(64))]
struct Shard<K, V> {
    data: Mutex<ShardData<K, V>>,
    /// The log holds touches: lets a replay skip idle shards without locking.
    pending: AtomicBool,
}

/// Where a slot's entry is, and which entry it is.
#[derive(Clone, Copy)]
struct SlotMeta {
    hash: u64,
    generation: u32,
    live: bool,
}

struct Core<P> {
    policy: P,
    slots: Vec<SlotMeta>,
    free: Vec<Slot>,
    len: usize,
    /// Scratch space for replaying touches, kept to avoid reallocating.
    replay: Vec<Touch>,
}

/// What an insertion pushed out of memory.
pub(crate) enum Displaced<K, V> {
    /// Nothing.
    None,
    /// The policy evicted one entry (`dirty`: not yet in the archive).
    Evicted { key: K, value: V, dirty: bool },
    /// Memory was full and purging is on: every entry, the new one included,
    /// left memory and must go to the archive.
    Purged(Vec<(K, V)>),
    /// The policy keeps nothing in memory; the new entry was not stored.
    NotStored { key: K, value: V },
}

pub(crate) struct Store<K, V, P> {
    shards: Box<[Shard<K, V>]>,
    core: Mutex<Core<P>>,
}

impl<K: Eq + Hash, V: Clone, P: Policy> Store<K, V, P> {
    pub fn new(policy: P) -> Self {
        let shards = (0..shard_count())
            .map(|_| Shard {
                data: Mutex::new(ShardData {
                    table: HashTable::new(),
                    log: Vec::new(),
                    clock: 0,
                    hits: 0,
                }),
                pending: AtomicBool::new(false),
            })
            .collect();
        Store {
            shards,
            core: Mutex::new(Core {
                policy,
                slots: Vec::new(),
                free: Vec::new(),
                len: 0,
                replay: Vec::new(),
            }),
        }
    }

    #[inline]
    fn shard_of(&self, hash: u64) -> &Shard<K, V> {
        // The table uses the low bits and the top 7; pick the shard from the middle.
        &self.shards[(hash >> 32) as usize & (self.shards.len() - 1)]
    }

    #[inline]
    fn shard(&self, hash: u64) -> MutexGuard<'_, ShardData<K, V>> {
        self.shard_of(hash).data.lock()
    }

    /// A hit: a clone of the value, with the use recorded and counted.
    #[inline]
    pub fn get(&self, hash: u64, key: &K) -> Option<V> {
        let home = self.shard_of(hash);
        let mut guard = home.data.lock();
        let shard = &mut *guard;
        let entry = shard.table.find(hash, |e| e.key == *key)?;
        let value = entry.value.clone();
        shard.hits += 1;
        if !P::TRACKS_HITS {
            return Some(value);
        }
        let touch = Touch {
            stamp: next_stamp(&mut shard.clock),
            slot: entry.slot,
            generation: entry.tag >> 1,
        };
        shard.log.push(touch);
        let logged = shard.log.len();
        if logged == 1 {
            home.pending.store(true, Relaxed);
        }
        let full = logged >= LOG_LIMIT;
        drop(guard);
        if full {
            self.replay(&mut self.core.lock());
        }
        Some(value)
    }

    /// Counts a hit answered outside the table (a single-flight follower).
    pub fn count_hit(&self, hash: u64) {
        self.shard(hash).hits += 1;
    }

    /// The value without touching policy or statistics.
    pub fn peek(&self, hash: u64, key: &K) -> Option<V> {
        self.shard(hash)
            .table
            .find(hash, |e| e.key == *key)
            .map(|e| e.value.clone())
    }

    /// Replays every shard's recorded hits into the policy, in stamp order.
    fn replay(&self, core: &mut Core<P>) {
        if !P::TRACKS_HITS {
            return;
        }
        let mut touches = std::mem::take(&mut core.replay);
        for shard in self.shards.iter() {
            if shard.pending.load(Relaxed) {
                let mut data = shard.data.lock();
                touches.append(&mut data.log);
                shard.pending.store(false, Relaxed);
            }
        }
        // Each shard's log is already sorted: a stable sort merges the runs.
        touches.sort_by_key(|t| t.stamp);
        for t in &touches {
            let meta = core.slots[t.slot as usize];
            if meta.live && meta.generation == t.generation {
                core.policy.on_hit(t.slot);
            }
        }
        touches.clear();
        core.replay = touches;
    }

    /// Adds an entry, making room first. `purge` empties the whole memory
    /// into the result instead of evicting one entry; `hasher` rehashes keys
    /// when a table grows.
    pub fn insert(
        &self,
        hash: u64,
        key: K,
        value: V,
        dirty: bool,
        purge: bool,
        hasher: impl Fn(&K) -> u64,
    ) -> Displaced<K, V> {
        let mut core = self.core.lock();
        let core = &mut *core;
        self.replay(core);
        let mut shard = self.shard(hash);
        if let Some(e) = shard.table.find_mut(hash, |e| e.key == key) {
            // Stored meanwhile by another path (a load): keep the newer value.
            e.value = value;
            let d = e.dirty() || dirty;
            e.set_dirty(d);
            return Displaced::None;
        }
        let mut displaced = Displaced::None;
        match core.policy.capacity() {
            Some(0) => return Displaced::NotStored { key, value },
            Some(cap) if core.len >= cap => {
                drop(shard); // making room locks other shards
                if purge {
                    let mut all = self.empty(core);
                    all.push((key, value));
                    return Displaced::Purged(all);
                }
                if let Some(victim) = core.policy.evict() {
                    displaced = self.remove_slot(core, victim);
                }
                shard = self.shard(hash);
            }
            _ => {}
        }
        let slot = match core.free.pop() {
            Some(slot) => slot,
            None => {
                let slot = Slot::try_from(core.slots.len()).expect("more than u32::MAX entries");
                core.slots.push(SlotMeta {
                    hash: 0,
                    generation: 0,
                    live: false,
                });
                slot
            }
        };
        let meta = &mut core.slots[slot as usize];
        meta.hash = hash;
        meta.live = true;
        let tag = (meta.generation << 1) | u32::from(dirty);
        core.policy.on_insert(slot);
        core.len += 1;
        shard.table.insert_unique(
            hash,
            Entry {
                key,
                value,
                slot,
                tag,
            },
            |e| hasher(&e.key),
        );
        displaced
    }

    /// Removes the entry in `slot` (already forgotten by the policy).
    fn remove_slot(&self, core: &mut Core<P>, slot: Slot) -> Displaced<K, V> {
        let meta = &mut core.slots[slot as usize];
        let removed = self
            .shard(meta.hash)
            .table
            .find_entry(meta.hash, |e| e.slot == slot)
            .ok()
            .map(|found| found.remove().0);
        let Some(entry) = removed else {
            return Displaced::None;
        };
        meta.live = false;
        meta.generation = (meta.generation + 1) & (u32::MAX >> 1);
        core.free.push(slot);
        core.len -= 1;
        Displaced::Evicted {
            dirty: entry.dirty(),
            key: entry.key,
            value: entry.value,
        }
    }

    /// Empties memory under the core lock, returning every entry.
    fn empty(&self, core: &mut Core<P>) -> Vec<(K, V)> {
        let mut all = Vec::with_capacity(core.len);
        for shard in self.shards.iter() {
            let mut data = shard.data.lock();
            data.log.clear();
            shard.pending.store(false, Relaxed);
            let shard = &mut *data;
            all.extend(shard.table.drain().map(|e| (e.key, e.value)));
        }
        core.policy.clear();
        core.slots.clear();
        core.free.clear();
        core.len = 0;
        all
    }

    /// Forgets every entry and the hit count.
    pub fn clear(&self) {
        let mut core = self.core.lock();
        self.empty(&mut core);
        for shard in self.shards.iter() {
            shard.data.lock().hits = 0;
        }
    }

    /// Copies of the entries to write to the archive (only the dirty ones,
    /// or all), marked clean.
    pub fn take_for_dump(&self, only_dirty: bool) -> Vec<(K, V)>
    where
        K: Clone,
    {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            for e in shard.data.lock().table.iter_mut() {
                if e.dirty() || !only_dirty {
                    e.set_dirty(false);
                    out.push((e.key.clone(), e.value.clone()));
                }
            }
        }
        out
    }

    /// Marks the given keys dirty again (their write failed).
    pub fn mark_dirty(&self, keys: impl Iterator<Item = (u64, K)>) {
        for (hash, key) in keys {
            if let Some(e) = self.shard(hash).table.find_mut(hash, |e| e.key == key) {
                e.set_dirty(true);
            }
        }
    }

    /// The keys in memory (any order).
    pub fn keys(&self) -> Vec<K>
    where
        K: Clone,
    {
        let mut keys = Vec::new();
        for shard in self.shards.iter() {
            keys.extend(shard.data.lock().table.iter().map(|e| e.key.clone()));
        }
        keys
    }

    /// Entries in memory.
    pub fn len(&self) -> usize {
        self.core.lock().len
    }

    /// The memory bound.
    pub fn capacity(&self) -> Option<usize> {
        self.core.lock().policy.capacity()
    }

    /// Hits counted since the last clear.
    pub fn hits(&self) -> u64 {
        self.shards.iter().map(|s| s.data.lock().hits).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Lru, Unbounded};
    use std::hash::BuildHasher;

    fn hasher() -> impl Fn(&u64) -> u64 {
        let hb = hashbrown::DefaultHashBuilder::default();
        move |k| hb.hash_one(k)
    }

    #[test]
    fn insert_get_drain_reuses_slots() {
        let h = hasher();
        let s: Store<u64, u64, Unbounded> = Store::new(Unbounded);
        for k in 0..100 {
            assert!(matches!(
                s.insert(h(&k), k, k * 2, true, false, &h),
                Displaced::None
            ));
        }
        assert_eq!(s.len(), 100);
        assert_eq!(s.get(h(&7), &7), Some(14));
        assert_eq!(s.hits(), 1);
        assert_eq!(s.peek(h(&100), &100), None);
        assert_eq!(s.take_for_dump(true).len(), 100);
        assert_eq!(s.take_for_dump(true).len(), 0, "dump marks entries clean");
        s.clear();
        assert_eq!((s.len(), s.hits()), (0, 0));
        assert_eq!(s.get(h(&7), &7), None);
    }

    #[test]
    fn hits_replay_in_order_before_eviction() {
        let h = hasher();
        let s: Store<u64, u64, Lru> = Store::new(Lru::new(3));
        for k in [1, 2, 3] {
            s.insert(h(&k), k, k, false, false, &h);
        }
        // Touch 1 and 2 (in different shards, most likely): 3 is now the LRU.
        s.get(h(&1), &1);
        s.get(h(&2), &2);
        match s.insert(h(&4), 4, 4, false, false, &h) {
            Displaced::Evicted { key, .. } => assert_eq!(key, 3),
            _ => panic!("expected an eviction"),
        }
        // Slot of 3 is reused by 4; a long run of hits fills logs and replays.
        for _ in 0..(LOG_LIMIT * 3) {
            s.get(h(&4), &4);
            s.get(h(&1), &1);
        }
        match s.insert(h(&5), 5, 5, false, false, &h) {
            Displaced::Evicted { key, .. } => assert_eq!(key, 2),
            _ => panic!("expected an eviction"),
        }
    }

    #[test]
    fn stale_touches_of_evicted_entries_are_skipped() {
        let h = hasher();
        let s: Store<u64, u64, Lru> = Store::new(Lru::new(1));
        s.insert(h(&1), 1, 1, false, false, &h);
        // Record a touch of 1 and leave it in the log...
        s.get(h(&1), &1);
        // ...evict 1 (the replay applies it first), reuse its slot for 2.
        s.insert(h(&2), 2, 2, false, false, &h);
        s.get(h(&2), &2);
        match s.insert(h(&3), 3, 3, false, false, &h) {
            Displaced::Evicted { key, .. } => assert_eq!(key, 2),
            _ => panic!("expected an eviction"),
        }
        assert_eq!(s.len(), 1);
    }
}
