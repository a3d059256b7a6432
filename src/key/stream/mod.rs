//! The fast path: a serde `Serializer` that writes the canonical encoding
//! (see [`encode`](super::encode)) straight into a byte buffer, applying
//! masks, rounding and typing on the way, without building a [`Value`] tree.
//!
//! It must produce exactly the bytes of `positions()` + `encode_positions()`
//! (the reference path); tests compare the two on many shapes. Anything out
//! of the ordinary — a mask that does not fit, an error from a `Serialize`
//! impl, a length that does not fit in 32 bits — makes it give up with
//! [`Fallback`], and the caller runs the reference path, which produces the
//! authoritative result (usually the error, with its message).
//!
//! [`Value`]: super::Value

mod top;
mod value;

#[cfg(test)]
mod tests;

pub(crate) use top::encode_top;
