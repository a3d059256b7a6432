//! Memoize closures; keep their results in memory and in archives.
//!
//! A [`Memo`] wraps a closure: a call with arguments seen before returns the
//! stored result instead of running the closure again. Its parts are chosen
//! with a builder: the eviction [`policy`] of the memory (LRU, LFU, MRU,
//! random replacement, unbounded, none), the [`keymap`] that turns arguments
//! into keys (stable hashed, string or MessagePack keys, or the raw
//! arguments), masks and float rounding that make different arguments share a
//! key, and the [`archive`] that keeps results beyond memory.
//!
//! ```
//! use klepto::Memo;
//! use klepto::archive::DictArchive;
//!
//! let slow_square = Memo::builder()
//!     .lru(1_000)                 // at most 1,000 results in memory
//!     .tol(2)                     // 2.001 and 2.0 share a key
//!     .archive(DictArchive::new())
//!     .build(|x: f64| x * x);
//!
//! assert_eq!(slow_square.call(2.0), 4.0);
//! assert_eq!(slow_square.call(2.001), 4.0);  // answered from memory
//! let info = slow_square.info();
//! assert_eq!((info.hits, info.misses), (1, 1));
//! ```
//!
//! The semantics in one paragraph: a call whose key is in memory is
//! a *hit*; otherwise the archive is asked (a *load*); otherwise the function
//! runs (a *miss*). Adding an entry to a full memory evicts one entry chosen
//! by the policy (into the archive, when one is attached), or with
//! `.purge(true)` moves the whole memory to the archive.
//!
//! Archives that outlive the process: [`FileArchive`](archive::FileArchive)
//! (one file), [`DirArchive`](archive::DirArchive) (a file per entry) and,
//! with the default `sqlite` feature, [`SqlArchive`](archive::SqlArchive)
//! (an SQLite table). Their writes are atomic, several processes may share
//! one, and damaged data is reported as [`Error::Corrupt`], never read as
//! an empty archive. Every stored entry carries its key and every read
//! checks it, so no entry ever answers for another key.
//!
//! Archives that many machines share, each behind its cargo feature:
//! `SqlArchive` on a PostgreSQL server (feature `postgres`, a
//! `postgres://` URL) and `RedisArchive` (feature `redis`). With
//! `.lease(ttl)` on the builder, a result missing from such an archive is
//! computed once across all the processes that share it. All archives are
//! [`Backed`](archive::Backed) by a byte-level
//! [`Backend`](archive::Backend), which is all a new storage needs to
//! implement.
//!
//! ```
//! use klepto::Memo;
//! use klepto::archive::SqlArchive;
//!
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("cache.db");
//! # let path = path.to_str().unwrap();
//! let square = Memo::builder()
//!     .lru(100)
//!     .name("square")                        // the table
//!     .archive(SqlArchive::open(path)?)      // e.g. "cache.db"
//!     .build(|x: u64| x * x);
//! square.call(12);
//! drop(square);                              // unsaved results are written
//!
//! let again = Memo::builder()
//!     .lru(100)
//!     .name("square")
//!     .archive(SqlArchive::open(path)?)
//!     .build(|x: u64| x * x);
//! assert_eq!(again.call(12), 144);
//! assert_eq!(again.info().loads, 1);         // from disk, not recomputed
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
// The one exception is the memo's striped lock (`memo/striped.rs`).
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod archive;
mod error;
pub mod hex;
pub mod key;
mod memo;
pub mod policy;

pub use error::{Error, Result};
pub use key::KeyGen;
pub use memo::{CacheInfo, Memo, MemoBuilder, MemoFn, Plain, PlainMemo, Recursive};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// The keymaps: how arguments become keys.
pub mod keymap {
    pub use crate::key::keymap::*;
}
