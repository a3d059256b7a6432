//! The readable form of an encoded key: [`describe_args`].
//!
//! The renderer walks the MessagePack bytes once and writes the text as it
//! goes; the [`StringKeymap`](crate::keymap::StringKeymap) is this text of
//! the encoding, so the two cannot drift apart.

use std::fmt;

use rmp::Marker;

use super::float::canonical_float;
use super::format::{
    EXT_I128, EXT_IGNORED, EXT_STRUCT, EXT_TUPLE, EXT_TYPED, EXT_U128, EXT_VARIANT, SCHEMA_VERSION,
};
use crate::{Error, Result};
use text::{
    write_bytes_literal, write_enclosed_with, write_fields_with, write_float, write_str_literal,
    write_tuple_with, MAP, SEQ,
};

/// The `location` of the [`Error::Corrupt`] that [`describe_args`] returns.
const LOCATION: &str = "encoded arguments";

/// The deepest nesting of arrays and maps [`describe_args`] follows; deeper
/// input is refused rather than risking the stack (documented there).
const MAX_DEPTH: usize = 256;

/// Renders the canonical encoding of a call's arguments (what
/// [`encode::encode_args`](super::encode::encode_args) returns, what
/// [`SerialKeymap`](crate::keymap::SerialKeymap) keys are, what archives keep
/// next to hashed keys) as text, e.g. `(1, 2.5, "x")`.
///
/// The text is exactly the [`StringKeymap`](crate::keymap::StringKeymap) key
/// of the same arguments under the same [`KeyConfig`](super::KeyConfig).
/// Its rules depend on nothing but the encoded values:
///
/// - the positions as a tuple: `(a, b)`, one position `(a,)`, none `()`; a
///   typed struct or tuple-struct argument its name before them
///   (`Point(i32(1), i32(2))`, `Point { x: i32(1) }`);
/// - `NULL` for an ignored position, `None` for `()`, `None` and unit
///   structs; `true`/`false`; decimal integers; floats (rounded ones at their
///   rounded value) in Rust's shortest round-trip form (`2.5`, `1.0`, `NaN`,
///   `inf`, `-0.0`);
/// - strings in double quotes with only `\\`, `\"` and ASCII control
///   characters escaped (`\n`, `\r`, `\t`, `\0`, else `\u{7f}`); bytes as
///   `b"..."` with `\xNN` escapes;
/// - sequences `[a, b]`, tuples `(a, b)`, maps `{k: v}` (in the encoding's
///   order), structs `{ x: 1, y: 2 }`, variants `V`, `V(x)`, `V(a, b)`,
///   `V { a: 1 }`;
/// - typed keys: scalars with their type (`i32(3)`, `f64(2.0)`), structs and
///   enums with their names (`Point { x: i32(1) }`, `E::V`).
///
/// # Errors
///
/// [`Error::Corrupt`] with `location` `"encoded arguments"` when `encoded`
/// is not a canonical key of schema version
/// [`SCHEMA_VERSION`](super::encode::SCHEMA_VERSION) as the
/// [`encode`](super::encode) module describes it: truncated, followed by
/// trailing bytes, another schema version, an unknown ext type or a marker
/// out of place, a non-canonical form (an integer, length or float not in
/// its one canonical encoding, map entries out of order), invalid UTF-8, or
/// nested deeper than 256 arrays and maps. It never panics, whatever the bytes.
///
/// # Examples
///
/// ```
/// use std::collections::BTreeMap;
/// use klepto::key::{describe_args, encode::encode_args, KeyConfig};
/// use serde::Serialize;
///
/// // The bytes of `(1_u8, 2.5_f64, "x")`, untyped (see the `encode` module).
/// let bytes = [0x92, 0x01, 0x93, 0x01, 0xcb, 0x40, 0x04, 0, 0, 0, 0, 0, 0, 0xa1, b'x'];
/// assert_eq!(describe_args(&bytes).unwrap(), r#"(1, 2.5, "x")"#);
///
/// fn text<A: Serialize>(args: &A, config: &KeyConfig) -> String {
///     describe_args(&encode_args(args, config).unwrap()).unwrap()
/// }
/// let plain = KeyConfig::default();
/// assert_eq!(text(&7_u64, &plain), "(7,)");
/// assert_eq!(text(&(Some('a'), None::<u8>, "q\"\n"), &plain), r#"("a", None, "q\"\n")"#);
/// assert_eq!(text(&(u128::MAX, -1_i128), &plain), format!("({}, -1)", u128::MAX));
///
/// // Masks and rounding, as the key saw them.
/// let c = KeyConfig { ignore: vec![1.into()], tol: Some(1), ..KeyConfig::default() };
/// assert_eq!(text(&(2.54_f64, "verbose", vec![1, 2]), &c), "(2.5, NULL, [1, 2])");
///
/// // Structs, enums and maps (sorted by their encoding).
/// #[derive(Serialize)]
/// struct Point { x: i32, y: f32 }
/// #[derive(Serialize)]
/// enum Shape { Dot, Circle(f64), Rect { w: u8, h: u8 } }
/// let map: BTreeMap<&str, (u8, u8)> = [("b", (1, 2)), ("a", (3, 4))].into();
/// assert_eq!(
///     text(&(Point { x: 1, y: 0.5 }, Shape::Circle(1.0), Shape::Rect { w: 2, h: 3 }, map), &plain),
///     r#"({ x: 1, y: 0.5 }, Circle(1.0), Rect { w: 2, h: 3 }, {"a": (3, 4), "b": (1, 2)})"#,
/// );
/// assert_eq!(text(&Shape::Dot, &plain), "(Dot,)");
///
/// // Typed keys keep the type names; a struct argument's fields are its
/// // positions, after its name.
/// let typed = KeyConfig { typed: true, ..KeyConfig::default() };
/// assert_eq!(text(&Point { x: 1, y: 0.5 }, &typed), "Point(i32(1), f32(0.5))");
/// assert_eq!(text(&(3_u8, Shape::Circle(1.0)), &typed), "(u8(3), Shape::Circle(f64(1.0)))");
///
/// // Not a key.
/// assert!(describe_args(&bytes[..5]).is_err());
/// assert!(describe_args(&[0x92, 0x02, 0x90]).is_err()); // schema version 2
/// ```
pub fn describe_args(encoded: &[u8]) -> Result<String> {
    let mut rd = Reader {
        buf: encoded,
        pos: 0,
    };
    describe(&mut rd).map_err(|Bad(reason)| Error::Corrupt {
        location: LOCATION.to_owned(),
        reason,
    })
}

