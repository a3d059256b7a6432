//! Values as typed arrays: what an HDF5 archive stores as a native dataset.
//!
//! [`Native::of`] runs a value through serde and keeps it only if it is a
//! number or a (nested) sequence of numbers of one type with equal lengths
//! at each depth: `f64`, `Vec<f32>`, `[i64; 3]`, `Vec<Vec<u8>>` (rows of
//! equal length) become an array of that element type and shape (`[]` for
//! a scalar). Anything else (strings, options, structs, maps, empty or
//! ragged sequences, mixed element types) is not native, and the archive
//! stores it as an envelope instead.
//!
//! [`Native::decode`] reads a `V` back through serde, strictly: an `f64`
//! array answers only `f64` requests (not `f32`, not `i64`), a 2-D array
//! only a sequence of sequences, so reading with another type than the one
//! written is an error, never a converted value.

use std::any::{Any, TypeId};
use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, Visitor};
use serde::ser::{self, Serialize};

/// The deepest nesting kept as an array (HDF5 allows 32 dimensions).
const MAX_RANK: usize = 32;

/// Declares [`Data`] (one vector per element type) and [`Dtype`].
macro_rules! element_types {
    ($($variant:ident $ty:ident $name:literal),* $(,)?) => {
        /// The element type of a native array: a fixed-size number that
        /// HDF5 and NumPy both have.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum Dtype {
            $($variant),*
        }

        impl Dtype {
            /// The Rust name of the type (`f64`), for messages.
            pub(crate) fn name(self) -> &'static str {
                match self {
                    $(Dtype::$variant => $name),*
                }
            }
        }

        /// The elements of a native array, in row-major order.
        #[derive(Debug, Clone, PartialEq)]
        pub(crate) enum Data {
            $(
                #[doc = concat!("`", $name, "` elements.")]
                $variant(Vec<$ty>)
            ),*
        }

        impl Data {
            /// The element type.
            pub(crate) fn dtype(&self) -> Dtype {
                match self {
                    $(Data::$variant(_) => Dtype::$variant),*
                }
            }

            /// The number of elements.
            pub(crate) fn len(&self) -> usize {
                match self {
                    $(Data::$variant(v) => v.len()),*
                }
            }

            /// The elements' bytes (little-endian), for the checksum.
            pub(crate) fn for_each_bytes(&self, mut f: impl FnMut(&[u8])) {
                match self {
                    $(Data::$variant(v) => v.iter().for_each(|x| f(&x.to_le_bytes()))),*
                }
            }

            /// An empty vector of `dtype` elements, with room for `n`.
            fn with_capacity(dtype: Dtype, n: usize) -> Data {
                match dtype {
                    $(Dtype::$variant => Data::$variant(Vec::with_capacity(n))),*
                }
            }
        }

        impl Native {
            /// The array as a `V`, like [`decode`](Native::decode); a
            /// vector read as a `Vec` of its own element type is moved out,
            /// not copied element by element.
            pub(crate) fn into_value<V: DeserializeOwned + 'static>(self) -> Result<V, DeError> {
                let vector = self.shape.len() == 1;
                match self.data {
                    $(
                        Data::$variant(v) if vector && TypeId::of::<V>() == TypeId::of::<Vec<$ty>>() => {
                            let any: Box<dyn Any> = Box::new(v);
                            Ok(*any.downcast::<V>().expect("the type was checked"))
                        }
                    )*
                    data => Native { data, shape: self.shape }.decode(),
                }
            }
        }

        /// Hands element `i` to the visitor method of its type.
        fn visit_element<'de, W: Visitor<'de>>(data: &Data, i: usize, visitor: W) -> Result<W::Value, DeError> {
            match data {
                $(Data::$variant(v) => paste_visit!(visitor, $ty, v[i])),*
            }
        }
    };
}

