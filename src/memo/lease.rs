//! Computing a missing result once across processes: the lease protocol a
//! memo built with [`MemoBuilder::lease`](super::MemoBuilder::lease) runs
//! on a miss in a shared archive.
//!
//! The leader of a miss (the one thread of its process that computes, see
//! the single flight) takes the key's lease in the archive. Taken: it
//! looks in the archive once more (another process may have written the
//! result and let go of its lease since the first look), computes, writes
//! the result at once and lets go. Held by another process: it waits for
//! that process's result, looking again with a growing pause (2 ms up to
//! 100 ms), and takes the lease itself if the holder lets go without a
//! result or dies (its lease expires). It never waits longer than the
//! lease's time: then it computes without a lease.

use std::time::{Duration, Instant};

use crate::archive::{Archive, Lease};
use crate::{Error, Result};

/// The first and longest pause between two looks at the archive.
const FIRST_PAUSE: Duration = Duration::from_millis(2);
const LONGEST_PAUSE: Duration = Duration::from_millis(100);

/// What a miss under a lease came to.
pub(crate) enum Claim<'a, A, K, V>
where
    A: Archive<K, V>,
{
    /// Another process's result, found in the archive.
    Loaded(V),
    /// This process holds the lease: compute, write at once, then drop.
    Held(HeldLease<'a, A, K, V>),
    /// The wait outlasted the lease's time: compute without one.
    Unleased,
}

/// A lease this process holds; dropping it lets go of it (also when the
/// function panics), logging a failure to do so.
pub(crate) struct HeldLease<'a, A, K, V>
where
    A: Archive<K, V>,
{
    archive: &'a A,
    key: K,
    lease: Lease,
    types: std::marker::PhantomData<fn() -> V>,
}

impl<A, K, V> Drop for HeldLease<'_, A, K, V>
where
    A: Archive<K, V>,
{
    fn drop(&mut self) {
        if let Err(e) = self.archive.release(&self.key, &self.lease) {
            log::warn!("klepto: releasing a lease failed ({e}); it expires by itself");
        }
    }
}

/// Runs the lease protocol for `key`, which the archive did not have a
/// moment ago. `Err` when the archive fails (the caller computes without
/// a lease); a damaged entry met while waiting counts as absent.
pub(crate) fn claim<'a, A, K, V>(
    archive: &'a A,
    key: &K,
    ttl: Duration,
) -> Result<Claim<'a, A, K, V>>
where
    A: Archive<K, V>,
    K: Clone,
{
    let deadline = Instant::now() + ttl;
    let mut pause = FIRST_PAUSE;
    loop {
        if let Some(lease) = archive.try_lease(key, ttl)? {
            let held = HeldLease {
                archive,
                key: key.clone(),
                lease,
                types: std::marker::PhantomData,
            };
            return Ok(match look(archive, key)? {
                Some(value) => Claim::Loaded(value), // `held` drops: released
                None => Claim::Held(held),
            });
        }
        let now = Instant::now();
        if now >= deadline {
            log::warn!(
                "klepto: waited {} ms for another process's result in {}; computing",
                ttl.as_millis(),
                archive.location()
            );
            return Ok(Claim::Unleased);
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(LONGEST_PAUSE);
        if let Some(value) = look(archive, key)? {
            return Ok(Claim::Loaded(value));
        }
    }
}

/// The archive's value of `key`; a damaged entry is absent here (the
/// first look of the miss already counted it).
fn look<A, K, V>(archive: &A, key: &K) -> Result<Option<V>>
where
    A: Archive<K, V>,
{
    match archive.get(key) {
        Err(Error::Corrupt { .. }) => Ok(None),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::{DictArchive, Items};
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

    /// A dictionary whose lease is held by "another process" until
    /// `free_after` tries, and which gains the value after `value_after`
    /// looks (0: never).
    struct Busy {
        dict: DictArchive<u8, u8>,
        tries: AtomicUsize,
        looks: AtomicUsize,
        free_after: usize,
        value_after: usize,
    }

    impl Archive<u8, u8> for Busy {
        fn get(&self, key: &u8) -> Result<Option<u8>> {
            let n = self.looks.fetch_add(1, SeqCst) + 1;
            if self.value_after != 0 && n >= self.value_after {
                self.dict.insert(*key, 42)?;
            }
            self.dict.get(key)
        }
        fn insert(&self, k: u8, v: u8) -> Result<()> {
            self.dict.insert(k, v)
        }
        fn remove(&self, k: &u8) -> Result<Option<u8>> {
            self.dict.remove(k)
        }
        fn len(&self) -> Result<usize> {
            self.dict.len()
        }
        fn keys(&self) -> Result<Items<'_, u8>> {
            self.dict.keys()
        }
        fn iter(&self) -> Result<Items<'_, (u8, u8)>> {
            self.dict.iter()
        }
        fn clear(&self) -> Result<()> {
            self.dict.clear()
        }
        fn extend(&self, items: Vec<(u8, u8)>) -> Result<()> {
            self.dict.extend(items)
        }
        fn namespaced(&self, _: &str) -> Result<Self> {
            unimplemented!("not used")
        }
        fn location(&self) -> String {
            "busy".into()
        }
        fn try_lease(&self, _: &u8, _: Duration) -> Result<Option<Lease>> {
            let n = self.tries.fetch_add(1, SeqCst) + 1;
            Ok((n > self.free_after).then(Lease::new))
        }
    }

    fn busy(free_after: usize, value_after: usize) -> Busy {
        Busy {
            dict: DictArchive::new(),
            tries: AtomicUsize::new(0),
            looks: AtomicUsize::new(0),
            free_after,
            value_after,
        }
    }

    #[test]
    fn a_free_lease_is_held() {
        let a = busy(0, 0);
        assert!(matches!(
            claim(&a, &1, Duration::from_secs(1)),
            Ok(Claim::Held(_))
        ));
    }

    #[test]
    fn a_waiter_gets_the_holders_result() {
        let a = busy(usize::MAX, 3);
        let claimed = claim(&a, &1, Duration::from_secs(5));
        assert!(
            matches!(claimed, Ok(Claim::Loaded(42))),
            "expected the other's result"
        );
    }

    #[test]
    fn a_released_lease_without_result_is_taken() {
        let a = busy(3, 0);
        assert!(matches!(
            claim(&a, &1, Duration::from_secs(5)),
            Ok(Claim::Held(_))
        ));
        assert_eq!(a.tries.load(SeqCst), 4);
    }

    #[test]
    fn a_result_written_just_before_the_lease_is_loaded() {
        // The value appears at the look right after the lease is taken.
        let a = busy(0, 1);
        assert!(matches!(
            claim(&a, &1, Duration::from_secs(1)),
            Ok(Claim::Loaded(42))
        ));
    }

    #[test]
    fn the_wait_ends_after_the_lease_time() {
        let a = busy(usize::MAX, 0);
        let start = Instant::now();
        assert!(matches!(
            claim(&a, &1, Duration::from_millis(150)),
            Ok(Claim::Unleased)
        ));
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(150) && waited < Duration::from_secs(2));
    }
}
