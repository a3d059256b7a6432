//! From a call's arguments to its processed positions: split the argument
//! into positions, apply the ignore masks, round floats.

use std::fmt;

use rmp::encode as mp;
use serde::ser::{self as ser, Serialize};

use super::format::{len32, write_err, write_key_header, write_str};
use super::key_error;
use super::ser::{sort_map, SerError, ValueSerializer};
use super::tree::encode_value_into;
use super::value::{write_tuple, Value};
use klepto::key::round_float;
use klepto::key::{Ignore, KeyConfig};
use klepto::{Error, Result};

/// A call's arguments as the key sees them: one [`Value`] per position, after
/// masks and rounding.
///
/// The outermost shape of the argument decides: a tuple's elements (also a
/// tuple struct's, and an array's, which serde serializes as a tuple) are the
/// positions; a struct's fields are positions with names; `()` has no
/// positions; any other argument (a scalar, `Vec`, map, enum, `Option`,
/// newtype struct, ...) is the single position 0.
///
/// Built by [`positions`]; its readable form (`Display`) is the
/// [`StringKeymap`](crate::keymap::StringKeymap) key, e.g. `(1, 2.5, "x")`.
///
/// ```
/// use klepto::key::{positions, KeyConfig, Value};
/// let config = KeyConfig { ignore: vec![1.into()], ..KeyConfig::default() };
/// let p = positions(&(1, 2, 3), &config).unwrap();
/// assert_eq!(p.values(), &[Value::Int(1), Value::Ignored, Value::Int(3)]);
/// assert_eq!(p.to_string(), "(1, NULL, 3)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Positions {
    values: Vec<Value>,
    field_names: Vec<&'static str>,
    type_name: Option<&'static str>,
}

impl Positions {
    /// Positions without names.
    pub fn from_values(values: Vec<Value>) -> Self {
        Positions {
            values,
            field_names: Vec::new(),
            type_name: None,
        }
    }

    /// The values, one per position.
    pub fn values(&self) -> &[Value] {
        &self.values
    }

    /// The field names when the argument is a struct (one per position);
    /// empty otherwise.
    pub fn field_names(&self) -> &[&'static str] {
        &self.field_names
    }

    /// The argument's type name: only in typed keys, and only when the
    /// argument is a struct or a tuple struct.
    pub fn type_name(&self) -> Option<&'static str> {
        self.type_name
    }

    /// The number of positions.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when there are no positions (the argument is `()`).
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The canonical MessagePack encoding (the
    /// [`SerialKeymap`](crate::keymap::SerialKeymap) key); the format is
    /// described in the [`encode`](super::encode) module.
    pub fn encode(&self) -> Result<Vec<u8>> {
        encode_positions(self)
    }
}

impl fmt::Display for Positions {
    /// `(p0, p1, ...)`; typed struct arguments are prefixed with their name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(n) = self.type_name {
            f.write_str(n)?;
        }
        write_tuple(f, &self.values)
    }
}

/// The processed positions of `args` under `config`: the argument split into
/// positions, ignored positions replaced by [`Value::Ignored`], floats rounded
/// to `config.tol` decimal places (top-level floats only, or every float when
/// `config.deep`), types kept when `config.typed`.
///
/// Every keymap that transforms its arguments calls this.
///
/// # Errors
/// [`Error::Key`] when an ignore index is out of range, an ignore name
/// matches no argument, or the argument cannot be serialized.
///
/// ```
/// use klepto::key::{positions, KeyConfig};
/// let config = KeyConfig { tol: Some(1), ..KeyConfig::default() };
/// assert_eq!(positions(&(2.54_f64, 7), &config).unwrap().to_string(), "(2.5, 7)");
/// ```
pub fn positions<A: Serialize + ?Sized>(args: &A, config: &KeyConfig) -> Result<Positions> {
    let mut p = args.serialize(TopSerializer {
        inner: ValueSerializer {
            typed: config.typed,
        },
    })?;
    apply_ignore(&mut p, config)?;
    if let Some(t) = config.tol {
        for v in &mut p.values {
            if config.deep {
                round_deep(v, t);
            } else {
                round_shallow(v, t);
            }
        }
    }
    Ok(p)
}