/// `visitor.visit_<ty>(x)`.
macro_rules! paste_visit {
    ($visitor:ident, i8, $x:expr) => {
        $visitor.visit_i8($x)
    };
    ($visitor:ident, i16, $x:expr) => {
        $visitor.visit_i16($x)
    };
    ($visitor:ident, i32, $x:expr) => {
        $visitor.visit_i32($x)
    };
    ($visitor:ident, i64, $x:expr) => {
        $visitor.visit_i64($x)
    };
    ($visitor:ident, u8, $x:expr) => {
        $visitor.visit_u8($x)
    };
    ($visitor:ident, u16, $x:expr) => {
        $visitor.visit_u16($x)
    };
    ($visitor:ident, u32, $x:expr) => {
        $visitor.visit_u32($x)
    };
    ($visitor:ident, u64, $x:expr) => {
        $visitor.visit_u64($x)
    };
    ($visitor:ident, f32, $x:expr) => {
        $visitor.visit_f32($x)
    };
    ($visitor:ident, f64, $x:expr) => {
        $visitor.visit_f64($x)
    };
}

element_types! {
    I8 i8 "i8", I16 i16 "i16", I32 i32 "i32", I64 i64 "i64",
    U8 u8 "u8", U16 u16 "u16", U32 u32 "u32", U64 u64 "u64",
    F32 f32 "f32", F64 f64 "f64",
}

/// A value as a typed array: its elements and its shape (`[]` for a
/// scalar, `[n]` for a vector, `[rows, columns]` for a matrix, and so on).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Native {
    pub(crate) data: Data,
    pub(crate) shape: Vec<usize>,
}

impl Native {
    /// `value` as a typed array, or `None` if it is not a number or an
    /// evenly nested sequence of numbers of one type (see the module).
    pub(crate) fn of<V: Serialize + ?Sized>(value: &V) -> Option<Native> {
        let mut builder = Builder::default();
        value.serialize(&mut builder).ok()?;
        let data = builder.data?;
        let native = Native {
            shape: builder.shape,
            data,
        };
        let expected: usize = native.shape.iter().product();
        (native.data.len() == expected).then_some(native)
    }

    /// Builds `shape` and `data` read from storage into a native array;
    /// `None` if the element count does not match the shape.
    pub(crate) fn from_parts(data: Data, shape: Vec<usize>) -> Option<Native> {
        let expected = shape.iter().try_fold(1_usize, |n, &d| n.checked_mul(d))?;
        (data.len() == expected && shape.len() <= MAX_RANK).then_some(Native { data, shape })
    }

    /// Reads a `V` from the array, strictly typed (see the module); the
    /// error says what was stored and what `V` asked for.
    pub(crate) fn decode<V: DeserializeOwned>(&self) -> Result<V, DeError> {
        let mut next = 0;
        let value = V::deserialize(Reader {
            native: self,
            depth: 0,
            next: &mut next,
        })?;
        Ok(value)
    }

    /// What is stored, for messages: `f64 array of shape [2, 3]`.
    pub(crate) fn describe(&self) -> String {
        if self.shape.is_empty() {
            format!("{} scalar", self.data.dtype().name())
        } else {
            format!(
                "{} array of shape {:?}",
                self.data.dtype().name(),
                self.shape
            )
        }
    }
}

// ---------------------------------------------------------------- writing --

/// Why a value is not native (never shown: the value is then stored as an
/// envelope).
#[derive(Debug)]
pub(crate) struct NotNative;

impl fmt::Display for NotNative {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a numeric array")
    }
}

impl std::error::Error for NotNative {}

impl ser::Error for NotNative {
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        NotNative
    }
}

/// Collects a value's numbers and checks that they form an array.
#[derive(Default)]
struct Builder {
    data: Option<Data>,
    /// The length of the sequences at each depth, as first seen.
    shape: Vec<usize>,
    /// The rank, fixed by the first number seen (its depth).
    rank: Option<usize>,
    depth: usize,
    /// Items seen so far in each open sequence.
    seen: Vec<usize>,
}

