//! Single flight: concurrent misses on one key compute it once.
//!
//! The first caller to miss becomes the *leader* and computes; later callers
//! of the same key become *followers* and wait for the leader's value. A
//! leader that panics abandons its flight: its followers wake and retry, and
//! one of them leads the next attempt.

use std::hash::{BuildHasher, Hash};
use std::sync::Arc;

use hashbrown::HashMap;
use parking_lot::{Condvar, Mutex};

enum State<V> {
    Running,
    Done(V),
    Abandoned,
}

struct Flight<V> {
    state: Mutex<State<V>>,
    done: Condvar,
}

/// The flights under way, by key.
pub(crate) struct Flights<K, V> {
    running: Mutex<HashMap<K, Arc<Flight<V>>>>,
}

/// What a caller that missed should do.
pub(crate) enum Join<'a, K: Eq + Hash, V> {
    /// Compute the value and hand it to [`Leader::finish`].
    Leader(Leader<'a, K, V>),
    /// Another caller computed the value.
    Done(V),
    /// The leader panicked: try again.
    Retry,
}

/// The right and duty to compute one key. Dropping it without
/// [`finish`](Leader::finish) (a panic) abandons the flight.
pub(crate) struct Leader<'a, K: Eq + Hash, V> {
    flights: &'a Flights<K, V>,
    key: Option<K>,
    flight: Arc<Flight<V>>,
}

impl<K: Eq + Hash + Clone, V: Clone> Flights<K, V> {
    pub fn new() -> Self {
        Flights {
            running: Mutex::new(HashMap::new()),
        }
    }

    /// Leads the flight of `key`, or waits for the one under way.
    pub fn join(&self, key: &K) -> Join<'_, K, V> {
        let flight = {
            let mut running = self.running.lock();
            let hash = running.hasher().hash_one(key);
            match running.raw_entry_mut().from_key_hashed_nocheck(hash, key) {
                hashbrown::hash_map::RawEntryMut::Occupied(o) => Arc::clone(o.get()),
                hashbrown::hash_map::RawEntryMut::Vacant(v) => {
                    let flight = Arc::new(Flight {
                        state: Mutex::new(State::Running),
                        done: Condvar::new(),
                    });
                    v.insert_hashed_nocheck(hash, key.clone(), Arc::clone(&flight));
                    return Join::Leader(Leader {
                        flights: self,
                        key: Some(key.clone()),
                        flight,
                    });
                }
            }
        };
        let mut state = flight.state.lock();
        loop {
            match &*state {
                State::Running => flight.done.wait(&mut state),
                State::Done(v) => return Join::Done(v.clone()),
                State::Abandoned => return Join::Retry,
            }
        }
    }
}

impl<K: Eq + Hash, V> Leader<'_, K, V> {
    /// Publishes the value to the waiting followers and ends the flight.
    pub fn finish(mut self, value: V) {
        self.end(State::Done(value));
    }

    fn end(&mut self, outcome: State<V>) {
        if let Some(key) = self.key.take() {
            self.flights.running.lock().remove(&key);
            *self.flight.state.lock() = outcome;
            self.flight.done.notify_all();
        }
    }
}

impl<K: Eq + Hash, V> Drop for Leader<'_, K, V> {
    fn drop(&mut self) {
        self.end(State::Abandoned);
    }
}
