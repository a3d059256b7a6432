//! The value encoder: one position's value (and everything below it)
//! written straight into the buffer, and the fast path's error.

use rmp::encode as mp;
use serde::ser::{self, Serialize};

use crate::key::config::KeyConfig;
use crate::key::float::{canonical_float, round_float};
use crate::key::format::{
    put_word, uint_word, write_bin, write_int, write_marker, write_str, write_struct_header,
    write_typed_header, write_u128, write_variant_header, EXT_TUPLE,
};
use crate::Error;

/// Why arguments have no key: the encoder's one error, one pointer wide so
/// that results stay small on the hit path. Becomes [`Error::Key`] with the
/// same reason.
#[derive(Debug)]
#[allow(clippy::box_collection)] // a thin pointer: `Box<str>` is two words
pub(crate) struct EncodeError(Box<String>);

impl EncodeError {
    #[cold]
    pub(super) fn new(reason: impl Into<String>) -> Self {
        EncodeError(Box::new(reason.into()))
    }
}

impl std::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EncodeError {}

impl ser::Error for EncodeError {
    #[cold]
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        EncodeError::new(msg.to_string())
    }
}

impl From<EncodeError> for Error {
    fn from(e: EncodeError) -> Self {
        Error::key(*e.0)
    }
}

pub(super) type Res<T = ()> = Result<T, EncodeError>;

// ----------------------------------------------------------------------------
// Low-level helpers.

/// A writer's result: the writers of `format` give their reasons; writes
/// to a `Vec` cannot fail otherwise.
#[inline]
pub(super) fn ok<T, E: Into<EncodeError>>(r: Result<T, E>) -> Res {
    r.map(drop).map_err(Into::into)
}

impl From<Error> for EncodeError {
    #[cold]
    fn from(e: Error) -> Self {
        match e {
            Error::Key { reason } => EncodeError::new(reason),
            other => EncodeError::new(format!("cannot encode the key: {other}")),
        }
    }
}

impl From<std::io::Error> for EncodeError {
    #[cold]
    fn from(e: std::io::Error) -> Self {
        EncodeError::new(format!("cannot encode the key: {e}"))
    }
}

impl From<mp::ValueWriteError<std::io::Error>> for EncodeError {
    #[cold]
    fn from(e: mp::ValueWriteError<std::io::Error>) -> Self {
        EncodeError::new(format!("cannot encode the key: {e}"))
    }
}

#[inline]
pub(super) fn len32(n: usize, what: &str) -> Res<u32> {
    u32::try_from(n)
        .map_err(|_| EncodeError::new(format!("{what} of length {n} is too long for a key")))
}

/// Size of the smallest array/map header for `n` elements.
#[inline]
pub(super) fn header_size(n: u32) -> usize {
    if n < 16 {
        1
    } else if n < 65536 {
        3
    } else {
        5
    }
}

#[derive(Clone, Copy)]
pub(super) enum Kind {
    Array,
    Map,
}

/// A header written with a declared count, corrected at the end if the
/// actual count differs.
#[derive(Clone, Copy)]
pub(super) struct Header {
    pub(super) pos: usize,
    pub(super) declared: u32,
    pub(super) kind: Kind,
}

impl Header {
    #[inline]
    pub(super) fn write(buf: &mut Vec<u8>, kind: Kind, declared: u32) -> Res<Header> {
        let pos = buf.len();
        match kind {
            Kind::Array => ok(mp::write_array_len(buf, declared))?,
            Kind::Map => ok(mp::write_map_len(buf, declared))?,
        }
        Ok(Header {
            pos,
            declared,
            kind,
        })
    }

    #[inline]
    pub(super) fn finish(self, buf: &mut Vec<u8>, actual: usize) -> Res {
        let what = match self.kind {
            Kind::Array => "sequence",
            Kind::Map => "map",
        };
        let actual = len32(actual, what)?;
        if actual == self.declared {
            return Ok(());
        }
        let mut h = Vec::with_capacity(5);
        match self.kind {
            Kind::Array => ok(mp::write_array_len(&mut h, actual))?,
            Kind::Map => ok(mp::write_map_len(&mut h, actual))?,
        }
        let old = header_size(self.declared);
        buf.splice(self.pos..self.pos + old, h);
        Ok(())
    }
}

// ----------------------------------------------------------------------------
// The value encoder.