impl Builder {
    /// Adds one number of type `dtype`, pushed by `push`.
    fn number(
        &mut self,
        dtype: Dtype,
        push: impl FnOnce(&mut Data) -> bool,
    ) -> Result<(), NotNative> {
        match self.rank {
            None => self.rank = Some(self.depth),
            Some(rank) if rank != self.depth => return Err(NotNative),
            Some(_) => {}
        }
        let data = self.data.get_or_insert_with(|| {
            let hint = self.shape.iter().product::<usize>().max(1);
            Data::with_capacity(dtype, hint)
        });
        if push(data) {
            Ok(())
        } else {
            Err(NotNative)
        }
    }

    /// Opens a sequence of `len` items at the current depth.
    fn open(&mut self, len: Option<usize>) -> Result<(), NotNative> {
        if self.rank.is_some_and(|rank| rank <= self.depth) || self.depth >= MAX_RANK {
            return Err(NotNative);
        }
        let len = len.ok_or(NotNative)?;
        if len == 0 {
            return Err(NotNative);
        }
        match self.shape.get(self.depth) {
            Some(&seen) if seen != len => return Err(NotNative),
            Some(_) => {}
            None => self.shape.push(len),
        }
        self.depth += 1;
        self.seen.push(0);
        Ok(())
    }

    /// Counts one item of the innermost open sequence.
    fn item(&mut self) {
        if let Some(n) = self.seen.last_mut() {
            *n += 1;
        }
    }

    /// Closes the innermost sequence: it must have had as many items as
    /// it announced (a `Serialize` impl may announce wrongly).
    fn close(&mut self) -> Result<(), NotNative> {
        self.depth -= 1;
        let seen = self.seen.pop().unwrap_or(0);
        if seen == self.shape[self.depth] {
            Ok(())
        } else {
            Err(NotNative)
        }
    }
}

/// `fn serialize_<ty>(self, v) -> ...` for each element type.
macro_rules! serialize_numbers {
    ($($method:ident $ty:ident $variant:ident),* $(,)?) => {
        $(
            fn $method(self, v: $ty) -> Result<(), NotNative> {
                self.number(Dtype::$variant, |data| match data {
                    Data::$variant(vec) => {
                        vec.push(v);
                        true
                    }
                    _ => false,
                })
            }
        )*
    };
}

impl ser::Serializer for &mut Builder {
    type Ok = ();
    type Error = NotNative;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = ser::Impossible<(), NotNative>;
    type SerializeTupleVariant = ser::Impossible<(), NotNative>;
    type SerializeMap = ser::Impossible<(), NotNative>;
    type SerializeStruct = ser::Impossible<(), NotNative>;
    type SerializeStructVariant = ser::Impossible<(), NotNative>;

    serialize_numbers! {
        serialize_i8 i8 I8, serialize_i16 i16 I16, serialize_i32 i32 I32, serialize_i64 i64 I64,
        serialize_u8 u8 U8, serialize_u16 u16 U16, serialize_u32 u32 U32, serialize_u64 u64 U64,
        serialize_f32 f32 F32, serialize_f64 f64 F64,
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<Self, NotNative> {
        self.open(len)?;
        Ok(self)
    }

    fn serialize_tuple(self, len: usize) -> Result<Self, NotNative> {
        self.open(Some(len))?;
        Ok(self)
    }

    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), NotNative> {
        value.serialize(self)
    }

