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
//! Single flight lives in the shards too: a miss registers a *flight* for its
//! key under the same shard lock that saw the miss, so concurrent misses on
//! one key find the flight, wait on the shard's condition variable, and get
//! the leader's value when it stores it. A leader that panics abandons its
//! flight; one waiting follower takes over, the others go on waiting.
//!
//! Lock order: core, then shards. The hit path holds one shard lock and
//! nothing else; only core holders take more than one shard lock.

use std::cell::Cell;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;

use hashbrown::HashTable;
use parking_lot::{Condvar, Mutex, MutexGuard};

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

/// The state of a key being computed.
enum FlightState<V> {
    Running { waiters: usize },
    Done { value: V, waiters: usize },
    Abandoned { waiters: usize },
}

struct Flight<K, V> {
    key: K,
    hash: u64,
    state: FlightState<V>,
}

struct ShardData<K, V> {
    table: HashTable<Entry<K, V>>,
    flights: HashTable<Flight<K, V>>,
    log: Vec<Touch>,
    clock: u64,
    hits: u64,
}

/// One shard, on its own cache line so neighbours do not contend.
#[repr(align(64))]
struct Shard<K, V> {
    data: Mutex<ShardData<K, V>>,
    /// Signalled when a flight of this shard ends.
    ended: Condvar,
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
    ordered: Vec<Touch>,
}

const NO_SLOT: Slot = Slot::MAX;

/// Puts `touches` in stamp order, returning the ordered slice.
///
/// Stamps are dense when few threads hit the memo (one thread's stamps are
/// consecutive), so a counting placement into `scratch` orders them in O(n)
/// without comparisons; sparse or colliding stamps (many threads) fall back
/// to a sort.
fn order_by_stamp<'a>(touches: &'a mut [Touch], scratch: &'a mut Vec<Touch>) -> &'a [Touch] {
    let (Some(min), Some(max)) = (
        touches.iter().map(|t| t.stamp).min(),
        touches.iter().map(|t| t.stamp).max(),
    ) else {
        return touches;
    };
    let span = usize::try_from(max - min).map_or(usize::MAX, |s| s + 1);
    if span <= touches.len() * 4 {
        scratch.clear();
        scratch.resize(
            span,
            Touch {
                stamp: 0,
                slot: NO_SLOT,
                generation: 0,
            },
        );
        let mut collided = false;
        for t in touches.iter() {
            let place = &mut scratch[(t.stamp - min) as usize];
            collided |= place.slot != NO_SLOT;
            *place = *t;
        }
        if !collided {
            scratch.retain(|t| t.slot != NO_SLOT);
            return scratch;
        }
    }
    touches.sort_unstable_by_key(|t| t.stamp);
    touches
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
    /// The policy keeps nothing in memory; the new entry was not stored
    /// (`dirty`: not yet in the archive).
    NotStored { key: K, value: V, dirty: bool },
}

/// The outcome of [`Store::lookup`].
pub(crate) enum Lookup<'a, K: Eq + Hash, V: Clone, P: Policy> {
    /// The value: stored, or computed by the leader this caller waited for.
    Hit(V),
    /// Missing: this caller computes it and hands it to [`Leader::store`].
    Lead(Leader<'a, K, V, P>),
}

/// The right and duty to compute one key. Dropping it without
/// [`store`](Leader::store) (a panic) abandons the flight.
pub(crate) struct Leader<'a, K: Eq + Hash, V: Clone, P: Policy> {
    store: &'a Store<K, V, P>,
    hash: u64,
    key: Option<K>,
}

impl<K: Eq + Hash, V: Clone, P: Policy> Leader<'_, K, V, P> {
    /// The key being computed.
    pub fn key(&self) -> &K {
        self.key.as_ref().expect("a live leader has its key")
    }

    /// Stores the value (see [`Store::insert`]) and hands it to the waiting
    /// followers.
    pub fn store(
        mut self,
        value: V,
        dirty: bool,
        purge: bool,
        hasher: impl Fn(&K) -> u64,
    ) -> Displaced<K, V> {
        let key = self.key.take().expect("a live leader has its key");
        self.store
            .insert_inner(self.hash, key, value, dirty, purge, hasher, true)
    }
}

impl<K: Eq + Hash, V: Clone, P: Policy> Drop for Leader<'_, K, V, P> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            let home = self.store.shard_of(self.hash);
            end_flight(home, &mut home.data.lock(), self.hash, &key, None);
        }
    }
}

/// Ends the flight of `key`: hands `value` to its waiters, or (`None`)
/// abandons it so that one waiter takes over.
fn end_flight<K: Eq, V: Clone>(
    home: &Shard<K, V>,
    shard: &mut ShardData<K, V>,
    hash: u64,
    key: &K,
    value: Option<&V>,
) {
    let Ok(mut found) = shard.flights.find_entry(hash, |f| f.key == *key) else {
        return;
    };
    let waiters = match found.get().state {
        FlightState::Running { waiters } => waiters,
        _ => 0,
    };
    if waiters == 0 {
        found.remove();
        return;
    }
    found.get_mut().state = match value {
        Some(value) => FlightState::Done {
            value: value.clone(),
            waiters,
        },
        None => FlightState::Abandoned { waiters },
    };
    home.ended.notify_all();
}

