//! A memo's memory: one hash table and the eviction policy, behind a lock
//! striped by thread ([`Striped`]).
//!
//! Files: this one has lookups, insertion and eviction; `memory` has what
//! the lock guards (table entries, slots, order, counts); `logs` has the
//! touch logs and their replay; `leader` has single flight (leads,
//! leaders, followers); `validate` has the consistency check of tests.
//!
//! While one thread at a time uses the memo, the lock has a single stripe
//! and every call holds the whole memory: a hit finds the entry, clones the
//! value and tells the policy at once, for one compare-and-swap in all.
//!
//! Once threads contend, hits take only their own stripe. They read the
//! table and record a *touch* (stamp, slot, slot generation) in the
//! stripe's log instead of telling the policy. A full log is replayed into
//! the policy by its own thread, still holding its stripe, if the policy's
//! lock is free (else a little later); whoever takes the whole lock (a
//! miss, a load) first replays every stripe's log, merged by stamp, so the
//! policy has seen every hit before it picks a victim. When only the last
//! hit on an entry matters (LRU, MRU) the earlier ones of a batch are
//! skipped.
//!
//! A touch is stamped with a global epoch, which a thread that took stamps
//! advances when it ends (the merge sorts stably by stamp). A thread keeps
//! its stripe, so its own hits replay in the order it made them; hits made
//! after another thread ended (and was joined) replay after that thread's;
//! a log replayed by its own thread is applied at once, before anything
//! logged later. Hits of threads running at the same time replay in one
//! plausible order: the policy's order among them is approximate, as in any
//! concurrent cache, never its contents or counts. (The epoch is read on
//! every logged hit and written only when threads end: a per-thread
//! Lamport clock, read and written on every hit, cost 5% of a hit.) Slot
//! generations make a touch that arrives after its entry was evicted (and
//! the slot reused) harmless: it no longer matches.
//!
//! Single flight: a miss registers a *flight* for its key under the whole
//! lock, so concurrent misses on one key find it and wait (on the flight's
//! own [`FlightWait`], never holding the memory lock) for the leader's
//! value; the leader wakes only its own followers. A leader that panics
//! abandons its flight; one waiting follower takes over, the others go on
//! waiting.
//!
//! Lock order: the memory lock, then a flight's wait; nobody holding a
//! flight's wait takes the memory lock.

#[cfg(all(test, loom))]
mod flight_loom;
mod leader;
mod logs;
mod memory;
#[cfg(test)]
mod tests;
#[cfg(debug_assertions)]
mod validate;

use std::hash::Hash;

use hashbrown::HashTable;
use std::sync::Arc;

use self::leader::end_flight;
pub(crate) use self::leader::{Lead, Leader};
use self::logs::{stamp, Local, Touch, LOG_CAP, LOG_LIMIT};
use self::memory::{Counts, Entry, Memory, Order, SlotMeta, PREALLOCATE_MAX};
use super::flight::{FlightWait, Flights};
use super::probe::Probe;
use super::striped::{Locals, Parts, Striped, WriteGuard};
use crate::policy::{Policy, Slot};

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

/// Which statistic an insertion counts.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Count {
    /// The value was computed.
    Miss,
    /// The value came from the archive for a call.
    Load,
    /// Neither (a bulk load).
    Nothing,
}

/// The statistics the store keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tally {
    pub hits: u64,
    pub misses: u64,
    pub loads: u64,
    pub len: usize,
    pub capacity: Option<usize>,
}

type MemoryGuard<'a, K, V, P> = WriteGuard<'a, Memory<K, V>, Local, Order<P>>;
type MemoryParts<'g, K, V, P> = Parts<'g, Memory<K, V>, Local, Order<P>>;

pub(crate) struct Store<K, V, P> {
    memory: Striped<Memory<K, V>, Local, Order<P>>,
}

impl<K: Eq + Hash + Clone, V: Clone, P: Policy> Store<K, V, P> {
    pub fn new(policy: P) -> Self {
        let capacity = policy.capacity();
        // A bounded memory fills up in most uses: room for its slots from
        // the start (up to a limit).
        let room = capacity.unwrap_or(0).min(PREALLOCATE_MAX);
        Store {
            memory: Striped::new(
                Memory {
                    table: HashTable::new(),
                    flights: Flights::new(),
                    capacity,
                    counts: Counts::default(),
                },
                Order {
                    policy,
                    slots: Vec::with_capacity(room),
                    merged: Vec::new(),
                    seen: Vec::new(),
                    batch: 0,
                },
                Local::default,
            ),
        }
    }

