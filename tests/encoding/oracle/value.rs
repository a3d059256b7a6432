//! The canonical value tree that arguments become before they are encoded.
//!
//! [`Value`] is what our own serde serializer ([`to_value`](super::to_value))
//! builds from any `Serialize` argument. It forgets what does not matter for a
//! key (integer widths, `Option`'s `Some`, map insertion order) unless the key
//! is *typed*, in which case type names are kept in [`Value::Typed`] wrappers
//! and in the `name` of structs and enums.
//!
//! The readable form ([`Display`](std::fmt::Display)) is the one the
//! [`StringKeymap`](crate::keymap::StringKeymap) uses; its rules are listed on
//! [`Value`].

use std::fmt::{self, Write as _};

use super::float::canonical_float;
use super::text::{
    write_bytes_literal, write_enclosed_with, write_fields_with, write_float, write_str_literal,
    write_tuple_with, MAP, SEQ,
};

/// A canonical value: the shape of an argument, as far as the key is
/// concerned.
///
/// Built by [`to_value`](super::to_value) from any `Serialize` value:
///
/// | Rust (serde)                          | `Value` (untyped)                          |
/// |---------------------------------------|--------------------------------------------|
/// | `()`, `None`, unit struct             | [`Null`](Value::Null)                      |
/// | `Some(x)`, newtype struct `N(x)`      | the value of `x`                           |
/// | `bool`                                | [`Bool`](Value::Bool)                      |
/// | every integer type, `i128`, `u128`    | [`Int`](Value::Int) / [`U128`](Value::U128) (value only) |
/// | `f32`, `f64`                          | [`Float`](Value::Float) (widened to `f64`) |
/// | `str`, `String`, `char`               | [`Str`](Value::Str)                        |
/// | bytes (`serialize_bytes`)             | [`Bytes`](Value::Bytes)                    |
/// | `Vec`, slices, arrays, sets           | [`Seq`](Value::Seq)                        |
/// | tuples, tuple structs                 | [`Tuple`](Value::Tuple)                    |
/// | maps                                  | [`Map`](Value::Map), entries sorted canonically |
/// | structs                               | [`Struct`](Value::Struct), fields in declaration order |
/// | enum variants                         | [`Variant`](Value::Variant)                |
///
/// With `typed = true` every scalar is wrapped in [`Typed`](Value::Typed)
/// with its Rust type (`"i32"`, `"f64"`, `"str"`, `"char"`, `"()"`, `"None"`,
/// ...), tuple structs, newtype structs and unit structs are wrapped with
/// their name, and structs and enums carry their name.
///
/// A `HashSet` is a [`Seq`](Value::Seq) in its iteration order (serde gives
/// no way to tell it from a `Vec`), which changes between processes: use a
/// `BTreeSet` for stable keys.
///
/// Floats are canonical: every NaN is stored as one NaN (`-0.0` and `0.0`
/// stay distinct, as they are different arguments),
/// so equality ([`PartialEq`]) compares float bits and is reflexive.
///
/// The readable form (`Display`): `None` for [`Null`](Value::Null), `NULL`
/// for [`Ignored`](Value::Ignored), `true`/`false`, decimal integers, floats
/// as Rust's shortest round-trip form (`2.5`, `1.0`, `NaN`, `inf`), strings in
/// double quotes with only `\\`, `\"` and ASCII control characters escaped
/// (`\n`, `\r`, `\t`, `\0`, else `\u{7f}`), bytes as `b"..."` with `\xNN`
/// escapes, sequences `[a, b]`, tuples `(a, b)` (one element: `(a,)`), maps
/// `{k: v}`, structs `{ x: 1, y: 2 }` (typed: `Point { x: i32(1) }`),
/// variants `V`, `V(x)`, `V(a, b)`, `V { a: 1 }` (typed: `Enum::V...`), typed
/// scalars `i32(3)`.
///
/// ```
/// use klepto::key::{to_value, Value};
/// assert_eq!(to_value(&3_u8, false).unwrap(), Value::Int(3));
/// assert_eq!(to_value(&3_u8, false).unwrap(), to_value(&3_i64, false).unwrap());
/// assert_ne!(to_value(&3_u8, true).unwrap(), to_value(&3_i64, true).unwrap());
/// assert_eq!(to_value(&(1, "x"), false).unwrap().to_string(), r#"(1, "x")"#);
/// ```
#[derive(Debug, Clone)]
pub enum Value {
    /// `()`, `None`, a unit struct (untyped), a unit variant's payload.
    Null,
    /// The marker that replaces an ignored (masked) argument.
    Ignored,
    /// A boolean.
    Bool(bool),
    /// An integer of any width whose value fits in `i128`.
    Int(i128),
    /// An integer above `i128::MAX`. Values that fit in `i128` are always
    /// [`Int`](Value::Int), so each integer has one representation.
    U128(u128),
    /// A float, widened to `f64`; NaN is one canonical NaN.
    Float(f64),
    /// A string (also a `char`, untyped).
    Str(String),
    /// A byte string (`serialize_bytes`, e.g. `serde_bytes`).
    Bytes(Vec<u8>),
    /// A sequence: `Vec`, slice, array, set.
    Seq(Vec<Value>),
    /// A tuple or tuple struct: distinct from a [`Seq`](Value::Seq).
    Tuple(Vec<Value>),
    /// A map; entries sorted by the canonical encoding of their key (then of
    /// their value), so insertion order does not matter.
    Map(Vec<(Value, Value)>),
    /// A struct: its fields in declaration order.
    Struct {
        /// The struct's name: kept only in typed keys.
        name: Option<&'static str>,
        /// The fields, by serde name, in declaration order.
        fields: Vec<(&'static str, Value)>,
    },
    /// An enum variant.
    Variant {
        /// The enum's name: kept only in typed keys.
        name: Option<&'static str>,
        /// The variant's serde name.
        variant: &'static str,
        /// The payload: [`Null`](Value::Null) for a unit variant, the value
        /// of a newtype variant, a [`Tuple`](Value::Tuple) for a tuple variant,
        /// an unnamed [`Struct`](Value::Struct) for a struct variant.
        payload: Box<Value>,
    },
    /// A value with its Rust type name (typed keys only): scalars (`"i32"`,
    /// `"f64"`, `"char"`, ...) and named tuple, newtype and unit structs.
    Typed {
        /// The type's name.
        ty: &'static str,
        /// The value.
        value: Box<Value>,
    },
}

impl Value {
    /// A float in canonical form: every NaN one NaN (`-0.0` stays itself).
    pub fn float(x: f64) -> Value {
        Value::Float(canonical_float(x))
    }