/// The serializer of the whole argument: splits it into positions by its
/// outermost shape, and builds each position with [`ValueSerializer`].
struct TopSerializer {
    inner: ValueSerializer,
}

/// One position holding the whole argument.
fn single(v: Value) -> Positions {
    Positions::from_values(vec![v])
}

/// Forwards a scalar `serialize_*` to the value serializer: one position.
macro_rules! single_scalar {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {$(
        fn $method(self, $($arg: $ty),*) -> Result<Positions, SerError> {
            ser::Serializer::$method(self.inner, $($arg),*).map(single)
        }
    )*};
}

impl ser::Serializer for TopSerializer {
    type Ok = Positions;
    type Error = SerError;
    type SerializeSeq = Single<<ValueSerializer as ser::Serializer>::SerializeSeq>;
    type SerializeTuple = TopSeq;
    type SerializeTupleStruct = TopSeq;
    type SerializeTupleVariant =
        Single<<ValueSerializer as ser::Serializer>::SerializeTupleVariant>;
    type SerializeMap = Single<<ValueSerializer as ser::Serializer>::SerializeMap>;
    type SerializeStruct = TopSeq;
    type SerializeStructVariant =
        Single<<ValueSerializer as ser::Serializer>::SerializeStructVariant>;

    single_scalar! {
        serialize_bool(v: bool);
        serialize_i8(v: i8);
        serialize_i16(v: i16);
        serialize_i32(v: i32);
        serialize_i64(v: i64);
        serialize_i128(v: i128);
        serialize_u8(v: u8);
        serialize_u16(v: u16);
        serialize_u32(v: u32);
        serialize_u64(v: u64);
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

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Positions, SerError> {
        ser::Serializer::serialize_some(self.inner, value).map(single)
    }

    /// `()`: a function of no arguments has no positions.
    fn serialize_unit(self) -> Result<Positions, SerError> {
        Ok(Positions::from_values(Vec::new()))
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<Positions, SerError> {
        ser::Serializer::serialize_newtype_struct(self.inner, name, value).map(single)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Positions, SerError> {
        ser::Serializer::serialize_newtype_variant(self.inner, name, index, variant, value)
            .map(single)
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq, SerError> {
        ser::Serializer::serialize_seq(self.inner, len).map(Single)
    }

    fn serialize_tuple(self, len: usize) -> Result<TopSeq, SerError> {
        Ok(TopSeq::new(self.inner, len, None))
    }

    fn serialize_tuple_struct(self, name: &'static str, len: usize) -> Result<TopSeq, SerError> {
        Ok(TopSeq::new(self.inner, len, self.inner.name(name)))
    }

    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, SerError> {
        ser::Serializer::serialize_tuple_variant(self.inner, name, index, variant, len).map(Single)
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, SerError> {
        ser::Serializer::serialize_map(self.inner, len).map(Single)
    }

    fn serialize_struct(self, name: &'static str, len: usize) -> Result<TopSeq, SerError> {
        let mut seq = TopSeq::new(self.inner, len, self.inner.name(name));
        seq.field_names = Vec::with_capacity(len.min(4096));
        Ok(seq)
    }

    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, SerError> {
        ser::Serializer::serialize_struct_variant(self.inner, name, index, variant, len).map(Single)
    }
}

/// A compound value that is the single position 0.
struct Single<B>(B);

impl<B: ser::SerializeSeq<Ok = Value, Error = SerError>> ser::SerializeSeq for Single<B> {
    type Ok = Positions;
    type Error = SerError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
        self.0.serialize_element(value)
    }
    fn end(self) -> Result<Positions, SerError> {
        self.0.end().map(single)
    }
}

impl<B: ser::SerializeTupleVariant<Ok = Value, Error = SerError>> ser::SerializeTupleVariant
    for Single<B>
{
    type Ok = Positions;
    type Error = SerError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
        self.0.serialize_field(value)
    }
    fn end(self) -> Result<Positions, SerError> {
        self.0.end().map(single)
    }
}

impl<B: ser::SerializeMap<Ok = Value, Error = SerError>> ser::SerializeMap for Single<B> {
    type Ok = Positions;
    type Error = SerError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), SerError> {
        self.0.serialize_key(key)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
        self.0.serialize_value(value)
    }
    fn end(self) -> Result<Positions, SerError> {
        self.0.end().map(single)
    }
}

impl<B: ser::SerializeStructVariant<Ok = Value, Error = SerError>> ser::SerializeStructVariant
    for Single<B>
{
    type Ok = Positions;
    type Error = SerError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), SerError> {
        self.0.serialize_field(key, value)
    }
    fn end(self) -> Result<Positions, SerError> {
        self.0.end().map(single)
    }
}

/// A tuple, tuple struct or struct argument: its elements or fields are the
/// positions (a struct's with their names).
struct TopSeq {
    inner: ValueSerializer,
    values: Vec<Value>,
    field_names: Vec<&'static str>,
    type_name: Option<&'static str>,
}

impl TopSeq {
    fn new(inner: ValueSerializer, len: usize, type_name: Option<&'static str>) -> Self {
        TopSeq {
            inner,
            values: Vec::with_capacity(len.min(4096)),
            field_names: Vec::new(),
            type_name,
        }
    }

    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
        self.values.push(value.serialize(self.inner)?);
        Ok(())
    }

