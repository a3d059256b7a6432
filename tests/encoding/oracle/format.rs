//! The oracle's MessagePack writers of the canonical key encoding
//! (`klepto::key::encode` describes it), written apart from the library's.

use rmp::encode as mp;

use super::key_error;
use klepto::{Error, Result};

/// The key-schema version: the first element of every encoded key.
pub const SCHEMA_VERSION: u8 = 1;

/// Ext type of the [`Value::Ignored`] marker.
pub const EXT_IGNORED: i8 = 0;
/// Ext type of the marker that opens a [`Value::Tuple`] array.
pub const EXT_TUPLE: i8 = 1;
/// Ext type of the marker that opens a [`Value::Struct`] array.
pub const EXT_STRUCT: i8 = 2;
/// Ext type of the marker that opens a [`Value::Variant`] array.
pub const EXT_VARIANT: i8 = 3;
/// Ext type of the marker that opens a [`Value::Typed`] array.
pub const EXT_TYPED: i8 = 4;
/// Ext type of an integer below `i64::MIN` (16 bytes, big-endian).
pub const EXT_I128: i8 = 5;
/// Ext type of an integer above `u64::MAX` (16 bytes, big-endian).
pub const EXT_U128: i8 = 6;

pub fn write_err(e: impl std::fmt::Display) -> Error {
    key_error(format!("cannot encode the key: {e}"))
}

pub fn len32(len: usize, what: &str) -> Result<u32> {
    u32::try_from(len)
        .map_err(|_| key_error(format!("{what} of length {len} is too long for a key")))
}

#[inline]
pub fn write_marker(buf: &mut Vec<u8>, ty: i8) {
    // fixext1: d4, type, one zero data byte.
    buf.extend_from_slice(&[0xd4, ty as u8, 0]);
}

#[inline]
pub fn write_str(buf: &mut Vec<u8>, s: &str) -> Result<()> {
    mp::write_str_len(buf, len32(s.len(), "string")?).map_err(write_err)?;
    buf.extend_from_slice(s.as_bytes());
    Ok(())
}

#[inline]
pub fn write_int(buf: &mut Vec<u8>, i: i128) -> Result<()> {
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
pub fn write_u128(buf: &mut Vec<u8>, u: u128) -> Result<()> {
    if let Ok(small) = u64::try_from(u) {
        mp::write_uint(buf, small).map_err(write_err)?;
    } else {
        mp::write_ext_meta(buf, 16, EXT_U128).map_err(write_err)?;
        buf.extend_from_slice(&u.to_be_bytes());
    }
    Ok(())
}

#[inline]
pub fn write_float(buf: &mut Vec<u8>, x: f64) -> Result<()> {
    mp::write_f64(buf, canonical_float(x)).map_err(write_err)
}

// Headers, shared by the encoder and the reference path, so both write
// the same bytes from one definition.

/// `[SCHEMA_VERSION, ` (the positions follow), with room for the argument's
/// type name after them when `named`.
#[inline]
pub fn write_key_header(buf: &mut Vec<u8>, named: bool) -> Result<()> {
    mp::write_array_len(buf, if named { 3 } else { 2 }).map_err(write_err)?;
    mp::write_pfix(buf, SCHEMA_VERSION).map_err(write_err)
}

/// `[STRUCT, name|nil, ` (the map of fields follows).
pub fn write_struct_header(buf: &mut Vec<u8>, name: Option<&str>) -> Result<()> {
    mp::write_array_len(buf, 3).map_err(write_err)?;
    write_marker(buf, EXT_STRUCT);
    write_opt_name(buf, name)
}

/// `[VARIANT, enum|nil, "variant", ` (the payload follows).
pub fn write_variant_header(buf: &mut Vec<u8>, name: Option<&str>, variant: &str) -> Result<()> {
    mp::write_array_len(buf, 4).map_err(write_err)?;
    write_marker(buf, EXT_VARIANT);
    write_opt_name(buf, name)?;
    write_str(buf, variant)
}

/// `[TYPED, "ty", ` (the value follows).
#[inline]
pub fn write_typed_header(buf: &mut Vec<u8>, ty: &str) -> Result<()> {
    mp::write_array_len(buf, 3).map_err(write_err)?;
    write_marker(buf, EXT_TYPED);
    write_str(buf, ty)
}

pub fn write_opt_name(buf: &mut Vec<u8>, name: Option<&str>) -> Result<()> {
    match name {
        Some(n) => write_str(buf, n),
        None => mp::write_nil(buf).map_err(write_err),
    }
}

/// A byte string (bin8, bin16, bin32).
pub fn write_bin(buf: &mut Vec<u8>, b: &[u8]) -> Result<()> {
    mp::write_bin_len(buf, len32(b.len(), "byte string")?).map_err(write_err)?;
    buf.extend_from_slice(b);
    Ok(())
}

/// The one NaN of keys.
pub const CANONICAL_NAN_BITS: u64 = 0x7ff8_0000_0000_0000;

/// Every NaN as the one canonical NaN; everything else as is (`-0.0` too).
pub fn canonical_float(x: f64) -> f64 {
    if x.is_nan() {
        f64::from_bits(CANONICAL_NAN_BITS)
    } else {
        x
    }
}
