//! Our own serde [`Serializer`] that builds a [`Value`] directly, without a
//! detour through a byte format.
//!
//! Untyped (the default), integers keep only their value, floats are widened
//! to `f64`, `char` is a one-character string, `Some(x)` is `x`, newtype
//! structs are transparent and tuple structs are tuples. Typed, scalars are
//! wrapped in [`Value::Typed`] with their Rust type, and structs, enums, tuple,
//! newtype and unit structs keep their name.
//!
//! `is_human_readable()` is `true` (serde's default), so types such as
//! `IpAddr` or `Uuid` contribute their readable string form.

use std::fmt;

use serde::ser::{self, Serialize};

use super::key_error;
use super::tree::encode_value_into;
use super::value::Value;

/// The serializer's error: carries the reason; becomes
/// [`Error::Key`](klepto::Error::Key).
#[derive(Debug)]
pub struct SerError(pub String);

impl fmt::Display for SerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SerError {}

impl ser::Error for SerError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        SerError(msg.to_string())
    }
}

impl From<SerError> for klepto::Error {
    fn from(e: SerError) -> Self {
        key_error(e.0)
    }
}

/// Turns any `Serialize` value into its canonical [`Value`].
///
/// `typed`: keep each scalar's Rust type and each struct's and enum's name.
/// An error from the value's `Serialize` impl becomes
/// [`Error::Key`](klepto::Error::Key); this never panics.
///
/// ```
/// use klepto::key::{to_value, Value};
/// let v = to_value(&(1_u8, Some(2.5_f32), "x"), false).unwrap();
/// assert_eq!(v, Value::Tuple(vec![Value::Int(1), Value::Float(2.5), Value::Str("x".into())]));
/// ```
pub fn to_value<T: Serialize + ?Sized>(value: &T, typed: bool) -> klepto::Result<Value> {
    Ok(value.serialize(ValueSerializer { typed })?)
}

/// The serializer.
#[derive(Clone, Copy)]
pub struct ValueSerializer {
    pub typed: bool,
}

impl ValueSerializer {
    /// Wraps `v` with its type name when typed.
    #[inline]
    pub fn scalar(self, ty: &'static str, v: Value) -> Value {
        if self.typed {
            Value::Typed {
                ty,
                value: Box::new(v),
            }
        } else {
            v
        }
    }

    pub fn name(self, name: &'static str) -> Option<&'static str> {
        self.typed.then_some(name)
    }
}

type R = Result<Value, SerError>;

impl ser::Serializer for ValueSerializer {
    type Ok = Value;
    type Error = SerError;
    type SerializeSeq = SeqBuilder;
    type SerializeTuple = SeqBuilder;
    type SerializeTupleStruct = SeqBuilder;
    type SerializeTupleVariant = SeqBuilder;
    type SerializeMap = MapBuilder;
    type SerializeStruct = StructBuilder;
    type SerializeStructVariant = StructBuilder;

