//! The canonical encoding of a key: MessagePack bytes, one encoding per value.
//!
//! # Format (key schema version 1) — a stability contract
//!
//! These bytes are what [`SerialKeymap`](crate::keymap::SerialKeymap) returns
//! and what [`HashKeymap`](crate::keymap::HashKeymap) hashes. They must not
//! change for the same arguments within a schema version; a change of format
//! is a new [`SCHEMA_VERSION`].
//!
//! A key is the MessagePack array
//!
//! ```text
//! [SCHEMA_VERSION, [p0, p1, ...]]            untyped, or typed tuple/single argument
//! [SCHEMA_VERSION, [p0, p1, ...], "Name"]    typed, argument is a struct or tuple struct "Name"
//! ```
//!
//! where `SCHEMA_VERSION` is the positive fixint `1` and `p0, p1, ...` are the
//! argument positions (a tuple's elements, a struct's field values, or the one
//! argument), each encoded as follows. Every length and integer uses the
//! smallest MessagePack encoding.
//!
//! | value                         | encoding |
//! |-------------------------------|----------|
//! | `Null`                        | `nil` (`c0`) |
//! | `Ignored` (masked position)   | fixext1, type 0, data `00`: `d4 00 00` |
//! | `Bool`                        | `false` `c2` / `true` `c3` |
//! | integer in `i64::MIN..0`      | smallest signed int (negative fixint, int8..int64) |
//! | integer in `0..=u64::MAX`     | smallest unsigned int (positive fixint, uint8..uint64) |
//! | integer below `i64::MIN`      | fixext16, type 5, the `i128` big-endian two's complement |
//! | integer above `u64::MAX`      | fixext16, type 6, the `u128` big-endian |
//! | `Float`                       | float64 (`cb` + 8 bytes big-endian), always; `-0.0` stays `-0.0`, every NaN is `7ff8000000000000` |
//! | `Str`                         | str (fixstr, str8, str16, str32) of the UTF-8 bytes |
//! | `Bytes`                       | bin (bin8, bin16, bin32) |
//! | `Seq`                         | array of the elements |
//! | `Tuple`                       | array `[T, e0, e1, ...]` where `T` is the marker fixext1 type 1 (`d4 01 00`) |
//! | `Map`                         | map; entries in ascending byte order of the encoded key (then of the encoded value) |
//! | `Struct`                      | array `[S, name or nil, {field: value, ...}]`, `S` = `d4 02 00`; the map lists fields in declaration order; name only when typed |
//! | `Variant`                     | array `[V, enum name or nil, "variant", payload]`, `V` = `d4 03 00`; payload `nil` for a unit variant, a `Tuple` for a tuple variant, a nameless `Struct` for a struct variant |
//! | `Typed`                       | array `[Y, "type", value]`, `Y` = `d4 04 00` (typed keys only) |
//!
//! The markers are fixext1 values of types 0 to 4 that serde data never
//! produces on its own, so an array that starts with one is unambiguous.
//! Type names used by typed keys: `bool`, `i8` ... `i128`, `u8` ... `u128`,
//! `f32`, `f64`, `char`, `str`, `bytes`, `()` and `None`; named structs,
//! tuple structs, newtype structs and unit structs by their serde name.
//!
//! Example: `(1_u8, 2.5_f64, "x")`, untyped, is
//! `92 01 93 01 cb 40 04 00 00 00 00 00 00 a1 78`.

use std::cell::RefCell;

use rmp::encode as mp;
use serde::Serialize;

use super::float::canonical_float;
use super::positions::{positions, Positions};
use super::stream;
use super::value::Value;
use super::KeyConfig;
use crate::{Error, Result};

/// The key-schema version: the first element of every encoded key.
pub const SCHEMA_VERSION: u8 = 1;

/// Ext type of the [`Value::Ignored`] marker.
pub(crate) const EXT_IGNORED: i8 = 0;
/// Ext type of the marker that opens a [`Value::Tuple`] array.
pub(crate) const EXT_TUPLE: i8 = 1;
/// Ext type of the marker that opens a [`Value::Struct`] array.
pub(crate) const EXT_STRUCT: i8 = 2;
/// Ext type of the marker that opens a [`Value::Variant`] array.
pub(crate) const EXT_VARIANT: i8 = 3;
/// Ext type of the marker that opens a [`Value::Typed`] array.
pub(crate) const EXT_TYPED: i8 = 4;
/// Ext type of an integer below `i64::MIN` (16 bytes, big-endian).
pub(crate) const EXT_I128: i8 = 5;
/// Ext type of an integer above `u64::MAX` (16 bytes, big-endian).
pub(crate) const EXT_U128: i8 = 6;

