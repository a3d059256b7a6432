//! The bottom of the key modules: the schema version, the extension types
//! and the MessagePack writers of the canonical key encoding (described in
//! [`encode`](super::encode)), shared by the encoder and
//! [`describe_args`](super::describe_args). It imports nothing from `key/`.

use rmp::encode as mp;

use crate::{Error, Result};

/// The key-schema version: the first element of every encoded key.
pub const SCHEMA_VERSION: u8 = 1;

/// Ext type of the marker of an ignored (masked) position.
pub(crate) const EXT_IGNORED: i8 = 0;
/// Ext type of the marker that opens a tuple's array.
pub(crate) const EXT_TUPLE: i8 = 1;
/// Ext type of the marker that opens a struct's array.
pub(crate) const EXT_STRUCT: i8 = 2;
/// Ext type of the marker that opens an enum variant's array.
pub(crate) const EXT_VARIANT: i8 = 3;
/// Ext type of the marker that opens a typed value's array.
pub(crate) const EXT_TYPED: i8 = 4;
/// Ext type of an integer below `i64::MIN` (16 bytes, big-endian).
pub(crate) const EXT_I128: i8 = 5;
/// Ext type of an integer above `u64::MAX` (16 bytes, big-endian).
pub(crate) const EXT_U128: i8 = 6;

// (`Error::Key` is built directly, not through `Error::key`: the test
// oracle in `tests/encoding/oracle` compiles this file too.)

pub(crate) fn write_err(e: impl std::fmt::Display) -> Error {
    Error::Key {
        reason: format!("cannot encode the key: {e}"),
    }
}

pub(crate) fn len32(len: usize, what: &str) -> Result<u32> {
    u32::try_from(len).map_err(|_| Error::Key {
        reason: format!("{what} of length {len} is too long for a key"),
    })
}

#[inline]
pub(crate) fn write_marker(buf: &mut Vec<u8>, ty: i8) {
    // fixext1: d4, type, one zero data byte.
    buf.extend_from_slice(&[0xd4, ty as u8, 0]);
}

#[inline]
pub(crate) fn write_str(buf: &mut Vec<u8>, s: &str) -> Result<()> {
    mp::write_str_len(buf, len32(s.len(), "string")?).map_err(write_err)?;
    buf.extend_from_slice(s.as_bytes());
    Ok(())
}

#[inline]
pub(crate) fn write_int(buf: &mut Vec<u8>, i: i128) -> Result<()> {
    if let Ok(u) = u64::try_from(i) {
        mp::write_uint(buf, u).map_err(write_err)?;
    } else if let Ok(s) = i64::try_from(i) {
        // Negative here: write_sint picks the smallest signed form.
        mp::write_sint(buf, s).map_err(write_err)?;
    } else if i < 0 {
        mp::write_ext_meta(buf, 16, EXT_I128).map_err(write_err)?;
        buf.extend_from_slice(&i.to_be_bytes());
    } else {
        write_u128(buf, i.unsigned_abs())?;
    }
    Ok(())
}

/// Writes a non-negative integer.
pub(crate) fn write_u128(buf: &mut Vec<u8>, u: u128) -> Result<()> {
    if let Ok(small) = u64::try_from(u) {
        mp::write_uint(buf, small).map_err(write_err)?;
    } else {
        mp::write_ext_meta(buf, 16, EXT_U128).map_err(write_err)?;
        buf.extend_from_slice(&u.to_be_bytes());
    }
    Ok(())
}

// Headers of compound values.

/// `[SCHEMA_VERSION, ` (the positions follow), with room for the argument's
/// type name after them when `named`.
#[inline]
pub(crate) fn write_key_header(buf: &mut Vec<u8>, named: bool) -> Result<()> {
    mp::write_array_len(buf, if named { 3 } else { 2 }).map_err(write_err)?;
    mp::write_pfix(buf, SCHEMA_VERSION).map_err(write_err)
}

/// `[STRUCT, name|nil, ` (the map of fields follows).
pub(crate) fn write_struct_header(buf: &mut Vec<u8>, name: Option<&str>) -> Result<()> {
    mp::write_array_len(buf, 3).map_err(write_err)?;
    write_marker(buf, EXT_STRUCT);
    write_opt_name(buf, name)
}

/// `[VARIANT, enum|nil, "variant", ` (the payload follows).
pub(crate) fn write_variant_header(
    buf: &mut Vec<u8>,
    name: Option<&str>,
    variant: &str,
) -> Result<()> {
    mp::write_array_len(buf, 4).map_err(write_err)?;
    write_marker(buf, EXT_VARIANT);
    write_opt_name(buf, name)?;
    write_str(buf, variant)
}

/// `[TYPED, "ty", ` (the value follows).
#[inline]
pub(crate) fn write_typed_header(buf: &mut Vec<u8>, ty: &str) -> Result<()> {
    mp::write_array_len(buf, 3).map_err(write_err)?;
    write_marker(buf, EXT_TYPED);
    write_str(buf, ty)
}

pub(crate) fn write_opt_name(buf: &mut Vec<u8>, name: Option<&str>) -> Result<()> {
    match name {
        Some(n) => write_str(buf, n),
        None => mp::write_nil(buf).map_err(write_err),
    }
}

/// A byte string (bin8, bin16, bin32).
pub(crate) fn write_bin(buf: &mut Vec<u8>, b: &[u8]) -> Result<()> {
    mp::write_bin_len(buf, len32(b.len(), "byte string")?).map_err(write_err)?;
    buf.extend_from_slice(b);
    Ok(())
}

/// A MessagePack unsigned integer (smallest form) as the little-endian bytes
/// of a word, marker first, and its length.
#[inline(always)]
pub(crate) fn uint_word(u: u64) -> (u128, usize) {
    if u < 0x80 {
        (u128::from(u), 1)
    } else if u <= 0xff {
        (0xcc | u128::from(u) << 8, 2)
    } else if u <= 0xffff {
        (0xcd | u128::from((u as u16).swap_bytes()) << 8, 3)
    } else if u <= 0xffff_ffff {
        (0xce | u128::from((u as u32).swap_bytes()) << 8, 5)
    } else {
        (0xcf | u128::from(u.swap_bytes()) << 8, 9)
    }
}

/// Appends the first `n` (at most 16) bytes of `word`, little-endian, with
/// one wide store: a hit hashes and compares the key right after writing
/// it, and a wide load over many narrow stores waits for them to retire.
#[inline(always)]
pub(crate) fn put_word(buf: &mut Vec<u8>, word: u128, n: usize) {
    let start = buf.len();
    buf.extend_from_slice(&word.to_le_bytes());
    buf.truncate(start + n);
}

/// `[1, [` for an unnamed key of one position.
pub(crate) const SINGLE_HEADER: u128 = 0x92 | (SCHEMA_VERSION as u128) << 8 | 0x91 << 16;