    fn serialize_bool(self, v: bool) -> R {
        Ok(self.scalar("bool", Value::Bool(v)))
    }
    fn serialize_i8(self, v: i8) -> R {
        Ok(self.scalar("i8", Value::Int(v.into())))
    }
    fn serialize_i16(self, v: i16) -> R {
        Ok(self.scalar("i16", Value::Int(v.into())))
    }
    fn serialize_i32(self, v: i32) -> R {
        Ok(self.scalar("i32", Value::Int(v.into())))
    }
    fn serialize_i64(self, v: i64) -> R {
        Ok(self.scalar("i64", Value::Int(v.into())))
    }
    fn serialize_i128(self, v: i128) -> R {
        Ok(self.scalar("i128", Value::Int(v)))
    }
    fn serialize_u8(self, v: u8) -> R {
        Ok(self.scalar("u8", Value::Int(v.into())))
    }
    fn serialize_u16(self, v: u16) -> R {
        Ok(self.scalar("u16", Value::Int(v.into())))
    }
    fn serialize_u32(self, v: u32) -> R {
        Ok(self.scalar("u32", Value::Int(v.into())))
    }
    fn serialize_u64(self, v: u64) -> R {
        Ok(self.scalar("u64", Value::Int(v.into())))
    }
    fn serialize_u128(self, v: u128) -> R {
        Ok(self.scalar("u128", Value::from_u128(v)))
    }
    fn serialize_f32(self, v: f32) -> R {
        Ok(self.scalar("f32", Value::float(f64::from(v))))
    }
    fn serialize_f64(self, v: f64) -> R {
        Ok(self.scalar("f64", Value::float(v)))
    }
    fn serialize_char(self, v: char) -> R {
        Ok(self.scalar("char", Value::Str(v.to_string())))
    }
    fn serialize_str(self, v: &str) -> R {
        Ok(self.scalar("str", Value::Str(v.to_owned())))
    }
    fn serialize_bytes(self, v: &[u8]) -> R {
        Ok(self.scalar("bytes", Value::Bytes(v.to_vec())))
    }
    fn serialize_none(self) -> R {
        Ok(self.scalar("None", Value::Null))
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> R {
        value.serialize(self)
    }
    fn serialize_unit(self) -> R {
        Ok(self.scalar("()", Value::Null))
    }
    fn serialize_unit_struct(self, name: &'static str) -> R {
        Ok(self.scalar(name, Value::Null))
    }
    fn serialize_unit_variant(self, name: &'static str, _index: u32, variant: &'static str) -> R {
        Ok(Value::Variant {
            name: self.name(name),
            variant,
            payload: Box::new(Value::Null),
        })
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, name: &'static str, value: &T) -> R {
        let v = value.serialize(self)?;
        Ok(self.scalar(name, v))
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> R {
        let v = value.serialize(self)?;
        Ok(Value::Variant {
            name: self.name(name),
            variant,
            payload: Box::new(v),
        })
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SeqBuilder, SerError> {
        Ok(SeqBuilder::new(self, SeqKind::Seq, len.unwrap_or(0)))
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqBuilder, SerError> {
        Ok(SeqBuilder::new(self, SeqKind::Tuple, len))
    }
    fn serialize_tuple_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<SeqBuilder, SerError> {
        Ok(SeqBuilder::new(self, SeqKind::TupleStruct(name), len))
    }
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<SeqBuilder, SerError> {
        Ok(SeqBuilder::new(
            self,
            SeqKind::Variant(self.name(name), variant),
            len,
        ))
    }
    fn serialize_map(self, len: Option<usize>) -> Result<MapBuilder, SerError> {
        Ok(MapBuilder {
            ser: self,
            entries: Vec::with_capacity(len.unwrap_or(0).min(4096)),
            pending: None,
        })
    }
    fn serialize_struct(self, name: &'static str, len: usize) -> Result<StructBuilder, SerError> {
        Ok(StructBuilder {
            ser: self,
            name: self.name(name),
            variant: None,
            fields: Vec::with_capacity(len.min(4096)),
        })
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<StructBuilder, SerError> {
        Ok(StructBuilder {
            ser: self,
            name: self.name(name),
            variant: Some(variant),
            fields: Vec::with_capacity(len.min(4096)),
        })
    }
}

#[derive(Clone, Copy)]
pub enum SeqKind {
    Seq,
    Tuple,
    TupleStruct(&'static str),
    Variant(Option<&'static str>, &'static str),
}

/// Collects the elements of a sequence, tuple, tuple struct or tuple variant.
pub struct SeqBuilder {
    ser: ValueSerializer,
    kind: SeqKind,
    items: Vec<Value>,
}

impl SeqBuilder {
    fn new(outer: ValueSerializer, kind: SeqKind, len: usize) -> Self {
        SeqBuilder {
            ser: outer,
            kind,
            items: Vec::with_capacity(len.min(4096)),
        }
    }

    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
        self.items.push(value.serialize(self.ser)?);
        Ok(())
    }

    fn finish(self) -> R {
        Ok(match self.kind {
            SeqKind::Seq => Value::Seq(self.items),
            SeqKind::Tuple => Value::Tuple(self.items),
            SeqKind::TupleStruct(name) => self.ser.scalar(name, Value::Tuple(self.items)),
            SeqKind::Variant(name, variant) => Value::Variant {
                name,
                variant,
                payload: Box::new(Value::Tuple(self.items)),
            },
        })
    }
}

impl ser::SerializeSeq for SeqBuilder {
    type Ok = Value;
    type Error = SerError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
        self.push(value)
    }
    fn end(self) -> R {
        self.finish()
    }
}

impl ser::SerializeTuple for SeqBuilder {
    type Ok = Value;
    type Error = SerError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
        self.push(value)
    }
    fn end(self) -> R {
        self.finish()
    }
}

impl ser::SerializeTupleStruct for SeqBuilder {
    type Ok = Value;
    type Error = SerError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
        self.push(value)
    }
    fn end(self) -> R {
        self.finish()
    }
}

impl ser::SerializeTupleVariant for SeqBuilder {
    type Ok = Value;
    type Error = SerError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
        self.push(value)
    }
    fn end(self) -> R {
        self.finish()
    }
}

/// Collects a map's entries and sorts them canonically at the end.
pub struct MapBuilder {
    ser: ValueSerializer,
    entries: Vec<(Value, Value)>,
    pending: Option<Value>,
}

impl ser::SerializeMap for MapBuilder {
    type Ok = Value;
    type Error = SerError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), SerError> {
        if self.pending.is_some() {
            return Err(SerError(
                "map serialized two keys without a value between them".into(),
            ));
        }
        self.pending = Some(key.serialize(self.ser)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
        let key = self
            .pending
            .take()
            .ok_or_else(|| SerError("map serialized a value without a key".into()))?;
        let v = value.serialize(self.ser)?;
        self.entries.push((key, v));
        Ok(())
    }
    fn end(mut self) -> R {
        if self.pending.is_some() {
            return Err(SerError("map serialized a key without a value".into()));
        }
        sort_map(&mut self.entries)?;
        Ok(Value::Map(self.entries))
    }
}

/// Sorts map entries by the canonical encoding of the key, then of the value
/// (msgpack values are self-delimiting, so comparing the concatenation is
/// comparing key first, value second).
pub fn sort_map(entries: &mut Vec<(Value, Value)>) -> Result<(), SerError> {
    if entries.len() < 2 {
        return Ok(());
    }
    let mut encoded = Vec::with_capacity(entries.len());
    for (k, v) in entries.iter() {
        let mut buf = Vec::new();
        encode_value_into(k, &mut buf).map_err(|e| SerError(e.to_string()))?;
        encode_value_into(v, &mut buf).map_err(|e| SerError(e.to_string()))?;
        encoded.push(buf);
    }
    // Only now that nothing can fail are the entries moved out.
    let mut keyed: Vec<(Vec<u8>, (Value, Value))> =
        encoded.into_iter().zip(entries.drain(..)).collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    entries.extend(keyed.into_iter().map(|(_, e)| e));
    Ok(())
}

/// Collects a struct's (or struct variant's) fields in declaration order.
pub struct StructBuilder {
    ser: ValueSerializer,
    name: Option<&'static str>,
    variant: Option<&'static str>,
    fields: Vec<(&'static str, Value)>,
}

impl StructBuilder {
    fn push<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), SerError> {
        self.fields.push((key, value.serialize(self.ser)?));
        Ok(())
    }

