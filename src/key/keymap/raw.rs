//! The raw keymap: the arguments themselves are the key.

use std::fmt::Debug;
use std::hash::Hash;

use super::Keymap;
use crate::key::KeyConfig;
use crate::{Error, Result};

/// The arguments themselves are the key (a clone of them): the fastest
/// keymap, with no serde involved.
///
/// It cannot apply masks, rounding or typing: with any of them configured,
/// [`key`](Keymap::key) returns [`Error::Config`] (and the memo builder
/// refuses it up front, as [`TRANSFORMS`](Keymap::TRANSFORMS) is `false`).
///
/// ```
/// use klepto::keymap::{Keymap, RawKeymap};
/// use klepto::key::KeyConfig;
///
/// let key = RawKeymap::new().key(&(1_u8, "x"), &KeyConfig::default()).unwrap();
/// assert_eq!(key, (1_u8, "x"));
///
/// let masked = KeyConfig { ignore: vec![0.into()], ..KeyConfig::default() };
/// assert!(RawKeymap::new().key(&(1_u8, "x"), &masked).is_err());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RawKeymap;

impl RawKeymap {
    /// The raw keymap.
    pub fn new() -> Self {
        RawKeymap
    }
}

impl<Args> Keymap<Args> for RawKeymap
where
    Args: Hash + Eq + Clone + Debug + Send + Sync + 'static,
{
    type Key = Args;
    type Memory = Args;
    type Probe = Args;
    const TRANSFORMS: bool = false;

    #[inline]
    fn key(&self, args: &Args, config: &KeyConfig) -> Result<Args> {
        if !config.is_identity() {
            return Err(not_identity(config));
        }
        Ok(args.clone())
    }

    /// The arguments themselves: a hit copies nothing.
    #[inline]
    fn probe<T>(&self, args: &Args, config: &KeyConfig, f: impl FnOnce(&Args) -> T) -> Option<T> {
        config.is_identity().then(|| f(args))
    }

    #[inline]
    fn matches(memory: &Args, probe: &Args) -> bool {
        memory == probe
    }

    #[inline]
    fn to_memory(probe: &Args) -> Args {
        probe.clone()
    }

    fn archive_key(memory: &Args) -> Args {
        memory.clone()
    }

    fn from_archived(key: Args, _args: Option<&[u8]>) -> Args {
        key
    }
}

/// The error of a raw key asked for masks, rounding or typing (out of the
/// key's inlined path).
#[cold]
fn not_identity(config: &KeyConfig) -> Error {
    Error::config(format!(
        "the raw keymap uses the arguments themselves as the key and cannot apply \
         ignore masks, rounding (tol) or typing; use HashKeymap, StringKeymap or \
         SerialKeymap instead (config: ignore {:?}, tol {:?}, typed {})",
        config.ignore, config.tol, config.typed
    ))
}
