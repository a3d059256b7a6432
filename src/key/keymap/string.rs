//! The string keymap: a readable, deterministic string.

use serde::Serialize;

use super::Keymap;
use crate::key::encode::encode_args;
use crate::key::{describe_args, KeyConfig};
use crate::Result;

/// The key is a readable, deterministic string of the (masked, rounded)
/// positions, e.g. `(1, 2.5, "x")`; ignored positions read `NULL`.
///
/// It is [`describe_args`] of the canonical encoding (its rules are listed
/// there): it depends on nothing but the arguments, so the key is the same
/// in every process and on every platform.
///
/// ```
/// use klepto::keymap::StringKeymap;
/// use klepto::KeyGen;
///
/// let keys = KeyGen::new().keymap(StringKeymap::new());
/// assert_eq!(keys.key(&(1_u8, 2.5_f64, "x")).unwrap(), r#"(1, 2.5, "x")"#);
/// assert_eq!(keys.key(&7_u64).unwrap(), "(7,)");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StringKeymap;

impl StringKeymap {
    /// The string keymap.
    pub fn new() -> Self {
        StringKeymap
    }
}

impl<Args: Serialize + ?Sized> Keymap<Args> for StringKeymap {
    type Key = String;
    type Memory = String;
    type Probe = String;

    fn key(&self, args: &Args, config: &KeyConfig) -> Result<String> {
        describe_args(&encode_args(args, config)?)
    }

    fn probe<T>(&self, args: &Args, config: &KeyConfig, f: impl FnOnce(&String) -> T) -> Option<T> {
        self.key(args, config).ok().map(|key| f(&key))
    }

    fn matches(memory: &String, probe: &String) -> bool {
        memory == probe
    }

    fn to_memory(probe: &String) -> String {
        probe.clone()
    }

    fn archive_key(memory: &String) -> String {
        memory.clone()
    }

    fn from_archived(key: String, _args: Option<&[u8]>) -> String {
        key
    }
}