/// Why the bytes are not a canonical key (the `reason` of the error).
struct Bad(String);

impl From<fmt::Error> for Bad {
    // Writing to a `String` does not fail; this only satisfies the writers.
    fn from(_: fmt::Error) -> Self {
        Bad("formatting failed".to_owned())
    }
}

type R<T = ()> = std::result::Result<T, Bad>;

/// The whole key: `[SCHEMA_VERSION, [p0, ...]]` or `[.., [..], "Name"]`.
fn describe(rd: &mut Reader<'_>) -> R<String> {
    let top = match rd.marker()? {
        Marker::FixArray(n @ (2 | 3)) => n,
        _ => return Err(rd.bad("not a key: expected an array of 2 or 3 elements")),
    };
    match rd.marker()? {
        Marker::FixPos(SCHEMA_VERSION) => {}
        Marker::FixPos(v) => {
            return Err(rd.bad(format!(
                "key schema version {v}; this build reads version {SCHEMA_VERSION}"
            )))
        }
        _ => return Err(rd.bad("not a key: expected the schema version")),
    }
    let n = match rd.marker()? {
        m @ (Marker::FixArray(_) | Marker::Array16 | Marker::Array32) => rd.len(m)?,
        _ => return Err(rd.bad("not a key: expected the array of positions")),
    };
    let mut body = String::new();
    write_tuple_with(&mut body, n, |out, _| value(rd, out, 1))?;
    if top == 3 {
        // A typed struct argument's name follows the positions in the bytes
        // but comes first in the text.
        body.insert_str(0, rd.str()?);
    }
    if rd.pos != rd.buf.len() {
        return Err(rd.bad(format!(
            "{} trailing bytes after the key",
            rd.buf.len() - rd.pos
        )));
    }
    Ok(body)
}