/// Encodes one value. `round`: round a float met here (through `Some`,
/// newtypes); `deep`: children round too.
pub(super) struct Enc<'b> {
    buf: &'b mut Vec<u8>,
    typed: bool,
    tol: Option<i32>,
    round: bool,
    deep: bool,
}

impl<'b> Enc<'b> {
    /// The encoder of a top-level position: it rounds a float met here.
    #[inline]
    pub(super) fn position(buf: &'b mut Vec<u8>, c: &KeyConfig) -> Self {
        Enc {
            buf,
            typed: c.typed,
            tol: c.tol,
            round: true,
            deep: c.deep,
        }
    }

    /// The encoder of a child (element, field, key, value, payload).
    #[inline]
    pub(super) fn child(&mut self) -> Enc<'_> {
        Enc {
            buf: self.buf,
            typed: self.typed,
            tol: self.tol,
            round: self.deep,
            deep: self.deep,
        }
    }

    #[inline(always)]
    pub(super) fn scalar_type(&mut self, ty: &str) -> Res {
        if self.typed {
            ok(write_typed_header(self.buf, ty))?;
        }
        Ok(())
    }

    #[inline]
    pub(super) fn name(&self, name: &'static str) -> Option<&'static str> {
        self.typed.then_some(name)
    }

    #[inline]
    pub(super) fn int(mut self, ty: &str, i: i128) -> Res {
        self.scalar_type(ty)?;
        ok(write_int(self.buf, i))
    }

    /// A non-negative integer up to `u64::MAX` (the common case, without
    /// going through `i128`).
    #[inline]
    pub(super) fn uint(mut self, ty: &str, u: u64) -> Res {
        self.scalar_type(ty)?;
        let (word, n) = uint_word(u);
        put_word(self.buf, word, n);
        Ok(())
    }

    /// A signed integer that fits `i64`.
    #[inline]
    pub(super) fn sint(mut self, ty: &str, i: i64) -> Res {
        match u64::try_from(i) {
            Ok(u) => self.uint(ty, u),
            Err(_) => {
                self.scalar_type(ty)?;
                ok(mp::write_sint(self.buf, i))
            }
        }
    }

    /// A float, rounded when this encoder rounds (its type already written).
    #[inline]
    pub(super) fn float_untyped(self, x: f64) -> Res {
        let x = match self.tol {
            Some(t) if self.round => round_float(x, t),
            _ => x,
        };
        // float64: `cb` and the 8 bytes big-endian.
        let bits = canonical_float(x).to_bits().swap_bytes();
        put_word(self.buf, 0xcb | u128::from(bits) << 8, 9);
        Ok(())
    }

    /// `[TUPLE, e...` with the declared element count.
    pub(super) fn tuple(self, len: usize) -> Res<Compound<'b>> {
        let header = Header::write(
            self.buf,
            Kind::Array,
            len32(len, "tuple")?
                .checked_add(1)
                .ok_or_else(|| EncodeError::new("tuple too long for a key"))?,
        )?;
        write_marker(self.buf, EXT_TUPLE);
        Ok(Compound::new(self, header, 1))
    }

    /// `[STRUCT, name|nil, {` with the declared field count.
    pub(super) fn strukt(self, name: Option<&str>, len: usize) -> Res<Compound<'b>> {
        ok(write_struct_header(self.buf, name))?;
        let header = Header::write(self.buf, Kind::Map, len32(len, "struct")?)?;
        Ok(Compound::new(self, header, 0))
    }

    /// `[VARIANT, enum|nil, "variant", ` (the payload follows).
    pub(super) fn variant_header(&mut self, name: &'static str, variant: &str) -> Res {
        ok(write_variant_header(self.buf, self.name(name), variant))
    }
}

/// An array or struct map being written: counts its elements and fixes the
/// header at the end.
pub(super) struct Compound<'b> {
    enc: Enc<'b>,
    header: Header,
    count: usize,
}

impl<'b> Compound<'b> {
    pub(super) fn new(enc: Enc<'b>, header: Header, count: usize) -> Self {
        Compound { enc, header, count }
    }

    #[inline]
    pub(super) fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Res {
        value.serialize(self.enc.child())?;
        self.count += 1;
        Ok(())
    }

