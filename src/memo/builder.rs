//! The builder that configures and creates a [`Memo`].

use std::time::Duration;

use super::func::{Plain, Recursive};
use super::Memo;
use crate::archive::{Archive, NullArchive};
use crate::key::keymap::{HashKeymap, Keymap};
use crate::key::{Ignore, KeyConfig};
use crate::policy::{Lfu, Lru, Mru, NoCache, Policy, Rr, Unbounded};
use crate::Result;

/// The memo of a plain closure, as [`MemoBuilder::build`] returns it.
pub type PlainMemo<F, Args, R, K, P, A> = Memo<Plain<F, Args, R>, K, P, A>;

/// Configures a [`Memo`]: policy, keymap, masks, rounding and archive.
///
/// Created by [`Memo::builder`]; every setter takes the builder by value and
/// returns it. Without a policy setter the memo is an LRU of 128 entries;
/// without `.keymap(..)` keys are [`HashKeymap`] digests; without
/// `.archive(..)` results live in memory only.
///
/// ```
/// use klepto::Memo;
/// use klepto::keymap::StringKeymap;
/// let f = Memo::builder()
///     .lfu(64)
///     .keymap(StringKeymap::new())
///     .names(["x", "y", "verbose"])
///     .ignore("verbose")
///     .tol(1)
///     .build(|(x, y, _verbose): (f64, f64, bool)| x * y);
/// assert_eq!(f.call((2.0, 3.0, true)), 6.0);
/// assert_eq!(f.key(&(2.0, 3.04, false))?, "(2.0, 3.0, NULL)");
/// # Ok::<(), klepto::Error>(())
/// ```
#[must_use]
#[derive(Debug, Clone)]
pub struct MemoBuilder<K = HashKeymap, P = Lru, A = NullArchive> {
    keymap: K,
    policy: P,
    archive: A,
    config: KeyConfig,
    purge: bool,
    seed: Option<u64>,
    name: Option<String>,
    version: Option<String>,
    write_through: bool,
    lease: Option<Duration>,
}

impl Default for MemoBuilder {
    fn default() -> Self {
        MemoBuilder {
            keymap: HashKeymap::new(),
            policy: Lru::new(128),
            archive: NullArchive,
            config: KeyConfig::default(),
            purge: false,
            seed: None,
            name: None,
            version: None,
            write_through: false,
            lease: None,
        }
    }
}

impl<K, P, A> MemoBuilder<K, P, A> {
    /// The same configuration with other keymap, policy or archive types.
    fn swap<K2, P2, A2>(
        self,
        parts: impl FnOnce(K, P, A) -> (K2, P2, A2),
    ) -> MemoBuilder<K2, P2, A2> {
        let (keymap, policy, archive) = parts(self.keymap, self.policy, self.archive);
        MemoBuilder {
            keymap,
            policy,
            archive,
            config: self.config,
            purge: self.purge,
            seed: self.seed,
            name: self.name,
            version: self.version,
            write_through: self.write_through,
            lease: self.lease,
        }
    }

    fn with_policy<P2>(self, policy: P2) -> MemoBuilder<K, P2, A> {
        self.swap(|k, _, a| (k, policy, a))
    }

    /// Least-recently-used eviction, at most `maxsize` entries in memory
    /// (`0` keeps nothing, like [`no_cache`](Self::no_cache)).
    pub fn lru(self, maxsize: usize) -> MemoBuilder<K, Lru, A> {
        self.with_policy(Lru::new(maxsize))
    }

    /// Least-frequently-used eviction (ties: least recently used).
    pub fn lfu(self, maxsize: usize) -> MemoBuilder<K, Lfu, A> {
        self.with_policy(Lfu::new(maxsize))
    }

    /// Most-recently-used eviction: the entry used last (other than the new
    /// one) leaves first.
    pub fn mru(self, maxsize: usize) -> MemoBuilder<K, Mru, A> {
        self.with_policy(Mru::new(maxsize))
    }

    /// Random replacement; [`seed`](Self::seed) makes it reproducible.
    pub fn rr(self, maxsize: usize) -> MemoBuilder<K, Rr, A> {
        self.with_policy(Rr::new(maxsize))
    }

    /// No bound: memory grows with every new key.
    pub fn inf(self) -> MemoBuilder<K, Unbounded, A> {
        self.with_policy(Unbounded::new())
    }

