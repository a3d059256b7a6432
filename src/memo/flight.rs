//! Single flight: the keys being computed, and who waits for them.

use std::sync::Arc;

use super::probe::Probe;
use super::sync::{Condvar, Mutex, MutexGuard};

/// The state of a key being computed.
pub(crate) enum FlightState<V> {
    /// The leader is computing; `waiters` followers wait.
    Running { waiters: usize },
    /// The leader stored `value`; `waiters` followers have yet to take it.
    Done { value: V, waiters: usize },
    /// The leader panicked; one of the `waiters` takes over.
    Abandoned { waiters: usize },
}

/// One key being computed.
pub(crate) struct Flight<K, V> {
    pub key: K,
    pub hash: u64,
    pub state: FlightState<V>,
    /// Where its followers wait: made by the first one, so a flight that
    /// nobody waits for (nearly all) allocates nothing.
    pub wait: Option<Arc<FlightWait>>,
}

/// The wait of one flight's followers: a count of the flight's endings (a
/// value handed over, or the leader gone), and a condition variable that
/// only this flight's followers wait on.
pub(crate) struct FlightWait {
    endings: Mutex<u64>,
    ended: Condvar,
}

impl Default for FlightWait {
    fn default() -> Self {
        FlightWait {
            endings: Mutex::new(0),
            ended: Condvar::new(),
        }
    }
}

impl FlightWait {
    /// The endings so far, locked. A follower takes this before it lets go
    /// of the memory lock, so that no ending goes unseen.
    pub fn lock(&self) -> MutexGuard<'_, u64> {
        self.endings.lock()
    }

    /// Waits until the flight has ended more than `seen` times.
    pub fn wait_past<'a>(
        &self,
        mut endings: MutexGuard<'a, u64>,
        seen: u64,
    ) -> MutexGuard<'a, u64> {
        while *endings == seen {
            endings = self.ended.wait(endings);
        }
        endings
    }

    /// Tells the followers the flight ended (called without the memory lock).
    pub fn end(&self) {
        *self.endings.lock() += 1;
        self.ended.notify_all();
    }
}

/// The flights under way, in a plain vector: there are as many as calls
/// computing at once (threads times recursion depth), usually zero or one,
/// and a scan of their hashes is cheaper than a hash table's upkeep.
pub(crate) struct Flights<K, V> {
    list: Vec<Flight<K, V>>,
}

impl<K: Eq, V> Flights<K, V> {
    pub const fn new() -> Self {
        Flights { list: Vec::new() }
    }

    /// Where the flight of the key `probe` looks up is.
    #[inline]
    pub fn find<Q: Probe<K> + ?Sized>(&self, hash: u64, probe: &Q) -> Option<usize> {
        self.list
            .iter()
            .position(|f| f.hash == hash && probe.matches(&f.key))
    }

    /// The flight at `index` (from [`find`](Self::find)).
    pub fn get_mut(&mut self, index: usize) -> &mut Flight<K, V> {
        &mut self.list[index]
    }

    /// Registers a new flight of `key`, with nobody waiting.
    pub fn start(&mut self, hash: u64, key: K) {
        self.list.push(Flight {
            key,
            hash,
            state: FlightState::Running { waiters: 0 },
            wait: None,
        });
    }

    /// Forgets the flight at `index`.
    pub fn remove(&mut self, index: usize) {
        self.list.swap_remove(index);
    }

    /// Whether no flight is under way.
    #[cfg(any(test, debug_assertions))]
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}