    fn serialize_bool(self, _v: bool) -> Result<(), NotNative> {
        Err(NotNative)
    }
    fn serialize_char(self, _v: char) -> Result<(), NotNative> {
        Err(NotNative)
    }
    fn serialize_str(self, _v: &str) -> Result<(), NotNative> {
        Err(NotNative)
    }
    fn serialize_bytes(self, _v: &[u8]) -> Result<(), NotNative> {
        Err(NotNative)
    }
    fn serialize_none(self) -> Result<(), NotNative> {
        Err(NotNative)
    }
    fn serialize_some<T: ?Sized + Serialize>(self, _value: &T) -> Result<(), NotNative> {
        Err(NotNative)
    }
    fn serialize_unit(self) -> Result<(), NotNative> {
        Err(NotNative)
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), NotNative> {
        Err(NotNative)
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
    ) -> Result<(), NotNative> {
        Err(NotNative)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), NotNative> {
        Err(NotNative)
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, NotNative> {
        Err(NotNative)
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, NotNative> {
        Err(NotNative)
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, NotNative> {
        Err(NotNative)
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, NotNative> {
        Err(NotNative)
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, NotNative> {
        Err(NotNative)
    }
}

impl ser::SerializeSeq for &mut Builder {
    type Ok = ();
    type Error = NotNative;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), NotNative> {
        self.item();
        value.serialize(&mut **self)
    }
    fn end(self) -> Result<(), NotNative> {
        self.close()
    }
}

impl ser::SerializeTuple for &mut Builder {
    type Ok = ();
    type Error = NotNative;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), NotNative> {
        self.item();
        value.serialize(&mut **self)
    }
    fn end(self) -> Result<(), NotNative> {
        self.close()
    }
}

// ---------------------------------------------------------------- reading --

/// Why a stored array is not the type asked for.
#[derive(Debug)]
pub(crate) struct DeError(String);

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError(msg.to_string())
    }
}

/// Reads the array at one depth: a sequence above the rank, a number at it.
struct Reader<'a> {
    native: &'a Native,
    depth: usize,
    /// The next element to hand out (shared by every depth).
    next: &'a mut usize,
}

impl Reader<'_> {
    fn at_number(&self) -> bool {
        self.depth == self.native.shape.len()
    }

    /// What this depth holds, as serde describes unexpected input.
    fn unexpected(&self) -> de::Unexpected<'static> {
        if self.at_number() {
            match self.native.data.dtype() {
                Dtype::F32 | Dtype::F64 => de::Unexpected::Other("a floating point number"),
                Dtype::I8 | Dtype::I16 | Dtype::I32 | Dtype::I64 => {
                    de::Unexpected::Other("a signed integer")
                }
                _ => de::Unexpected::Other("an unsigned integer"),
            }
        } else {
            de::Unexpected::Seq
        }
    }

    fn number<'de, W: Visitor<'de>>(self, visitor: W) -> Result<W::Value, DeError> {
        let i = *self.next;
        if i >= self.native.data.len() {
            return Err(DeError(
                "the array has fewer elements than its shape".into(),
            ));
        }
        *self.next += 1;
        visit_element(&self.native.data, i, visitor)
    }

    fn seq<'de, W: Visitor<'de>>(self, visitor: W) -> Result<W::Value, DeError> {
        let len = self.native.shape[self.depth];
        let mut items = Items {
            native: self.native,
            depth: self.depth + 1,
            next: self.next,
            left: len,
        };
        let value = visitor.visit_seq(&mut items)?;
        if items.left > 0 {
            return Err(de::Error::invalid_length(len, &"fewer elements"));
        }
        Ok(value)
    }

    fn refuse<'de, W: Visitor<'de>>(self, visitor: W) -> Result<W::Value, DeError> {
        Err(de::Error::invalid_type(self.unexpected(), &visitor))
    }
}

/// `fn deserialize_<ty>` accepting only a number of exactly that type.
macro_rules! deserialize_numbers {
    ($($method:ident $variant:ident),* $(,)?) => {
        $(
            fn $method<W: Visitor<'de>>(self, visitor: W) -> Result<W::Value, DeError> {
                if self.at_number() && self.native.data.dtype() == Dtype::$variant {
                    self.number(visitor)
                } else {
                    self.refuse(visitor)
                }
            }
        )*
    };
}