    /// An unsigned integer in canonical form (`Int` when it fits in `i128`).
    pub fn from_u128(x: u128) -> Value {
        match i128::try_from(x) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::U128(x),
        }
    }

    /// The value under any [`Typed`](Value::Typed) wrappers.
    pub fn untyped(&self) -> &Value {
        let mut v = self;
        while let Value::Typed { value, .. } = v {
            v = value;
        }
        v
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        use Value::*;
        match (self, other) {
            (Null, Null) | (Ignored, Ignored) => true,
            (Bool(a), Bool(b)) => a == b,
            (Int(a), Int(b)) => a == b,
            (U128(a), U128(b)) => a == b,
            (Float(a), Float(b)) => a.to_bits() == b.to_bits(),
            (Str(a), Str(b)) => a == b,
            (Bytes(a), Bytes(b)) => a == b,
            (Seq(a), Seq(b)) | (Tuple(a), Tuple(b)) => a == b,
            (Map(a), Map(b)) => a == b,
            (
                Struct {
                    name: n1,
                    fields: f1,
                },
                Struct {
                    name: n2,
                    fields: f2,
                },
            ) => n1 == n2 && f1 == f2,
            (
                Variant {
                    name: n1,
                    variant: v1,
                    payload: p1,
                },
                Variant {
                    name: n2,
                    variant: v2,
                    payload: p2,
                },
            ) => n1 == n2 && v1 == v2 && p1 == p2,
            (Typed { ty: t1, value: a }, Typed { ty: t2, value: b }) => t1 == t2 && a == b,
            _ => false,
        }
    }
}

