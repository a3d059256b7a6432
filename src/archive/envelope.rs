//! The envelope: the one binary layout of a stored entry.
//!
//! Every persistent archive stores a value inside an envelope, which makes
//! damage detectable (a checksum) and the format evolvable (a version byte).
//! Directory archives also keep the key in it, and hashed keys may keep the
//! canonical encoding of the call's arguments, so that tools can show which
//! call a digest stands for.
//!
//! ```text
//! offset  size  field
//! 0       2     magic: b"KL"
//! 2       1     format version: 1
//! 3       1     flags: bit 0 = key section present, bit 1 = args section present
//! 4       8     checksum: the first 8 bytes of blake3(bytes 0..4 ++ bytes 12..end)
//! 12      4+n   key section (if flagged): u32 little-endian length n, then the
//!               key as MessagePack
//! ..      4+m   args section (if flagged): u32 little-endian length m, then the
//!               arguments' canonical encoding (see [`crate::key::encode`])
//! ..      rest  the value as MessagePack
//! ```
//!
//! Keys and values are MessagePack as written by `rmp-serde` (structs as
//! arrays, enums by variant index). A truncated, extended or bit-flipped
//! envelope fails the checksum and is reported as [`Error::Corrupt`], never
//! decoded into a wrong value.
//!
//! ```
//! use klepto::archive::envelope::Envelope;
//! let value = klepto::archive::envelope::to_msgpack(&42_u64, "value")?;
//! let bytes = Envelope { key: None, args: None, value: &value }.encode();
//! let back = Envelope::decode(&bytes, "example")?;
//! assert_eq!(klepto::archive::envelope::from_msgpack::<u64>(back.value, "example")?, 42);
//!
//! let mut damaged = bytes.clone();
//! damaged[12] ^= 1;
//! assert!(matches!(Envelope::decode(&damaged, "example"), Err(klepto::Error::Corrupt { .. })));
//! # Ok::<(), klepto::Error>(())
//! ```

use std::fmt::Display;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{Error, Result};

/// The two bytes every envelope starts with.
pub const MAGIC: [u8; 2] = *b"KL";
/// The envelope format version this crate writes and reads.
pub const VERSION: u8 = 1;

const FLAG_KEY: u8 = 1;
const FLAG_ARGS: u8 = 2;
const HEADER: usize = 12;

/// One stored entry, borrowed from its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// The key as MessagePack, when the backend keeps it in the entry.
    pub key: Option<&'a [u8]>,
    /// The canonical encoding of the call's arguments (hashed keys).
    pub args: Option<&'a [u8]>,
    /// The value as MessagePack.
    pub value: &'a [u8],
}

impl<'a> Envelope<'a> {
    /// The envelope's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut out);
        out
    }

    /// The length of [`encode`](Self::encode)'s result.
    pub fn encoded_len(&self) -> usize {
        HEADER
            + [self.key, self.args]
                .iter()
                .flatten()
                .map(|s| 4 + s.len())
                .sum::<usize>()
            + self.value.len()
    }

    /// Appends the envelope's bytes to `out` (for a container that frames
    /// envelopes, without a copy of its own).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.reserve(self.encoded_len());
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        let flags =
            u8::from(self.key.is_some()) * FLAG_KEY + u8::from(self.args.is_some()) * FLAG_ARGS;
        out.push(flags);
        out.extend_from_slice(&[0; 8]);
        for section in [self.key, self.args].into_iter().flatten() {
            let n = u32::try_from(section.len()).expect("an envelope section over 4 GiB");
            out.extend_from_slice(&n.to_le_bytes());
            out.extend_from_slice(section);
        }
        out.extend_from_slice(self.value);
        let sum = checksum(&out[start..]);
        out[start + 4..start + HEADER].copy_from_slice(&sum);
    }

    /// Checks and splits `bytes`; `location` (a path, a table and key, ...)
    /// names the entry in the error if it is damaged.
    pub fn decode(bytes: &'a [u8], location: impl Display) -> Result<Envelope<'a>> {
        let corrupt = |reason: &str| Error::Corrupt {
            location: location.to_string(),
            reason: reason.to_owned(),
        };
        if bytes.len() < HEADER {
            return Err(corrupt("entry shorter than the envelope header"));
        }
        if bytes[..2] != MAGIC {
            return Err(corrupt("not a klepto envelope (bad magic bytes)"));
        }
        if bytes[2] != VERSION {
            return Err(corrupt(&format!(
                "envelope format version {} (this build reads {VERSION})",
                bytes[2]
            )));
        }
        let flags = bytes[3];
        if flags & !(FLAG_KEY | FLAG_ARGS) != 0 {
            return Err(corrupt("unknown envelope flags"));
        }
        if checksum(bytes) != bytes[4..HEADER] {
            return Err(corrupt("checksum mismatch (truncated or damaged entry)"));
        }
        let mut rest = &bytes[HEADER..];
        let mut section = |present: bool| -> Result<Option<&'a [u8]>> {
            if !present {
                return Ok(None);
            }
            let (len, tail) = rest
                .split_first_chunk::<4>()
                .ok_or_else(|| corrupt("envelope section length cut short"))?;
            let len = u32::from_le_bytes(*len) as usize;
            if tail.len() < len {
                return Err(corrupt("envelope section longer than the entry"));
            }
            let (body, tail) = tail.split_at(len);
            rest = tail;
            Ok(Some(body))
        };
        let key = section(flags & FLAG_KEY != 0)?;
        let args = section(flags & FLAG_ARGS != 0)?;
        Ok(Envelope {
            key,
            args,
            value: rest,
        })
    }
}