fn write_err(e: impl std::fmt::Display) -> Error {
    Error::key(format!("cannot encode the key: {e}"))
}

fn len32(len: usize, what: &str) -> Result<u32> {
    u32::try_from(len)
        .map_err(|_| Error::key(format!("{what} of length {len} is too long for a key")))
}

/// Writes the whole key of `positions` (schema version, positions, and the
/// typed argument name if any) to `buf`.
pub(crate) fn encode_positions_into(p: &Positions, buf: &mut Vec<u8>) -> Result<()> {
    let name = p.type_name();
    write_key_header(buf, name.is_some())?;
    let values = p.values();
    mp::write_array_len(buf, len32(values.len(), "argument list")?).map_err(write_err)?;
    for v in values {
        encode_value_into(v, buf)?;
    }
    if let Some(n) = name {
        write_str(buf, n)?;
    }
    Ok(())
}

/// The canonical bytes of `positions`: see the [module docs](self).
pub(crate) fn encode_positions(p: &Positions) -> Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(32);
    encode_positions_into(p, &mut buf)?;
    Ok(buf)
}

/// The canonical bytes of the key of `args` under `config` (what the
/// [`SerialKeymap`](crate::keymap::SerialKeymap) returns).
///
/// ```
/// use klepto::key::{encode::encode_args, KeyConfig};
/// let bytes = encode_args(&(1_u8, "x"), &KeyConfig::default()).unwrap();
/// assert_eq!(bytes, [0x92, 0x01, 0x92, 0x01, 0xa1, b'x']);
/// ```
pub fn encode_args<A: Serialize + ?Sized>(args: &A, config: &KeyConfig) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    encode_args_into(args, config, &mut buf)?;
    Ok(buf)
}

