//! One entry in an HDF5 group: a dataset named by the key's digest.
//!
//! ```text
//! <group>/<digest>            the value: a typed dataset (native) or u8 envelope bytes
//!   attribute klepto          u8[]: the entry's header (below), read and checked on every read
//!   attribute klepto_format   str: "native" or "envelope", for people
//!   attribute call            str: the call's arguments in readable form, e.g. "(1, 2.5)"
//!                             (hashed keys only)
//! ```
//!
//! The header, in one attribute so that a read opens one:
//!
//! ```text
//! offset  size  field
//! 0       1     header version: 1
//! 1       1     value format: 0 native, 1 envelope
//! 2       8     checksum, little-endian: for a native value, XXH3-64 of bytes
//!               10.. of the header, the element type, the shape and the
//!               elements (little-endian); 0 for an envelope (it has its own)
//! 10      4+n   the key as MessagePack: u32 little-endian length n, then the bytes
//! ..      4+m   the call's encoded arguments: u32 length m (u32::MAX: none), then
//!               the bytes (see [`describe_args`])
//! ```
//!
//! A native value (see [`Native`]) is a dataset of its own element type and
//! shape, so h5py reads it as the NumPy array it is; anything else is the
//! same [envelope](crate::archive::envelope) as in the other archives, as
//! a 1-D `u8` dataset. Either way the entry carries its key, and a read
//! checks it, the checksum and the type asked for: a damaged, moved or
//! misread entry is [`Error::Corrupt`] naming it, never a wrong value.

use std::fmt::Display;

use hdf5::types::{FixedUnicode, FloatSize, IntSize, TypeDescriptor};
use hdf5::{Dataset, Group, H5Type};
use serde::de::DeserializeOwned;
use serde::Serialize;
use xxhash_rust::xxh3::Xxh3;

use super::native::{Data, Dtype, Native};
use crate::archive::dir::key_digest;
use crate::archive::envelope::{from_msgpack, to_msgpack, Envelope};
use crate::key::describe_args;
use crate::{Error, Result};

const HEADER_ATTR: &str = "klepto";
const FORMAT_ATTR: &str = "klepto_format";
const CALL_ATTR: &str = "call";
const HEADER_VERSION: u8 = 1;
const NATIVE: u8 = 0;
const ENVELOPE: u8 = 1;
/// Where the checksummed part of the header starts.
const SUMMED: usize = 10;
const NO_ARGS: u32 = u32::MAX;

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

    /// Every entry of a batch, encoded before anything is written (an
    /// encoding error writes nothing).
    pub(crate) fn all<K: Serialize, V: Serialize>(
        items: impl IntoIterator<Item = (K, V, Option<Vec<u8>>)>,
    ) -> Result<Vec<NewEntry>> {
        items
            .into_iter()
            .map(|(k, v, args)| NewEntry::new(&k, &v, args))
            .collect()
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
        let (dataset, format, native) = match &self.value {
            Stored::Native(native) => (write_native(group, &name, native)?, NATIVE, Some(native)),
            Stored::Envelope(bytes) => (
                write_array(group, &name, &[bytes.len()], bytes)?,
                ENVELOPE,
                None,
            ),
        };
        let header = header(format, &self.key, self.args.as_deref(), native);
        dataset
            .new_attr::<u8>()
            .shape([header.len()])
            .create(HEADER_ATTR)?
            .write_raw(&header)?;
        let format = if native.is_some() {
            "native"
        } else {
            "envelope"
        };
        write_text(&dataset, FORMAT_ATTR, format)?;
        if let Some(call) = self.args.as_deref().and_then(|a| describe_args(a).ok()) {
            write_text(&dataset, CALL_ATTR, &call)?;
        }
        Ok(())
    }
}

