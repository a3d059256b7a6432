//! The encoder: a serde `Serializer` that writes the canonical encoding (see
//! [`encode`](super::encode)) straight into a byte buffer, splitting the
//! argument into positions and applying masks, rounding and typing on the
//! way. Its one error, [`EncodeError`], carries the reason that becomes
//! [`Error::Key`](crate::Error::Key). `tests/encoding` checks it against a
//! reference encoder kept there as a test oracle.

mod top;
mod value;

pub(crate) use top::encode_top;