/// One value, written to `out` in the readable form.
fn value(rd: &mut Reader<'_>, out: &mut String, depth: usize) -> R {
    let m = rd.marker()?;
    let start = rd.pos - 1;
    // An integer of type `$t` from big-endian `$bytes`, which must need
    // that width (`$wide`): one not in its smallest form is not canonical.
    macro_rules! int {
        ($t:ty, $bytes:expr, $wide:expr) => {{
            let v = <$t>::from_be_bytes($bytes);
            if !$wide(v) {
                return Err(rd.bad_at(start, "integer not in its smallest encoding"));
            }
            push_display(out, v);
        }};
    }
    match m {
        Marker::Null => out.push_str("None"),
        Marker::True => out.push_str("true"),
        Marker::False => out.push_str("false"),
        Marker::FixPos(v) => push_display(out, v),
        Marker::U8 => int!(u8, rd.be()?, |v| v >= 0x80),
        Marker::U16 => int!(u16, rd.be()?, |v| v > u16::from(u8::MAX)),
        Marker::U32 => int!(u32, rd.be()?, |v| v > u32::from(u16::MAX)),
        Marker::U64 => int!(u64, rd.be()?, |v| v > u64::from(u32::MAX)),
        Marker::FixNeg(v) => push_display(out, v),
        Marker::I8 => int!(i8, rd.be()?, |v| v < -32),
        Marker::I16 => int!(i16, rd.be()?, |v| v < i16::from(i8::MIN)),
        Marker::I32 => int!(i32, rd.be()?, |v| v < i32::from(i16::MIN)),
        Marker::I64 => int!(i64, rd.be()?, |v| v < i64::from(i32::MIN)),
        Marker::F64 => {
            let bits = u64::from_be_bytes(rd.be()?);
            let x = f64::from_bits(bits);
            if canonical_float(x).to_bits() != bits {
                return Err(rd.bad_at(
                    start,
                    "float not in canonical form (a NaN other than the canonical one)",
                ));
            }
            write_float(out, x)?;
        }
        Marker::F32 => return Err(rd.bad_at(start, "32-bit float (keys write every float as f64)")),
        Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32 => {
            let s = rd.str_body(m)?;
            write_str_literal(out, s)?;
        }
        Marker::Bin8 | Marker::Bin16 | Marker::Bin32 => {
            let len = rd.len(m)?;
            let b = rd.take(len)?;
            write_bytes_literal(out, b)?;
        }
        Marker::FixArray(_) | Marker::Array16 | Marker::Array32 => {
            let n = rd.len(m)?;
            array(rd, out, n, deeper(rd, depth)?)?;
        }
        Marker::FixMap(_) | Marker::Map16 | Marker::Map32 => {
            let n = rd.len(m)?;
            map(rd, out, n, deeper(rd, depth)?)?;
        }
        Marker::FixExt1 => {
            let [ty, data] = rd.be()?;
            match ty as i8 {
                _ if data != 0 => {
                    return Err(rd.bad_at(start, format!("ext marker {ty} with data {data}")))
                }
                EXT_IGNORED => out.push_str("NULL"),
                EXT_TUPLE..=EXT_TYPED => {
                    return Err(rd.bad_at(start, format!("ext marker {ty} out of place")))
                }
                _ => return Err(rd.bad_at(start, format!("unknown ext type {}", ty as i8))),
            }
        }
        Marker::FixExt16 => {
            let ty = rd.be::<1>()?[0] as i8;
            let b = rd.be::<16>()?;
            match ty {
                EXT_I128 => int!(i128, b, |v| v < i128::from(i64::MIN)),
                EXT_U128 => int!(u128, b, |v| v > u128::from(u64::MAX)),
                _ => return Err(rd.bad_at(start, format!("unknown ext type {ty}"))),
            }
        }
        Marker::FixExt2
        | Marker::FixExt4
        | Marker::FixExt8
        | Marker::Ext8
        | Marker::Ext16
        | Marker::Ext32 => {
            return Err(rd.bad_at(start, "ext value of a size keys never use"));
        }
        Marker::Reserved => return Err(rd.bad_at(start, "reserved MessagePack marker 0xc1")),
    }
    Ok(())
}

