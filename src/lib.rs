//! Memoize closures; keep their results in memory and in archives.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod archive;
mod error;
pub mod key;
mod memo;
pub mod policy;

pub use error::{Error, Result};
pub use key::KeyGen;
pub use memo::{CacheInfo, Memo, MemoBuilder, MemoFn, Plain, PlainMemo, Recursive};

/// The keymaps: how arguments become keys.
pub mod keymap {
    pub use crate::key::keymap::*;
}