    /// A hit: a clone of the value, with the use recorded and counted. A
    /// miss starts the key's flight, led by the caller (`Err`), or waits
    /// for the flight under way. (The small result stays in registers:
    /// the miss path is part of the Zipf benchmark.)
    #[inline]
    pub fn lookup<Q: Probe<K> + ?Sized>(&self, hash: u64, key: &Q) -> Result<V, Lead> {
        if let Some(mut sole) = self.memory.sole() {
            // The only stripe in use: no logs, the policy is told at once.
            let (memory, order) = sole.parts();
            if let Some(result) = Self::hit_or_lead(memory, &mut order.policy, hash, key) {
                return result;
            }
            drop(sole);
            return self.recheck(hash, key);
        }
        self.lookup_shared(hash, key)
    }

    /// [`lookup`](Self::lookup) while threads contend, out of line so that
    /// the lone thread's hit stays small: a hit under the caller's stripe,
    /// logged for the policy.
    #[inline(never)]
    fn lookup_shared<Q: Probe<K> + ?Sized>(&self, hash: u64, key: &Q) -> Result<V, Lead> {
        let mut guard = self.memory.read();
        if guard.single() {
            drop(guard);
            return self.recheck(hash, key);
        }
        let (memory, local) = guard.shared();
        if let Some(entry) = memory.table.find(hash, |e| key.matches(&e.key)) {
            let value = entry.value.clone();
            local.hits += 1;
            if P::TRACKS_HITS {
                let touch = Touch {
                    stamp: stamp(),
                    slot: entry.slot,
                    generation: entry.tag >> 1,
                };
                local.log.push(touch);
                let logged = local.log.len();
                if logged % LOG_LIMIT == 0 {
                    // Replay this stripe's log if the order is free (or the
                    // log is far too long to wait): the stripe stays held,
                    // so no writer decides without these touches.
                    let (_, local, order) = guard.shared_and_order(logged >= LOG_CAP);
                    if let Some(mut order) = order {
                        order.apply(&mut local.log);
                    }
                }
            }
            return Ok(value);
        }
        drop(guard);
        self.recheck(hash, key)
    }

    /// The miss path of [`lookup`](Self::lookup) without the whole lock:
    /// takes it and searches again (the key may have been stored meanwhile).
    #[inline(never)]
    fn recheck<Q: Probe<K> + ?Sized>(&self, hash: u64, key: &Q) -> Result<V, Lead> {
        let mut guard = self.memory.write();
        let mut parts = guard.parts();
        Self::replay(&mut parts);
        let found = Self::hit_or_lead(parts.data, &mut parts.order.policy, hash, key);
        drop(parts);
        match found {
            Some(result) => result,
            None => self.follow(hash, key, guard),
        }
    }

    /// Under the whole lock, with the logs replayed: a hit, or the lead of
    /// the key's new flight; `None` when a flight of the key is under way.
    #[inline]
    fn hit_or_lead<Q: Probe<K> + ?Sized>(
        memory: &mut Memory<K, V>,
        policy: &mut P,
        hash: u64,
        key: &Q,
    ) -> Option<Result<V, Lead>> {
        if let Some(value) = Self::hit_held(memory, policy, hash, key) {
            return Some(Ok(value));
        }
        Self::lead(memory, hash, key).map(Err)
    }

    /// A hit under the whole lock: counted, and told to the policy at once
    /// (the caller has replayed the stripes' logs, which hold earlier hits).
    #[inline]
    fn hit_held<Q: Probe<K> + ?Sized>(
        memory: &mut Memory<K, V>,
        policy: &mut P,
        hash: u64,
        key: &Q,
    ) -> Option<V> {
        let entry = memory.table.find(hash, |e| key.matches(&e.key))?;
        let value = entry.value.clone();
        if P::TRACKS_HITS {
            policy.on_hit(entry.slot);
        }
        memory.counts.hits += 1;
        Some(value)
    }

    /// A hit, or `None` without starting a flight (a miss's second look,
    /// under another key).
    pub fn hit<Q: Probe<K> + ?Sized>(&self, hash: u64, key: &Q) -> Option<V> {
        let mut guard = self.memory.write();
        let mut parts = guard.parts();
        Self::replay(&mut parts);
        Self::hit_held(parts.data, &mut parts.order.policy, hash, key)
    }

