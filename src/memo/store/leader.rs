//! Single flight in the store: the lead of a missed key, the [`Leader`]
//! that computes it (and abandons the flight if dropped), the end of a
//! flight, and followers waiting on the flight's own wait.

use std::hash::Hash;
use std::sync::Arc;

use super::memory::Memory;
use super::{Count, Displaced, MemoryGuard, Store};
use crate::memo::flight::{FlightState, FlightWait};
use crate::memo::probe::Probe;
use crate::policy::Policy;

/// A miss in [`Store::lookup`]: the caller leads the key's new flight, and
/// makes this a [`Leader`] at once ([`Lead::leader`]); until that leader
/// stores a value or is dropped, the flight's followers wait.
#[must_use = "a lead must become a Leader, or the flight's followers wait forever"]
pub(crate) struct Lead(());

impl Lead {
    /// The leader of `key`'s flight in `store` (the key and hash given to
    /// the lookup that returned this).
    #[inline]
    pub fn leader<K: Eq + Hash + Clone, V: Clone, P: Policy>(
        self,
        store: &Store<K, V, P>,
        hash: u64,
        key: K,
    ) -> Leader<'_, K, V, P> {
        Leader {
            store,
            hash,
            key: Some(key),
        }
    }
}

/// The right and duty to compute one key. Dropping it without
/// [`store`](Leader::store) (a panic) abandons the flight.
pub(crate) struct Leader<'a, K: Eq + Hash + Clone, V: Clone, P: Policy> {
    store: &'a Store<K, V, P>,
    hash: u64,
    key: Option<K>,
}

impl<K: Eq + Hash + Clone, V: Clone, P: Policy> Leader<'_, K, V, P> {
    /// The key being computed.
    pub fn key(&self) -> &K {
        self.key.as_ref().expect("a live leader has its key")
    }

    /// Stores the value (see [`Store::insert`]) and hands it to the waiting
    /// followers. (Inlined so that the leader's fields stay in registers.)
    #[inline]
    pub fn store(
        mut self,
        value: V,
        dirty: bool,
        purge: bool,
        count: Count,
        hasher: impl Fn(&K) -> u64,
    ) -> Displaced<K, V> {
        let key = self.key.take().expect("a live leader has its key");
        self.store
            .insert_inner(self.hash, key, value, dirty, purge, count, hasher, true)
    }
}

impl<K: Eq + Hash + Clone, V: Clone, P: Policy> Drop for Leader<'_, K, V, P> {
    #[inline]
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.abandon(key);
        }
    }
}

impl<K: Eq + Hash + Clone, V: Clone, P: Policy> Leader<'_, K, V, P> {
    /// Ends the flight without a value (the function panicked).
    #[cold]
    fn abandon(&self, key: K) {
        let mut guard = self.store.memory.write();
        let memory = guard.data();
        let notify = end_flight(memory, self.hash, &key, None);
        drop(guard);
        self.store.wake(notify);
    }
}

/// Ends the flight of `key`: hands `value` to its waiters, or (`None`)
/// abandons it so that one waiter takes over. Returns the flight's wait
/// if anybody waits, to be woken once the memory lock is released.
pub(super) fn end_flight<K: Eq + Clone, V: Clone>(
    memory: &mut Memory<K, V>,
    hash: u64,
    key: &K,
    value: Option<&V>,
) -> Option<Arc<FlightWait>> {
    let index = memory.flights.find(hash, key)?;
    let flight = memory.flights.get_mut(index);
    let waiters = match flight.state {
        FlightState::Running { waiters } => waiters,
        _ => 0,
    };
    if waiters == 0 {
        memory.flights.remove(index);
        return None;
    }
    flight.state = match value {
        Some(value) => FlightState::Done {
            value: value.clone(),
            waiters,
        },
        None => FlightState::Abandoned { waiters },
    };
    flight.wait.clone()
}

impl<K: Eq + Hash + Clone, V: Clone, P: Policy> Store<K, V, P> {
    /// Wakes the followers of an ended flight (`notify`: its wait, if
    /// anybody waits). Called without the memory lock.
    pub(super) fn wake(&self, notify: Option<Arc<FlightWait>>) {
        if let Some(wait) = notify {
            wait.end();
        }
    }

    /// A miss under the whole lock: the lead of the key's new flight, or
    /// `None` when a flight of the key is under way (out of line: the hit
    /// path stays small).
    #[inline(never)]
    pub(super) fn lead<Q: Probe<K> + ?Sized>(
        memory: &mut Memory<K, V>,
        hash: u64,
        key: &Q,
    ) -> Option<Lead> {
        if memory.flights.find(hash, key).is_some() {
            return None;
        }
        memory.flights.start(hash, key.to_key());
        Some(Lead(()))
    }

    /// A lookup of a key with a flight under way, holding the whole lock:
    /// waits for the flight's value, or takes over an abandoned flight.
    #[cold]
    pub(super) fn follow<Q: Probe<K> + ?Sized>(
        &self,
        hash: u64,
        key: &Q,
        mut guard: MemoryGuard<'_, K, V, P>,
    ) -> Result<V, Lead> {
        let memory = guard.data();
        let index = (memory.flights.find(hash, key)).expect("follow is called for a key in flight");
        let flight = memory.flights.get_mut(index);
        let wait = Arc::clone(flight.wait.get_or_insert_with(Arc::default));
        match &mut flight.state {
            FlightState::Running { waiters } => *waiters += 1,
            // Followers of an ended flight are still collecting the value.
            FlightState::Done { value, .. } => {
                let value = value.clone();
                memory.counts.hits += 1;
                return Ok(value);
            }
            FlightState::Abandoned { waiters } => {
                let waiters = *waiters;
                flight.state = FlightState::Running { waiters };
                return Err(Lead(()));
            }
        }
        // Wait for the flight to end. Its wait is locked before the memory
        // lock is released, and a leader takes it to count an ending, so
        // no ending goes unseen.
        let mut endings = wait.lock();
        let mut seen = *endings;
        drop(guard);
        loop {
            drop(wait.wait_past(endings, seen));
            let mut guard = self.memory.write();
            let memory = guard.data();
            let Some(index) = memory.flights.find(hash, key) else {
                unreachable!("a flight with waiters stays registered")
            };
            let flight = memory.flights.get_mut(index);
            match &mut flight.state {
                FlightState::Running { .. } => {}
                FlightState::Done { value, waiters } => {
                    let value = value.clone();
                    *waiters -= 1;
                    if *waiters == 0 {
                        memory.flights.remove(index);
                    }
                    memory.counts.hits += 1;
                    return Ok(value);
                }
                FlightState::Abandoned { waiters } => {
                    // Take over; the other followers keep waiting.
                    let waiters = *waiters - 1;
                    flight.state = FlightState::Running { waiters };
                    return Err(Lead(()));
                }
            }
            // Still running: another follower took over an abandoned
            // flight. Wait for its ending.
            endings = wait.lock();
            seen = *endings;
            drop(guard);
        }
    }
}
