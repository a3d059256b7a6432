//! The fast path: a serde `Serializer` that writes the canonical encoding
//! (see [`encode`](super::encode)) straight into a byte buffer, applying
//! masks, rounding and typing on the way, without building a [`Value`] tree.
//!
//! It must produce exactly the bytes of `positions()` + `encode_positions()`
//! (the reference path); tests compare the two on many shapes. Anything out
//! of the ordinary — a mask that does not fit, an error from a `Serialize`
//! impl, a length that does not fit in 32 bits — makes it give up with
//! [`Fallback`], and the caller runs the reference path, which produces the
//! authoritative result (usually the error, with its message).
//!
//! [`Value`]: super::Value

use rmp::encode as mp;
use serde::ser::{self, Serialize};

use super::config::{Ignore, KeyConfig};
use super::encode::{
    write_bin, write_int, write_key_header, write_marker, write_str, write_struct_header,
    write_typed_header, write_u128, write_variant_header, EXT_IGNORED, EXT_TUPLE, SCHEMA_VERSION,
};
use super::float::{canonical_float, round_float};

/// "Use the reference path": the only error of the fast path.
#[derive(Debug)]
pub(crate) struct Fallback;

impl std::fmt::Display for Fallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("fall back to the reference key path")
    }
}

impl std::error::Error for Fallback {}

impl ser::Error for Fallback {
    fn custom<T: std::fmt::Display>(_msg: T) -> Self {
        Fallback
    }
}

type Res<T = ()> = Result<T, Fallback>;

/// At most this many masks are tracked (a bit each); more use the reference
/// path.
const MAX_MASKS: usize = 64;

/// Writes the whole key of `args` under `config` to `buf` (appending).
#[inline(always)]
pub(crate) fn encode_top<A: Serialize + ?Sized>(
    args: &A,
    config: &KeyConfig,
    buf: &mut Vec<u8>,
) -> Res {
    if config.ignore.len() > MAX_MASKS {
        return Err(Fallback);
    }
    args.serialize(Top { buf, config })
}

// ----------------------------------------------------------------------------
// Low-level helpers.

#[inline]
fn ok<T, E>(r: Result<T, E>) -> Res {
    r.map(|_| ()).map_err(|_| Fallback)
}

#[inline]
fn len32(n: usize) -> Res<u32> {
    u32::try_from(n).map_err(|_| Fallback)
}

/// Size of the smallest array/map header for `n` elements.
#[inline]
fn header_size(n: u32) -> usize {
    if n < 16 {
        1
    } else if n < 65536 {
        3
    } else {
        5
    }
}

/// A MessagePack unsigned integer (smallest form) as the little-endian bytes
/// of a word, marker first, and its length.
#[inline(always)]
fn uint_word(u: u64) -> (u128, usize) {
    if u < 0x80 {
        (u128::from(u), 1)
    } else if u <= 0xff {
        (0xcc | u128::from(u) << 8, 2)
    } else if u <= 0xffff {
        (0xcd | u128::from((u as u16).swap_bytes()) << 8, 3)
    } else if u <= 0xffff_ffff {
        (0xce | u128::from((u as u32).swap_bytes()) << 8, 5)
    } else {
        (0xcf | u128::from(u.swap_bytes()) << 8, 9)
    }
}

/// Appends the first `n` (at most 16) bytes of `word`, little-endian, with
/// one wide store: a hit hashes and compares the key right after writing
/// it, and a wide load over many narrow stores waits for them to retire.
#[inline(always)]
fn put_word(buf: &mut Vec<u8>, word: u128, n: usize) {
    let start = buf.len();
    buf.extend_from_slice(&word.to_le_bytes());
    buf.truncate(start + n);
}

/// `[1, [` for an unnamed key of one position.
const SINGLE_HEADER: u128 = 0x92 | (SCHEMA_VERSION as u128) << 8 | 0x91 << 16;

