//! Lowercase hexadecimal: key digests in file names, JSON and messages
//! (and the keys the `klepto` command shows).
//!
//! ```
//! assert_eq!(klepto::hex::encode(&[0xab, 0x01]), "ab01");
//! assert_eq!(klepto::hex::decode("AB01"), Some(vec![0xab, 0x01]));
//! assert_eq!(klepto::hex::decode("zz"), None);
//! ```

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Writes the hex digits of `bytes` into `out`, which is twice as long.
pub(crate) fn encode_into(bytes: &[u8], out: &mut [u8]) {
    for (b, pair) in bytes.iter().zip(out.chunks_exact_mut(2)) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 15)];
    }
}

/// Lowercase hexadecimal of `bytes`.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = vec![0; bytes.len() * 2];
    encode_into(bytes, &mut out);
    String::from_utf8(out).expect("hex digits are ASCII")
}

fn digit(c: u8) -> Option<u8> {
    char::from(c)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// Reads the hex digits `text` (either case) into `out`, which is half as
/// long; `None` if `text` is not that many hex digits.
pub(crate) fn decode_into(text: &[u8], out: &mut [u8]) -> Option<()> {
    if text.len() != out.len() * 2 {
        return None;
    }
    for (pair, o) in text.chunks_exact(2).zip(out.iter_mut()) {
        *o = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(())
}

/// The bytes of a hexadecimal string (either case), or `None` if it is not one.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let mut out = vec![0; text.len() / 2];
    decode_into(text.as_bytes(), &mut out)?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(decode(&encode(&bytes)).unwrap(), bytes);
        assert_eq!(encode(&[0xab, 0x01]), "ab01");
        assert_eq!(decode("AB01"), Some(vec![0xab, 0x01]));
        assert_eq!(decode("abc"), None);
        assert_eq!(decode("zz"), None);
    }
}
