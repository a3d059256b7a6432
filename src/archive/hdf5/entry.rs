//! One entry in an HDF5 group: a dataset named by the key's digest.
//!
//! ```text
//! <group>/<digest>                 the value: a typed dataset (native) or u8 envelope bytes
//!   attribute klepto_format        "native" or "envelope"
//!   attribute key                  u8[]: the key as MessagePack (checked on every read)
//!   attribute args                 u8[]: the call's encoded arguments (hashed keys only)
//!   attribute call                 str: those arguments in readable form, e.g. "(1, 2.5)"
//!   attribute checksum             u64 (native only): XXH3-64 of key, shape, type and elements
//! ```
//!
//! A native value (see [`Native`]) is a dataset of its own element type and
//! shape, so h5py reads it as the NumPy array it is; anything else is the
//! same [envelope](crate::archive::envelope) as in the other archives, as
//! a 1-D `u8` dataset. Either way the entry carries its key, and a read
//! checks it, the checksum and the type asked for: a damaged, moved or
//! misread entry is [`Error::Corrupt`] naming it, never a wrong value.

use std::fmt::Display;

use hdf5::types::{FloatSize, IntSize, TypeDescriptor, VarLenUnicode};
use hdf5::{Dataset, Group, H5Type};
use serde::de::DeserializeOwned;
use serde::Serialize;
use xxhash_rust::xxh3::Xxh3;

use super::native::{Data, Dtype, Native};
use crate::archive::dir::key_digest;
use crate::archive::envelope::{from_msgpack, to_msgpack, Envelope};
use crate::key::describe_args;
use crate::{Error, Result};

const FORMAT_ATTR: &str = "klepto_format";
const KEY_ATTR: &str = "key";
const ARGS_ATTR: &str = "args";
const CALL_ATTR: &str = "call";
const CHECKSUM_ATTR: &str = "checksum";
const NATIVE: &str = "native";
const ENVELOPE: &str = "envelope";

/// An entry ready to be written: its key's bytes and its value, as an
/// array or as envelope bytes.
pub(crate) struct NewEntry {
    key: Vec<u8>,
    args: Option<Vec<u8>>,
    value: Stored,
}

/// How a value is kept.
enum Stored {
    Native(Native),
    Envelope(Vec<u8>),
}

impl NewEntry {
    /// Encodes `key` and `value` (encoding errors are [`Error::Encode`]).
    pub(crate) fn new<K: Serialize, V: Serialize>(
        key: &K,
        value: &V,
        args: Option<Vec<u8>>,
    ) -> Result<Self> {
        let key = to_msgpack(key, "an archive key")?;
        let value = match Native::of(value) {
            Some(native) => Stored::Native(native),
            None => {
                let value = to_msgpack(value, "an archive value")?;
                Stored::Envelope(
                    Envelope {
                        key: Some(&key),
                        args: args.as_deref(),
                        value: &value,
                    }
                    .encode(),
                )
            }
        };
        Ok(NewEntry { key, args, value })
    }

    /// The dataset's name: the key's digest.
    pub(crate) fn name(&self) -> String {
        key_digest(&self.key)
    }

    /// Writes the entry into `group`, replacing an entry of the same key.
    /// Errors name `location`.
    pub(crate) fn write(&self, group: &Group, location: &dyn Display) -> Result<()> {
        self.write_inner(group)
            .map_err(|e| write_error(location, &e))
    }

