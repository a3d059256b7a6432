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
//! 2       1     format version: 2 (1 is still read)
//! 3       1     flags: bit 0 = key section present, bit 1 = args section present
//! 4       8     checksum: XXH3-64 of bytes 12..end with bytes 0..4 (as a
//!               little-endian u32) for seed, little-endian; in version 1,
//!               the first 8 bytes of blake3(bytes 0..4 ++ bytes 12..end)
//! 12      4+n   key section (if flagged): u32 little-endian length n, then the
//!               key as MessagePack
//! ..      4+m   args section (if flagged): u32 little-endian length m, then the
//!               arguments' canonical encoding (see [`crate::key::encode`])
//! ..      rest  the value as MessagePack
//! ```
//!
//! Keys and values are MessagePack as written by `rmp-serde` (structs as
//! arrays, enums by variant index).
//!
//! The checksum detects damage; it is not a signature (nor was blake3 cut
//! to 8 bytes, which anyone can recompute too). Version 2 replaced blake3
//! with XXH3 because checking an entry's blake3 took a third of the extra
//! work a reload from SQLite did over a hand-written reader; XXH3 costs a
//! twentieth of it. Entries written as version 1 stay readable. A truncated, extended or bit-flipped
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
use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::{Error, Result};

/// The two bytes every envelope starts with.
pub const MAGIC: [u8; 2] = *b"KL";
/// The envelope format version this crate writes (it reads 1 and 2).
pub const VERSION: u8 = 2;
/// The first format, checksummed with blake3 (read, never written).
const VERSION_1: u8 = 1;

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
        let sum = checksum(VERSION, &out[start..]);
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
        let version = bytes[2];
        if version != VERSION && version != VERSION_1 {
            return Err(corrupt(&format!(
                "envelope format version {version} (this build reads {VERSION_1} and {VERSION})"
            )));
        }
        let flags = bytes[3];
        if flags & !(FLAG_KEY | FLAG_ARGS) != 0 {
            return Err(corrupt("unknown envelope flags"));
        }
        if checksum(version, bytes) != bytes[4..HEADER] {
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

/// The checksum of an envelope of format `version`: everything but the
/// checksum field itself: XXH3-64 of the rest seeded with the first four
/// bytes (version 2), or blake3 (version 1, still read).
fn checksum(version: u8, envelope: &[u8]) -> [u8; 8] {
    if version == VERSION_1 {
        return checksum_v1(envelope);
    }
    let seed = u32::from_le_bytes([envelope[0], envelope[1], envelope[2], envelope[3]]);
    xxh3_64_with_seed(&envelope[HEADER..], u64::from(seed)).to_le_bytes()
}

/// Version 1's checksum: the first 8 bytes of blake3.
fn checksum_v1(envelope: &[u8]) -> [u8; 8] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&envelope[..4]);
    hasher.update(&envelope[HEADER..]);
    let mut out = [0; 8];
    out.copy_from_slice(&hasher.finalize().as_bytes()[..8]);
    out
}

/// Encodes `value` as MessagePack; `what` names it in the error.
pub fn to_msgpack<T: Serialize + ?Sized>(value: &T, what: &str) -> Result<Vec<u8>> {
    // Room for a key or a small value at once (`to_vec` would grow from
    // nothing, reallocating along the way).
    let mut out = Vec::with_capacity(64);
    rmp_serde::encode::write(&mut out, value).map_err(|e| Error::Encode {
        what: what.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(out)
}

/// Decodes MessagePack into `T`. Bytes that do not describe a `T` (damage,
/// or an archive written for another type) give [`Error::Corrupt`] naming
/// `location` and the expected type.
pub fn from_msgpack<T: DeserializeOwned>(bytes: &[u8], location: impl Display) -> Result<T> {
    rmp_serde::from_slice(bytes).map_err(|e| Error::type_mismatch::<T>(location, "", e))
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

    /// `Envelope { key: "fib", value: [42, 2.5] }` in each format, as
    /// Python's `blake3` and `xxhash` packages compute them (independent
    /// of this crate's code).
    const FIB_V1: [u8; 31] = [
        0x4b, 0x4c, 0x01, 0x01, 0x0c, 0x9f, 0xa2, 0x49, 0xff, 0x0d, 0x03, 0xa3, 0x04, 0x00, 0x00,
        0x00, 0xa3, 0x66, 0x69, 0x62, 0x92, 0x2a, 0xcb, 0x40, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00,
    ];
    const FIB_V2: [u8; 31] = [
        0x4b, 0x4c, 0x02, 0x01, 0xa0, 0xb9, 0xb3, 0xa9, 0x31, 0x52, 0xce, 0x52, 0x04, 0x00, 0x00,
        0x00, 0xa3, 0x66, 0x69, 0x62, 0x92, 0x2a, 0xcb, 0x40, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00,
    ];

    #[test]
    fn the_format_is_the_documented_one_and_version_1_still_reads() {
        let key = to_msgpack("fib", "key").unwrap();
        let value = to_msgpack(&(42_u8, 2.5_f64), "value").unwrap();
        let written = Envelope {
            key: Some(&key),
            args: None,
            value: &value,
        };
        assert_eq!(written.encode(), FIB_V2);
        for stored in [&FIB_V1, &FIB_V2] {
            let read = Envelope::decode(stored, "t").unwrap();
            assert_eq!(read, written);
            assert_eq!(
                from_msgpack::<(u8, f64)>(read.value, "t").unwrap(),
                (42, 2.5)
            );
            for i in 0..stored.len() {
                for bit in 0..8 {
                    let mut damaged = *stored;
                    damaged[i] ^= 1 << bit;
                    assert!(Envelope::decode(&damaged, "t").is_err(), "{i} {bit}");
                }
            }
        }
        let mut future = FIB_V2;
        future[2] = 3;
        let err = Envelope::decode(&future, "t").unwrap_err().to_string();
        assert!(
            err.contains("version 3 (this build reads 1 and 2)"),
            "{err}"
        );
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