/// `fn deserialize_<what>` that no array answers.
macro_rules! refuse {
    ($($method:ident),* $(,)?) => {
        $(
            fn $method<W: Visitor<'de>>(self, visitor: W) -> Result<W::Value, DeError> {
                self.refuse(visitor)
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for Reader<'_> {
    type Error = DeError;

    fn deserialize_any<W: Visitor<'de>>(self, visitor: W) -> Result<W::Value, DeError> {
        if self.at_number() {
            self.number(visitor)
        } else {
            self.seq(visitor)
        }
    }

    deserialize_numbers! {
        deserialize_i8 I8, deserialize_i16 I16, deserialize_i32 I32, deserialize_i64 I64,
        deserialize_u8 U8, deserialize_u16 U16, deserialize_u32 U32, deserialize_u64 U64,
        deserialize_f32 F32, deserialize_f64 F64,
    }

    fn deserialize_seq<W: Visitor<'de>>(self, visitor: W) -> Result<W::Value, DeError> {
        if self.at_number() {
            self.refuse(visitor)
        } else {
            self.seq(visitor)
        }
    }

    fn deserialize_tuple<W: Visitor<'de>>(
        self,
        len: usize,
        visitor: W,
    ) -> Result<W::Value, DeError> {
        if self.at_number() {
            self.refuse(visitor)
        } else if self.native.shape[self.depth] != len {
            Err(de::Error::invalid_length(
                self.native.shape[self.depth],
                &visitor,
            ))
        } else {
            self.seq(visitor)
        }
    }

    fn deserialize_newtype_struct<W: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: W,
    ) -> Result<W::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    refuse! {
        deserialize_bool, deserialize_i128, deserialize_u128, deserialize_char, deserialize_str,
        deserialize_string, deserialize_bytes, deserialize_byte_buf, deserialize_option,
        deserialize_unit, deserialize_map, deserialize_identifier, deserialize_ignored_any,
    }

    fn deserialize_unit_struct<W: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: W,
    ) -> Result<W::Value, DeError> {
        self.refuse(visitor)
    }

    fn deserialize_tuple_struct<W: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: W,
    ) -> Result<W::Value, DeError> {
        self.refuse(visitor)
    }

    fn deserialize_struct<W: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: W,
    ) -> Result<W::Value, DeError> {
        self.refuse(visitor)
    }

    fn deserialize_enum<W: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: W,
    ) -> Result<W::Value, DeError> {
        self.refuse(visitor)
    }
}

/// The items of one sequence.
struct Items<'a> {
    native: &'a Native,
    depth: usize,
    next: &'a mut usize,
    left: usize,
}

