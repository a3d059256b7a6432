//! The reference encoder: a test oracle for the library's one key encoder.
//!
//! Arguments become a [`value::Value`] tree (our own serde serializer,
//! [`ser::to_value`]), are split into positions with masks and rounding
//! applied ([`positions::positions`]), and the tree is encoded
//! ([`positions::encode_positions`]); the tree's `Display` is the readable
//! form. It is slow and simple on purpose: `tests/encoding.rs` checks that
//! `klepto::key::encode::encode_args` gives the same bytes (or the same
//! error) and `describe_args` the same text on many shapes and random
//! arguments. Until 0.2 it was the library's reference path, in `src/key/`.

#![allow(dead_code)] // each test uses a part

pub mod float;
pub mod positions;
pub mod ser;
pub mod tree;
pub mod value;

/// The library's MessagePack writers of the key encoding (schema version,
/// extension types, headers), compiled into the test crate: the oracle
/// builds its own tree and positions but writes them with the same
/// low-level writers, whose bytes the golden keys of
/// `tests/key_stability.rs` pin.
#[path = "../../../src/key/format.rs"]
pub mod format;

/// The library's writers of the readable form, compiled here likewise: the
/// tree's `Display` and `describe_args` share them.
#[path = "../../../src/key/describe/text.rs"]
mod text;

/// A key error with `reason`, as the library words it.
pub fn key_error(reason: impl Into<String>) -> klepto::Error {
    klepto::Error::Key {
        reason: reason.into(),
    }
}
