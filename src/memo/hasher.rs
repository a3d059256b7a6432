//! The hasher of a memo's memory: foldhash, except that a short byte key
//! (an encoded argument list of up to 16 bytes, the common case) is read in
//! the pieces it was just written in.
//!
//! A hit encodes its arguments into a buffer with two 8-byte stores and
//! hashes the bytes at once. foldhash reads a 9-16 byte slice as its first
//! and its last 8 bytes; the last 8 straddle the two stores, which the CPU
//! cannot forward to a load, so the load waits for both stores to reach the
//! cache: about a fifth of a default-keymap `u64` hit in the profile. Here
//! the first 8 bytes are one load and the rest is read from offset 8 on,
//! each load inside one store. The mixing is foldhash's (`write_u128`).

use std::hash::{BuildHasher, Hasher};

/// Builds [`KeyHasher`]s: foldhash's fast, randomly seeded state.
#[derive(Clone, Default, Debug)]
pub(crate) struct KeyHashBuilder(foldhash::fast::RandomState);

impl BuildHasher for KeyHashBuilder {
    type Hasher = KeyHasher;

    #[inline]
    fn build_hasher(&self) -> KeyHasher {
        KeyHasher(self.0.build_hasher())
    }
}

/// foldhash with a store-friendly read of short byte slices.
pub(crate) struct KeyHasher(foldhash::fast::FoldHasher<'static>);

impl Hasher for KeyHasher {
    #[inline(always)]
    fn write(&mut self, bytes: &[u8]) {
        match short_word(bytes) {
            Some(word) => self.0.write_u128(word),
            None => self.0.write(bytes),
        }
    }

    #[inline(always)]
    fn write_u8(&mut self, i: u8) {
        self.0.write_u8(i);
    }

    #[inline(always)]
    fn write_u32(&mut self, i: u32) {
        self.0.write_u32(i);
    }

    #[inline(always)]
    fn write_u64(&mut self, i: u64) {
        self.0.write_u64(i);
    }

    #[inline(always)]
    fn write_u128(&mut self, i: u128) {
        self.0.write_u128(i);
    }

    #[inline(always)]
    fn write_usize(&mut self, i: usize) {
        self.0.write_usize(i);
    }

    #[inline(always)]
    fn finish(&self) -> u64 {
        self.0.finish()
    }
}

/// Up to 16 bytes as one word: bytes 0..8 as the low half (when there are
/// 8), the rest in the high half, read from where it starts. Slices of
/// different lengths may give the same word; the caller hashes the length
/// too (`[u8]`'s `Hash` writes it first). `None` for longer slices.
#[inline(always)]
fn short_word(bytes: &[u8]) -> Option<u128> {
    match bytes.split_first_chunk::<8>() {
        Some((first, rest)) if rest.len() <= 8 => {
            Some(u128::from(u64::from_le_bytes(*first)) | u128::from(up_to_8(rest)) << 64)
        }
        Some(_) => None,
        None => Some(u128::from(up_to_8(bytes))),
    }
}

/// At most 8 bytes as a word, read from the start of the slice: two 4-byte
/// loads when there are 4 or more (overlapping when fewer than 8), else
/// the first, middle and last byte (foldhash's own scheme for short
/// slices, kept within the slice's first 8 bytes).
#[inline(always)]
fn up_to_8(bytes: &[u8]) -> u64 {
    let n = bytes.len();
    debug_assert!(n <= 8);
    if n >= 4 {
        let head = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        let t = &bytes[n - 4..];
        let tail = u32::from_le_bytes([t[0], t[1], t[2], t[3]]);
        u64::from(head) | u64::from(tail) << 32
    } else if n > 0 {
        u64::from(bytes[0]) | u64::from(bytes[n / 2]) << 8 | u64::from(bytes[n - 1]) << 16
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn short_words_keep_every_byte_of_slices_up_to_16() {
        // Distinct slices of one length give distinct words: each byte is
        // read (the length itself is hashed apart).
        for n in 0..=16 {
            let mut seen = HashSet::new();
            for i in 0..n {
                for v in [1_u8, 0x80] {
                    let mut b = vec![0_u8; n];
                    b[i] = v;
                    assert!(seen.insert(short_word(&b).unwrap()), "n {n} byte {i}");
                }
            }
        }
        assert_eq!(short_word(&[7; 17]), None);
    }

    #[test]
    fn hashes_differ_with_length_and_content_and_agree_across_hashers() {
        let build = KeyHashBuilder::default();
        let h = |b: &[u8]| build.hash_one(b);
        assert_eq!(h(b"abcdefghijkl"), h(b"abcdefghijkl"));
        assert_ne!(h(&[0; 8]), h(&[0; 9]), "lengths hash apart");
        assert_ne!(h(b"abcdefghijkl"), h(b"abcdefghijkm"));
        let long = [3_u8; 40];
        assert_eq!(h(&long), h(&long));
        // A clone of the builder hashes alike (tables rehash with it).
        let again = build.clone();
        assert_eq!(again.hash_one(&long[..]), h(&long));
    }
}