    fn write_inner(&self, group: &Group) -> hdf5::Result<()> {
        let name = self.name();
        if group.link_exists(&name) {
            group.unlink(&name)?;
        }
        let dataset = match &self.value {
            Stored::Native(native) => write_native(group, &name, native)?,
            Stored::Envelope(bytes) => write_array(group, &name, &[bytes.len()], bytes)?,
        };
        let format = if matches!(self.value, Stored::Native(_)) {
            NATIVE
        } else {
            ENVELOPE
        };
        write_text(&dataset, FORMAT_ATTR, format)?;
        write_bytes(&dataset, KEY_ATTR, &self.key)?;
        if let Some(args) = &self.args {
            write_bytes(&dataset, ARGS_ATTR, args)?;
            if let Ok(call) = describe_args(args) {
                write_text(&dataset, CALL_ATTR, &call)?;
            }
        }
        if let Stored::Native(native) = &self.value {
            let sum = checksum(&self.key, native);
            dataset
                .new_attr::<u64>()
                .shape(())
                .create(CHECKSUM_ATTR)?
                .write_scalar(&sum)?;
        }
        Ok(())
    }
}

/// An archive write that HDF5 refused.
pub(crate) fn write_error(location: &dyn Display, e: &hdf5::Error) -> Error {
    Error::Archive {
        location: location.to_string(),
        reason: format!("HDF5: {e}"),
        transient: false,
        source: None,
    }
}

/// An entry that HDF5 could not read, or that failed a check.
pub(crate) fn corrupt(location: &dyn Display, reason: impl Display) -> Error {
    Error::Corrupt {
        location: location.to_string(),
        reason: reason.to_string(),
    }
}

/// A read entry: its key's bytes, the arguments kept with it, and its value.
pub(crate) struct ReadEntry<V> {
    pub(crate) key: Vec<u8>,
    pub(crate) args: Option<Vec<u8>>,
    pub(crate) value: V,
}

/// Reads the entry `name` of `group`, which must be the entry of `key`
/// when given (otherwise any key whose digest is `name`); `None` if there
/// is none. Anything wrong with it is [`Error::Corrupt`] naming `location`.
pub(crate) fn read<V: DeserializeOwned>(
    group: &Group,
    name: &str,
    key: Option<&[u8]>,
    location: &dyn Display,
) -> Result<Option<ReadEntry<V>>> {
    if !group.link_exists(name) {
        return Ok(None);
    }
    let dataset = group
        .dataset(name)
        .map_err(|e| corrupt(location, format!("not a readable dataset: {e}")))?;
    let stored_key = read_bytes(&dataset, KEY_ATTR)
        .map_err(|e| corrupt(location, format!("no readable `{KEY_ATTR}` attribute: {e}")))?;
    if key_digest(&stored_key) != name {
        return Err(corrupt(
            location,
            "the entry holds another key's value (moved, swapped or misdirected)",
        ));
    }
    if key.is_some_and(|key| key != stored_key) {
        return Err(corrupt(
            location,
            "the entry holds another key's value (a digest collision)",
        ));
    }
    let args = read_optional_args(&dataset, location)?;
    let format = read_text(&dataset, FORMAT_ATTR).map_err(|e| {
        corrupt(
            location,
            format!("no readable `{FORMAT_ATTR}` attribute: {e}"),
        )
    })?;
    let value = match format.as_str() {
        NATIVE => read_native(&dataset, &stored_key, location)?,
        ENVELOPE => {
            let bytes: Vec<u8> = dataset
                .read_raw()
                .map_err(|e| corrupt(location, format!("unreadable dataset: {e}")))?;
            let envelope = Envelope::decode(&bytes, location)?;
            if envelope.key != Some(stored_key.as_slice()) {
                return Err(corrupt(location, "the envelope holds another key's value"));
            }
            from_msgpack(envelope.value, location)?
        }
        other => return Err(corrupt(location, format!("unknown entry format {other:?}"))),
    };
    Ok(Some(ReadEntry {
        key: stored_key,
        args,
        value,
    }))
}

/// The key bytes of the entry `name` (attributes only, the value unread).
pub(crate) fn read_key(group: &Group, name: &str, location: &dyn Display) -> Result<Vec<u8>> {
    let dataset = group
        .dataset(name)
        .map_err(|e| corrupt(location, format!("not a readable dataset: {e}")))?;
    let key = read_bytes(&dataset, KEY_ATTR)
        .map_err(|e| corrupt(location, format!("no readable `{KEY_ATTR}` attribute: {e}")))?;
    if key_digest(&key) != name {
        return Err(corrupt(
            location,
            "the entry holds another key's value (moved, swapped or misdirected)",
        ));
    }
    Ok(key)
}

