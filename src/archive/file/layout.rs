//! The MessagePack layout of a [`FileArchive`](super::FileArchive) file: a
//! header, a snapshot frame, then record frames appended one per write.
//!
//! ```text
//! offset  size   field
//! 0       8      magic and layout version: b"KLFILE\0\x01"
//! 8       16+n   the snapshot frame: an envelope whose value is the entry list
//! ..      16+m   record frames: envelopes whose values are records
//!
//! frame:  u64 LE length n, u64 LE !n (guards the length), then n bytes
//! ```
//!
//! A frame whose bytes run past the end of the file, or a partial frame
//! header, is a *torn* append (a writer died in its middle): it is not data,
//! and the next writer cuts it off. Everything else that does not check out,
//! a damaged snapshot, a bad length guard or a failed checksum, is
//! [`Error::Corrupt`](crate::Error::Corrupt): a later frame that fails its
//! checksum was acknowledged once, so it is never dropped silently.

use crate::archive::envelope::Envelope;
use crate::{Error, Result};

/// The first bytes of a file in this layout.
pub(super) const MAGIC: [u8; 8] = *b"KLFILE\0\x01";
/// Length and length guard.
const FRAME_HEADER: usize = 16;

/// Appends the frame holding `value` (MessagePack) in an envelope to `out`.
pub(super) fn push_frame(out: &mut Vec<u8>, value: &[u8]) {
    let envelope = Envelope {
        key: None,
        args: None,
        value,
    };
    let len = envelope.encoded_len() as u64;
    out.reserve(FRAME_HEADER + envelope.encoded_len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(!len).to_le_bytes());
    envelope.encode_into(out);
}

/// The value of an envelope a file archive wrote (a snapshot, a record, or
/// a whole 0.1 file): one without an entry's key and arguments sections.
pub(super) fn file_value<'a>(bytes: &'a [u8], location: &str) -> Result<&'a [u8]> {
    let envelope = Envelope::decode(bytes, location)?;
    if envelope.key.is_some() || envelope.args.is_some() {
        return Err(Error::Corrupt {
            location: location.to_owned(),
            reason: "an entry's envelope (with key or arguments) inside a file archive".into(),
        });
    }
    Ok(envelope.value)
}

/// One whole frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Frame<'a> {
    /// The envelope's value.
    pub(super) value: &'a [u8],
    /// The file offset just past the frame.
    pub(super) end: u64,
}

/// The frames found in a stretch of the file.
#[derive(Debug)]
pub(super) struct Scan<'a> {
    /// The whole frames, in order.
    pub(super) frames: Vec<Frame<'a>>,
    /// The file offset just past the last whole frame.
    pub(super) end: u64,
    /// How many bytes after `end` belong to a torn append.
    pub(super) torn: u64,
}

/// Splits `bytes`, which start at file offset `base`, into frames.
/// `location` names the file in errors.
pub(super) fn scan<'a>(bytes: &'a [u8], base: u64, location: &str) -> Result<Scan<'a>> {
    let corrupt = |at: usize, reason: &str| Error::Corrupt {
        location: location.to_owned(),
        reason: format!("frame at byte {}: {reason}", base + at as u64),
    };
    let mut frames = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let rest = &bytes[pos..];
        let torn = || Scan {
            frames: Vec::new(),
            end: base + pos as u64,
            torn: rest.len() as u64,
        };
        let Some((header, body)) = rest.split_first_chunk::<FRAME_HEADER>() else {
            return Ok(Scan { frames, ..torn() });
        };
        let len = u64::from_le_bytes(header[..8].try_into().expect("8 bytes"));
        let guard = u64::from_le_bytes(header[8..].try_into().expect("8 bytes"));
        if guard != !len {
            // A crash that extended the file without its data leaves zeros.
            if rest.iter().all(|&b| b == 0) {
                return Ok(Scan { frames, ..torn() });
            }
            return Err(corrupt(pos, "damaged frame length"));
        }
        let Some(frame) = usize::try_from(len).ok().and_then(|n| body.get(..n)) else {
            return Ok(Scan { frames, ..torn() });
        };
        let value = file_value(frame, location).map_err(|e| match e {
            Error::Corrupt { reason, .. } => corrupt(pos, &reason),
            other => other,
        })?;
        pos += FRAME_HEADER + frame.len();
        frames.push(Frame {
            value,
            end: base + pos as u64,
        });
    }
    Ok(Scan {
        frames,
        end: base + pos as u64,
        torn: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(values: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for v in values {
            push_frame(&mut out, v);
        }
        out
    }

    #[test]
    fn whole_frames_scan_back() {
        let bytes = frames(&[b"one", b"", b"three"]);
        let scan = scan(&bytes, 8, "f").unwrap();
        let values: Vec<&[u8]> = scan.frames.iter().map(|f| f.value).collect();
        assert_eq!(values, [&b"one"[..], b"", b"three"]);
        assert_eq!(scan.frames[0].end, 8 + frames(&[b"one"]).len() as u64);
        assert_eq!((scan.end, scan.torn), (8 + bytes.len() as u64, 0));
    }

    #[test]
    fn every_cut_of_the_last_frame_is_a_torn_tail() {
        let whole = frames(&[b"one", b"two"]);
        let first = frames(&[b"one"]).len();
        for cut in first + 1..whole.len() {
            let scan = scan(&whole[..cut], 0, "f").unwrap();
            assert_eq!(scan.frames.len(), 1, "cut {cut}");
            assert_eq!(scan.frames[0].value, b"one");
            assert_eq!((scan.end, scan.torn), (first as u64, (cut - first) as u64));
        }
        let mut zeros = frames(&[b"one"]);
        zeros.resize(first + 40, 0);
        assert_eq!(scan(&zeros, 0, "f").unwrap().torn, 40);
    }

    #[test]
    fn damage_before_the_end_is_corrupt() {
        let whole = frames(&[b"one", b"two", b"three"]);
        for i in 0..whole.len() {
            for bit in [0, 3, 7] {
                let mut bad = whole.clone();
                bad[i] ^= 1 << bit;
                match scan(&bad, 0, "the file") {
                    Err(Error::Corrupt { location, .. }) => assert_eq!(location, "the file"),
                    // A length made longer than the file reads as torn, but
                    // its guard no longer matches, so that cannot happen.
                    other => panic!("byte {i} bit {bit}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn a_huge_length_allocates_nothing() {
        let mut bytes = Vec::new();
        let len = u64::MAX / 2;
        bytes.extend_from_slice(&len.to_le_bytes());
        bytes.extend_from_slice(&(!len).to_le_bytes());
        bytes.extend_from_slice(b"short");
        let scan = scan(&bytes, 0, "f").unwrap();
        assert_eq!((scan.end, scan.torn), (0, bytes.len() as u64));
    }
}