pub(crate) struct Store<K, V, P> {
    shards: Box<[Shard<K, V>]>,
    core: Mutex<Core<P>>,
    /// Bit `i` set: shard `i`'s log may hold touches. One word for a replay
    /// to read instead of a flag on every shard's cache line.
    pending: AtomicU64,
}

impl<K: Eq + Hash, V: Clone, P: Policy> Store<K, V, P> {
    pub fn new(policy: P) -> Self {
        let shards = (0..shard_count())
            .map(|_| Shard {
                data: Mutex::new(ShardData {
                    table: HashTable::new(),
                    flights: HashTable::new(),
                    log: Vec::new(),
                    clock: 0,
                    hits: 0,
                }),
                ended: Condvar::new(),
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
                ordered: Vec::new(),
            }),
            pending: AtomicU64::new(0),
        }
    }

    #[inline]
    fn shard_index(&self, hash: u64) -> usize {
        // The table uses the low bits and the top 7; pick the shard from the middle.
        (hash >> 32) as usize & (self.shards.len() - 1)
    }

    #[inline]
    fn shard_of(&self, hash: u64) -> &Shard<K, V> {
        &self.shards[self.shard_index(hash)]
    }

    #[inline]
    fn shard(&self, hash: u64) -> MutexGuard<'_, ShardData<K, V>> {
        self.shard_of(hash).data.lock()
    }

    /// A hit: a clone of the value, with the use recorded and counted. A
    /// miss leads the key's flight (the leader keeps `key`), or waits for
    /// the flight under way.
    #[inline]
    pub fn lookup(&self, hash: u64, key: K) -> Lookup<'_, K, V, P>
    where
        K: Clone,
    {
        let index = self.shard_index(hash);
        let home = &self.shards[index];
        let mut guard = home.data.lock();
        let shard = &mut *guard;
        let Some(entry) = shard.table.find(hash, |e| e.key == key) else {
            return self.join(home, hash, key, guard);
        };
        let value = entry.value.clone();
        shard.hits += 1;
        if !P::TRACKS_HITS {
            return Lookup::Hit(value);
        }
        let touch = Touch {
            stamp: next_stamp(&mut shard.clock),
            slot: entry.slot,
            generation: entry.tag >> 1,
        };
        shard.log.push(touch);
        let logged = shard.log.len();
        if logged == 1 {
            self.pending.fetch_or(1 << index, Relaxed);
        }
        drop(guard);
        if logged >= LOG_LIMIT {
            self.replay(&mut self.core.lock());
        }
        Lookup::Hit(value)
    }

    /// The miss path of [`lookup`](Self::lookup), still under the shard lock.
    fn join<'a>(
        &'a self,
        home: &'a Shard<K, V>,
        hash: u64,
        key: K,
        mut guard: MutexGuard<'a, ShardData<K, V>>,
    ) -> Lookup<'a, K, V, P>
    where
        K: Clone,
    {
        let lead = |key| {
            Lookup::Lead(Leader {
                store: self,
                hash,
                key: Some(key),
            })
        };
        let shard = &mut *guard;
        match shard.flights.find_mut(hash, |f| f.key == key) {
            None => {
                let flight = Flight {
                    key: key.clone(),
                    hash,
                    state: FlightState::Running { waiters: 0 },
                };
                shard.flights.insert_unique(hash, flight, |f| f.hash);
                return lead(key);
            }
            Some(flight) => match &mut flight.state {
                FlightState::Running { waiters } => *waiters += 1,
                // Followers of an ended flight are still collecting the value.
                FlightState::Done { value, .. } => {
                    let value = value.clone();
                    shard.hits += 1;
                    return Lookup::Hit(value);
                }
                FlightState::Abandoned { waiters } => {
                    flight.state = FlightState::Running { waiters: *waiters };
                    return lead(key);
                }
            },
        }
        loop {
            home.ended.wait(&mut guard);
            let shard = &mut *guard;
            let Ok(mut found) = shard.flights.find_entry(hash, |f| f.key == key) else {
                unreachable!("a flight with waiters stays registered")
            };
            match &mut found.get_mut().state {
                FlightState::Running { .. } => {}
                FlightState::Done { value, waiters } => {
                    let value = value.clone();
                    *waiters -= 1;
                    if *waiters == 0 {
                        found.remove();
                    }
                    shard.hits += 1;
                    return Lookup::Hit(value);
                }
                FlightState::Abandoned { waiters } => {
                    // Take over; the other followers keep waiting.
                    let waiters = *waiters - 1;
                    found.get_mut().state = FlightState::Running { waiters };
                    return lead(key);
                }
            }
        }
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
        // A hit that logs into an emptied shard after this swap sets its bit
        // again; one that logs before its shard is drained here is drained
        // with it (a stale bit only costs the next replay one lock).
        let mut pending = self.pending.swap(0, Relaxed);
        while pending != 0 {
            let index = pending.trailing_zeros() as usize;
            pending &= pending - 1;
            touches.append(&mut self.shards[index].data.lock().log);
        }
        let ordered = order_by_stamp(&mut touches, &mut core.ordered);
        for t in ordered.iter() {
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
        self.insert_inner(hash, key, value, dirty, purge, hasher, false)
    }

    /// [`insert`](Self::insert), also ending the key's flight when `led`.
    #[allow(clippy::too_many_arguments)]
    fn insert_inner(
        &self,
        hash: u64,
        key: K,
        value: V,
        dirty: bool,
        purge: bool,
        hasher: impl Fn(&K) -> u64,
        led: bool,
    ) -> Displaced<K, V> {
        let mut core = self.core.lock();
        let core = &mut *core;
        self.replay(core);
        let home = self.shard_of(hash);
        let mut shard = home.data.lock();
        if led {
            // Waiters wake once this shard lock is released, after the store.
            end_flight(home, &mut shard, hash, &key, Some(&value));
        }
        if let Some(e) = shard.table.find_mut(hash, |e| e.key == key) {
            // Stored meanwhile by another path (a load): keep the newer value.
            e.value = value;
            let d = e.dirty() || dirty;
            e.set_dirty(d);
            return Displaced::None;
        }
        let mut displaced = Displaced::None;
        match core.policy.capacity() {
            Some(0) => return Displaced::NotStored { key, value, dirty },
            Some(cap) if core.len >= cap => {
                if purge {
                    drop(shard); // emptying locks every shard
                    let mut all = self.empty(core);
                    all.push((key, value));
                    return Displaced::Purged(all);
                }
                if let Some(victim) = core.policy.evict() {
                    // Holding two shard locks is safe under the core lock:
                    // only core holders ever take more than one.
                    let victim_hash = core.slots[victim as usize].hash;
                    displaced = if self.shard_index(victim_hash) == self.shard_index(hash) {
                        Self::remove_slot(core, &mut shard, victim)
                    } else {
                        Self::remove_slot(core, &mut self.shard(victim_hash), victim)
                    };
                }
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

    /// Removes the entry in `slot` (already forgotten by the policy) from
    /// `shard`, its shard.
    fn remove_slot(core: &mut Core<P>, shard: &mut ShardData<K, V>, slot: Slot) -> Displaced<K, V> {
        let meta = &mut core.slots[slot as usize];
        let removed = shard
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

    /// Copies of the entries not yet in the archive (dirty), marked clean.
    pub fn take_unsaved(&self) -> Vec<(K, V)>
    where
        K: Clone,
    {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            for e in shard.data.lock().table.iter_mut() {
                if e.dirty() {
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
impl<K: Eq + Hash + Clone, V: Clone, P: Policy> Store<K, V, P> {
    /// A lookup that gives up its flight at once on a miss.
    fn get(&self, hash: u64, key: &K) -> Option<V> {
        match self.lookup(hash, key.clone()) {
            Lookup::Hit(v) => Some(v),
            Lookup::Lead(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Lru, Unbounded};

    /// A deterministic hash, the same in every thread.
    fn hasher() -> impl Fn(&u64) -> u64 {
        |k| k.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29)
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
        assert_eq!(s.take_unsaved().len(), 100);
        assert_eq!(s.take_unsaved().len(), 0, "dump marks entries clean");
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

    #[test]
    fn followers_get_the_leaders_value_and_flights_empty() {
        use std::sync::Arc;
        let h = hasher();
        let s: Arc<Store<u64, u64, Lru>> = Arc::new(Store::new(Lru::new(4)));
        let Lookup::Lead(leader) = s.lookup(h(&1), 1) else {
            panic!("the first caller leads")
        };
        let followers: Vec<_> = (0..3)
            .map(|_| {
                let (s, h) = (s.clone(), hasher());
                std::thread::spawn(move || match s.lookup(h(&1), 1) {
                    Lookup::Hit(v) => v,
                    Lookup::Lead(_) => panic!("a follower must not lead"),
                })
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(50));
        leader.store(7, true, false, &h);
        for f in followers {
            assert_eq!(f.join().unwrap(), 7);
        }
        assert_eq!(s.hits(), 3);
        assert!(s.shards.iter().all(|sh| sh.data.lock().flights.is_empty()));
    }

    #[test]
    fn an_abandoned_flight_passes_to_one_follower() {
        use std::sync::Arc;
        let h = hasher();
        let s: Arc<Store<u64, u64, Lru>> = Arc::new(Store::new(Lru::new(4)));
        let Lookup::Lead(leader) = s.lookup(h(&1), 1) else {
            panic!("the first caller leads")
        };
        let follower = {
            let (s, h) = (s.clone(), hasher());
            std::thread::spawn(move || match s.lookup(h(&1), 1) {
                Lookup::Lead(l) => {
                    l.store(9, true, false, &h);
                    true
                }
                Lookup::Hit(_) => false,
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(50));
        drop(leader); // as a panic would
        assert!(follower.join().unwrap(), "the follower took over");
        assert_eq!(s.get(h(&1), &1), Some(9));
        assert!(s.shards.iter().all(|sh| sh.data.lock().flights.is_empty()));
    }
}