    fn finish(self) -> Result<Positions, SerError> {
        Ok(Positions {
            values: self.values,
            field_names: self.field_names,
            type_name: self.type_name,
        })
    }
}

impl ser::SerializeTuple for TopSeq {
    type Ok = Positions;
    type Error = SerError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
        self.push(value)
    }
    fn end(self) -> Result<Positions, SerError> {
        self.finish()
    }
}

impl ser::SerializeTupleStruct for TopSeq {
    type Ok = Positions;
    type Error = SerError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
        self.push(value)
    }
    fn end(self) -> Result<Positions, SerError> {
        self.finish()
    }
}

impl ser::SerializeStruct for TopSeq {
    type Ok = Positions;
    type Error = SerError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), SerError> {
        self.push(value)?;
        self.field_names.push(key);
        Ok(())
    }
    fn end(self) -> Result<Positions, SerError> {
        self.finish()
    }
}

/// Replaces the ignored positions with [`Value::Ignored`].
fn apply_ignore(p: &mut Positions, config: &KeyConfig) -> Result<()> {
    let n = p.values.len();
    for ig in &config.ignore {
        let i = match ig {
            Ignore::Index(i) => {
                if *i >= n {
                    return Err(key_error(format!(
                        "ignore index {i} out of range for {n} argument{}",
                        plural(n)
                    )));
                }
                *i
            }
            Ignore::Name(name) => {
                let found = config
                    .names
                    .iter()
                    .position(|m| m == name)
                    .or_else(|| p.field_names.iter().position(|m| *m == name.as_str()));
                match found {
                    Some(i) if i < n => i,
                    Some(i) => {
                        return Err(key_error(format!(
                            "ignore name {name:?} is position {i}, out of range for {n} argument{}",
                            plural(n)
                        )))
                    }
                    None => return Err(key_error(unknown_name(name, config, p))),
                }
            }
        };
        p.values[i] = Value::Ignored;
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

fn unknown_name(name: &str, config: &KeyConfig, p: &Positions) -> String {
    let mut known: Vec<&str> = config.names.iter().map(String::as_str).collect();
    known.extend(p.field_names.iter().copied());
    if known.is_empty() {
        format!(
            "ignore name {name:?} matches no argument: the arguments have no names \
             (give names with .names(..) or use a struct argument)"
        )
    } else {
        format!("ignore name {name:?} matches no argument; the names are {known:?}")
    }
}

/// Rounds `v` if it is a float (under any type wrappers).
fn round_shallow(v: &mut Value, t: i32) {
    match v {
        Value::Float(x) => *x = round_float(*x, t),
        Value::Typed { value, .. } => round_shallow(value, t),
        _ => {}
    }
}

/// Rounds every float in `v`. Returns whether anything changed (so maps
/// whose keys changed are sorted again).
fn round_deep(v: &mut Value, t: i32) -> bool {
    match v {
        Value::Float(x) => {
            let r = round_float(*x, t);
            let changed = r.to_bits() != x.to_bits();
            *x = r;
            changed
        }
        Value::Seq(items) | Value::Tuple(items) => {
            let mut changed = false;
            for item in items {
                changed |= round_deep(item, t);
            }
            changed
        }
        Value::Map(entries) => {
            let mut changed = false;
            for (k, val) in entries.iter_mut() {
                changed |= round_deep(k, t);
                changed |= round_deep(val, t);
            }
            if changed {
                // Rounding can make keys equal: the value then breaks the tie,
                // so re-sort whenever anything changed. Encoding cannot fail
                // for a map that was encoded before.
                let _ = sort_map(entries);
            }
            changed
        }
        Value::Struct { fields, .. } => {
            let mut changed = false;
            for (_, val) in fields {
                changed |= round_deep(val, t);
            }
            changed
        }
        Value::Variant { payload, .. } => round_deep(payload, t),
        Value::Typed { value, .. } => round_deep(value, t),
        Value::Null
        | Value::Ignored
        | Value::Bool(_)
        | Value::Int(_)
        | Value::U128(_)
        | Value::Str(_)
        | Value::Bytes(_) => false,
    }
}

/// Writes the whole key of `positions` (schema version, positions, and the
/// typed argument name if any) to `buf`.
pub fn encode_positions_into(p: &Positions, buf: &mut Vec<u8>) -> Result<()> {
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
pub fn encode_positions(p: &Positions) -> Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(32);
    encode_positions_into(p, &mut buf)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;
    use std::collections::BTreeMap;

    fn cfg() -> KeyConfig {
        KeyConfig::default()
    }

    #[test]
    fn splits_tuples_structs_and_singles() {
        let p = positions(&(1, 2), &cfg()).unwrap();
        assert_eq!(p.len(), 2);
        let p = positions(&vec![1, 2], &cfg()).unwrap();
        assert_eq!(p.len(), 1, "a Vec is one argument");
        // The outermost shape decides: an Option or a newtype around a tuple
        // is one position, whether Some or None.
        let p = positions(&Some((1, 2)), &cfg()).unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p.to_string(), "((1, 2),)");
        assert_eq!(positions(&None::<(u8, u8)>, &cfg()).unwrap().len(), 1);
        assert_eq!(positions(&Some(()), &cfg()).unwrap().len(), 1);
        let p = positions(&(), &cfg()).unwrap();
        assert!(p.is_empty());
        assert_eq!(p.to_string(), "()");
        #[derive(Serialize)]
        struct A {
            x: u8,
            verbose: bool,
        }
        let p = positions(
            &A {
                x: 1,
                verbose: true,
            },
            &cfg(),
        )
        .unwrap();
        assert_eq!(p.field_names(), ["x", "verbose"]);
        assert_eq!(p.to_string(), "(1, true)");
        let typed = KeyConfig {
            typed: true,
            ..cfg()
        };
        let p = positions(
            &A {
                x: 1,
                verbose: true,
            },
            &typed,
        )
        .unwrap();
        assert_eq!(p.type_name(), Some("A"));
        assert_eq!(p.to_string(), "A(u8(1), bool(true))");
    }

    #[test]
    fn masks_by_index_and_name() {
        let c = KeyConfig {
            ignore: vec![Ignore::Index(1)],
            ..cfg()
        };
        assert_eq!(
            positions(&(1, 2), &c).unwrap(),
            positions(&(1, 99), &c).unwrap()
        );
        assert_ne!(
            positions(&(1, 2), &c).unwrap(),
            positions(&(5, 2), &c).unwrap()
        );
        let c = KeyConfig {
            names: vec!["a".into(), "b".into()],
            ignore: vec!["b".into()],
            ..cfg()
        };
        assert_eq!(positions(&(1, 2), &c).unwrap().to_string(), "(1, NULL)");
        #[derive(Serialize)]
        struct S {
            a: u8,
            b: u8,
        }
        let c = KeyConfig {
            ignore: vec!["a".into()],
            ..cfg()
        };
        assert_eq!(
            positions(&S { a: 1, b: 2 }, &c).unwrap().to_string(),
            "(NULL, 2)"
        );
    }

    #[test]
    fn mask_errors() {
        let c = KeyConfig {
            ignore: vec![Ignore::Index(5)],
            ..cfg()
        };
        let e = positions(&(1, 2), &c).unwrap_err().to_string();
        assert!(
            e.contains("ignore index 5 out of range for 2 arguments"),
            "{e}"
        );
        let c = KeyConfig {
            ignore: vec!["zz".into()],
            ..cfg()
        };
        let e = positions(&(1, 2), &c).unwrap_err();
        assert!(matches!(e, Error::Key { .. }));
        assert!(e.to_string().contains("\"zz\""), "{e}");
        // A name given for a position the call does not have.
        let c = KeyConfig {
            names: vec!["a".into(), "b".into(), "c".into()],
            ignore: vec!["c".into()],
            ..cfg()
        };
        let e = positions(&(1, 2), &c).unwrap_err().to_string();
        assert!(e.contains("out of range for 2 arguments"), "{e}");
    }

    #[test]
    fn shallow_and_deep_rounding() {
        let args = (2.5_f64, vec![2.5_f64, 3.5], Some(0.4_f64));
        let shallow = KeyConfig {
            tol: Some(0),
            ..cfg()
        };
        assert_eq!(
            positions(&args, &shallow).unwrap().to_string(),
            "(2.0, [2.5, 3.5], 0.0)"
        );
        let deep = KeyConfig {
            tol: Some(0),
            deep: true,
            ..cfg()
        };
        assert_eq!(
            positions(&args, &deep).unwrap().to_string(),
            "(2.0, [2.0, 4.0], 0.0)"
        );
        // Ints are never touched; typed floats are rounded through the wrapper.
        let typed = KeyConfig {
            tol: Some(0),
            typed: true,
            ..cfg()
        };
        assert_eq!(
            positions(&(2.5_f32, 7_u8), &typed).unwrap().to_string(),
            "(f32(2.0), u8(7))"
        );
    }

    #[test]
    fn deep_rounding_resorts_maps() {
        /// A map with float keys (no std map allows them).
        struct FloatKeys(Vec<(f64, &'static str)>);
        impl Serialize for FloatKeys {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                let mut m = s.serialize_map(Some(self.0.len()))?;
                for (k, v) in &self.0 {
                    m.serialize_entry(k, v)?;
                }
                m.end()
            }
        }
        let m = FloatKeys(vec![(1.4, "a"), (0.6, "b")]);
        let plain = positions(&m, &cfg()).unwrap();
        assert_eq!(plain.to_string(), r#"({0.6: "b", 1.4: "a"},)"#);
        let deep = KeyConfig {
            tol: Some(0),
            deep: true,
            ..cfg()
        };
        // Both keys round to 1.0: the values break the tie.
        let p = positions(&m, &deep).unwrap();
        assert_eq!(p.to_string(), r#"({1.0: "a", 1.0: "b"},)"#);
        let swapped = FloatKeys(vec![(0.6, "a"), (1.4, "b")]);
        assert_eq!(positions(&swapped, &deep).unwrap(), p);
        let nested: BTreeMap<u8, Vec<f64>> = [(1, vec![0.6])].into_iter().collect();
        assert_eq!(
            positions(&nested, &deep).unwrap().to_string(),
            "({1: [1.0]},)"
        );
    }
}