/// The header attribute's bytes (see the module), checksum included.
fn header(format: u8, key: &[u8], args: Option<&[u8]>, native: Option<&Native>) -> Vec<u8> {
    let mut out = Vec::with_capacity(SUMMED + 8 + key.len() + args.map_or(0, <[u8]>::len));
    out.extend_from_slice(&[HEADER_VERSION, format]);
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&len_u32(key.len()).to_le_bytes());
    out.extend_from_slice(key);
    match args {
        Some(args) => {
            out.extend_from_slice(&len_u32(args.len()).to_le_bytes());
            out.extend_from_slice(args);
        }
        None => out.extend_from_slice(&NO_ARGS.to_le_bytes()),
    }
    if let Some(native) = native {
        let sum = checksum(&out[SUMMED..], native);
        out[2..SUMMED].copy_from_slice(&sum.to_le_bytes());
    }
    out
}

fn len_u32(n: usize) -> u32 {
    u32::try_from(n)
        .ok()
        .filter(|&n| n != NO_ARGS)
        .expect("a key or arguments over 4 GiB")
}

/// A header read back and split.
struct Header<'a> {
    format: u8,
    checksum: u64,
    /// Bytes 10.. (what the checksum covers, with the value).
    summed: &'a [u8],
    key: &'a [u8],
    args: Option<&'a [u8]>,
}

impl<'a> Header<'a> {
    fn parse(bytes: &'a [u8]) -> std::result::Result<Header<'a>, &'static str> {
        if bytes.len() < SUMMED + 8 {
            return Err("the entry header is truncated");
        }
        if bytes[0] != HEADER_VERSION {
            return Err("unknown entry header version (written by a newer klepto-cache?)");
        }
        let format = bytes[1];
        let checksum = u64::from_le_bytes(bytes[2..SUMMED].try_into().expect("8 bytes"));
        let summed = &bytes[SUMMED..];
        let mut rest = summed;
        let key = take_section(&mut rest)?.ok_or("the entry header has no key")?;
        let args = take_section(&mut rest)?;
        if !rest.is_empty() {
            return Err("the entry header has trailing bytes");
        }
        Ok(Header {
            format,
            checksum,
            summed,
            key,
            args,
        })
    }
}

/// One length-prefixed section (`None` for the no-arguments length).
fn take_section<'a>(rest: &mut &'a [u8]) -> std::result::Result<Option<&'a [u8]>, &'static str> {
    let (len, tail) = rest
        .split_first_chunk::<4>()
        .ok_or("the entry header is truncated")?;
    let len = u32::from_le_bytes(*len);
    if len == NO_ARGS {
        *rest = tail;
        return Ok(None);
    }
    let len = usize::try_from(len).map_err(|_| "the entry header is truncated")?;
    if tail.len() < len {
        return Err("the entry header is truncated");
    }
    let (section, tail) = tail.split_at(len);
    *rest = tail;
    Ok(Some(section))
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

/// The dataset `name` of `group` (`None` if there is none) and its header
/// attribute's bytes. The key in the header must be named `name`.
fn open_entry(
    group: &Group,
    name: &str,
    location: &dyn Display,
) -> Result<Option<(Dataset, Vec<u8>)>> {
    let dataset = match group.dataset(name) {
        Ok(dataset) => dataset,
        Err(_) if !group.link_exists(name) => return Ok(None),
        Err(e) => return Err(corrupt(location, format!("not a readable dataset: {e}"))),
    };
    let header: Vec<u8> = dataset
        .attr(HEADER_ATTR)
        .and_then(|a| a.read_raw())
        .map_err(|e| {
            corrupt(
                location,
                format!("no readable `{HEADER_ATTR}` attribute: {e}"),
            )
        })?;
    Ok(Some((dataset, header)))
}

/// Checks that `header` is sound and belongs under `name` (and to `key`
/// when given).
fn check_header<'h>(
    header: &'h [u8],
    name: &str,
    key: Option<&[u8]>,
    location: &dyn Display,
) -> Result<Header<'h>> {
    let header = Header::parse(header).map_err(|reason| corrupt(location, reason))?;
    if key_digest(header.key) != name {
        return Err(corrupt(
            location,
            "the entry holds another key's value (moved, swapped or misdirected)",
        ));
    }
    if key.is_some_and(|key| key != header.key) {
        return Err(corrupt(
            location,
            "the entry holds another key's value (a digest collision)",
        ));
    }
    Ok(header)
}