/// The checksum of an envelope: everything but the checksum field itself.
fn checksum(envelope: &[u8]) -> [u8; 8] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&envelope[..4]);
    hasher.update(&envelope[HEADER..]);
    let hash = hasher.finalize();
    let mut out = [0; 8];
    out.copy_from_slice(&hash.as_bytes()[..8]);
    out
}

/// Encodes `value` as MessagePack; `what` names it in the error.
pub fn to_msgpack<T: Serialize + ?Sized>(value: &T, what: &str) -> Result<Vec<u8>> {
    rmp_serde::to_vec(value).map_err(|e| Error::Encode {
        what: what.to_owned(),
        reason: e.to_string(),
    })
}

/// Decodes MessagePack into `T`. Bytes that do not describe a `T` (damage,
/// or an archive written for another type) give [`Error::Corrupt`] naming
/// `location` and the expected type.
pub fn from_msgpack<T: DeserializeOwned>(bytes: &[u8], location: impl Display) -> Result<T> {
    rmp_serde::from_slice(bytes).map_err(|e| Error::Corrupt {
        location: location.to_string(),
        reason: format!(
            "stored data does not decode as `{}`: {e}",
            std::any::type_name::<T>()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        Envelope {
            key: Some(b"key"),
            args: Some(b"args"),
            value: b"value",
        }
        .encode()
    }

    #[test]
    fn round_trips_every_section_combination() {
        for key in [None, Some(&b"k"[..])] {
            for args in [None, Some(&b""[..]), Some(&b"abc"[..])] {
                let env = Envelope {
                    key,
                    args,
                    value: b"v",
                };
                let bytes = env.encode();
                assert_eq!(Envelope::decode(&bytes, "t").unwrap(), env);
            }
        }
    }

    #[test]
    fn every_truncation_and_bit_flip_is_detected() {
        let bytes = sample();
        for cut in 0..bytes.len() {
            assert!(
                Envelope::decode(&bytes[..cut], "t").is_err(),
                "cut at {cut}"
            );
        }
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut damaged = bytes.clone();
                damaged[i] ^= 1 << bit;
                assert!(
                    Envelope::decode(&damaged, "t").is_err(),
                    "byte {i} bit {bit}"
                );
            }
        }
    }

    #[test]
    fn errors_name_the_location() {
        let err = Envelope::decode(b"garbage garbage", "cache.db:fib").unwrap_err();
        assert!(err.to_string().contains("cache.db:fib"), "{err}");
    }

    #[test]
    fn wrong_type_is_a_corrupt_error_naming_the_type() {
        let bytes = to_msgpack(&"text", "value").unwrap();
        let err = from_msgpack::<u64>(&bytes, "here").unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }));
        assert!(err.to_string().contains("u64"), "{err}");
    }
}
