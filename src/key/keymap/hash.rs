//! The hash keymap (the default): a 128-bit blake3 digest of the canonical
//! encoding.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{EncodedArgs, Keymap};
use crate::key::{encode, KeyConfig};
use crate::{Error, Result};

/// The default keymap: the key is a [`HashKey`], the first 16 bytes of the
/// blake3 hash of the canonical MessagePack encoding of the (masked, rounded)
/// positions (see [`klepto::key::encode`](crate::key::encode)).
///
/// Stable: the same arguments give the same key in every process, on every
/// platform and run (no per-process random seed).
///
/// ```
/// use klepto::keymap::HashKeymap;
/// use klepto::KeyGen;
///
/// let keys = KeyGen::new().keymap(HashKeymap::new());
/// let a = keys.key(&(1_u64, 2.5_f64)).unwrap();
/// assert_eq!(a, keys.key(&(1_u8, 2.5_f32)).unwrap()); // untyped: widths do not matter
/// assert_ne!(a, keys.key(&(2_u64, 2.5_f64)).unwrap());
/// assert_eq!(a.to_string().len(), 32);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HashKeymap;

impl HashKeymap {
    /// The hash keymap.
    pub fn new() -> Self {
        HashKeymap
    }
}

impl<Args: Serialize + ?Sized> Keymap<Args> for HashKeymap {
    type Key = HashKey;
    type Memory = EncodedArgs;
    type Probe = [u8];

    #[inline]
    fn key(&self, args: &Args, config: &KeyConfig) -> Result<HashKey> {
        encode::with_encoded_args(args, config, HashKey::of_encoding)
    }

    /// The encoded arguments, in a reused per-thread buffer.
    #[inline(always)]
    fn probe<T>(&self, args: &Args, config: &KeyConfig, f: impl FnOnce(&[u8]) -> T) -> Option<T> {
        encode::probe_encoded(args, config, f)
    }

    #[inline(always)]
    fn matches(memory: &EncodedArgs, probe: &[u8]) -> bool {
        memory.is(probe)
    }

    #[inline]
    fn to_memory(probe: &[u8]) -> EncodedArgs {
        EncodedArgs::new(probe)
    }

    /// The blake3 digest, computed now.
    fn archive_key(memory: &EncodedArgs) -> HashKey {
        memory.digest()
    }

    /// The bytes the key is a digest of.
    fn stored_args(memory: &EncodedArgs) -> Option<&[u8]> {
        memory.bytes()
    }

    /// Keyed by the stored arguments when they are the ones the key is the
    /// digest of; else (none stored, or not matching) by the digest alone.
    fn from_archived(key: HashKey, args: Option<&[u8]>) -> EncodedArgs {
        match args {
            Some(args) if HashKey::of_encoding(args) == key => EncodedArgs::new(args),
            _ => EncodedArgs::digest_only(key),
        }
    }

    /// The digest alone, for encoded arguments.
    fn fallback(memory: &EncodedArgs) -> Option<EncodedArgs> {
        memory.bytes()?;
        Some(EncodedArgs::digest_only(memory.digest()))
    }
}

/// A 128-bit key: the first 16 bytes of a blake3 digest.
///
/// Displays (and [`LowerHex`](fmt::LowerHex)-formats) as 32 lowercase hex
/// characters, parses back from them ([`FromStr`]), and serializes as a
/// 16-byte byte string (in human-readable formats such as JSON, where map
/// keys must be strings: as the 32-character hex string).
///
/// ```
/// use klepto::keymap::HashKey;
/// let k = HashKey::from_bytes([0xab; 16]);
/// assert_eq!(k.to_string(), "ab".repeat(16));
/// assert_eq!(k.to_string().parse::<HashKey>().unwrap(), k);
/// assert_eq!(k.as_bytes(), &[0xab; 16]);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HashKey([u8; 16]);

impl HashKey {
    /// The key made of these 16 bytes.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        HashKey(bytes)
    }

    /// The key's 16 bytes.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// The key of an already encoded argument list: the first 16 bytes of
    /// `blake3(encoding)`.
    pub fn of_encoding(encoding: &[u8]) -> Self {
        let digest = blake3::hash(encoding);
        let mut out = [0u8; 16];
        out.copy_from_slice(&digest.as_bytes()[..16]);
        HashKey(out)
    }
}

impl From<[u8; 16]> for HashKey {
    fn from(bytes: [u8; 16]) -> Self {
        HashKey(bytes)
    }
}

impl AsRef<[u8]> for HashKey {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::LowerHex for HashKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = [0u8; 32];
        crate::hex::encode_into(&self.0, &mut s);
        // Only ASCII hex digits were written.
        f.write_str(std::str::from_utf8(&s).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Display for HashKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::LowerHex::fmt(self, f)
    }
}

impl fmt::Debug for HashKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HashKey({self:x})")
    }
}

impl FromStr for HashKey {
    type Err = Error;

