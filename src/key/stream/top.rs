//! The whole argument: split into positions by its outermost shape (a
//! tuple's elements, a struct's fields, else the one argument), masks
//! applied and checked, each position handed to the value encoder.

use rmp::encode as mp;
use serde::ser::{self, Serialize};

use super::value::*;
use crate::key::config::{Ignore, KeyConfig};
use crate::key::format::{
    put_word, uint_word, write_key_header, write_marker, write_str, EXT_IGNORED, SCHEMA_VERSION,
    SINGLE_HEADER,
};

/// Writes the whole key of `args` under `config` to `buf` (appending).
#[inline(always)]
pub(crate) fn encode_top<A: Serialize + ?Sized>(
    args: &A,
    config: &KeyConfig,
    buf: &mut Vec<u8>,
) -> Res {
    args.serialize(Top { buf, config })
}
// ----------------------------------------------------------------------------
// The top level: positions, masks.

/// The whole argument: splits it into positions by its outermost shape: a
/// tuple's elements, a struct's fields, else the one argument.
pub(super) struct Top<'b, 'c> {
    buf: &'b mut Vec<u8>,
    config: &'c KeyConfig,
}

/// Whether a mask of `config` ignores position `i` (a struct argument's
/// field `field`).
#[inline]
fn is_ignored(config: &KeyConfig, i: usize, field: Option<&str>) -> bool {
    config.ignore.iter().any(|ig| match ig {
        Ignore::Index(j) => *j == i,
        Ignore::Name(n) => match config.names.iter().position(|m| m == n) {
            Some(j) => j == i,
            None => field == Some(n.as_str()),
        },
    })
}