#[derive(Clone, Copy)]
enum Kind {
    Array,
    Map,
}

/// A header written with a declared count, corrected at the end if the
/// actual count differs.
#[derive(Clone, Copy)]
struct Header {
    pos: usize,
    declared: u32,
    kind: Kind,
}

impl Header {
    #[inline]
    fn write(buf: &mut Vec<u8>, kind: Kind, declared: u32) -> Res<Header> {
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
    fn finish(self, buf: &mut Vec<u8>, actual: usize) -> Res {
        let actual = len32(actual)?;
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
struct Enc<'b> {
    buf: &'b mut Vec<u8>,
    typed: bool,
    tol: Option<i32>,
    round: bool,
    deep: bool,
}

impl<'b> Enc<'b> {
    /// The encoder of a top-level position: it rounds a float met here.
    #[inline]
    fn position(buf: &'b mut Vec<u8>, c: &KeyConfig) -> Self {
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
    fn child(&mut self) -> Enc<'_> {
        Enc {
            buf: self.buf,
            typed: self.typed,
            tol: self.tol,
            round: self.deep,
            deep: self.deep,
        }
    }

    #[inline(always)]
    fn scalar_type(&mut self, ty: &str) -> Res {
        if self.typed {
            ok(write_typed_header(self.buf, ty))?;
        }
        Ok(())
    }

    #[inline]
    fn name(&self, name: &'static str) -> Option<&'static str> {
        self.typed.then_some(name)
    }

    #[inline]
    fn int(mut self, ty: &str, i: i128) -> Res {
        self.scalar_type(ty)?;
        ok(write_int(self.buf, i))
    }

    /// A non-negative integer up to `u64::MAX` (the common case, without
    /// going through `i128`).
    #[inline]
    fn uint(mut self, ty: &str, u: u64) -> Res {
        self.scalar_type(ty)?;
        let (word, n) = uint_word(u);
        put_word(self.buf, word, n);
        Ok(())
    }

    /// A signed integer that fits `i64`.
    #[inline]
    fn sint(mut self, ty: &str, i: i64) -> Res {
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
    fn float_untyped(self, x: f64) -> Res {
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
    fn tuple(self, len: usize) -> Res<Compound<'b>> {
        let header = Header::write(
            self.buf,
            Kind::Array,
            len32(len)?.checked_add(1).ok_or(Fallback)?,
        )?;
        write_marker(self.buf, EXT_TUPLE);
        Ok(Compound::new(self, header, 1))
    }

    /// `[STRUCT, name|nil, {` with the declared field count.
    fn strukt(self, name: Option<&str>, len: usize) -> Res<Compound<'b>> {
        ok(write_struct_header(self.buf, name))?;
        let header = Header::write(self.buf, Kind::Map, len32(len)?)?;
        Ok(Compound::new(self, header, 0))
    }

    /// `[VARIANT, enum|nil, "variant", ` (the payload follows).
    fn variant_header(&mut self, name: &'static str, variant: &str) -> Res {
        ok(write_variant_header(self.buf, self.name(name), variant))
    }
}

/// An array or struct map being written: counts its elements and fixes the
/// header at the end.
struct Compound<'b> {
    enc: Enc<'b>,
    header: Header,
    count: usize,
}

impl<'b> Compound<'b> {
    fn new(enc: Enc<'b>, header: Header, count: usize) -> Self {
        Compound { enc, header, count }
    }

    #[inline]
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Res {
        value.serialize(self.enc.child())?;
        self.count += 1;
        Ok(())
    }

    #[inline]
    fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Res {
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
    type Error = Fallback;
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
    type Error = Fallback;
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
    type Error = Fallback;
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
    type Error = Fallback;
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
    type Error = Fallback;
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
    type Error = Fallback;
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
struct MapEnc<'b> {
    enc: Enc<'b>,
    start: usize,
    entries: Vec<usize>,
    pending_key: bool,
}

impl ser::SerializeMap for MapEnc<'_> {
    type Ok = ();
    type Error = Fallback;
    #[inline]
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Res {
        if self.pending_key {
            return Err(Fallback);
        }
        self.entries.push(self.enc.buf.len());
        key.serialize(self.enc.child())?;
        self.pending_key = true;
        Ok(())
    }
    #[inline]
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Res {
        if !self.pending_key {
            return Err(Fallback);
        }
        value.serialize(self.enc.child())?;
        self.pending_key = false;
        Ok(())
    }
    #[inline]
    fn end(self) -> Res {
        if self.pending_key {
            return Err(Fallback);
        }
        let buf = self.enc.buf;
        let n = len32(self.entries.len())?;
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
    type Error = Fallback;
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
        let header = Header::write(self.buf, Kind::Array, len32(len.unwrap_or(0))?)?;
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

// ----------------------------------------------------------------------------
// The top level: positions, masks.

/// The whole argument: splits it into positions by its outermost shape, as
/// the reference path does.
struct Top<'b, 'c> {
    buf: &'b mut Vec<u8>,
    config: &'c KeyConfig,
}

/// Which masks hit position `i` (field name `field` for struct arguments):
/// a bit per mask in `config.ignore`.
#[inline]
fn mask_hits(config: &KeyConfig, i: usize, field: Option<&str>) -> u64 {
    let mut hits = 0u64;
    for (bit, ig) in config.ignore.iter().enumerate() {
        let hit = match ig {
            Ignore::Index(j) => *j == i,
            Ignore::Name(n) => match config.names.iter().position(|m| m == n) {
                Some(j) => j == i,
                None => field == Some(n.as_str()),
            },
        };
        if hit {
            hits |= 1 << bit;
        }
    }
    hits
}

/// The mask bits that must all be hit.
#[inline]
fn all_masks(config: &KeyConfig) -> u64 {
    match config.ignore.len() {
        0 => 0,
        MAX_MASKS => u64::MAX,
        n => (1u64 << n) - 1,
    }
}

/// Positions being written: a tuple's or a struct's.
struct TopSeq<'b, 'c> {
    buf: &'b mut Vec<u8>,
    config: &'c KeyConfig,
    header: Header,
    count: usize,
    hits: u64,
    type_name: Option<&'static str>,
}

impl<'b, 'c> TopSeq<'b, 'c> {
    #[inline(always)]
    fn new(top: Top<'b, 'c>, len: usize, type_name: Option<&'static str>) -> Res<Self> {
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
            Header::write(top.buf, Kind::Array, len32(len)?)?
        };
        Ok(TopSeq {
            buf: top.buf,
            config: top.config,
            header,
            count: 0,
            hits: 0,
            type_name,
        })
    }

    #[inline]
    fn position<T: Serialize + ?Sized>(&mut self, field: Option<&str>, value: &T) -> Res {
        let hits = mask_hits(self.config, self.count, field);
        if hits != 0 {
            self.hits |= hits;
            write_marker(self.buf, EXT_IGNORED);
        } else {
            value.serialize(Enc::position(self.buf, self.config))?;
        }
        self.count += 1;
        Ok(())
    }

    #[inline(always)]
    fn finish(self) -> Res {
        if self.hits != all_masks(self.config) {
            // A mask that fits no position: the reference path says why.
            return Err(Fallback);
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
    type Error = Fallback;
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
    type Error = Fallback;
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
    type Error = Fallback;
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
    fn single_u64(self, v: u64) -> Res {
        self.single_value(|enc| ser::Serializer::serialize_u64(enc, v))
    }

    /// Starts a single-position key `[1, [` and returns the encoder of the
    /// position, or `None` when position 0 is ignored (the marker is then
    /// already written and the value must not be).
    #[inline]
    fn single(self) -> Res<Option<Enc<'b>>> {
        let c = self.config;
        if c.ignore.is_empty() {
            // `[1, [` without masks: the common case, in one write.
            put_word(self.buf, SINGLE_HEADER, 3);
            return Ok(Some(Enc::position(self.buf, c)));
        }
        let hits = mask_hits(c, 0, None);
        if hits != all_masks(c) {
            return Err(Fallback);
        }
        ok(write_key_header(self.buf, false))?;
        ok(mp::write_array_len(self.buf, 1))?;
        if hits != 0 {
            write_marker(self.buf, EXT_IGNORED);
            return Ok(None);
        }
        Ok(Some(Enc::position(self.buf, c)))
    }

    /// Writes the single position with `f`, or only its ignored marker.
    #[inline]
    fn single_value(self, f: impl FnOnce(Enc<'b>) -> Res) -> Res {
        match self.single()? {
            Some(enc) => f(enc),
            None => Ok(()),
        }
    }

    /// Opens the compound single position with `f`, or swallows its parts
    /// when it is ignored.
    #[inline]
    fn single_compound<C>(self, f: impl FnOnce(Enc<'b>) -> Res<C>) -> Res<Either<C>> {
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
enum Either<C> {
    Write(C),
    Skip,
}

impl<C: ser::SerializeSeq<Ok = (), Error = Fallback>> ser::SerializeSeq for Either<C> {
    type Ok = ();
    type Error = Fallback;
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

impl<C: ser::SerializeTupleVariant<Ok = (), Error = Fallback>> ser::SerializeTupleVariant
    for Either<C>
{
    type Ok = ();
    type Error = Fallback;
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

impl<C: ser::SerializeMap<Ok = (), Error = Fallback>> ser::SerializeMap for Either<C> {
    type Ok = ();
    type Error = Fallback;
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

impl<C: ser::SerializeStructVariant<Ok = (), Error = Fallback>> ser::SerializeStructVariant
    for Either<C>
{
    type Ok = ();
    type Error = Fallback;
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
    type Error = Fallback;
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
        if !self.config.ignore.is_empty() {
            return Err(Fallback);
        }
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

#[cfg(test)]
mod tests {
    //! The fast path must give exactly the reference path's bytes.

    use super::*;
    use crate::key::encode::encode_reference_into;
    use crate::key::strategies::special_f64;
    use proptest::prelude::*;
    use serde::Serialize;
    use std::collections::{BTreeMap, HashMap};

    /// (fast path bytes or None on fallback, reference bytes or error text).
    fn both<A: Serialize + ?Sized>(
        a: &A,
        c: &KeyConfig,
    ) -> (Option<Vec<u8>>, Result<Vec<u8>, String>) {
        let mut fast = Vec::new();
        let fast = encode_top(a, c, &mut fast).ok().map(|()| fast);
        let mut slow = Vec::new();
        let slow = encode_reference_into(a, c, &mut slow)
            .map(|()| slow)
            .map_err(|e| e.to_string());
        (fast, slow)
    }

    /// The fast path agrees with the reference, and does not fall back when
    /// the reference succeeds (unless `may_fall_back`).
    fn check<A: Serialize + ?Sized>(a: &A, c: &KeyConfig) {
        let (fast, slow) = both(a, c);
        match (&fast, &slow) {
            (Some(f), Ok(s)) => assert_eq!(f, s, "fast path differs from reference under {c:?}"),
            (None, Err(_)) => {}
            (Some(f), Err(e)) => panic!("fast path gave {f:02x?}, reference error {e}"),
            (None, Ok(_)) => panic!("fast path fell back on a good key under {c:?}"),
        }
    }

    fn configs() -> Vec<KeyConfig> {
        let mut out = Vec::new();
        for typed in [false, true] {
            for tol in [None, Some(0), Some(1), Some(-1)] {
                for deep in [false, true] {
                    for ignore in [
                        vec![],
                        vec![Ignore::Index(0)],
                        vec![Ignore::Index(1), Ignore::Name("b".into())],
                        vec![Ignore::Index(9)],
                        vec![Ignore::Name("nope".into())],
                    ] {
                        out.push(KeyConfig {
                            names: vec![],
                            ignore,
                            tol,
                            deep,
                            typed,
                        });
                    }
                }
            }
        }
        out.push(KeyConfig {
            names: vec!["x".into(), "y".into(), "z".into()],
            ignore: vec!["z".into()],
            ..KeyConfig::default()
        });
        out.push(KeyConfig {
            names: vec!["x".into(), "y".into()],
            ignore: vec!["y".into(), "x".into()],
            ..KeyConfig::default()
        });
        out
    }

    #[derive(Serialize, Debug, Clone)]
    enum E {
        U,
        N(f64),
        T(i8, Option<f32>),
        S { a: Vec<u16>, b: String },
    }

    #[derive(Serialize, Debug, Clone)]
    struct Newt(f32);

    #[derive(Serialize, Debug, Clone)]
    struct Ts(u8, f64);

    #[derive(Serialize, Debug, Clone)]
    struct Unit;

    #[derive(Serialize, Debug, Clone)]
    struct Inner {
        x: f64,
        tag: char,
        m: BTreeMap<i64, f64>,
        e: E,
    }

    #[derive(Serialize, Debug, Clone)]
    struct Args {
        a: f64,
        b: Vec<Inner>,
        c: HashMap<String, (f32, i128)>,
        d: Option<Newt>,
        e: Ts,
        f: u128,
        g: bool,
        h: (),
        i: Unit,
        #[serde(skip_serializing_if = "Option::is_none")]
        j: Option<u8>,
    }

    struct Bytes(Vec<u8>);
    impl Serialize for Bytes {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(&self.0)
        }
    }

    /// A sequence of unknown length, and one that declares a wrong length.
    struct Lying(Vec<f64>, Option<usize>);
    impl Serialize for Lying {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeSeq;
            let mut q = s.serialize_seq(self.1)?;
            for x in &self.0 {
                q.serialize_element(x)?;
            }
            q.end()
        }
    }

    struct FloatKeys(Vec<(f64, u8)>);
    impl Serialize for FloatKeys {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            let mut m = s.serialize_map(None)?;
            for (k, v) in &self.0 {
                m.serialize_entry(k, v)?;
            }
            m.end()
        }
    }

    fn e_strategy() -> impl Strategy<Value = E> {
        prop_oneof![
            Just(E::U),
            special_f64().prop_map(E::N),
            (any::<i8>(), proptest::option::of(any::<f32>())).prop_map(|(a, b)| E::T(a, b)),
            (proptest::collection::vec(any::<u16>(), 0..20), ".{0,40}")
                .prop_map(|(a, b)| E::S { a, b }),
        ]
    }

    fn inner_strategy() -> impl Strategy<Value = Inner> {
        (
            special_f64(),
            any::<char>(),
            proptest::collection::btree_map(any::<i64>(), special_f64(), 0..5),
            e_strategy(),
        )
            .prop_map(|(x, tag, m, e)| Inner { x, tag, m, e })
    }

    fn args_strategy() -> impl Strategy<Value = Args> {
        (
            special_f64(),
            proptest::collection::vec(inner_strategy(), 0..4),
            proptest::collection::hash_map(".{0,8}", (any::<f32>(), any::<i128>()), 0..6),
            proptest::option::of(any::<f32>().prop_map(Newt)),
            (any::<u8>(), special_f64()).prop_map(|(a, b)| Ts(a, b)),
            any::<u128>(),
            any::<bool>(),
            proptest::option::of(any::<u8>()),
        )
            .prop_map(|(a, b, c, d, e, f, g, j)| Args {
                a,
                b,
                c,
                d,
                e,
                f,
                g,
                h: (),
                i: Unit,
                j,
            })
    }

    #[test]
    fn fixed_shapes_agree() {
        let inner = Inner {
            x: 2.5,
            tag: 'é',
            m: [(1, 0.25), (-3, 7.5)].into_iter().collect(),
            e: E::T(-4, Some(1.5)),
        };
        for c in configs() {
            check(&(1_u8, 2.5_f64, "x"), &c);
            check(&(), &c);
            check(&7_u64, &c);
            check(&2.5_f64, &c);
            check(&Some(2.5_f64), &c);
            check(&None::<f64>, &c);
            check(&Some((1_u8, 2.5_f64)), &c);
            check(&Newt(2.5), &c);
            check(&Ts(3, 2.5), &c);
            check(&Unit, &c);
            check(&E::U, &c);
            check(&E::N(2.5), &c);
            check(&E::T(1, None), &c);
            check(
                &E::S {
                    a: vec![1, 2],
                    b: "q".into(),
                },
                &c,
            );
            check(&vec![2.5_f64, 3.5], &c);
            check(&(2.5_f64, vec![2.5_f64, 3.5], inner.clone()), &c);
            check(&inner, &c);
            check(&[1.5_f64, 2.5, 3.5], &c);
            check(&(i128::MIN, u128::MAX, -1_i64, u64::MAX), &c);
            check(&(Bytes(vec![0, 1, 255]), Bytes(vec![7; 300])), &c);
            check(&Lying(vec![0.5, 1.5, 2.5], None), &c);
            check(&(1_u8, Lying(vec![0.5; 20], Some(3))), &c);
            check(&(Lying(vec![0.5; 3], Some(70_000)),), &c);
            check(
                &FloatKeys(vec![(1.4, 1), (0.6, 2), (-0.0, 3), (0.0, 4)]),
                &c,
            );
            check(&("a".repeat(40), "b".repeat(300), "c".repeat(70_000)), &c);
            check(&(vec![(); 3], Some(()), ((),)), &c);
            check(&(0..20).collect::<Vec<u32>>(), &c);
            let hm: HashMap<String, Vec<f64>> = (0..20)
                .map(|i| (format!("k{i}"), vec![f64::from(i) + 0.5]))
                .collect();
            check(&hm, &c);
            check(&(1, hm), &c);
        }
    }

    #[test]
    fn fast_path_does_not_fall_back_for_plain_keys() {
        let mut buf = Vec::new();
        let c = KeyConfig::default();
        assert!(encode_top(&(1_u64, 2.5_f64), &c, &mut buf).is_ok());
        let c = KeyConfig {
            ignore: vec![1.into()],
            tol: Some(2),
            typed: true,
            deep: true,
            ..c
        };
        assert!(encode_top(&(1_u64, 2.5_f64), &c, &mut buf).is_ok());
    }

    #[test]
    fn user_errors_fall_back_to_the_reference_error() {
        struct Bad;
        impl Serialize for Bad {
            fn serialize<S: serde::Serializer>(&self, _s: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("no thanks"))
            }
        }
        let (fast, slow) = both(&(1, Bad), &KeyConfig::default());
        assert!(fast.is_none());
        assert!(slow.unwrap_err().contains("no thanks"));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        #[test]
        fn random_args_agree(
            args in args_strategy(),
            typed in any::<bool>(),
            tol in proptest::option::of(-3..4_i32),
            deep in any::<bool>(),
            ignore in proptest::collection::vec(0..12_usize, 0..3),
            by_name in proptest::collection::vec(prop_oneof![Just("a"), Just("c"), Just("j"), Just("x")], 0..2),
        ) {
            let mut ignore: Vec<Ignore> = ignore.into_iter().map(Ignore::Index).collect();
            ignore.extend(by_name.into_iter().map(Ignore::from));
            let c = KeyConfig { names: vec![], ignore, tol, deep, typed };
            check(&args, &c);
            check(&(args.a, args.b.clone(), args.e.clone()), &c);
            check(&args.b, &c);
            check(&args.c, &c);
        }
    }
}
