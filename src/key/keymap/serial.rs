//! The serial keymap: the canonical MessagePack bytes.

use serde::Serialize;

use super::Keymap;
use crate::key::{encode, KeyConfig};
use crate::Result;

/// The key is the canonical MessagePack encoding of the (masked, rounded)
/// positions: `[SCHEMA_VERSION, [p0, p1, ...]]`, maps sorted by key. The
/// format is written down in [`klepto::key::encode`](crate::key::encode).
///
/// ```
/// use klepto::keymap::SerialKeymap;
/// use klepto::KeyGen;
///
/// let keys = KeyGen::new().keymap(SerialKeymap::new());
/// let bytes = keys.key(&(1_u8, "x")).unwrap();
/// // [1, [1, "x"]]
/// assert_eq!(bytes, [0x92, 0x01, 0x92, 0x01, 0xa1, b'x']);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SerialKeymap;

impl SerialKeymap {
    /// The serial keymap.
    pub fn new() -> Self {
        SerialKeymap
    }
}

impl<Args: Serialize + ?Sized> Keymap<Args> for SerialKeymap {
    type Key = Vec<u8>;
    type Memory = Vec<u8>;
    type Probe = [u8];

    fn key(&self, args: &Args, config: &KeyConfig) -> Result<Vec<u8>> {
        encode::encode_args(args, config)
    }

    /// The encoding, in a reused per-thread buffer (a `Vec<u8>` hashes as
    /// its bytes).
    #[inline]
    fn probe<T>(&self, args: &Args, config: &KeyConfig, f: impl FnOnce(&[u8]) -> T) -> Option<T> {
        encode::probe_encoded(args, config, f)
    }

    #[inline]
    fn matches(memory: &Vec<u8>, probe: &[u8]) -> bool {
        memory[..] == *probe
    }

    fn to_memory(probe: &[u8]) -> Vec<u8> {
        probe.to_vec()
    }

    fn archive_key(memory: &Vec<u8>) -> Vec<u8> {
        memory.clone()
    }

    fn from_archived(key: Vec<u8>, _args: Option<&[u8]>) -> Vec<u8> {
        key
    }
}
