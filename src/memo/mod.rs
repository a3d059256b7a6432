//! [`Memo`]: a memoized function, its memory, statistics and archive.

mod builder;
mod flight;
mod func;
pub(crate) mod hasher;
mod lease;
mod probe;
#[cfg_attr(klepto_parking_stripes, allow(unsafe_code))]
mod spin;
mod stats;
mod store;
#[allow(unsafe_code)]
mod striped;
#[cfg(all(test, loom))]
mod striped_loom;
mod sync;

pub use builder::{MemoBuilder, PlainMemo};
pub use func::{MemoFn, Plain, Recursive};
pub use stats::CacheInfo;

use std::fmt;
use std::hash::BuildHasher;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::archive::{Archive, NullArchive, WithArgs};
use crate::key::keymap::{HashKeymap, Keymap};
use crate::key::KeyConfig;
use crate::policy::{Lru, Policy};
use crate::{Error, Result};
use hasher::KeyHashBuilder;
use probe::Probe;
use store::{Count, Displaced, Lead, Leader, Store};

/// A memoized function: calls with arguments seen before return the stored
/// result instead of running the function again.
///
/// `F` is the function ([`Plain`] or [`Recursive`]), `K` the [`Keymap`] that
/// turns arguments into keys, `P` the eviction [`Policy`] of the memory, and
/// `A` the [`Archive`] that keeps results beyond memory. Create one with
/// [`Memo::builder`].
///
/// A memo is `Send + Sync` when its parts are; [`call`](Memo::call) takes
/// `&self`. No lock is held while the function runs, and concurrent calls
/// that miss on the same key run the function once (the others wait for it).
///
/// ```
/// use klepto::Memo;
/// let area = Memo::builder().lfu(64).build(|(w, h): (f64, f64)| w * h);
/// assert_eq!(area.call((2.0, 3.5)), 7.0);
/// assert_eq!(area.call((2.0, 3.5)), 7.0);
/// let info = area.info();
/// assert_eq!((info.hits, info.misses, info.size), (1, 1, 1));
/// ```
pub struct Memo<F, K, P, A>
where
    F: MemoFn,
    F::Output: Clone + Send,
    K: Keymap<F::Args>,
    P: Policy,
    A: Archive<K::Key, F::Output>,
{
    func: F,
    keymap: K,
    config: KeyConfig,
    hasher: KeyHashBuilder,
    /// Keyed by the keymap's memory keys (for the hash keymap, the encoded
    /// arguments: a hit needs no digest).
    store: Store<K::Memory, F::Output, P>,
    /// Cache failures fallen back from (the store counts the rest).
    errors: AtomicU64,
    archive: A,
    archived: AtomicBool,
    /// Some entry in memory is known only by a fallback key (loaded from
    /// an archive without its arguments): a call that misses looks for it.
    fallbacks: AtomicBool,
    purge: bool,
    write_through: bool,
    /// With a shared archive: compute a missing result once across
    /// processes, waiting up to this long for another's.
    lease: Option<Duration>,
}

/// What the builder hands over.
pub(crate) struct Parts<F, K, P, A> {
    pub func: F,
    pub keymap: K,
    pub config: KeyConfig,
    pub policy: P,
    pub archive: A,
    pub purge: bool,
    pub write_through: bool,
    pub lease: Option<Duration>,
}

impl Memo<Plain<fn(()), (), ()>, HashKeymap, Lru, NullArchive> {
    /// Starts configuring a memo: an LRU of 128 entries with [`HashKeymap`]
    /// keys and no archive, until told otherwise.
    ///
    /// ```
    /// use klepto::Memo;
    /// let double = Memo::builder().lru(128).build(|x: u64| x * 2);
    /// assert_eq!(double.call(21), 42);
    /// ```
    pub fn builder() -> MemoBuilder {
        MemoBuilder::default()
    }
}

/// Where a failure happened, for messages.
#[derive(Clone, Copy)]
enum Stage {
    Key,
    ArchiveRead,
    ArchiveWrite,
}