    #[inline]
    pub(super) fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Res {
        ok(write_str(self.enc.buf, key))?;
        value.serialize(self.enc.child())?;
        self.count += 1;
        Ok(())
    }

    #[inline]
    fn end(self) -> Res {
        self.header.finish(self.enc.buf, self.count)
    }
}

impl ser::SerializeSeq for Compound<'_> {
    type Ok = ();
    type Error = EncodeError;
    #[inline]
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Res {
        self.element(value)
    }
    #[inline]
    fn end(self) -> Res {
        Compound::end(self)
    }
}

impl ser::SerializeTuple for Compound<'_> {
    type Ok = ();
    type Error = EncodeError;
    #[inline]
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Res {
        self.element(value)
    }
    #[inline]
    fn end(self) -> Res {
        Compound::end(self)
    }
}

impl ser::SerializeTupleStruct for Compound<'_> {
    type Ok = ();
    type Error = EncodeError;
    #[inline]
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Res {
        self.element(value)
    }
    #[inline]
    fn end(self) -> Res {
        Compound::end(self)
    }
}

impl ser::SerializeTupleVariant for Compound<'_> {
    type Ok = ();
    type Error = EncodeError;
    #[inline]
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Res {
        self.element(value)
    }
    #[inline]
    fn end(self) -> Res {
        Compound::end(self)
    }
}

impl ser::SerializeStruct for Compound<'_> {
    type Ok = ();
    type Error = EncodeError;
    #[inline]
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Res {
        self.field(key, value)
    }
    #[inline]
    fn end(self) -> Res {
        Compound::end(self)
    }
}

impl ser::SerializeStructVariant for Compound<'_> {
    type Ok = ();
    type Error = EncodeError;
    #[inline]
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Res {
        self.field(key, value)
    }
    #[inline]
    fn end(self) -> Res {
        Compound::end(self)
    }
}

/// A map being written: entries go to the buffer as they come, then are
/// sorted by their bytes (key, then value) and rewritten after the header.
pub(super) struct MapEnc<'b> {
    enc: Enc<'b>,
    start: usize,
    entries: Vec<usize>,
    pending_key: bool,
}

impl ser::SerializeMap for MapEnc<'_> {
    type Ok = ();
    type Error = EncodeError;
    #[inline]
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Res {
        if self.pending_key {
            return Err(EncodeError::new(
                "map serialized two keys without a value between them",
            ));
        }
        self.entries.push(self.enc.buf.len());
        key.serialize(self.enc.child())?;
        self.pending_key = true;
        Ok(())
    }
    #[inline]
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Res {
        if !self.pending_key {
            return Err(EncodeError::new("map serialized a value without a key"));
        }
        value.serialize(self.enc.child())?;
        self.pending_key = false;
        Ok(())
    }
    #[inline]
    fn end(self) -> Res {
        if self.pending_key {
            return Err(EncodeError::new("map serialized a key without a value"));
        }
        let buf = self.enc.buf;
        let n = len32(self.entries.len(), "map")?;
        let region = buf.split_off(self.start);
        let base = self.start;
        let mut ranges: Vec<(usize, usize)> = Vec::with_capacity(self.entries.len());
        for (i, &s) in self.entries.iter().enumerate() {
            let e = self
                .entries
                .get(i + 1)
                .copied()
                .unwrap_or(base + region.len());
            ranges.push((s - base, e - base));
        }
        ranges.sort_by(|a, b| region[a.0..a.1].cmp(&region[b.0..b.1]));
        ok(mp::write_map_len(buf, n))?;
        for (s, e) in ranges {
            buf.extend_from_slice(&region[s..e]);
        }
        Ok(())
    }
}

impl<'b> ser::Serializer for Enc<'b> {
    type Ok = ();
    type Error = EncodeError;
    type SerializeSeq = Compound<'b>;
    type SerializeTuple = Compound<'b>;
    type SerializeTupleStruct = Compound<'b>;
    type SerializeTupleVariant = Compound<'b>;
    type SerializeMap = MapEnc<'b>;
    type SerializeStruct = Compound<'b>;
    type SerializeStructVariant = Compound<'b>;