    /// The value without touching policy or statistics.
    pub fn peek<Q: Probe<K> + ?Sized>(&self, hash: u64, key: &Q) -> Option<V> {
        let mut guard = self.memory.read();
        let (memory, _) = guard.shared();
        memory
            .table
            .find(hash, |e| key.matches(&e.key))
            .map(|e| e.value.clone())
    }

    /// Adds an entry, making room first (a key already in memory takes the
    /// new value; a key being computed is left to its leader). `purge`
    /// empties the whole memory into the result instead of evicting one
    /// entry; `count` says which statistic the insertion adds to; `hasher`
    /// rehashes keys when the table grows.
    #[allow(clippy::too_many_arguments)]
    pub fn insert(
        &self,
        hash: u64,
        key: K,
        value: V,
        dirty: bool,
        purge: bool,
        count: Count,
        hasher: impl Fn(&K) -> u64,
    ) -> Displaced<K, V> {
        self.insert_inner(hash, key, value, dirty, purge, count, hasher, false)
    }

    /// [`insert`](Self::insert), also ending the key's flight when `led`.
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    fn insert_inner(
        &self,
        hash: u64,
        key: K,
        value: V,
        dirty: bool,
        purge: bool,
        count: Count,
        hasher: impl Fn(&K) -> u64,
        led: bool,
    ) -> Displaced<K, V> {
        let (displaced, notify) = match self.memory.sole() {
            Some(mut sole) => {
                let (memory, order) = sole.parts();
                let stored = (hash, key, value, dirty);
                Self::insert_held(memory, order, None, stored, purge, count, hasher, led)
            }
            None => {
                let mut guard = self.memory.write();
                let mut parts = guard.parts();
                Self::replay(&mut parts);
                let (memory, order) = (&mut *parts.data, &mut *parts.order);
                let stored = (hash, key, value, dirty);
                let locals = Some(&mut parts.locals);
                Self::insert_held(memory, order, locals, stored, purge, count, hasher, led)
            }
        };
        // Waiters wake once the memory lock is released, after the store.
        self.wake(notify);
        displaced
    }

    /// [`insert_inner`](Self::insert_inner) under the whole lock, with the
    /// logs replayed (`locals`: the stripes' data, `None` with one stripe
    /// in use). Returns what was displaced, and the wait of the flight
    /// whose followers wait for this value, if any. (Inlined in both lock paths, so that
    /// its arguments stay in registers.)
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn insert_held(
        memory: &mut Memory<K, V>,
        order: &mut Order<P>,
        locals: Option<&mut Locals<'_, Local>>,
        (hash, key, value, dirty): (u64, K, V, bool),
        purge: bool,
        count: Count,
        hasher: impl Fn(&K) -> u64,
        led: bool,
    ) -> (Displaced<K, V>, Option<Arc<FlightWait>>) {
        match count {
            Count::Miss => memory.counts.misses += 1,
            Count::Load => memory.counts.loads += 1,
            Count::Nothing => {}
        }
        let mut notify = None;
        if led {
            notify = end_flight(memory, hash, &key, Some(&value));
        } else if let Some(e) = memory.table.find_mut(hash, |e| e.key == key) {
            // Stored meanwhile by another path: keep the newer value.
            e.value = value;
            let d = e.dirty() || dirty;
            e.set_dirty(d);
            return (Displaced::None, None);
        } else if memory.flights.find(hash, &key).is_some() {
            // Being computed: the leader's value is the newer one (and the
            // leader must find the key absent).
            return (Displaced::None, None);
        }
        let mut displaced = Displaced::None;
        let mut reuse = None;
        match memory.capacity {
            Some(0) => return (Displaced::NotStored { key, value, dirty }, notify),
            Some(cap) if memory.table.len() >= cap => {
                if purge {
                    let mut all = Self::empty(memory, order, locals);
                    all.push((key, value));
                    return (Displaced::Purged(all), notify);
                }
                let victim = order.policy.evict();
                if let Some(entry) = victim.and_then(|v| Self::remove_slot(memory, order, v)) {
                    displaced = Displaced::Evicted {
                        dirty: entry.dirty(),
                        key: entry.key,
                        value: entry.value,
                    };
                    // The new entry takes the victim's slot.
                    reuse = victim;
                }
            }
            _ => {}
        }
        let slot = reuse.unwrap_or_else(|| {
            let slot = Slot::try_from(order.slots.len()).expect("more than u32::MAX entries");
            order.slots.push(SlotMeta {
                hash,
                generation: 0,
            });
            slot
        });
        let meta = &mut order.slots[slot as usize];
        meta.hash = hash;
        let tag = (meta.generation << 1) | u32::from(dirty);
        order.policy.on_insert(slot);
        memory.table.insert_unique(
            hash,
            Entry {
                key,
                value,
                slot,
                tag,
            },
            |e| hasher(&e.key),
        );
        (displaced, notify)
    }

