//! Keymaps: how the (masked, rounded) arguments are encoded into a key.
//!
//! | keymap | key | notes |
//! |---|---|---|
//! | [`RawKeymap`] | the arguments (`Args: Hash + Eq + Clone`) | fastest; no masks, rounding or typing |
//! | [`HashKeymap`] (default) | [`HashKey`]: 128-bit blake3 of the canonical encoding | stable |
//! | [`StringKeymap`] | `String`, e.g. `(1, 2.5, "x")` | stable, readable |
//! | [`SerialKeymap`] | `Vec<u8>`: the canonical MessagePack bytes | stable |

use std::fmt::Debug;
use std::hash::Hash;

use super::KeyConfig;
use crate::Result;

mod hash;
mod raw;
mod serial;
mod string;

pub use hash::{HashKey, HashKeymap};
pub use raw::RawKeymap;
pub use serial::SerialKeymap;
pub use string::StringKeymap;

/// Turns a call's arguments into the key under which its result is cached.
///
/// `Args` is the memoized function's argument type (a tuple for several
/// arguments). The four keymaps of the crate are [`RawKeymap`],
/// [`HashKeymap`] (the default), [`StringKeymap`] and [`SerialKeymap`].
pub trait Keymap<Args: ?Sized>: Send + Sync + 'static {
    /// The key type.
    type Key: Clone + Eq + Hash + Debug + Send + Sync + 'static;

    /// Whether this keymap applies masks, rounding and typing. A keymap that
    /// does not (the raw keymap) is refused by the builder when any is set.
    const TRANSFORMS: bool = true;

    /// Builds the key for `args` under `config`.
    fn key(&self, args: &Args, config: &KeyConfig) -> Result<Self::Key>;

    /// The canonical encoding of `args` to keep next to the key in an
    /// archive, for keymaps whose key does not show the arguments (the hash
    /// keymap). `None` (the default) for the others. Render it with
    /// [`describe_args`](crate::key::describe_args).
    fn encoded_args(&self, args: &Args, config: &KeyConfig) -> Option<Vec<u8>> {
        let _ = (args, config);
        None
    }
}
