//! Single flight: concurrent misses on one key compute it once.
//!
//! The first caller to miss becomes the *leader* and computes; later callers
//! of the same key become *followers* and wait for the leader's value. A
//! leader that panics abandons its flight: one waiting follower takes over
//! and computes, the others go on waiting.
//!
//! The flights of a memo share one map and one condition variable, so a
//! miss allocates nothing in steady state (no per-flight `Arc`); waking all
//! waiters of a memo when any flight ends is cheap because waiting is rare.

use std::hash::Hash;

use hashbrown::HashMap;
use parking_lot::{Condvar, Mutex};

enum State<V> {
    Running { waiters: usize },
    Done { value: V, waiters: usize },
    Abandoned { waiters: usize },
}

/// The flights under way, by key.
pub(crate) struct Flights<K, V> {
    running: Mutex<HashMap<K, State<V>>>,
    ended: Condvar,
}

/// What a caller that missed should do.
pub(crate) enum Join<'a, K: Eq + Hash, V> {
    /// Compute the value and hand it to [`Leader::finish`].
    Leader(Leader<'a, K, V>),
    /// Another caller computed the value.
    Done(V),
}

/// The right and duty to compute one key. Dropping it without
/// [`finish`](Leader::finish) (a panic) abandons the flight.
pub(crate) struct Leader<'a, K: Eq + Hash, V> {
    flights: &'a Flights<K, V>,
    key: Option<K>,
}

impl<K: Eq + Hash + Clone, V: Clone> Flights<K, V> {
    pub fn new() -> Self {
        Flights {
            running: Mutex::new(HashMap::new()),
            ended: Condvar::new(),
        }
    }

    fn lead(&self, key: &K) -> Join<'_, K, V> {
        Join::Leader(Leader {
            flights: self,
            key: Some(key.clone()),
        })
    }

    /// Leads the flight of `key`, or waits for the one under way.
    pub fn join(&self, key: &K) -> Join<'_, K, V> {
        let mut running = self.running.lock();
        match running.get_mut(key) {
            None => {
                running.insert(key.clone(), State::Running { waiters: 0 });
                return self.lead(key);
            }
            Some(State::Running { waiters }) => *waiters += 1,
            // Followers of an ended flight are still collecting the value.
            Some(State::Done { value, .. }) => return Join::Done(value.clone()),
            Some(state @ State::Abandoned { .. }) => {
                let State::Abandoned { waiters } = *state else {
                    unreachable!()
                };
                *state = State::Running { waiters };
                return self.lead(key);
            }
        }
        loop {
            self.ended.wait(&mut running);
            let Some(state) = running.get_mut(key) else {
                unreachable!("a flight with waiters stays in the map")
            };
            match state {
                State::Running { .. } => {}
                State::Done { value, waiters } => {
                    let value = value.clone();
                    *waiters -= 1;
                    if *waiters == 0 {
                        running.remove(key);
                    }
                    return Join::Done(value);
                }
                State::Abandoned { waiters } => {
                    // Take over the flight; the other followers keep waiting.
                    *state = State::Running {
                        waiters: *waiters - 1,
                    };
                    return self.lead(key);
                }
            }
        }
    }
}

impl<K: Eq + Hash, V> Leader<'_, K, V> {
    /// Publishes the value to the waiting followers and ends the flight.
    pub fn finish(mut self, value: V) {
        self.end(Some(value));
    }

    fn end(&mut self, value: Option<V>) {
        let Some(key) = self.key.take() else { return };
        let mut running = self.flights.running.lock();
        let waiters = match running.get(&key) {
            Some(State::Running { waiters }) => *waiters,
            _ => 0,
        };
        if waiters == 0 {
            running.remove(&key);
            return;
        }
        let ended = match value {
            Some(value) => State::Done { value, waiters },
            None => State::Abandoned { waiters },
        };
        running.insert(key, ended);
        self.flights.ended.notify_all();
    }
}

impl<K: Eq + Hash, V> Drop for Leader<'_, K, V> {
    fn drop(&mut self) {
        self.end(None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::thread;
    use std::time::Duration;

    #[test]
    fn followers_get_the_leaders_value_and_the_map_empties() {
        let flights: Arc<Flights<u32, u32>> = Arc::new(Flights::new());
        let Join::Leader(leader) = flights.join(&1) else {
            panic!("first caller leads")
        };
        let followers: Vec<_> = (0..3)
            .map(|_| {
                let f = flights.clone();
                thread::spawn(move || match f.join(&1) {
                    Join::Done(v) => v,
                    Join::Leader(_) => panic!("a follower must not lead"),
                })
            })
            .collect();
        thread::sleep(Duration::from_millis(50));
        leader.finish(7);
        for f in followers {
            assert_eq!(f.join().unwrap(), 7);
        }
        assert!(flights.running.lock().is_empty());
    }

    #[test]
    fn an_abandoned_flight_passes_to_one_follower() {
        let flights: Arc<Flights<u32, u32>> = Arc::new(Flights::new());
        let Join::Leader(leader) = flights.join(&1) else {
            panic!("first caller leads")
        };
        let f = flights.clone();
        let follower = thread::spawn(move || match f.join(&1) {
            Join::Leader(l) => {
                l.finish(9);
                true
            }
            Join::Done(_) => false,
        });
        thread::sleep(Duration::from_millis(50));
        drop(leader); // as a panic would
        assert!(follower.join().unwrap(), "the follower took over");
        assert!(flights.running.lock().is_empty());
    }
}