/// An array of `n` elements: a tuple, struct, variant or typed value when it
/// opens with their marker, else a sequence.
fn array(rd: &mut Reader<'_>, out: &mut String, n: usize, depth: usize) -> R {
    let Some(kind) = (if n > 0 { rd.peek_marker() } else { None }) else {
        return write_enclosed_with(out, SEQ, n, |out, _| value(rd, out, depth));
    };
    let start = rd.pos;
    rd.pos += 3;
    let expect = |rd: &Reader<'_>, len: usize| {
        if n == len {
            Ok(())
        } else {
            Err(rd.bad_at(start, format!("ext marker {kind} opens an array of {n}")))
        }
    };
    match kind {
        EXT_TUPLE => write_tuple_with(out, n - 1, |out, _| value(rd, out, depth)),
        EXT_STRUCT => {
            expect(rd, 3)?;
            if let Some(name) = rd.opt_str()? {
                out.push_str(name);
                out.push(' ');
            }
            fields(rd, out, depth)
        }
        EXT_VARIANT => {
            expect(rd, 4)?;
            if let Some(name) = rd.opt_str()? {
                out.push_str(name);
                out.push_str("::");
            }
            out.push_str(rd.str()?);
            match rd.peek_payload() {
                Payload::Null => rd.pos += 1,
                Payload::Tuple => value(rd, out, depth)?,
                Payload::NamelessStruct => {
                    out.push(' ');
                    value(rd, out, depth)?;
                }
                Payload::Other => parenthesized(rd, out, depth)?,
            }
            Ok(())
        }
        // EXT_TYPED: peek_marker returns only the four kinds.
        _ => {
            expect(rd, 3)?;
            out.push_str(rd.str()?);
            match rd.peek_payload() {
                Payload::Null => rd.pos += 1,
                Payload::Tuple => value(rd, out, depth)?,
                Payload::NamelessStruct | Payload::Other => parenthesized(rd, out, depth)?,
            }
            Ok(())
        }
    }
}

/// `(value)`.
fn parenthesized(rd: &mut Reader<'_>, out: &mut String, depth: usize) -> R {
    out.push('(');
    value(rd, out, depth)?;
    out.push(')');
    Ok(())
}

/// A struct's `{field: value, ...}` map, in declaration order.
fn fields(rd: &mut Reader<'_>, out: &mut String, depth: usize) -> R {
    let n = match rd.marker()? {
        m @ (Marker::FixMap(_) | Marker::Map16 | Marker::Map32) => rd.len(m)?,
        _ => return Err(rd.bad("expected a struct's map of fields")),
    };
    write_fields_with(out, n, |out, _| {
        out.push_str(rd.str()?);
        out.push_str(": ");
        value(rd, out, depth)
    })
}

/// A map of `n` entries, which must come in ascending byte order of their
/// encoding (key, then value), as keys sort them.
fn map(rd: &mut Reader<'_>, out: &mut String, n: usize, depth: usize) -> R {
    let mut prev: Option<(usize, usize)> = None;
    write_enclosed_with(out, MAP, n, |out, _| {
        let start = rd.pos;
        value(rd, out, depth)?;
        out.push_str(": ");
        value(rd, out, depth)?;
        let entry = (start, rd.pos);
        if let Some((a, b)) = prev {
            if rd.buf[a..b] > rd.buf[entry.0..entry.1] {
                return Err(rd.bad_at(start, "map entries out of canonical order"));
            }
        }
        prev = Some(entry);
        Ok(())
    })
}

fn deeper(rd: &Reader<'_>, depth: usize) -> R<usize> {
    if depth >= MAX_DEPTH {
        Err(rd.bad(format!("nested deeper than {MAX_DEPTH} levels")))
    } else {
        Ok(depth + 1)
    }
}

fn push_display(out: &mut String, v: impl fmt::Display) {
    use fmt::Write as _;
    // Writing to a String cannot fail.
    let _ = write!(out, "{v}");
}

/// How a variant's payload or a typed value's inner value is written.
enum Payload {
    /// `nil`: nothing.
    Null,
    /// A tuple: `(a, b)` right after the name.
    Tuple,
    /// A struct without a name: ` { a: 1 }`.
    NamelessStruct,
    /// Anything else: `(x)`.
    Other,
}