impl Eq for Value {}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("None"),
            Value::Ignored => f.write_str("NULL"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::U128(u) => write!(f, "{u}"),
            Value::Float(x) => write_float(f, *x),
            Value::Str(s) => write_str_literal(f, s),
            Value::Bytes(b) => write_bytes_literal(f, b),
            Value::Seq(items) => {
                write_enclosed_with(f, SEQ, items.len(), |f, i| write!(f, "{}", items[i]))
            }
            Value::Tuple(items) => write_tuple(f, items),
            Value::Map(entries) => write_enclosed_with(f, MAP, entries.len(), |f, i| {
                let (k, v) = &entries[i];
                write!(f, "{k}: {v}")
            }),
            Value::Struct { name, fields } => {
                if let Some(n) = name {
                    write!(f, "{n} ")?;
                }
                write_fields(f, fields)
            }
            Value::Variant {
                name,
                variant,
                payload,
            } => {
                if let Some(n) = name {
                    write!(f, "{n}::")?;
                }
                f.write_str(variant)?;
                match &**payload {
                    Value::Null => Ok(()),
                    Value::Tuple(items) => write_tuple(f, items),
                    Value::Struct { name: None, fields } => {
                        f.write_char(' ')?;
                        write_fields(f, fields)
                    }
                    other => write!(f, "({other})"),
                }
            }
            Value::Typed { ty, value } => {
                f.write_str(ty)?;
                match &**value {
                    Value::Null => Ok(()),
                    Value::Tuple(items) => write_tuple(f, items),
                    other => write!(f, "({other})"),
                }
            }
        }
    }
}

/// `(a, b)`; one element `(a,)`; none `()`.
pub fn write_tuple(f: &mut fmt::Formatter<'_>, items: &[Value]) -> fmt::Result {
    write_tuple_with(f, items.len(), |f, i| write!(f, "{}", items[i]))
}

fn write_fields(f: &mut fmt::Formatter<'_>, fields: &[(&'static str, Value)]) -> fmt::Result {
    write_fields_with(f, fields.len(), |f, i| {
        let (k, v) = &fields[i];
        write!(f, "{k}: {v}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_are_canonical() {
        assert_ne!(Value::float(-0.0), Value::float(0.0), "-0.0 is its own key");
        assert_eq!(Value::float(-0.0).to_string(), "-0.0");
        let other_nan = f64::from_bits(0xfff8_0000_0000_0001);
        assert!(other_nan.is_nan());
        assert_eq!(Value::float(other_nan), Value::float(f64::NAN));
        match Value::float(other_nan) {
            Value::Float(x) => assert_eq!(x.to_bits(), super::super::float::CANONICAL_NAN_BITS),
            v => panic!("{v:?}"),
        }
        assert_ne!(Value::float(1.0), Value::float(1.0000001));
    }

    #[test]
    fn u128_is_canonical() {
        assert_eq!(Value::from_u128(5), Value::Int(5));
        assert_eq!(Value::from_u128(u128::MAX), Value::U128(u128::MAX));
        assert_eq!(
            Value::from_u128(i128::MAX as u128),
            Value::Int(i128::MAX),
            "i128::MAX still fits Int"
        );
    }

    #[test]
    fn string_escaping() {
        let v = Value::Str("a\"b\\c\nd\te\u{1}é😀".into());
        assert_eq!(v.to_string(), r#""a\"b\\c\nd\te\u{1}é😀""#);
        assert_eq!(Value::Str("\u{7f}\0".into()).to_string(), r#""\u{7f}\0""#);
        assert_eq!(
            Value::Bytes(vec![b'a', 0, 255, b'"']).to_string(),
            r#"b"a\x00\xff\"""#
        );
    }

    #[test]
    fn display_shapes() {
        let t = Value::Tuple(vec![
            Value::Int(1),
            Value::float(2.5),
            Value::Str("x".into()),
        ]);
        assert_eq!(t.to_string(), r#"(1, 2.5, "x")"#);
        assert_eq!(Value::Tuple(vec![Value::Int(1)]).to_string(), "(1,)");
        assert_eq!(Value::Tuple(vec![]).to_string(), "()");
        assert_eq!(
            Value::Seq(vec![Value::Null, Value::Ignored, Value::Bool(true)]).to_string(),
            "[None, NULL, true]"
        );
        let s = Value::Struct {
            name: Some("P"),
            fields: vec![("x", Value::Int(1)), ("y", Value::float(1.0))],
        };
        assert_eq!(s.to_string(), "P { x: 1, y: 1.0 }");
        let v = Value::Variant {
            name: None,
            variant: "Some",
            payload: Box::new(Value::Tuple(vec![Value::Int(1), Value::Int(2)])),
        };
        assert_eq!(v.to_string(), "Some(1, 2)");
        let typed = Value::Typed {
            ty: "i32",
            value: Box::new(Value::Int(3)),
        };
        assert_eq!(typed.to_string(), "i32(3)");
        assert_eq!(typed.untyped(), &Value::Int(3));
    }
}