    fn serialize_bool(mut self, v: bool) -> Res {
        self.scalar_type("bool")?;
        ok(mp::write_bool(self.buf, v))
    }
    fn serialize_i8(self, v: i8) -> Res {
        self.sint("i8", v.into())
    }
    fn serialize_i16(self, v: i16) -> Res {
        self.sint("i16", v.into())
    }
    fn serialize_i32(self, v: i32) -> Res {
        self.sint("i32", v.into())
    }
    #[inline]
    fn serialize_i64(self, v: i64) -> Res {
        self.sint("i64", v)
    }
    fn serialize_i128(self, v: i128) -> Res {
        self.int("i128", v)
    }
    fn serialize_u8(self, v: u8) -> Res {
        self.uint("u8", v.into())
    }
    fn serialize_u16(self, v: u16) -> Res {
        self.uint("u16", v.into())
    }
    fn serialize_u32(self, v: u32) -> Res {
        self.uint("u32", v.into())
    }
    #[inline]
    fn serialize_u64(self, v: u64) -> Res {
        self.uint("u64", v)
    }
    fn serialize_u128(mut self, v: u128) -> Res {
        self.scalar_type("u128")?;
        ok(write_u128(self.buf, v))
    }
    fn serialize_f32(mut self, v: f32) -> Res {
        self.scalar_type("f32")?;
        self.float_untyped(f64::from(v))
    }
    #[inline]
    fn serialize_f64(mut self, v: f64) -> Res {
        self.scalar_type("f64")?;
        self.float_untyped(v)
    }
    fn serialize_char(mut self, v: char) -> Res {
        self.scalar_type("char")?;
        let mut tmp = [0u8; 4];
        ok(write_str(self.buf, v.encode_utf8(&mut tmp)))
    }
    #[inline]
    fn serialize_str(mut self, v: &str) -> Res {
        self.scalar_type("str")?;
        ok(write_str(self.buf, v))
    }
    fn serialize_bytes(mut self, v: &[u8]) -> Res {
        self.scalar_type("bytes")?;
        ok(write_bin(self.buf, v))
    }
    fn serialize_none(mut self) -> Res {
        self.scalar_type("None")?;
        ok(mp::write_nil(self.buf))
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Res {
        value.serialize(self)
    }
    fn serialize_unit(mut self) -> Res {
        self.scalar_type("()")?;
        ok(mp::write_nil(self.buf))
    }
    fn serialize_unit_struct(mut self, name: &'static str) -> Res {
        self.scalar_type(name)?;
        ok(mp::write_nil(self.buf))
    }
    fn serialize_unit_variant(mut self, name: &'static str, _i: u32, variant: &'static str) -> Res {
        self.variant_header(name, variant)?;
        ok(mp::write_nil(self.buf))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        mut self,
        name: &'static str,
        value: &T,
    ) -> Res {
        self.scalar_type(name)?;
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        mut self,
        name: &'static str,
        _i: u32,
        variant: &'static str,
        value: &T,
    ) -> Res {
        self.variant_header(name, variant)?;
        value.serialize(self.child())
    }
    fn serialize_seq(self, len: Option<usize>) -> Res<Compound<'b>> {
        let header = Header::write(self.buf, Kind::Array, len32(len.unwrap_or(0), "sequence")?)?;
        Ok(Compound::new(self, header, 0))
    }
    fn serialize_tuple(self, len: usize) -> Res<Compound<'b>> {
        self.tuple(len)
    }
    fn serialize_tuple_struct(mut self, name: &'static str, len: usize) -> Res<Compound<'b>> {
        self.scalar_type(name)?;
        self.tuple(len)
    }
    fn serialize_tuple_variant(
        mut self,
        name: &'static str,
        _i: u32,
        variant: &'static str,
        len: usize,
    ) -> Res<Compound<'b>> {
        self.variant_header(name, variant)?;
        self.tuple(len)
    }
    fn serialize_map(self, len: Option<usize>) -> Res<MapEnc<'b>> {
        let start = self.buf.len();
        Ok(MapEnc {
            enc: self,
            start,
            entries: Vec::with_capacity(len.unwrap_or(0).min(4096)),
            pending_key: false,
        })
    }
    fn serialize_struct(self, name: &'static str, len: usize) -> Res<Compound<'b>> {
        let name = self.name(name);
        self.strukt(name, len)
    }
    fn serialize_struct_variant(
        mut self,
        name: &'static str,
        _i: u32,
        variant: &'static str,
        len: usize,
    ) -> Res<Compound<'b>> {
        self.variant_header(name, variant)?;
        self.strukt(None, len)
    }
}