impl<'de> de::SeqAccess<'de> for Items<'_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(Reader {
            native: self.native,
            depth: self.depth,
            next: self.next,
        })
        .map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[test]
    fn numbers_and_even_sequences_are_native() {
        let n = Native::of(&2.5_f64).unwrap();
        assert_eq!((n.data, n.shape), (Data::F64(vec![2.5]), vec![]));
        let n = Native::of(&vec![1_i32, 2, 3]).unwrap();
        assert_eq!((n.data, n.shape), (Data::I32(vec![1, 2, 3]), vec![3]));
        let n = Native::of(&vec![vec![1_u8, 2], vec![3, 4], vec![5, 6]]).unwrap();
        assert_eq!(n.shape, vec![3, 2]);
        assert_eq!(n.data, Data::U8(vec![1, 2, 3, 4, 5, 6]));
        let n = Native::of(&[[1.0_f32; 2]; 4]).unwrap();
        assert_eq!((n.data.dtype(), n.shape), (Dtype::F32, vec![4, 2]));
        let n = Native::of(&vec![vec![vec![1_u64]; 2]; 3]).unwrap();
        assert_eq!(n.shape, vec![3, 2, 1]);
    }

    #[test]
    fn everything_else_is_not_native() {
        assert!(Native::of("text").is_none());
        assert!(Native::of(&Some(1.0)).is_none());
        assert!(Native::of(&true).is_none());
        assert!(Native::of(&Vec::<f64>::new()).is_none());
        assert!(Native::of(&vec![vec![1.0], vec![]]).is_none());
        assert!(
            Native::of(&vec![vec![1.0, 2.0], vec![3.0]]).is_none(),
            "ragged"
        );
        assert!(Native::of(&(1_i64, 2.0_f64)).is_none(), "mixed types");
        assert!(
            Native::of(&vec![(vec![1.0], 1.0), (vec![2.0], 2.0)]).is_none(),
            "tuples of an array and a number"
        );
        #[derive(Serialize)]
        struct S {
            x: f64,
        }
        assert!(Native::of(&S { x: 1.0 }).is_none());
        assert!(Native::of(&std::collections::BTreeMap::from([(1, 2)])).is_none());
    }

    fn back<V: Serialize + DeserializeOwned + PartialEq + fmt::Debug + 'static>(v: V) {
        let native = Native::of(&v).expect("native");
        assert_eq!(native.decode::<V>().unwrap(), v);
        assert_eq!(native.into_value::<V>().unwrap(), v);
    }

    #[test]
    fn every_native_value_reads_back_exactly() {
        back(7_i8);
        back(-7_i16);
        back(i32::MIN);
        back(i64::MAX);
        back(u8::MAX);
        back(u16::MAX);
        back(u32::MAX);
        back(u64::MAX);
        back(1.5_f32);
        back(f64::MIN_POSITIVE);
        back(vec![0.1_f64, -0.0, f64::INFINITY]);
        back(vec![vec![1_i64, 2, 3], vec![4, 5, 6]]);
        back([[1_u16, 2], [3, 4]]);
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct Meters(Vec<f64>);
        back(Meters(vec![1.0, 2.0]));
        let nan = Native::of(&f64::NAN).unwrap().decode::<f64>().unwrap();
        assert!(nan.is_nan());
    }

    #[test]
    fn another_type_is_an_error_naming_what_was_stored() {
        let stored = Native::of(&vec![1.0_f64, 2.0]).unwrap();
        let err = stored.decode::<Vec<f32>>().unwrap_err().to_string();
        assert!(err.contains("floating point"), "{err}");
        assert!(stored.decode::<Vec<i64>>().is_err());
        assert!(stored.decode::<f64>().is_err());
        assert!(stored.decode::<Vec<Vec<f64>>>().is_err());
        assert!(stored.decode::<String>().is_err());
        assert!(stored.decode::<[f64; 3]>().is_err(), "wrong length");
        assert_eq!(stored.decode::<[f64; 2]>().unwrap(), [1.0, 2.0]);
        let m = Native::of(&vec![vec![1_u8, 2]; 2]).unwrap();
        assert!(m.decode::<Vec<u8>>().is_err());
        assert!(Native::of(&5_i64).unwrap().decode::<i32>().is_err());
        assert!(Native::of(&5_i64).unwrap().decode::<u64>().is_err());
    }

    #[test]
    fn untyped_readers_get_the_stored_numbers() {
        let stored = Native::of(&vec![vec![1_i64, 2], vec![3, 4]]).unwrap();
        let json: serde_json::Value = stored.decode().unwrap();
        assert_eq!(json, serde_json::json!([[1, 2], [3, 4]]));
    }

    #[test]
    fn parts_from_storage_must_match_their_shape() {
        assert!(Native::from_parts(Data::F64(vec![1.0; 6]), vec![2, 3]).is_some());
        assert!(Native::from_parts(Data::F64(vec![1.0; 5]), vec![2, 3]).is_none());
        assert!(Native::from_parts(Data::F64(vec![]), vec![usize::MAX, 2]).is_none());
        assert!(Native::from_parts(Data::U8(vec![1]), vec![]).is_some());
    }
}