    /// Removes the entry in `slot` (already forgotten by the policy); the
    /// slot is free for the caller to reuse.
    fn remove_slot(
        memory: &mut Memory<K, V>,
        order: &mut Order<P>,
        slot: Slot,
    ) -> Option<Entry<K, V>> {
        let meta = &mut order.slots[slot as usize];
        let (entry, _) = memory
            .table
            .find_entry(meta.hash, |e| e.slot == slot)
            .ok()?
            .remove();
        meta.generation = (meta.generation + 1) & (u32::MAX >> 1);
        Some(entry)
    }

    /// Empties memory (and the stripes' logs, if more than one stripe is
    /// in use), returning every entry.
    fn empty(
        memory: &mut Memory<K, V>,
        order: &mut Order<P>,
        locals: Option<&mut Locals<'_, Local>>,
    ) -> Vec<(K, V)> {
        if let Some(locals) = locals {
            locals.for_each(|local| local.log.clear());
        }
        let all = memory.table.drain().map(|e| (e.key, e.value)).collect();
        order.policy.clear();
        order.slots.clear();
        all
    }

    /// Forgets every entry and the statistics.
    pub fn clear(&self) {
        let mut guard = self.memory.write();
        let mut parts = guard.parts();
        parts.locals.for_each(|local| local.hits = 0);
        Self::empty(parts.data, &mut parts.order, Some(&mut parts.locals));
        parts.data.counts = Counts::default();
    }

    /// Copies of the entries not yet in the archive (dirty), marked clean.
    pub fn take_unsaved(&self) -> Vec<(K, V)>
    where
        K: Clone,
    {
        let mut guard = self.memory.write();
        let memory = guard.data();
        let mut out = Vec::new();
        for e in memory.table.iter_mut() {
            if e.dirty() {
                e.set_dirty(false);
                out.push((e.key.clone(), e.value.clone()));
            }
        }
        out
    }

    /// Marks the given keys dirty again (their write failed).
    pub fn mark_dirty(&self, keys: impl Iterator<Item = (u64, K)>) {
        let mut guard = self.memory.write();
        let memory = guard.data();
        for (hash, key) in keys {
            if let Some(e) = memory.table.find_mut(hash, |e| e.key == key) {
                e.set_dirty(true);
            }
        }
    }

    /// The keys in memory (any order).
    pub fn keys(&self) -> Vec<K>
    where
        K: Clone,
    {
        let mut guard = self.memory.read();
        let (memory, _) = guard.shared();
        memory.table.iter().map(|e| e.key.clone()).collect()
    }

    /// The statistics and the size, read at one instant.
    pub fn tally(&self) -> Tally {
        let mut guard = self.memory.write();
        let mut parts = guard.parts();
        let mut shared_hits = 0;
        parts.locals.for_each(|local| shared_hits += local.hits);
        let memory = &*parts.data;
        Tally {
            hits: memory.counts.hits + shared_hits,
            misses: memory.counts.misses,
            loads: memory.counts.loads,
            len: memory.table.len(),
            capacity: memory.capacity,
        }
    }
}

#[cfg(test)]
impl<K: Eq + Hash + Clone, V: Clone, P: Policy> Store<K, V, P> {
    /// A lookup that gives up its flight at once on a miss.
    fn get(&self, hash: u64, key: &K) -> Option<V> {
        match self.lookup(hash, key) {
            Ok(v) => Some(v),
            Err(lead) => {
                drop(lead.leader(self, hash, key.clone()));
                None
            }
        }
    }

    /// Whether no flight is registered.
    fn flights_empty(&self) -> bool {
        let mut guard = self.memory.write();
        guard.data().flights.is_empty()
    }
}
