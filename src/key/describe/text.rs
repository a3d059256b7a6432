//! The pieces of the readable form of keys. The writers of compound values
//! take the item count and a closure that writes item `i`; the closure's
//! error type `E` lets the renderer report a decoding error from inside an
//! item.

use std::fmt;

/// `open`, the items separated by `, `, `close`: `[a, b]` for sequences,
/// `{k: v, ...}` for maps (where an item writes one `k: v`).
pub(super) fn write_enclosed_with<W, E>(
    f: &mut W,
    (open, close): (&str, &str),
    n: usize,
    mut item: impl FnMut(&mut W, usize) -> Result<(), E>,
) -> Result<(), E>
where
    W: fmt::Write + ?Sized,
    E: From<fmt::Error>,
{
    f.write_str(open)?;
    for i in 0..n {
        if i > 0 {
            f.write_str(", ")?;
        }
        item(f, i)?;
    }
    f.write_str(close)?;
    Ok(())
}

/// `(a, b)`; one element `(a,)`; none `()`.
pub(super) fn write_tuple_with<W, E>(
    f: &mut W,
    n: usize,
    item: impl FnMut(&mut W, usize) -> Result<(), E>,
) -> Result<(), E>
where
    W: fmt::Write + ?Sized,
    E: From<fmt::Error>,
{
    let close = if n == 1 { ",)" } else { ")" };
    write_enclosed_with(f, ("(", close), n, item)
}

/// `{ x: 1, y: 2 }`; no fields `{}`; `field` writes one `x: 1`.
pub(super) fn write_fields_with<W, E>(
    f: &mut W,
    n: usize,
    field: impl FnMut(&mut W, usize) -> Result<(), E>,
) -> Result<(), E>
where
    W: fmt::Write + ?Sized,
    E: From<fmt::Error>,
{
    let ends = if n == 0 { ("{", "}") } else { ("{ ", " }") };
    write_enclosed_with(f, ends, n, field)
}

/// Brackets of a sequence, for [`write_enclosed_with`].
pub(super) const SEQ: (&str, &str) = ("[", "]");
/// Braces of a map, for [`write_enclosed_with`].
pub(super) const MAP: (&str, &str) = ("{", "}");

/// A float: Rust's shortest round-trip form (`2.5`, `1.0`, `NaN`, `inf`).
pub(super) fn write_float<W: fmt::Write + ?Sized>(f: &mut W, x: f64) -> fmt::Result {
    write!(f, "{x:?}")
}

/// A string in double quotes. Only `\`, `"` and ASCII control characters are
/// escaped; every other character is written as is. This never depends on
/// Unicode tables, so it cannot change between Rust versions.
pub(super) fn write_str_literal<W: fmt::Write + ?Sized>(f: &mut W, s: &str) -> fmt::Result {
    f.write_char('"')?;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let esc: Option<&str> = match c {
            '\\' => Some("\\\\"),
            '"' => Some("\\\""),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            '\0' => Some("\\0"),
            _ => None,
        };
        let control = c.is_ascii_control();
        if esc.is_none() && !control {
            continue;
        }
        f.write_str(&s[start..i])?;
        match esc {
            Some(e) => f.write_str(e)?,
            None => write!(f, "\\u{{{:x}}}", c as u32)?,
        }
        start = i + c.len_utf8();
    }
    f.write_str(&s[start..])?;
    f.write_char('"')
}

/// `b"..."`: printable ASCII as is (except `\` and `"`), the rest `\xNN`.
pub(super) fn write_bytes_literal<W: fmt::Write + ?Sized>(f: &mut W, b: &[u8]) -> fmt::Result {
    f.write_str("b\"")?;
    for &byte in b {
        match byte {
            b'\\' => f.write_str("\\\\")?,
            b'"' => f.write_str("\\\"")?,
            0x20..=0x7e => f.write_char(byte as char)?,
            _ => write!(f, "\\x{byte:02x}")?,
        }
    }
    f.write_char('"')
}
