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

use serde::Serialize;

pub use super::format::SCHEMA_VERSION;
use super::stream;
use super::KeyConfig;
use crate::{Error, Result};

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
#[allow(unsafe_code)]
pub(crate) fn probe_encoded<A, T>(
    args: &A,
    config: &KeyConfig,
    f: impl FnOnce(&[u8]) -> T,
) -> Option<T>
where
    A: Serialize + ?Sized,
{
    // Only the address comes out of `with`, so that the encoding and `f`
    // run here, inlined into the caller, not in `with`'s own frame.
    let cell: *const RefCell<Vec<u8>> = BUF.with(|cell| cell as *const _);
    // SAFETY: `with` returned, so this thread's `BUF` is alive (it panics
    // after the value is destroyed), and it stays alive until this thread
    // ends, which cannot happen during this call; the reference is used on
    // this thread only and does not outlive the call.
    let cell = unsafe { &*cell };
    let Ok(mut buf) = cell.try_borrow_mut() else {
        // Re-entered (a Serialize impl computing a key).
        return with_fresh_buffer(args, config, f);
    };
    buf.clear();
    stream::encode_top(args, config, &mut buf).ok()?;
    let t = f(&buf);
    if buf.capacity() > 64 * 1024 {
        // Do not keep a huge buffer alive after one huge key.
        *buf = Vec::new();
    }
    Some(t)
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

/// Clears `buf` and writes the key of `args` into it.
fn encode_args_into<A: Serialize + ?Sized>(
    args: &A,
    config: &KeyConfig,
    buf: &mut Vec<u8>,
) -> Result<()> {
    buf.clear();
    stream::encode_top(args, config, buf).map_err(Error::from)
}