/// A cursor over the encoded bytes.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn bad(&self, reason: impl fmt::Display) -> Bad {
        self.bad_at(self.pos, reason)
    }

    fn bad_at(&self, at: usize, reason: impl fmt::Display) -> Bad {
        Bad(format!("{reason} (at byte {at} of {})", self.buf.len()))
    }

    fn take(&mut self, n: usize) -> R<&'a [u8]> {
        match self.pos.checked_add(n) {
            Some(end) if end <= self.buf.len() => {
                let s = &self.buf[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            _ => Err(self.bad(format!("truncated: {n} more bytes expected"))),
        }
    }

    fn be<const N: usize>(&mut self) -> R<[u8; N]> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn marker(&mut self) -> R<Marker> {
        let mut rest = self.buf.get(self.pos..).unwrap_or_default();
        let m = rmp::decode::read_marker(&mut rest)
            .map_err(|_| self.bad("truncated: a value expected"))?;
        self.pos += 1;
        Ok(m)
    }

    /// The length after a str, bin, array or map marker `m`, which must be
    /// the smallest form for it (`min` is the least length of each wider form).
    fn len(&mut self, m: Marker) -> R<usize> {
        let start = self.pos - 1;
        let (len, min) = match m {
            Marker::FixStr(n) | Marker::FixArray(n) | Marker::FixMap(n) => (u32::from(n), 0),
            Marker::Str8 => (u32::from(self.be::<1>()?[0]), 32),
            Marker::Bin8 => (u32::from(self.be::<1>()?[0]), 0),
            Marker::Array16 | Marker::Map16 => (u32::from(u16::from_be_bytes(self.be()?)), 16),
            Marker::Str16 | Marker::Bin16 => (u32::from(u16::from_be_bytes(self.be()?)), 256),
            Marker::Str32 | Marker::Bin32 | Marker::Array32 | Marker::Map32 => {
                (u32::from_be_bytes(self.be()?), 0x1_0000)
            }
            _ => return Err(self.bad_at(start, "expected a length")),
        };
        if len < min {
            return Err(self.bad_at(start, "length not in its smallest encoding"));
        }
        usize::try_from(len).map_err(|_| self.bad_at(start, "length too large"))
    }

    /// The string after str marker `m`.
    fn str_body(&mut self, m: Marker) -> R<&'a str> {
        let start = self.pos - 1;
        let len = self.len(m)?;
        let b = self.take(len)?;
        std::str::from_utf8(b).map_err(|_| self.bad_at(start, "string is not UTF-8"))
    }

    /// A string (a name).
    fn str(&mut self) -> R<&'a str> {
        match self.marker()? {
            m @ (Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32) => {
                self.str_body(m)
            }
            _ => Err(self.bad_at(self.pos - 1, "expected a name (a string)")),
        }
    }

    /// A name or `nil`.
    fn opt_str(&mut self) -> R<Option<&'a str>> {
        if self.buf.get(self.pos) == Some(&0xc0) {
            self.pos += 1;
            return Ok(None);
        }
        self.str().map(Some)
    }

    /// The kind of the structural marker (tuple, struct, variant, typed) at
    /// the cursor, if there is one; it does not move the cursor.
    fn peek_marker(&self) -> Option<i8> {
        match self.buf.get(self.pos..self.pos.checked_add(3)?)? {
            &[0xd4, ty, 0] if (EXT_TUPLE..=EXT_TYPED).contains(&(ty as i8)) => Some(ty as i8),
            _ => None,
        }
    }

    /// How the value at the cursor is written as a payload; it does not move
    /// the cursor, and does not check the value (writing it does).
    fn peek_payload(&self) -> Payload {
        let mut r = Reader {
            buf: self.buf,
            pos: self.pos,
        };
        match r.marker() {
            Ok(Marker::Null) => return Payload::Null,
            Ok(m @ (Marker::FixArray(_) | Marker::Array16 | Marker::Array32)) => {
                if !matches!(r.len(m), Ok(n) if n > 0) {
                    return Payload::Other;
                }
            }
            _ => return Payload::Other,
        }
        match r.peek_marker() {
            Some(EXT_TUPLE) => Payload::Tuple,
            Some(EXT_STRUCT) if r.buf.get(r.pos + 3) == Some(&0xc0) => Payload::NamelessStruct,
            _ => Payload::Other,
        }
    }
}

mod text;