/// The arguments kept with the entry of `key` (named `name`), if any.
pub(crate) fn read_args(
    group: &Group,
    name: &str,
    key: &[u8],
    location: &dyn Display,
) -> Result<Option<Vec<u8>>> {
    if !group.link_exists(name) {
        return Ok(None);
    }
    if read_key(group, name, location)? != key {
        return Err(corrupt(
            location,
            "the entry holds another key's value (a digest collision)",
        ));
    }
    let dataset = group
        .dataset(name)
        .map_err(|e| corrupt(location, format!("not a readable dataset: {e}")))?;
    read_optional_args(&dataset, location)
}

/// The `args` attribute, if the entry has one.
fn read_optional_args(dataset: &Dataset, location: &dyn Display) -> Result<Option<Vec<u8>>> {
    let names = dataset
        .attr_names()
        .map_err(|e| corrupt(location, format!("unreadable attributes: {e}")))?;
    if !names.iter().any(|n| n == ARGS_ATTR) {
        return Ok(None);
    }
    read_bytes(dataset, ARGS_ATTR)
        .map(Some)
        .map_err(|e| corrupt(location, format!("unreadable `{ARGS_ATTR}` attribute: {e}")))
}

/// A native dataset's value, its checksum checked, as a `V`.
fn read_native<V: DeserializeOwned>(
    dataset: &Dataset,
    key: &[u8],
    location: &dyn Display,
) -> Result<V> {
    let unreadable = |e: hdf5::Error| corrupt(location, format!("unreadable dataset: {e}"));
    let descriptor = dataset
        .dtype()
        .and_then(|t| t.to_descriptor())
        .map_err(unreadable)?;
    let data = read_data(dataset, &descriptor)
        .ok_or_else(|| corrupt(location, format!("unexpected element type {descriptor:?}")))?
        .map_err(unreadable)?;
    let native = Native::from_parts(data, dataset.shape())
        .ok_or_else(|| corrupt(location, "the dataset's elements do not fill its shape"))?;
    let stored: u64 = dataset
        .attr(CHECKSUM_ATTR)
        .and_then(|a| a.read_scalar())
        .map_err(|e| {
            corrupt(
                location,
                format!("no readable `{CHECKSUM_ATTR}` attribute: {e}"),
            )
        })?;
    if stored != checksum(key, &native) {
        return Err(corrupt(
            location,
            "checksum mismatch: the dataset is damaged",
        ));
    }
    native.decode().map_err(|e| {
        corrupt(
            location,
            format!(
                "stored data ({}) does not decode as `{}`: {e}",
                native.describe(),
                std::any::type_name::<V>()
            ),
        )
    })
}

/// Calls `$body` with `$v` bound to the typed vector of `$data`.
macro_rules! with_data {
    ($data:expr, $v:ident => $body:expr) => {
        match $data {
            Data::I8($v) => $body,
            Data::I16($v) => $body,
            Data::I32($v) => $body,
            Data::I64($v) => $body,
            Data::U8($v) => $body,
            Data::U16($v) => $body,
            Data::U32($v) => $body,
            Data::U64($v) => $body,
            Data::F32($v) => $body,
            Data::F64($v) => $body,
        }
    };
}

fn write_native(group: &Group, name: &str, native: &Native) -> hdf5::Result<Dataset> {
    with_data!(&native.data, v => write_array(group, name, &native.shape, v))
}

/// A new dataset `name` of `shape` (`[]`: a scalar) holding `values`.
fn write_array<T: H5Type>(
    group: &Group,
    name: &str,
    shape: &[usize],
    values: &[T],
) -> hdf5::Result<Dataset> {
    let builder = group.new_dataset::<T>();
    let dataset = if shape.is_empty() {
        builder.shape(()).create(name)?
    } else {
        builder.shape(shape).create(name)?
    };
    dataset.write_raw(values)?;
    Ok(dataset)
}