    /// Parses 32 hex characters (either case).
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::key(format!("not a 32-character hex HashKey: {s:?}"));
        let mut out = [0u8; 16];
        crate::hex::decode_into(s.as_bytes(), &mut out).ok_or_else(bad)?;
        Ok(HashKey(out))
    }
}

impl Serialize for HashKey {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            s.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for HashKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = HashKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("16 bytes or 32 hex characters")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> std::result::Result<HashKey, E> {
                <[u8; 16]>::try_from(v)
                    .map(HashKey)
                    .map_err(|_| E::invalid_length(v.len(), &self))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<HashKey, E> {
                v.parse()
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Str(v), &self))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<HashKey, A::Error> {
                let mut out = [0u8; 16];
                for (i, o) in out.iter_mut().enumerate() {
                    *o = seq
                        .next_element()?
                        .ok_or_else(|| serde::de::Error::invalid_length(i, &self))?;
                }
                if seq.next_element::<u8>()?.is_some() {
                    return Err(serde::de::Error::invalid_length(17, &self));
                }
                Ok(HashKey(out))
            }
        }
        if d.is_human_readable() {
            d.deserialize_str(V)
        } else {
            d.deserialize_bytes(V)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let k = HashKey::from_bytes([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 255]);
        assert_eq!(k.to_string(), "000102030405060708090a0b0c0d0eff");
        assert_eq!(format!("{k:x}"), k.to_string());
        assert_eq!(
            format!("{k:?}"),
            "HashKey(000102030405060708090a0b0c0d0eff)"
        );
        assert_eq!(
            "000102030405060708090A0B0C0D0EFF"
                .parse::<HashKey>()
                .unwrap(),
            k
        );
        assert!("00".parse::<HashKey>().is_err());
        assert!("zz0102030405060708090a0b0c0d0eff"
            .parse::<HashKey>()
            .is_err());
    }

    #[test]
    fn serde_round_trip_as_bytes() {
        let k = HashKey::from_bytes([7; 16]);
        let bytes = rmp_serde::to_vec(&k).unwrap();
        assert_eq!(bytes[0], 0xc4, "serialized as msgpack bin");
        assert_eq!(bytes.len(), 18);
        let back: HashKey = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(back, k);
        assert!(rmp_serde::from_slice::<HashKey>(
            &rmp_serde::to_vec(&[1u8; 3].as_slice()).unwrap()
        )
        .is_err());
    }

    #[test]
    fn human_readable_formats_get_hex() {
        let k = HashKey::from_bytes([0xab; 16]);
        // Our own key serializer is human-readable: a HashKey argument is its hex.
        let c = KeyConfig::default();
        assert_eq!(
            crate::key::encode::encode_args(&k, &c).unwrap(),
            crate::key::encode::encode_args(&"ab".repeat(16), &c).unwrap()
        );
    }

    #[test]
    fn memory_keys_are_the_bytes_the_key_hashes() {
        let c = KeyConfig {
            ignore: vec![1.into()],
            ..KeyConfig::default()
        };
        let args = (1_u8, "verbose", 2.5_f64);
        let memory = HashKeymap
            .probe(
                &args,
                &c,
                <HashKeymap as Keymap<(u8, &str, f64)>>::to_memory,
            )
            .unwrap();
        let bytes = <HashKeymap as Keymap<(u8, &str, f64)>>::stored_args(&memory).unwrap();
        let key = HashKeymap.key(&args, &c).unwrap();
        assert_eq!(HashKey::of_encoding(bytes), key);
        assert_eq!(
            <HashKeymap as Keymap<(u8, &str, f64)>>::archive_key(&memory),
            key
        );
        assert_eq!(crate::key::describe_args(bytes).unwrap(), "(1, NULL, 2.5)");
        // Loaded back: by the bytes when they match the key, else by digest.
        type Km = HashKeymap;
        let back = <Km as Keymap<(u8, &str, f64)>>::from_archived(key, Some(bytes));
        assert_eq!(back, memory);
        let other = <Km as Keymap<(u8, &str, f64)>>::from_archived(key, Some(b"x"));
        assert_eq!(other, EncodedArgs::digest_only(key));
        assert_eq!(
            <Km as Keymap<(u8, &str, f64)>>::fallback(&memory),
            Some(EncodedArgs::digest_only(key))
        );
        assert_eq!(<Km as Keymap<(u8, &str, f64)>>::fallback(&other), None);
        // An out-of-range mask: no key, no probe.
        let bad = KeyConfig {
            ignore: vec![9.into()],
            ..KeyConfig::default()
        };
        assert!(HashKeymap.probe(&args, &bad, |_| ()).is_none());
    }

    #[test]
    fn digest_is_blake3_prefix() {
        let k = HashKey::of_encoding(b"abc");
        assert_eq!(&k.as_bytes()[..], &blake3::hash(b"abc").as_bytes()[..16]);
    }
}