    fn finish(self) -> R {
        Ok(match self.variant {
            None => Value::Struct {
                name: self.name,
                fields: self.fields,
            },
            Some(variant) => Value::Variant {
                name: self.name,
                variant,
                payload: Box::new(Value::Struct {
                    name: None,
                    fields: self.fields,
                }),
            },
        })
    }
}

impl ser::SerializeStruct for StructBuilder {
    type Ok = Value;
    type Error = SerError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), SerError> {
        self.push(key, value)
    }
    fn end(self) -> R {
        self.finish()
    }
}

impl ser::SerializeStructVariant for StructBuilder {
    type Ok = Value;
    type Error = SerError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), SerError> {
        self.push(key, value)
    }
    fn end(self) -> R {
        self.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;
    use std::collections::{BTreeMap, HashMap};

    fn v<T: Serialize + ?Sized>(x: &T) -> Value {
        to_value(x, false).unwrap()
    }
    fn t<T: Serialize + ?Sized>(x: &T) -> Value {
        to_value(x, true).unwrap()
    }

    #[derive(Serialize)]
    struct Point {
        x: i32,
        y: f32,
    }
    #[derive(Serialize)]
    struct Other {
        x: i32,
        y: f32,
    }
    #[derive(Serialize)]
    struct Pair(u8, u8);
    #[derive(Serialize)]
    struct Meters(f64);
    #[derive(Serialize)]
    struct Unit;
    #[derive(Serialize)]
    enum Shape {
        Empty,
        Circle(f64),
        Rect(u32, u32),
        Named { w: u8 },
    }

    #[test]
    fn scalars_untyped() {
        assert_eq!(v(&3_i8), Value::Int(3));
        assert_eq!(v(&3_u64), v(&3_i32));
        assert_eq!(v(&-7_i128), Value::Int(-7));
        assert_eq!(v(&u128::MAX), Value::U128(u128::MAX));
        assert_eq!(v(&true), Value::Bool(true));
        assert_eq!(v(&2.5_f32), Value::Float(2.5));
        assert_eq!(v(&-0.0_f64), Value::Float(-0.0));
        assert_ne!(v(&-0.0_f64), v(&0.0_f64));
        assert_eq!(v(&'c'), Value::Str("c".into()));
        assert_eq!(v("c"), v(&'c'));
        assert_eq!(v(&()), Value::Null);
        assert_eq!(v(&None::<u8>), Value::Null);
        assert_eq!(v(&Some(4_u8)), Value::Int(4));
        assert_eq!(v(&Unit), Value::Null);
        assert_eq!(v(&Meters(1.5)), Value::Float(1.5));
    }

    #[test]
    fn scalars_typed() {
        assert_ne!(t(&3_u64), t(&3_i32));
        assert_eq!(t(&3_i32), t(&3_i32));
        assert_ne!(t(&2.5_f32), t(&2.5_f64));
        assert_ne!(t(&'c'), t("c"));
        assert_ne!(t(&()), t(&None::<u8>));
        assert_eq!(t(&Some(4_u8)), t(&4_u8));
        assert_eq!(t(&3_i32).to_string(), "i32(3)");
        assert_eq!(t(&Meters(1.5)).to_string(), "Meters(f64(1.5))");
        assert_eq!(t(&Unit).to_string(), "Unit");
        assert_eq!(t(&Unit), t(&Unit));
    }

    #[test]
    fn containers() {
        assert_eq!(
            v(&vec![1, 2]),
            Value::Seq(vec![Value::Int(1), Value::Int(2)])
        );
        assert_eq!(v(&(1, 2)), Value::Tuple(vec![Value::Int(1), Value::Int(2)]));
        assert_ne!(v(&vec![1, 2]), v(&(1, 2)), "tuple differs from seq");
        assert_eq!(v(&[1, 2]), v(&(1, 2)), "serde serializes arrays as tuples");
        assert_eq!(v(&Pair(1, 2)), v(&(1_u8, 2_u8)));
        assert_ne!(t(&Pair(1, 2)), t(&(1_u8, 2_u8)));
        assert_eq!(t(&Pair(1, 2)).to_string(), "Pair(u8(1), u8(2))");
        let p = v(&Point { x: 1, y: 2.0 });
        assert_eq!(
            p,
            Value::Struct {
                name: None,
                fields: vec![("x", Value::Int(1)), ("y", Value::Float(2.0))]
            }
        );
        assert_eq!(p, v(&Other { x: 1, y: 2.0 }), "untyped: names dropped");
        assert_ne!(t(&Point { x: 1, y: 2.0 }), t(&Other { x: 1, y: 2.0 }));
        assert_eq!(
            t(&Point { x: 1, y: 2.0 }).to_string(),
            "Point { x: i32(1), y: f32(2.0) }"
        );
    }

    #[test]
    fn enums() {
        assert_eq!(v(&Shape::Empty).to_string(), "Empty");
        assert_eq!(v(&Shape::Circle(1.0)).to_string(), "Circle(1.0)");
        assert_eq!(v(&Shape::Rect(1, 2)).to_string(), "Rect(1, 2)");
        assert_eq!(v(&Shape::Named { w: 3 }).to_string(), "Named { w: 3 }");
        assert_eq!(t(&Shape::Empty).to_string(), "Shape::Empty");
        assert_ne!(v(&Shape::Circle(1.0)), v(&Shape::Empty));
    }

    #[test]
    fn maps_are_sorted() {
        let mut a = HashMap::new();
        let mut b = HashMap::new();
        for i in 0..50_u32 {
            a.insert(format!("k{i}"), i);
        }
        for i in (0..50_u32).rev() {
            b.insert(format!("k{i}"), i);
        }
        assert_eq!(v(&a), v(&b));
        let bt: BTreeMap<_, _> = a.clone().into_iter().collect();
        assert_eq!(v(&a), v(&bt));
        // Sorted by encoded key bytes: fixstr of length 2 ("k9") before
        // length 3 ("k10").
        let small: BTreeMap<&str, u8> = [("k10", 1), ("k9", 2), ("a", 3)].into_iter().collect();
        assert_eq!(v(&small).to_string(), r#"{"a": 3, "k9": 2, "k10": 1}"#);
    }

    #[test]
    fn custom_errors_are_key_errors() {
        struct Bad;
        impl Serialize for Bad {
            fn serialize<S: serde::Serializer>(&self, _s: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("no thanks"))
            }
        }
        match to_value(&(1, Bad), false) {
            Err(klepto::Error::Key { reason }) => assert!(reason.contains("no thanks")),
            other => panic!("{other:?}"),
        }
        struct KeyOnly;
        impl Serialize for KeyOnly {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                let mut m = s.serialize_map(None)?;
                m.serialize_key(&1)?;
                m.end()
            }
        }
        assert!(matches!(
            to_value(&KeyOnly, false),
            Err(klepto::Error::Key { .. })
        ));
    }
}