thread_local! {
    /// A reusable encoding buffer, so hashing a key allocates no byte vector.
    static BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Encodes the key of `args` under `config` and passes the bytes to `f`
/// (e.g. a hash), reusing a per-thread buffer.
///
/// ```
/// use klepto::key::{encode::with_encoded_args, KeyConfig};
/// let len = with_encoded_args(&7_u64, &KeyConfig::default(), |bytes| bytes.len())?;
/// assert_eq!(len, 4); // [1, [7]]
/// # Ok::<(), klepto::Error>(())
/// ```
pub fn with_encoded_args<A, T>(
    args: &A,
    config: &KeyConfig,
    f: impl FnOnce(&[u8]) -> T,
) -> Result<T>
where
    A: Serialize + ?Sized,
{
    probe_encoded(args, config, f).ok_or_else(|| encode_error(args, config))
}

/// Why the key of `args` cannot be encoded.
#[cold]
#[inline(never)]
fn encode_error<A: Serialize + ?Sized>(args: &A, config: &KeyConfig) -> Error {
    match encode_args_into(args, config, &mut Vec::new()) {
        Err(e) => e,
        Ok(()) => Error::key("the key could not be encoded"),
    }
}

/// [`with_encoded_args`] for a memo's hit path: the per-thread buffer, and
/// `None` instead of the error (whose reason the caller asks for again
/// when it wants it), so that the result stays small.
#[inline(always)]
pub(crate) fn probe_encoded<A, T>(
    args: &A,
    config: &KeyConfig,
    f: impl FnOnce(&[u8]) -> T,
) -> Option<T>
where
    A: Serialize + ?Sized,
{
    BUF.with(
        #[inline(always)]
        |cell| {
            let Ok(mut buf) = cell.try_borrow_mut() else {
                // Re-entered (a Serialize impl computing a key).
                return with_fresh_buffer(args, config, f);
            };
            buf.clear();
            if stream::encode_top(args, config, &mut buf).is_err() {
                encode_reference(args, config, &mut buf)?;
            }
            let t = f(&buf);
            if buf.capacity() > 64 * 1024 {
                // Do not keep a huge buffer alive after one huge key.
                *buf = Vec::new();
            }
            Some(t)
        },
    )
}

/// [`probe_encoded`] with a buffer of its own.
#[cold]
#[inline(never)]
fn with_fresh_buffer<A, T>(args: &A, config: &KeyConfig, f: impl FnOnce(&[u8]) -> T) -> Option<T>
where
    A: Serialize + ?Sized,
{
    let mut buf = Vec::new();
    encode_args_into(args, config, &mut buf).ok()?;
    Some(f(&buf))
}

/// Clears `buf` and writes the key of `args` into it: the streaming fast
/// path, or, when it gives up, the reference path (positions, then encode).
fn encode_args_into<A: Serialize + ?Sized>(
    args: &A,
    config: &KeyConfig,
    buf: &mut Vec<u8>,
) -> Result<()> {
    buf.clear();
    if stream::encode_top(args, config, buf).is_ok() {
        return Ok(());
    }
    buf.clear();
    encode_reference_into(args, config, buf)
}

/// Clears `buf` and writes the key of `args` by the reference path (rare:
/// the fast path gave up, usually on an error the reference path words).
#[cold]
#[inline(never)]
fn encode_reference<A: Serialize + ?Sized>(
    args: &A,
    config: &KeyConfig,
    buf: &mut Vec<u8>,
) -> Option<()> {
    buf.clear();
    encode_reference_into(args, config, buf).ok()
}

/// The reference path: [`positions`], then the encoding of the positions.
pub(crate) fn encode_reference_into<A: Serialize + ?Sized>(
    args: &A,
    config: &KeyConfig,
    buf: &mut Vec<u8>,
) -> Result<()> {
    let p = positions(args, config)?;
    encode_positions_into(&p, buf)
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

#[inline]
pub(crate) fn write_float(buf: &mut Vec<u8>, x: f64) -> Result<()> {
    mp::write_f64(buf, canonical_float(x)).map_err(write_err)
}

/// Appends the canonical encoding of one value to `buf`.
pub(crate) fn encode_value_into(v: &Value, buf: &mut Vec<u8>) -> Result<()> {
    match v {
        Value::Null => mp::write_nil(buf).map_err(write_err)?,
        Value::Ignored => write_marker(buf, EXT_IGNORED),
        Value::Bool(b) => mp::write_bool(buf, *b).map_err(write_err)?,
        Value::Int(i) => write_int(buf, *i)?,
        Value::U128(u) => write_u128(buf, *u)?,
        Value::Float(x) => write_float(buf, *x)?,
        Value::Str(s) => write_str(buf, s)?,
        Value::Bytes(b) => write_bin(buf, b)?,
        Value::Seq(items) => {
            mp::write_array_len(buf, len32(items.len(), "sequence")?).map_err(write_err)?;
            for item in items {
                encode_value_into(item, buf)?;
            }
        }
        Value::Tuple(items) => {
            let n = len32(items.len(), "tuple")?
                .checked_add(1)
                .ok_or_else(|| Error::key("tuple too long for a key"))?;
            mp::write_array_len(buf, n).map_err(write_err)?;
            write_marker(buf, EXT_TUPLE);
            for item in items {
                encode_value_into(item, buf)?;
            }
        }
        Value::Map(entries) => {
            mp::write_map_len(buf, len32(entries.len(), "map")?).map_err(write_err)?;
            for (k, v) in entries {
                encode_value_into(k, buf)?;
                encode_value_into(v, buf)?;
            }
        }
        Value::Struct { name, fields } => {
            write_struct_header(buf, *name)?;
            mp::write_map_len(buf, len32(fields.len(), "struct")?).map_err(write_err)?;
            for (k, v) in fields {
                write_str(buf, k)?;
                encode_value_into(v, buf)?;
            }
        }
        Value::Variant {
            name,
            variant,
            payload,
        } => {
            write_variant_header(buf, *name, variant)?;
            encode_value_into(payload, buf)?;
        }
        Value::Typed { ty, value } => {
            write_typed_header(buf, ty)?;
            encode_value_into(value, buf)?;
        }
    }
    Ok(())
}

// The headers below are shared with the streaming fast path, so both write
// the same bytes from one definition.

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

fn write_opt_name(buf: &mut Vec<u8>, name: Option<&str>) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(v: &Value) -> Vec<u8> {
        let mut b = Vec::new();
        encode_value_into(v, &mut b).unwrap();
        b
    }

    #[test]
    fn smallest_integers() {
        assert_eq!(enc(&Value::Int(0)), [0x00]);
        assert_eq!(enc(&Value::Int(127)), [0x7f]);
        assert_eq!(enc(&Value::Int(128)), [0xcc, 0x80]);
        assert_eq!(enc(&Value::Int(256)), [0xcd, 0x01, 0x00]);
        assert_eq!(enc(&Value::Int(-1)), [0xff]);
        assert_eq!(enc(&Value::Int(-32)), [0xe0]);
        assert_eq!(enc(&Value::Int(-33)), [0xd0, 0xdf]);
        assert_eq!(enc(&Value::Int(u64::MAX.into()))[0], 0xcf);
        assert_eq!(enc(&Value::Int(i64::MIN.into()))[0], 0xd3);
        let big = enc(&Value::Int(i128::from(u64::MAX) + 1));
        assert_eq!(&big[..2], [0xd8, EXT_U128 as u8]);
        assert_eq!(big.len(), 18);
        let neg = enc(&Value::Int(i128::from(i64::MIN) - 1));
        assert_eq!(&neg[..2], [0xd8, EXT_I128 as u8]);
        assert_eq!(&neg[2..], (i128::from(i64::MIN) - 1).to_be_bytes());
        assert_eq!(
            enc(&Value::U128(u128::MAX)),
            [[0xd8, 6].as_slice(), &[0xff; 16]].concat()
        );
        // A non-canonical U128 that fits still encodes as the small int.
        assert_eq!(enc(&Value::U128(5)), [0x05]);
    }

    #[test]
    fn floats_always_f64() {
        assert_eq!(
            enc(&Value::Float(2.5)),
            [0xcb, 0x40, 0x04, 0, 0, 0, 0, 0, 0]
        );
        assert_ne!(enc(&Value::Float(-0.0)), enc(&Value::Float(0.0)));
        assert_eq!(
            enc(&Value::Float(f64::from_bits(0x7ff0_0000_0000_0001))),
            [0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn shapes() {
        assert_eq!(enc(&Value::Null), [0xc0]);
        assert_eq!(enc(&Value::Ignored), [0xd4, 0x00, 0x00]);
        assert_eq!(enc(&Value::Str("x".into())), [0xa1, b'x']);
        assert_eq!(enc(&Value::Bytes(vec![1, 2])), [0xc4, 2, 1, 2]);
        assert_eq!(
            enc(&Value::Seq(vec![Value::Int(1), Value::Int(2)])),
            [0x92, 1, 2]
        );
        assert_eq!(
            enc(&Value::Tuple(vec![Value::Int(1), Value::Int(2)])),
            [0x93, 0xd4, 1, 0, 1, 2]
        );
        assert_eq!(
            enc(&Value::Struct {
                name: None,
                fields: vec![("a", Value::Bool(true))]
            }),
            [0x93, 0xd4, 2, 0, 0xc0, 0x81, 0xa1, b'a', 0xc3]
        );
        assert_eq!(
            enc(&Value::Variant {
                name: Some("E"),
                variant: "V",
                payload: Box::new(Value::Null)
            }),
            [0x94, 0xd4, 3, 0, 0xa1, b'E', 0xa1, b'V', 0xc0]
        );
        assert_eq!(
            enc(&Value::Typed {
                ty: "i32",
                value: Box::new(Value::Int(3))
            }),
            [0x93, 0xd4, 4, 0, 0xa3, b'i', b'3', b'2', 3]
        );
        let long = "y".repeat(40);
        let e = enc(&Value::Str(long.clone()));
        assert_eq!(&e[..2], [0xd9, 40]);
    }

    #[test]
    fn whole_key_matches_module_doc() {
        let p = Positions::from_values(vec![
            Value::Int(1),
            Value::Float(2.5),
            Value::Str("x".into()),
        ]);
        assert_eq!(
            encode_positions(&p).unwrap(),
            [0x92, 0x01, 0x93, 0x01, 0xcb, 0x40, 0x04, 0, 0, 0, 0, 0, 0, 0xa1, 0x78]
        );
    }
}
