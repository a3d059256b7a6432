//! The snapshot of a memo's statistics that users read.

/// A snapshot of a memo's statistics, from [`Memo::info`](crate::Memo::info).
///
/// ```
/// use klepto::Memo;
/// let f = Memo::builder().lru(2).build(|x: u32| x + 1);
/// f.call(1);
/// f.call(1);
/// let info = f.info();
/// assert_eq!((info.hits, info.misses, info.loads, info.errors), (1, 1, 0, 0));
/// assert_eq!((info.maxsize, info.size), (Some(2), 1));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct CacheInfo {
    /// Calls answered from memory.
    pub hits: u64,
    /// Calls that ran the function.
    pub misses: u64,
    /// Calls answered from the archive.
    pub loads: u64,
    /// Cache failures the memo fell back from (a key that could not be
    /// built, an archive that could not be read or written, a damaged entry).
    pub errors: u64,
    /// The memory bound; `None` for an unbounded memo.
    pub maxsize: Option<usize>,
    /// Entries in memory now.
    pub size: usize,
}