/// Checks that every mask of `config` ignores one of the `count` positions
/// (`fields`: a struct argument's field names); the first that does not is
/// the error, saying why.
fn check_masks(config: &KeyConfig, count: usize, fields: &[&str]) -> Res {
    for ig in &config.ignore {
        match ig {
            Ignore::Index(i) if *i >= count => {
                return Err(EncodeError::new(format!(
                    "ignore index {i} out of range for {count} argument{}",
                    plural(count)
                )))
            }
            Ignore::Index(_) => {}
            Ignore::Name(name) => match config.names.iter().position(|m| m == name) {
                Some(i) if i >= count => {
                    return Err(EncodeError::new(format!(
                        "ignore name {name:?} is position {i}, out of range for {count} argument{}",
                        plural(count)
                    )))
                }
                Some(_) => {}
                None if fields.contains(&name.as_str()) => {}
                None => return Err(EncodeError::new(unknown_name(name, config, fields))),
            },
        }
    }
    Ok(())
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn unknown_name(name: &str, config: &KeyConfig, fields: &[&str]) -> String {
    let mut known: Vec<&str> = config.names.iter().map(String::as_str).collect();
    known.extend(fields.iter().copied());
    if known.is_empty() {
        format!(
            "ignore name {name:?} matches no argument: the arguments have no names \
             (give names with .names(..) or use a struct argument)"
        )
    } else {
        format!("ignore name {name:?} matches no argument; the names are {known:?}")
    }
}

/// Positions being written: a tuple's or a struct's.
pub(super) struct TopSeq<'b, 'c> {
    buf: &'b mut Vec<u8>,
    config: &'c KeyConfig,
    header: Header,
    count: usize,
    /// A struct argument's field names so far, kept only when there are
    /// masks (their errors list them).
    fields: Vec<&'static str>,
    type_name: Option<&'static str>,
}

impl<'b, 'c> TopSeq<'b, 'c> {
    #[inline(always)]
    pub(super) fn new(top: Top<'b, 'c>, len: usize, type_name: Option<&'static str>) -> Res<Self> {
        let header = if len < 16 {
            // `[1, [` (or `[1, [`…`, name]`) and the fixarray header at once.
            let outer: u128 = if type_name.is_some() { 0x93 } else { 0x92 };
            let word = outer | u128::from(SCHEMA_VERSION) << 8 | (0x90 | len as u128) << 16;
            put_word(top.buf, word, 3);
            Header {
                pos: top.buf.len() - 1,
                declared: len as u32,
                kind: Kind::Array,
            }
        } else {
            ok(write_key_header(top.buf, type_name.is_some()))?;
            Header::write(top.buf, Kind::Array, len32(len, "argument list")?)?
        };
        Ok(TopSeq {
            buf: top.buf,
            config: top.config,
            header,
            count: 0,
            fields: Vec::new(),
            type_name,
        })
    }

    #[inline]
    pub(super) fn position<T: Serialize + ?Sized>(
        &mut self,
        field: Option<&'static str>,
        value: &T,
    ) -> Res {
        if !self.config.ignore.is_empty() {
            self.fields.extend(field);
            if is_ignored(self.config, self.count, field) {
                write_marker(self.buf, EXT_IGNORED);
                self.count += 1;
                return Ok(());
            }
        }
        value.serialize(Enc::position(self.buf, self.config))?;
        self.count += 1;
        Ok(())
    }

    #[inline(always)]
    pub(super) fn finish(self) -> Res {
        if !self.config.ignore.is_empty() {
            check_masks(self.config, self.count, &self.fields)?;
        }
        self.header.finish(self.buf, self.count)?;
        if let Some(n) = self.type_name {
            ok(write_str(self.buf, n))?;
        }
        Ok(())
    }
}

impl ser::SerializeTuple for TopSeq<'_, '_> {
    type Ok = ();
    type Error = EncodeError;
    #[inline]
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Res {
        self.position(None, value)
    }
    #[inline]
    fn end(self) -> Res {
        self.finish()
    }
}

impl ser::SerializeTupleStruct for TopSeq<'_, '_> {
    type Ok = ();
    type Error = EncodeError;
    #[inline]
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Res {
        self.position(None, value)
    }
    #[inline]
    fn end(self) -> Res {
        self.finish()
    }
}

impl ser::SerializeStruct for TopSeq<'_, '_> {
    type Ok = ();
    type Error = EncodeError;
    #[inline]
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Res {
        self.position(Some(key), value)
    }
    #[inline]
    fn end(self) -> Res {
        self.finish()
    }
}

impl<'b, 'c> Top<'b, 'c> {
    /// A `u64` argument with masks or typing (kept out of the common path).
    #[cold]
    #[inline(never)]
    pub(super) fn single_u64(self, v: u64) -> Res {
        self.single_value(|enc| ser::Serializer::serialize_u64(enc, v))
    }

    /// Starts a single-position key `[1, [` and returns the encoder of the
    /// position, or `None` when position 0 is ignored (the marker is then
    /// already written and the value must not be).
    #[inline]
    pub(super) fn single(self) -> Res<Option<Enc<'b>>> {
        let c = self.config;
        if c.ignore.is_empty() {
            // `[1, [` without masks: the common case, in one write.
            put_word(self.buf, SINGLE_HEADER, 3);
            return Ok(Some(Enc::position(self.buf, c)));
        }
        check_masks(c, 1, &[])?;
        ok(write_key_header(self.buf, false))?;
        ok(mp::write_array_len(self.buf, 1))?;
        if is_ignored(c, 0, None) {
            write_marker(self.buf, EXT_IGNORED);
            return Ok(None);
        }
        Ok(Some(Enc::position(self.buf, c)))
    }

    /// Writes the single position with `f`, or only its ignored marker.
    #[inline]
    pub(super) fn single_value(self, f: impl FnOnce(Enc<'b>) -> Res) -> Res {
        match self.single()? {
            Some(enc) => f(enc),
            None => Ok(()),
        }
    }

    /// Opens the compound single position with `f`, or swallows its parts
    /// when it is ignored.
    #[inline]
    pub(super) fn single_compound<C>(self, f: impl FnOnce(Enc<'b>) -> Res<C>) -> Res<Either<C>> {
        Ok(match self.single()? {
            Some(enc) => Either::Write(f(enc)?),
            None => Either::Skip,
        })
    }
}

/// Forwards a scalar `serialize_*` to the single position's encoder.
macro_rules! top_single {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {$(
        #[inline]
        fn $method(self, $($arg: $ty),*) -> Res {
            self.single_value(|enc| ser::Serializer::$method(enc, $($arg),*))
        }
    )*};
}

/// The encoder of a compound single position, or `Skip` when the position
/// is ignored: it then swallows the parts.
pub(super) enum Either<C> {
    Write(C),
    Skip,
}

impl<C: ser::SerializeSeq<Ok = (), Error = EncodeError>> ser::SerializeSeq for Either<C> {
    type Ok = ();
    type Error = EncodeError;
    #[inline]
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Res {
        match self {
            Either::Write(c) => c.serialize_element(value),
            Either::Skip => Ok(()),
        }
    }
    #[inline]
    fn end(self) -> Res {
        match self {
            Either::Write(c) => c.end(),
            Either::Skip => Ok(()),
        }
    }
}

impl<C: ser::SerializeTupleVariant<Ok = (), Error = EncodeError>> ser::SerializeTupleVariant
    for Either<C>
{
    type Ok = ();
    type Error = EncodeError;
    #[inline]
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Res {
        match self {
            Either::Write(c) => c.serialize_field(value),
            Either::Skip => Ok(()),
        }
    }
    #[inline]
    fn end(self) -> Res {
        match self {
            Either::Write(c) => c.end(),
            Either::Skip => Ok(()),
        }
    }
}

impl<C: ser::SerializeMap<Ok = (), Error = EncodeError>> ser::SerializeMap for Either<C> {
    type Ok = ();
    type Error = EncodeError;
    #[inline]
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Res {
        match self {
            Either::Write(c) => c.serialize_key(key),
            Either::Skip => Ok(()),
        }
    }
    #[inline]
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Res {
        match self {
            Either::Write(c) => c.serialize_value(value),
            Either::Skip => Ok(()),
        }
    }
    #[inline]
    fn end(self) -> Res {
        match self {
            Either::Write(c) => c.end(),
            Either::Skip => Ok(()),
        }
    }
}

impl<C: ser::SerializeStructVariant<Ok = (), Error = EncodeError>> ser::SerializeStructVariant
    for Either<C>
{
    type Ok = ();
    type Error = EncodeError;
    #[inline]
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Res {
        match self {
            Either::Write(c) => c.serialize_field(key, value),
            Either::Skip => Ok(()),
        }
    }
    #[inline]
    fn end(self) -> Res {
        match self {
            Either::Write(c) => c.end(),
            Either::Skip => Ok(()),
        }
    }
}

impl<'b, 'c> ser::Serializer for Top<'b, 'c> {
    type Ok = ();
    type Error = EncodeError;
    type SerializeSeq = Either<Compound<'b>>;
    type SerializeTuple = TopSeq<'b, 'c>;
    type SerializeTupleStruct = TopSeq<'b, 'c>;
    type SerializeTupleVariant = Either<Compound<'b>>;
    type SerializeMap = Either<MapEnc<'b>>;
    type SerializeStruct = TopSeq<'b, 'c>;
    type SerializeStructVariant = Either<Compound<'b>>;

    top_single! {
        serialize_bool(v: bool);
        serialize_i8(v: i8);
        serialize_i16(v: i16);
        serialize_i32(v: i32);
        serialize_i128(v: i128);
        serialize_u8(v: u8);
        serialize_u16(v: u16);
        serialize_u32(v: u32);
        serialize_u128(v: u128);
        serialize_f32(v: f32);
        serialize_f64(v: f64);
        serialize_char(v: char);
        serialize_str(v: &str);
        serialize_bytes(v: &[u8]);
        serialize_none();
        serialize_unit_struct(name: &'static str);
        serialize_unit_variant(name: &'static str, index: u32, variant: &'static str);
    }

    #[inline(always)]
    fn serialize_u64(self, v: u64) -> Res {
        if self.config.ignore.is_empty() && !self.config.typed {
            // `[1, [v]]` in one store (the most common key).
            let (word, n) = uint_word(v);
            put_word(self.buf, SINGLE_HEADER | word << 24, 3 + n);
            return Ok(());
        }
        self.single_u64(v)
    }

    #[inline]
    fn serialize_i64(self, v: i64) -> Res {
        match u64::try_from(v) {
            Ok(u) if !self.config.typed => self.serialize_u64(u),
            _ => self.single_value(|enc| ser::Serializer::serialize_i64(enc, v)),
        }
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Res {
        self.single_value(|enc| ser::Serializer::serialize_some(enc, value))
    }

    /// `()`: no positions.
    fn serialize_unit(self) -> Res {
        check_masks(self.config, 0, &[])?;
        ok(write_key_header(self.buf, false))?;
        ok(mp::write_array_len(self.buf, 0))
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, name: &'static str, value: &T) -> Res {
        self.single_value(|enc| ser::Serializer::serialize_newtype_struct(enc, name, value))
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Res {
        self.single_value(|enc| {
            ser::Serializer::serialize_newtype_variant(enc, name, index, variant, value)
        })
    }

    fn serialize_seq(self, len: Option<usize>) -> Res<Self::SerializeSeq> {
        self.single_compound(|enc| ser::Serializer::serialize_seq(enc, len))
    }

    #[inline(always)]
    fn serialize_tuple(self, len: usize) -> Res<TopSeq<'b, 'c>> {
        TopSeq::new(self, len, None)
    }

    #[inline(always)]
    fn serialize_tuple_struct(self, name: &'static str, len: usize) -> Res<TopSeq<'b, 'c>> {
        let name = self.config.typed.then_some(name);
        TopSeq::new(self, len, name)
    }

    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Res<Self::SerializeTupleVariant> {
        self.single_compound(|enc| {
            ser::Serializer::serialize_tuple_variant(enc, name, index, variant, len)
        })
    }

    fn serialize_map(self, len: Option<usize>) -> Res<Self::SerializeMap> {
        self.single_compound(|enc| ser::Serializer::serialize_map(enc, len))
    }

    #[inline(always)]
    fn serialize_struct(self, name: &'static str, len: usize) -> Res<TopSeq<'b, 'c>> {
        let name = self.config.typed.then_some(name);
        TopSeq::new(self, len, name)
    }

    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Res<Self::SerializeStructVariant> {
        self.single_compound(|enc| {
            ser::Serializer::serialize_struct_variant(enc, name, index, variant, len)
        })
    }
}