/// Reads the entry `name` of `group`, which must be the entry of `key`
/// when given (otherwise any key whose digest is `name`); `None` if there
/// is none. Anything wrong with it is [`Error::Corrupt`] naming `location`.
pub(crate) fn read<V: DeserializeOwned + 'static>(
    group: &Group,
    name: &str,
    key: Option<&[u8]>,
    location: &dyn Display,
) -> Result<Option<ReadEntry<V>>> {
    let Some((dataset, header)) = open_entry(group, name, location)? else {
        return Ok(None);
    };
    let header = check_header(&header, name, key, location)?;
    let value = match header.format {
        NATIVE => read_native(&dataset, &header, location)?,
        ENVELOPE => {
            let bytes: Vec<u8> = dataset
                .read_raw()
                .map_err(|e| corrupt(location, format!("unreadable dataset: {e}")))?;
            let envelope = Envelope::decode(&bytes, location)?;
            if envelope.key != Some(header.key) {
                return Err(corrupt(location, "the envelope holds another key's value"));
            }
            from_msgpack(envelope.value, location)?
        }
        other => return Err(corrupt(location, format!("unknown value format {other}"))),
    };
    Ok(Some(ReadEntry {
        key: header.key.to_vec(),
        args: header.args.map(<[u8]>::to_vec),
        value,
    }))
}

/// The key bytes of the entry `name` (its header only, the value unread).
pub(crate) fn read_key(group: &Group, name: &str, location: &dyn Display) -> Result<Vec<u8>> {
    let (_, header) =
        open_entry(group, name, location)?.ok_or_else(|| corrupt(location, "the entry is gone"))?;
    Ok(check_header(&header, name, None, location)?.key.to_vec())
}

/// The arguments kept with the entry of `key` (named `name`), if any.
pub(crate) fn read_args(
    group: &Group,
    name: &str,
    key: &[u8],
    location: &dyn Display,
) -> Result<Option<Vec<u8>>> {
    let Some((_, header)) = open_entry(group, name, location)? else {
        return Ok(None);
    };
    let header = check_header(&header, name, Some(key), location)?;
    Ok(header.args.map(<[u8]>::to_vec))
}

/// A native dataset's value, its checksum checked, as a `V`.
fn read_native<V: DeserializeOwned + 'static>(
    dataset: &Dataset,
    header: &Header<'_>,
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
    if header.checksum != checksum(header.summed, &native) {
        return Err(corrupt(
            location,
            "checksum mismatch: the dataset is damaged",
        ));
    }
    let described = native.describe();
    native
        .into_value()
        .map_err(|e| Error::type_mismatch::<V>(location, &described, e))
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

/// XXH3-64 of the header's key and arguments (`summed`), the element
/// type, the shape and the elements (little-endian), so that a damaged or
/// moved dataset is detected.
fn checksum(summed: &[u8], native: &Native) -> u64 {
    let mut h = Xxh3::new();
    h.update(summed);
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

/// Writes `text` as a fixed-length UTF-8 string attribute, in the
/// smallest of a few sizes that holds it (cut at 4 KiB). Not a
/// variable-length string: each write opens the file anew, and each
/// session writing one would start a 4 KiB global heap of its own.
fn write_text(dataset: &Dataset, name: &str, text: &str) -> hdf5::Result<()> {
    fn write<const N: usize>(dataset: &Dataset, name: &str, text: &str) -> hdf5::Result<()> {
        let text: FixedUnicode<N> = text
            .parse()
            .map_err(|e| hdf5::Error::from(format!("{e}")))?;
        dataset
            .new_attr::<FixedUnicode<N>>()
            .shape(())
            .create(name)?
            .write_scalar(&text)
    }
    let mut end = text.len().min(4096);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let text = &text[..end];
    match text.len() {
        0..=16 => write::<16>(dataset, name, text),
        17..=64 => write::<64>(dataset, name, text),
        65..=256 => write::<256>(dataset, name, text),
        257..=1024 => write::<1024>(dataset, name, text),
        _ => write::<4096>(dataset, name, text),
    }
}
