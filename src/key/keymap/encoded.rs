//! [`EncodedArgs`]: how a [`HashKeymap`](super::HashKeymap) memo keys its
//! memory, so that a hit needs no cryptographic hash.

use std::fmt;
use std::hash::{Hash, Hasher};

use super::HashKey;

/// Encodings up to this many bytes are kept inline (a `u64` argument takes
/// 12, a `(u64, f64)` 21), longer ones on the heap.
const INLINE: usize = 22;

/// The canonical encoding of a call's arguments, as a memo with the
/// [`HashKeymap`](super::HashKeymap) keeps it in memory: the bytes its
/// [`HashKey`] is the digest of, compared byte for byte on a hit, so that
/// hits need no digest; the digest is computed when an archive is touched.
///
/// An entry loaded from an archive that did not keep the arguments is known
/// by its digest alone ([`digest_only`](Self::digest_only)).
///
/// ```
/// use klepto::keymap::{EncodedArgs, HashKey};
/// use klepto::key::{encode::encode_args, KeyConfig};
///
/// let bytes = encode_args(&(1_u8, "x"), &KeyConfig::default())?;
/// let key = EncodedArgs::new(&bytes);
/// assert_eq!(key.bytes(), Some(&bytes[..]));
/// assert_eq!(key.digest(), HashKey::of_encoding(&bytes));
/// # Ok::<(), klepto::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct EncodedArgs(Repr);

#[derive(Clone, PartialEq, Eq)]
enum Repr {
    /// Zero-padded, so that equal encodings are equal arrays.
    Inline {
        len: u8,
        bytes: [u8; INLINE],
    },
    Heap(Box<[u8]>),
    Digest(HashKey),
}

impl EncodedArgs {
    /// The key of these encoded arguments (copied).
    #[inline]
    pub fn new(encoding: &[u8]) -> Self {
        if encoding.len() <= INLINE {
            let mut bytes = [0u8; INLINE];
            bytes[..encoding.len()].copy_from_slice(encoding);
            // `len <= INLINE < 256`.
            EncodedArgs(Repr::Inline {
                len: encoding.len() as u8,
                bytes,
            })
        } else {
            EncodedArgs(Repr::Heap(encoding.into()))
        }
    }

    /// An entry known only by its digest (its arguments were not stored).
    pub fn digest_only(key: HashKey) -> Self {
        EncodedArgs(Repr::Digest(key))
    }

    /// The encoded arguments (`None` for a digest-only entry).
    #[inline]
    pub fn bytes(&self) -> Option<&[u8]> {
        match &self.0 {
            Repr::Inline { len, bytes } => Some(&bytes[..usize::from(*len)]),
            Repr::Heap(b) => Some(b),
            Repr::Digest(_) => None,
        }
    }

    /// Whether these are exactly the encoded arguments `encoding`.
    #[inline(always)]
    pub fn is(&self, encoding: &[u8]) -> bool {
        match &self.0 {
            Repr::Inline { len, bytes } => {
                usize::from(*len) == encoding.len() && short_eq(bytes, encoding)
            }
            Repr::Heap(b) => **b == *encoding,
            Repr::Digest(_) => false,
        }
    }

    /// The [`HashKey`]: blake3 of the encoding (computed now), or the
    /// digest a digest-only entry holds.
    pub fn digest(&self) -> HashKey {
        match (&self.0, self.bytes()) {
            (Repr::Digest(key), _) => *key,
            (_, Some(bytes)) => HashKey::of_encoding(bytes),
            (_, None) => unreachable!("only digest-only keys lack bytes"),
        }
    }
}

/// Whether the first `b.len()` bytes of `inline` are `b` (`b.len() <=
/// INLINE`), with a few word compares instead of a `memcmp` call: a hit
/// compares one key, so the call's overhead would dominate.
#[inline(always)]
fn short_eq(inline: &[u8; INLINE], b: &[u8]) -> bool {
    let n = b.len();
    let word = |s: &[u8], at: usize| u64::from_ne_bytes(s[at..at + 8].try_into().unwrap_or([0; 8]));
    let half = |s: &[u8], at: usize| u32::from_ne_bytes(s[at..at + 4].try_into().unwrap_or([0; 4]));
    match n {
        // Two overlapping words cover 8..=16 bytes, three 17..=INLINE.
        17..=INLINE => {
            word(inline, 0) == word(b, 0)
                && word(inline, 8) == word(b, 8)
                && word(inline, n - 8) == word(b, n - 8)
        }
        8..=16 => word(inline, 0) == word(b, 0) && word(inline, n - 8) == word(b, n - 8),
        4..=7 => half(inline, 0) == half(b, 0) && half(inline, n - 4) == half(b, n - 4),
        _ => inline[..n] == *b,
    }
}

impl Hash for EncodedArgs {
    /// Encodings hash as the byte slice (`[u8]`'s `Hash`), so that a lookup
    /// can hash the bytes it just encoded without building a key.
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        match (&self.0, self.bytes()) {
            (_, Some(bytes)) => bytes.hash(state),
            (Repr::Digest(key), None) => {
                state.write_u8(0xd1);
                key.hash(state);
            }
            (_, None) => {}
        }
    }
}

impl fmt::Debug for EncodedArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.bytes() {
            Some(bytes) => match crate::key::describe_args(bytes) {
                Ok(call) => write!(f, "EncodedArgs{call}"),
                Err(_) => write!(f, "EncodedArgs({bytes:02x?})"),
            },
            None => write!(f, "EncodedArgs(digest {})", self.digest()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn small_and_big() {
        assert_eq!(std::mem::size_of::<EncodedArgs>(), 24);
        for n in [0, 1, 12, INLINE, INLINE + 1, 300] {
            let bytes: Vec<u8> = (0..n).map(|i| i as u8).collect();
            let k = EncodedArgs::new(&bytes);
            assert_eq!(k.bytes(), Some(&bytes[..]));
            assert!(k.is(&bytes));
            assert_eq!(k, EncodedArgs::new(&bytes));
            // As the memo's hasher sees them: a stored key and the bytes a
            // lookup just encoded hash alike.
            let h = crate::memo::hasher::KeyHashBuilder::default();
            assert_eq!(h.hash_one(&k), h.hash_one(&bytes[..]), "hashes as [u8]");
            assert_eq!(k.digest(), HashKey::of_encoding(&bytes));
        }
        assert_ne!(EncodedArgs::new(b"ab"), EncodedArgs::new(b"ab\0"));
    }

    #[test]
    fn digest_only() {
        let d = HashKey::of_encoding(b"x");
        let k = EncodedArgs::digest_only(d);
        assert_eq!(k.bytes(), None);
        assert_eq!(k.digest(), d);
        assert!(!k.is(b"x"));
        assert_ne!(k, EncodedArgs::new(b"x"));
        assert!(format!("{k:?}").contains(&d.to_string()));
    }
}
