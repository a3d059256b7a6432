//! Keymaps: how the (masked, rounded) arguments are encoded into a key.
//!
//! | keymap | key | notes |
//! |---|---|---|
//! | [`RawKeymap`] | the arguments (`Args: Hash + Eq + Clone`) | fastest; no masks, rounding or typing |
//! | [`HashKeymap`] (default) | [`HashKey`]: 128-bit blake3 of the canonical encoding | stable; memory keyed by the encoding ([`EncodedArgs`]) |
//! | [`StringKeymap`] | `String`, e.g. `(1, 2.5, "x")` | stable, readable |
//! | [`SerialKeymap`] | `Vec<u8>`: the canonical MessagePack bytes | stable |

use std::fmt::Debug;
use std::hash::Hash;

use super::KeyConfig;
use crate::Result;

mod encoded;
mod hash;
mod raw;
mod serial;
mod string;

pub use encoded::EncodedArgs;
pub use hash::{HashKey, HashKeymap};
pub use raw::RawKeymap;
pub use serial::SerialKeymap;
pub use string::StringKeymap;

/// Turns a call's arguments into the key under which its result is cached.
///
/// `Args` is the memoized function's argument type (a tuple for several
/// arguments). The four keymaps of the crate are [`RawKeymap`],
/// [`HashKeymap`] (the default), [`StringKeymap`] and [`SerialKeymap`].
///
/// A keymap gives two kinds of key: [`Key`](Keymap::Key), what archives
/// store and [`key`](Keymap::key) returns, and [`Memory`](Keymap::Memory),
/// what a memo's memory is keyed by. They differ when the key is costly to
/// build and the memory can do without it: a [`HashKeymap`] memo keys its
/// memory by the encoded arguments ([`EncodedArgs`]) and computes the blake3
/// digest only when an archive is touched. A call looks the memory up with
/// a [`Probe`](Keymap::Probe), a borrowed form built without allocating.
pub trait Keymap<Args: ?Sized>: Send + Sync + 'static {
    /// The key type: what archives store.
    type Key: Clone + Eq + Hash + Debug + Send + Sync + 'static;

    /// What a memo's memory is keyed by (often [`Key`](Keymap::Key) itself).
    type Memory: Clone + Eq + Hash + Debug + Send + Sync + 'static;

    /// What a call looks the memory up with. Its `Hash` must equal the
    /// `Hash` of the [`Memory`](Keymap::Memory) key it
    /// [`matches`](Keymap::matches).
    type Probe: ?Sized + Hash;

    /// Whether this keymap applies masks, rounding and typing. A keymap that
    /// does not (the raw keymap) is refused by the builder when any is set.
    const TRANSFORMS: bool = true;

    /// Builds the key for `args` under `config`.
    fn key(&self, args: &Args, config: &KeyConfig) -> Result<Self::Key>;

    /// Builds the probe for `args` under `config` and hands it to `f`.
    /// `None` when no key can be built for `args`; [`key`](Keymap::key)
    /// then says why. (A memo's hit returns through here, so its result
    /// stays small: no [`Error`](crate::Error) on the way.)
    fn probe<T>(
        &self,
        args: &Args,
        config: &KeyConfig,
        f: impl FnOnce(&Self::Probe) -> T,
    ) -> Option<T>;

    /// Whether `probe` looks up `memory`.
    fn matches(memory: &Self::Memory, probe: &Self::Probe) -> bool;

    /// The memory key of a probe (for a result about to be stored).
    fn to_memory(probe: &Self::Probe) -> Self::Memory;

    /// The archive key of a memory key.
    fn archive_key(memory: &Self::Memory) -> Self::Key;

    /// The canonical encoding of the arguments to keep next to the key in an
    /// archive, for keymaps whose key does not show the arguments (the hash
    /// keymap); `None` (the default) for the others. Render it with
    /// [`describe_args`](crate::key::describe_args).
    fn stored_args(memory: &Self::Memory) -> Option<&[u8]> {
        let _ = memory;
        None
    }

    /// The memory key of an archived entry, from its key and the arguments
    /// stored with it (if any).
    fn from_archived(key: Self::Key, args: Option<&[u8]>) -> Self::Memory;

    /// A second memory key the entry of `memory` may be stored under: for
    /// the hash keymap, the digest an entry loaded from an archive without
    /// its arguments is known by. `None` (the default) when there is none.
    fn fallback(memory: &Self::Memory) -> Option<Self::Memory> {
        let _ = memory;
        None
    }
}