/// The elements of a dataset whose type is `descriptor`, if that is a
/// native element type.
fn read_data(dataset: &Dataset, descriptor: &TypeDescriptor) -> Option<hdf5::Result<Data>> {
    let dtype = match descriptor {
        TypeDescriptor::Integer(IntSize::U1) => Dtype::I8,
        TypeDescriptor::Integer(IntSize::U2) => Dtype::I16,
        TypeDescriptor::Integer(IntSize::U4) => Dtype::I32,
        TypeDescriptor::Integer(IntSize::U8) => Dtype::I64,
        TypeDescriptor::Unsigned(IntSize::U1) => Dtype::U8,
        TypeDescriptor::Unsigned(IntSize::U2) => Dtype::U16,
        TypeDescriptor::Unsigned(IntSize::U4) => Dtype::U32,
        TypeDescriptor::Unsigned(IntSize::U8) => Dtype::U64,
        TypeDescriptor::Float(FloatSize::U4) => Dtype::F32,
        TypeDescriptor::Float(FloatSize::U8) => Dtype::F64,
        _ => return None,
    };
    Some(match dtype {
        Dtype::I8 => dataset.read_raw().map(Data::I8),
        Dtype::I16 => dataset.read_raw().map(Data::I16),
        Dtype::I32 => dataset.read_raw().map(Data::I32),
        Dtype::I64 => dataset.read_raw().map(Data::I64),
        Dtype::U8 => dataset.read_raw().map(Data::U8),
        Dtype::U16 => dataset.read_raw().map(Data::U16),
        Dtype::U32 => dataset.read_raw().map(Data::U32),
        Dtype::U64 => dataset.read_raw().map(Data::U64),
        Dtype::F32 => dataset.read_raw().map(Data::F32),
        Dtype::F64 => dataset.read_raw().map(Data::F64),
    })
}

/// XXH3-64 of the key, the element type, the shape and the elements
/// (little-endian), so that a damaged or moved dataset is detected.
fn checksum(key: &[u8], native: &Native) -> u64 {
    let mut h = Xxh3::new();
    h.update(&(key.len() as u64).to_le_bytes());
    h.update(key);
    h.update(native.data.dtype().name().as_bytes());
    h.update(&(native.shape.len() as u64).to_le_bytes());
    for &d in &native.shape {
        h.update(&(d as u64).to_le_bytes());
    }
    // Elements go through a buffer: one update per 4 KiB, not per element.
    let mut buf = [0_u8; 4096];
    let mut used = 0;
    native.data.for_each_bytes(|bytes| {
        if used + bytes.len() > buf.len() {
            h.update(&buf[..used]);
            used = 0;
        }
        buf[used..used + bytes.len()].copy_from_slice(bytes);
        used += bytes.len();
    });
    h.update(&buf[..used]);
    h.digest()
}

fn write_bytes(dataset: &Dataset, name: &str, bytes: &[u8]) -> hdf5::Result<()> {
    dataset
        .new_attr::<u8>()
        .shape([bytes.len()])
        .create(name)?
        .write_raw(bytes)
}

fn read_bytes(dataset: &Dataset, name: &str) -> hdf5::Result<Vec<u8>> {
    dataset.attr(name)?.read_raw()
}

fn write_text(dataset: &Dataset, name: &str, text: &str) -> hdf5::Result<()> {
    let text: VarLenUnicode = text
        .parse()
        .map_err(|e| hdf5::Error::from(format!("{e}")))?;
    dataset
        .new_attr::<VarLenUnicode>()
        .shape(())
        .create(name)?
        .write_scalar(&text)
}

fn read_text(dataset: &Dataset, name: &str) -> hdf5::Result<String> {
    let text: VarLenUnicode = dataset.attr(name)?.read_scalar()?;
    Ok(text.as_str().to_owned())
}
