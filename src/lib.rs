//! Memoize closures; keep their results in memory and in archives.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
pub mod key;
pub mod policy;

pub use error::{Error, Result};

/// The keymaps: how arguments become keys.
pub mod keymap {
    pub use crate::key::keymap::*;
}