/// Where a value being stored in memory came from.
enum Origin {
    /// Loaded from the archive: already saved there.
    Archive,
    /// Computed: saved when it leaves memory (or at once, written through).
    Computed,
    /// Computed because the archive's entry was damaged, or under a lease
    /// that others wait on: saved at once.
    SaveNow,
}

/// A call's probe, as the store sees it.
struct KeyProbe<'a, Args: ?Sized, K: Keymap<Args>>(&'a K::Probe, PhantomData<fn(&Args)>);

impl<Args: ?Sized, K: Keymap<Args>> Probe<K::Memory> for KeyProbe<'_, Args, K> {
    #[inline(always)]
    fn matches(&self, key: &K::Memory) -> bool {
        K::matches(key, self.0)
    }
    #[inline]
    fn to_key(&self) -> K::Memory {
        K::to_memory(self.0)
    }
}

/// What a call found in memory: the value, or the lead of its key's flight
/// and the key's hash (its memory key is handed back beside: kept out of
/// this small result, which a hit returns in registers).
type Found<V> = std::result::Result<V, (Lead, u64)>;

impl<F, K, P, A> Memo<F, K, P, A>
where
    F: MemoFn,
    F::Output: Clone + Send,
    K: Keymap<F::Args>,
    P: Policy,
    A: Archive<K::Key, F::Output>,
{
    pub(crate) fn from_parts(p: Parts<F, K, P, A>) -> Self {
        let archived = !p.archive.is_null();
        Memo {
            func: p.func,
            keymap: p.keymap,
            config: p.config,
            hasher: KeyHashBuilder::default(),
            store: Store::new(p.policy),
            errors: AtomicU64::new(0),
            archive: p.archive,
            archived: AtomicBool::new(archived),
            fallbacks: AtomicBool::new(false),
            purge: p.purge,
            write_through: p.write_through,
            lease: p.lease,
        }
    }

    /// Calls the function, or returns its stored result.
    ///
    /// Never fails because of the cache: when the key cannot be built or the
    /// archive cannot be read or written, the memo falls back (computes
    /// without caching, or skips the write), counts the failure in
    /// [`info().errors`](CacheInfo::errors) and logs a warning. A panic of
    /// the function propagates and leaves the memo usable.
    ///
    /// ```
    /// use klepto::Memo;
    /// let f = Memo::builder().build(|(a, b): (u32, u32)| a + b);
    /// assert_eq!(f.call((1, 2)), 3);
    /// ```
    pub fn call(&self, args: F::Args) -> F::Output {
        let mut key = None;
        match self.find(&args, &mut key) {
            Some(Ok(value)) => value,
            Some(Err((lead, hash))) => self
                .missed(lead, hash, key, args, false)
                .unwrap_or_else(|_| unreachable!("lenient resolve does not fail")),
            None => self.call_without_key(args),
        }
    }

    /// [`call`](Memo::call) when no key can be built: counted, computed.
    #[cold]
    #[inline(never)]
    fn call_without_key(&self, args: F::Args) -> F::Output {
        self.key_error(&args);
        self.compute(args)
    }

    /// Looks `args` up in memory by the keymap's probe: the value, or the
    /// lead of the key's new flight, whose memory key goes to `key`. `None`
    /// when no key can be built ([`key_error`](Self::key_error) says why).
    #[inline]
    fn find(&self, args: &F::Args, key: &mut Option<K::Memory>) -> Option<Found<F::Output>> {
        self.keymap.probe(
            args,
            &self.config,
            #[inline(always)]
            |probe| {
                let hash = self.hasher.hash_one(probe);
                let probe = KeyProbe::<F::Args, K>(probe, PhantomData);
                self.store.lookup(hash, &probe).map_err(|lead| {
                    *key = Some(probe.to_key());
                    (lead, hash)
                })
            },
        )
    }

    /// The memory key [`find`](Self::find) handed back with a miss.
    #[inline]
    fn missed_key(key: Option<K::Memory>) -> K::Memory {
        key.unwrap_or_else(|| unreachable!("find hands back the key of every miss"))
    }

    /// Why no key can be built for `args` (after [`find`](Self::find)
    /// found none), counted and logged as a key failure.
    #[cold]
    #[inline(never)]
    fn key_error(&self, args: &F::Args) -> Error {
        let e = match self.keymap.key(args, &self.config) {
            Err(e) => e,
            Ok(_) => Error::key("the key could not be built"),
        };
        self.failed(Stage::Key, &e);
        e
    }

    /// The miss path, led by the caller (`lead`, `hash` and the memory
    /// `key` [`find`](Self::find) handed back): an entry known by the key's
    /// fallback (rare), else the archive and the function
    /// ([`resolve`](Self::resolve)). Out of line, so that the hit path of
    /// [`call`](Memo::call) stays small (fewer registers to save per call).
    #[inline(never)]
    fn missed(
        &self,
        lead: Lead,
        hash: u64,
        key: Option<K::Memory>,
        args: F::Args,
        strict: bool,
    ) -> Result<F::Output> {
        let leader = lead.leader(&self.store, hash, Self::missed_key(key));
        if self.fallbacks.load(Relaxed) {
            if let Some(fallback) = K::fallback(leader.key()) {
                let hash = self.hasher.hash_one(&fallback);
                if let Some(value) = self.store.hit(hash, &fallback) {
                    // Dropping the leader ends its flight; any follower
                    // takes over and finds the entry the same way.
                    return Ok(value);
                }
            }
        }
        self.resolve(leader, args, strict)
    }

    /// Like [`call`](Memo::call), but returns cache failures (a key that
    /// cannot be built, an archive that fails, an archived entry that holds
    /// another value type) instead of falling back; such an entry is left
    /// as it is, where `call` recomputes and replaces it. A damaged entry
    /// is recomputed and rewritten by both (and counted as an error).
    ///
    /// ```
    /// use klepto::Memo;
    /// let f = Memo::builder().ignore(3).build(|x: u8| x);
    /// assert!(f.try_call(1).is_err()); // position 3 does not exist
    /// assert_eq!(f.call(1), 1);        // call falls back and computes
    /// assert_eq!(f.info().errors, 2);
    /// ```
    pub fn try_call(&self, args: F::Args) -> Result<F::Output> {
        let mut key = None;
        match self.find(&args, &mut key) {
            Some(Ok(value)) => Ok(value),
            Some(Err((lead, hash))) => self.missed(lead, hash, key, args, true),
            None => Err(self.key_error(&args)),
        }
    }

    /// Runs the function, handing it this memo for recursive calls.
    fn compute(&self, args: F::Args) -> F::Output {
        self.func.run(&|a| self.call(a), args)
    }

    /// The miss path of the flight's leader: the archive, then the function.
    /// `strict` returns cache failures instead of falling back.
    fn resolve(
        &self,
        leader: Leader<'_, K::Memory, F::Output, P>,
        args: F::Args,
        strict: bool,
    ) -> Result<F::Output> {
        let mut save_now = false;
        let mut held = None;
        // The archive key (for the hash keymap, the digest) is computed only
        // when an archive is used.
        let mut key = None;
        if self.archived() {
            let key = key.insert(K::archive_key(leader.key()));
            let absent = match self.archive.get(key) {
                Ok(Some(value)) => return self.loaded(leader, value, strict),
                Ok(None) => true,
                // A damaged entry reads as absent: recompute it and write
                // the result over the damage at once. So does one written
                // for another value type, for `call`; `try_call` returns
                // that error and leaves the other type's entry alone.
                Err(e @ Error::Corrupt { .. }) => {
                    self.failed(Stage::ArchiveRead, &e);
                    if strict && e.is_type_mismatch() {
                        return Err(e);
                    }
                    save_now = true;
                    true
                }
                Err(e) => {
                    self.failed(Stage::ArchiveRead, &e);
                    if strict {
                        return Err(e);
                    }
                    false
                }
            };
            if let (true, Some(ttl)) = (absent, self.lease) {
                match lease::claim(&self.archive, key, ttl) {
                    Ok(lease::Claim::Loaded(value)) => return self.loaded(leader, value, strict),
                    Ok(lease::Claim::Held(lease)) => {
                        save_now = true;
                        held = Some(lease);
                    }
                    Ok(lease::Claim::Unleased) => {}
                    Err(e) => {
                        self.failed(Stage::ArchiveRead, &e);
                        if strict {
                            return Err(e);
                        }
                    }
                }
            }
        }
        let value = self.compute(args);
        let origin = if save_now {
            Origin::SaveNow
        } else {
            Origin::Computed
        };
        let stored = self.store_value(leader, key, value.clone(), origin);
        // Released only now that the result is in the archive.
        drop(held);
        self.settle(stored, strict).map(|()| value)
    }

    /// Puts a value found in the archive into memory.
    fn loaded(
        &self,
        leader: Leader<'_, K::Memory, F::Output, P>,
        value: F::Output,
        strict: bool,
    ) -> Result<F::Output> {
        let stored = self.store_value(leader, None, value.clone(), Origin::Archive);
        self.settle(stored, strict).map(|()| value)
    }

    /// In lenient mode a failed write has been counted and logged: go on.
    fn settle(&self, stored: Result<()>, strict: bool) -> Result<()> {
        match stored {
            Err(e) if strict => Err(e),
            _ => Ok(()),
        }
    }

    /// Puts a value in memory and sends whatever that displaced, or what must
    /// be written through, to the archive (after the memory lock is released).
    /// `key`: the leader's archive key, if already computed.
    fn store_value(
        &self,
        leader: Leader<'_, K::Memory, F::Output, P>,
        key: Option<K::Key>,
        value: F::Output,
        origin: Origin,
    ) -> Result<()> {
        let archived = self.archived();
        let mut result = Ok(());
        let (mut dirty, write_now, count) = match origin {
            Origin::Archive => (false, false, Count::Load),
            Origin::Computed => (true, self.write_through, Count::Miss),
            Origin::SaveNow => (true, true, Count::Miss),
        };
        if write_now && archived {
            let memory = leader.key();
            let key = key.unwrap_or_else(|| K::archive_key(memory));
            let args = K::stored_args(memory).map(<[u8]>::to_vec);
            let value = value.clone();
            result = self.write(|| self.archive.insert_with_args(key, value, args));
            dirty = result.is_err();
        }
        let displaced = leader.store(value, dirty, self.purge && archived, count, |k| {
            self.hasher.hash_one(k)
        });
        let written = match displaced {
            Displaced::None => Ok(()),
            Displaced::Evicted { key, value, dirty }
            | Displaced::NotStored { key, value, dirty } => {
                if dirty && archived {
                    let (key, value, args) = Self::archive_entry(key, value);
                    self.write(|| self.archive.insert_with_args(key, value, args))
                } else {
                    Ok(())
                }
            }
            Displaced::Purged(all) => {
                if archived {
                    let batch = all
                        .into_iter()
                        .map(|(k, v)| Self::archive_entry(k, v))
                        .collect();
                    self.write(|| self.archive.extend_with_args(batch))
                } else {
                    Ok(())
                }
            }
        };
        result.and(written)
    }

    /// An entry of memory as the archive stores it: the archive key (for
    /// the hash keymap, the digest, computed now), the value and the
    /// encoded arguments.
    fn archive_entry(memory: K::Memory, value: F::Output) -> WithArgs<K::Key, F::Output> {
        let args = K::stored_args(&memory).map(<[u8]>::to_vec);
        (K::archive_key(&memory), value, args)
    }

    fn write(&self, op: impl FnOnce() -> Result<()>) -> Result<()> {
        op().inspect_err(|e| self.failed(Stage::ArchiveWrite, e))
    }

    fn failed(&self, stage: Stage, error: &Error) {
        self.errors.fetch_add(1, Relaxed);
        let what = match stage {
            Stage::Key => "building the key",
            Stage::ArchiveRead => "reading the archive",
            Stage::ArchiveWrite => "writing the archive",
        };
        log::warn!(
            "klepto: {what} failed ({error}); {}",
            match stage {
                Stage::Key => "computing without caching",
                Stage::ArchiveRead => "computing instead",
                Stage::ArchiveWrite => "the result stays out of the archive",
            }
        );
    }

    /// Checks the memo's internal consistency (memory, slots, policy and
    /// flights agree) and panics with what is wrong. For tests: compiled
    /// in debug builds only, and meant for moments when no call is under
    /// way.
    #[cfg(debug_assertions)]
    #[doc(hidden)]
    pub fn validate(&self) {
        self.store.validate(|k| self.hasher.hash_one(k));
    }

    /// The statistics: hits, misses, loads, errors, the bound and the size.
    pub fn info(&self) -> CacheInfo {
        let tally = self.store.tally();
        CacheInfo {
            hits: tally.hits,
            misses: tally.misses,
            loads: tally.loads,
            errors: self.errors.load(Relaxed),
            maxsize: tally.capacity,
            size: tally.len,
        }
    }

    /// Empties the memory and resets the statistics; the archive is untouched
    /// (results not yet written to it are dropped).
    ///
    /// ```
    /// use klepto::Memo;
    /// let f = Memo::builder().build(|x: u8| x);
    /// f.call(1);
    /// f.clear();
    /// assert_eq!((f.info().misses, f.info().size), (0, 0));
    /// ```
    pub fn clear(&self) {
        self.store.clear();
        self.fallbacks.store(false, Relaxed);
        self.errors.store(0, Relaxed);
    }

    /// The stored result for `args`, from memory only; statistics and
    /// eviction order are not touched. `None` also when no key can be built.
    ///
    /// ```
    /// use klepto::Memo;
    /// let f = Memo::builder().build(|x: u8| x + 1);
    /// assert_eq!(f.lookup(&1), None);
    /// f.call(1);
    /// assert_eq!(f.lookup(&1), Some(2));
    /// ```
    pub fn lookup(&self, args: &F::Args) -> Option<F::Output> {
        let (found, fallback) = self.keymap.probe(args, &self.config, |probe| {
            let hash = self.hasher.hash_one(probe);
            let probe = KeyProbe::<F::Args, K>(probe, PhantomData);
            match self.store.peek(hash, &probe) {
                Some(value) => (Some(value), None),
                None if self.fallbacks.load(Relaxed) => (None, K::fallback(&probe.to_key())),
                None => (None, None),
            }
        })?;
        found.or_else(|| {
            let fallback = fallback?;
            self.store.peek(self.hasher.hash_one(&fallback), &fallback)
        })
    }

    /// The key `args` are cached under.
    ///
    /// ```
    /// use klepto::Memo;
    /// use klepto::keymap::StringKeymap;
    /// let f = Memo::builder().keymap(StringKeymap::new()).build(|(a, b): (u8, f64)| a as f64 + b);
    /// assert_eq!(f.key(&(1, 2.5))?, "(1, 2.5)");
    /// # Ok::<(), klepto::Error>(())
    /// ```
    pub fn key(&self, args: &F::Args) -> Result<K::Key> {
        self.keymap.key(args, &self.config)
    }

    /// The keys in memory now, in no particular order.
    pub fn keys(&self) -> Vec<K::Key> {
        self.store.keys().iter().map(K::archive_key).collect()
    }

    /// Writes the whole memory to the archive, as one batch: every result
    /// not yet there (results loaded from the archive, and those already
    /// written, are not written again, so the arguments stored with them
    /// stay).
    ///
    /// ```
    /// use klepto::Memo;
    /// use klepto::archive::{Archive, DictArchive};
    /// let archive = DictArchive::new();
    /// let f = Memo::builder().archive(archive.clone()).build(|x: u8| x);
    /// f.call(1);
    /// f.dump()?;
    /// assert_eq!(archive.len()?, 1);
    /// # Ok::<(), klepto::Error>(())
    /// ```
    pub fn dump(&self) -> Result<()> {
        if self.archive.is_null() {
            return Ok(());
        }
        let entries = self.store.take_unsaved();
        if entries.is_empty() {
            return Ok(());
        }
        let batch = entries
            .iter()
            .map(|(k, v)| Self::archive_entry(k.clone(), v.clone()))
            .collect();
        match self.archive.extend_with_args(batch) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.failed(Stage::ArchiveWrite, &e);
                self.store.mark_dirty(
                    entries
                        .into_iter()
                        .map(|(k, _)| (self.hasher.hash_one(&k), k)),
                );
                Err(e)
            }
        }
    }

    /// Reads the whole archive into memory (the policy evicts as usual when
    /// it holds more than the memory bound). Statistics are not changed.
    ///
    /// ```
    /// use klepto::Memo;
    /// use klepto::archive::{Archive, DictArchive};
    /// let archive = DictArchive::new();
    /// let f = Memo::builder().archive(archive.clone()).build(|x: u8| x);
    /// let key = f.key(&7)?;
    /// archive.insert(key, 70)?;
    /// f.load()?;
    /// assert_eq!(f.lookup(&7), Some(70));
    /// # Ok::<(), klepto::Error>(())
    /// ```
    pub fn load(&self) -> Result<()> {
        let mut write_back = Vec::new();
        for item in self.archive.iter_with_args()? {
            let (key, value, args) = match item {
                Ok(entry) => entry,
                // A damaged entry stays out of memory; a call recomputes it.
                Err(e @ Error::Corrupt { .. }) => {
                    self.failed(Stage::ArchiveRead, &e);
                    continue;
                }
                Err(e) => {
                    self.failed(Stage::ArchiveRead, &e);
                    return Err(e);
                }
            };
            let key = K::from_archived(key, args.as_deref());
            if K::stored_args(&key).is_none() {
                // Known by a fallback key: calls that miss look for it.
                self.fallbacks.store(true, Relaxed);
            }
            let hash = self.hasher.hash_one(&key);
            let displaced =
                self.store
                    .insert(hash, key, value, false, false, Count::Nothing, |k| {
                        self.hasher.hash_one(k)
                    });
            if let Displaced::Evicted {
                key,
                value,
                dirty: true,
            } = displaced
            {
                write_back.push((key, value));
            }
        }
        if write_back.is_empty() {
            Ok(())
        } else {
            let batch = write_back
                .into_iter()
                .map(|(k, v)| Self::archive_entry(k, v))
                .collect();
            self.write(|| self.archive.extend_with_args(batch))
        }
    }

    /// Whether calls use the archive: an archive is attached (not a
    /// [`NullArchive`]) and archiving is on.
    pub fn archived(&self) -> bool {
        self.archived.load(Relaxed) && !self.archive.is_null()
    }

    /// Turns the use of the archive on or off (no effect without an archive).
    ///
    /// ```
    /// use klepto::Memo;
    /// use klepto::archive::DictArchive;
    /// let f = Memo::builder().archive(DictArchive::new()).build(|x: u8| x);
    /// assert!(f.archived());
    /// f.set_archived(false);
    /// assert!(!f.archived());
    /// ```
    pub fn set_archived(&self, on: bool) {
        self.archived.store(on, Relaxed);
    }

    /// The archive.
    pub fn archive(&self) -> &A {
        &self.archive
    }
}

impl<F, K, P, A> Drop for Memo<F, K, P, A>
where
    F: MemoFn,
    F::Output: Clone + Send,
    K: Keymap<F::Args>,
    P: Policy,
    A: Archive<K::Key, F::Output>,
{
    /// Writes results not yet in the archive to it; failures are logged.
    fn drop(&mut self) {
        if self.archived() {
            if let Err(e) = self.dump() {
                log::warn!("klepto: unsaved results lost on drop: {e}");
            }
        }
    }
}

impl<F, K, P, A> fmt::Debug for Memo<F, K, P, A>
where
    F: MemoFn,
    F::Output: Clone + Send,
    K: Keymap<F::Args>,
    P: Policy,
    A: Archive<K::Key, F::Output>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Memo")
            .field("info", &self.info())
            .field("config", &self.config)
            .field("archive", &self.archive.location())
            .field("archived", &self.archived())
            .finish_non_exhaustive()
    }
}