    /// Nothing kept in memory: every call computes unless the archive has the
    /// result; with an archive every result is written to it.
    pub fn no_cache(self) -> MemoBuilder<K, NoCache, A> {
        self.with_policy(NoCache::new())
    }

    /// Any [`Policy`], e.g. one of your own.
    pub fn policy<P2: Policy>(self, policy: P2) -> MemoBuilder<K, P2, A> {
        self.with_policy(policy)
    }

    /// How arguments become keys (default [`HashKeymap`]).
    pub fn keymap<K2>(self, keymap: K2) -> MemoBuilder<K2, P, A> {
        self.swap(|_, p, a| (keymap, p, a))
    }

    /// Where results are kept beyond memory (default: nowhere).
    pub fn archive<A2>(self, archive: A2) -> MemoBuilder<K, P, A2> {
        self.swap(|k, p, _| (k, p, archive))
    }

    /// Names of the tuple's argument positions, so [`ignore`](Self::ignore)
    /// can name them.
    pub fn names<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.config.names = names.into_iter().map(Into::into).collect();
        self
    }

    /// Leaves an argument out of the key, by position (`.ignore(2)`) or by
    /// name (`.ignore("verbose")`); repeatable. The function still receives it.
    pub fn ignore(mut self, arg: impl Into<Ignore>) -> Self {
        self.config.ignore.push(arg.into());
        self
    }

    /// Rounds floats to `tol` decimal places in the key only, as Python's
    /// `round(x, tol)` does (the double's exact value, ties to even only on
    /// exact halves: 0.35 → 0.3, 2.5 → 2 with `tol(0)`); negative values
    /// round to tens, hundreds, ... See [`round_float`](crate::key::round_float).
    pub fn tol(mut self, tol: i32) -> Self {
        self.config.tol = Some(tol);
        self
    }

    /// With [`tol`](Self::tol): round floats at every depth (`true`) or only
    /// top-level float arguments (`false`, the default).
    pub fn deep(mut self, deep: bool) -> Self {
        self.config.deep = deep;
        self
    }

    /// Keep argument types in the key, so `3_i32` and `3_i64` differ
    /// (default `false`).
    pub fn typed(mut self, typed: bool) -> Self {
        self.config.typed = typed;
        self
    }

    /// When memory is full and an archive is attached: dump all of memory to
    /// the archive and empty it, instead of evicting one entry.
    pub fn purge(mut self, purge: bool) -> Self {
        self.purge = purge;
        self
    }

    /// Seeds random replacement, for reproducible evictions.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The function's namespace inside a shared archive (table, file stem or
    /// subdirectory), so functions sharing one archive never collide.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// A version salt: results of different versions of a function are kept
    /// apart in a shared archive (change it when the function's output
    /// changes). The archive namespace becomes `name@version` (`@version`
    /// without a [`name`](Self::name)).
    ///
    /// ```
    /// use klepto::Memo;
    /// use klepto::archive::{Archive, DictArchive};
    /// let archive = DictArchive::new();
    /// let v1 = Memo::builder().name("f").version("1").archive(archive.clone()).build(|x: u8| x);
    /// v1.call(1);
    /// v1.dump()?;
    /// let v2 = Memo::builder().name("f").version("2").archive(archive.clone()).build(|x: u8| x + 1);
    /// assert_eq!(v2.call(1), 2);                   // not v1's stored result
    /// assert_eq!(v2.info().loads, 0);
    /// assert_eq!(archive.namespaced("f@1")?.len()?, 1);
    /// # Ok::<(), klepto::Error>(())
    /// ```
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// The archive namespace: the name, salted with the version.
    fn namespace(&self) -> Option<String> {
        match (&self.name, &self.version) {
            (None, None) => None,
            (Some(name), None) => Some(name.clone()),
            (name, Some(version)) => Some(format!("{}@{version}", name.as_deref().unwrap_or(""))),
        }
    }

    /// Also write every computed result to the archive at once, not only
    /// when it leaves memory.
    pub fn write_through(mut self) -> Self {
        self.write_through = true;
        self
    }

    /// Compute each missing result once across every process that shares
    /// the archive (PostgreSQL and Redis archives keep leases; others
    /// grant at once, so this changes nothing there).
    ///
    /// On a miss the memo takes a lease on the key in the archive, looks
    /// there once more, computes, writes the result at once and lets go of
    /// the lease. A process that misses the same key meanwhile waits for
    /// that result (looking again every 2 to 100 ms) instead of computing
    /// it too. A lease expires `ttl` after it was taken, so a holder that
    /// dies holds the others up for at most `ttl`, and nobody waits longer
    /// than `ttl`: choose it longer than the function takes. Costs two more
    /// round trips to the archive per miss (the lease and the second look)
    /// and one per result (the release).
    ///
    /// ```
    /// use std::time::Duration;
    /// use klepto::Memo;
    /// use klepto::archive::DictArchive;
    /// let f = Memo::builder()
    ///     .archive(DictArchive::new())   // e.g. a RedisArchive or a PostgreSQL SqlArchive
    ///     .lease(Duration::from_secs(60))
    ///     .build(|x: u64| x * x);
    /// assert_eq!(f.call(12), 144);
    /// ```
    pub fn lease(mut self, ttl: Duration) -> Self {
        self.lease = Some(ttl);
        self
    }

    /// Creates the memo of `f: Fn(Args) -> R`.
    ///
    /// # Panics
    /// When the configuration is invalid (see [`try_build`](Self::try_build)
    /// for the cases); use `try_build` to get the error instead.
    pub fn build<Args, R, F>(self, f: F) -> Memo<Plain<F, Args, R>, K, P, A>
    where
        F: Fn(Args) -> R + Send + Sync,
        R: Clone + Send,
        K: Keymap<Args>,
        P: Policy,
        A: Archive<K::Key, R>,
    {
        self.try_build(f).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Creates the memo, or says why the configuration is invalid: masks,
    /// rounding or typing with a keymap that cannot apply them (the raw
    /// keymap), an ignored name or position that is not among `.names`, or an
    /// archive that cannot open the namespace given by `.name`.
    ///
    /// ```
    /// use klepto::Memo;
    /// use klepto::keymap::RawKeymap;
    /// let err = Memo::builder()
    ///     .keymap(RawKeymap::new())
    ///     .ignore(1)
    ///     .try_build(|(a, _b): (u8, u8)| a);
    /// assert!(matches!(err, Err(klepto::Error::Config { .. })));
    /// ```
    pub fn try_build<Args, R, F>(self, f: F) -> Result<PlainMemo<F, Args, R, K, P, A>>
    where
        F: Fn(Args) -> R + Send + Sync,
        R: Clone + Send,
        K: Keymap<Args>,
        P: Policy,
        A: Archive<K::Key, R>,
    {
        self.finish(Plain::new(f))
    }

    /// Creates the memo of a recursive function, which receives a handle to
    /// the memo for its recursive calls.
    ///
    /// ```
    /// use klepto::Memo;
    /// let fib = Memo::builder().inf().build_recursive(|fib, n: u64| {
    ///     if n < 2 { n } else { fib(n - 1) + fib(n - 2) }
    /// });
    /// assert_eq!(fib.call(90), 2_880_067_194_370_816_120);
    /// ```
    ///
    /// # Panics
    /// As [`build`](Self::build).
    pub fn build_recursive<Args, R, F>(self, f: F) -> Memo<Recursive<F, Args, R>, K, P, A>
    where
        F: Fn(&dyn Fn(Args) -> R, Args) -> R + Send + Sync,
        R: Clone + Send,
        K: Keymap<Args>,
        P: Policy,
        A: Archive<K::Key, R>,
    {
        self.finish(Recursive::new(f))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn finish<Fm>(self, func: Fm) -> Result<Memo<Fm, K, P, A>>
    where
        Fm: super::MemoFn,
        Fm::Output: Clone + Send,
        K: Keymap<Fm::Args>,
        P: Policy,
        A: Archive<K::Key, Fm::Output>,
    {
        self.config.check_for::<Fm::Args, K>()?;
        let archive = match self.namespace() {
            Some(namespace) => self.archive.namespaced(&namespace)?,
            None => self.archive,
        };
        let mut policy = self.policy;
        if let Some(seed) = self.seed {
            policy.reseed(seed);
        }
        Ok(Memo::from_parts(super::Parts {
            func,
            keymap: self.keymap,
            config: self.config,
            policy,
            archive,
            purge: self.purge,
            write_through: self.write_through,
            lease: self.lease,
        }))
    }
}
