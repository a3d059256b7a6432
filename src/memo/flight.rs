//! Single flight: the keys being computed, and who waits for them.

use super::probe::Probe;

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
        });
    }

    /// Forgets the flight at `index`.
    pub fn remove(&mut self, index: usize) {
        self.list.swap_remove(index);
    }

    /// Whether no flight is under way.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}
