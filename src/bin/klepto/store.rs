//! One archive of unknown key and value types, seen as its raw entries:
//! the key's MessagePack bytes and the envelope stored under it. The
//! directory, SQL and Redis archives are byte stores already ([`Backend`]);
//! a file archive's entries are decoded and encoded as MessagePack trees.

use klepto::archive::envelope::Envelope;
use klepto::archive::{Archive, Backed, Backend, FileArchive, RawEntry, RawItems};
use klepto::{Error, Result};

use crate::dynamic::AnyKey;

/// A value of any type.
pub type Any = rmpv::Value;

/// What every command does to an archive, on raw entries.
pub trait Raw {
    /// Every entry (key and envelope), streamed; damage is an `Err` item.
    fn scan(&self) -> Result<RawItems<'_>>;
    /// The envelope under `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Stores a batch: one transaction where the archive has them.
    fn put_batch(&self, entries: Vec<RawEntry>) -> Result<()>;
    /// Removes `key`; whether it was there.
    fn delete(&self, key: &[u8]) -> Result<bool>;
    /// The number of entries.
    fn len(&self) -> Result<usize>;
    /// Gives back space (SQLite `VACUUM`, a file archive rewritten as one
    /// snapshot); what it did.
    fn compact(&self) -> Result<String>;
    fn clear(&self) -> Result<()>;
    /// Where it lives, for messages (passwords masked).
    fn location(&self) -> String;
}

impl<B: Backend> Raw for Backed<B, AnyKey, Any> {
    fn scan(&self) -> Result<RawItems<'_>> {
        self.backend().scan(true)
    }
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.backend().get(key)
    }
    fn put_batch(&self, entries: Vec<RawEntry>) -> Result<()> {
        self.backend().put_batch(entries)
    }
    fn delete(&self, key: &[u8]) -> Result<bool> {
        Ok(self.backend().delete(key)?.is_some())
    }
    fn len(&self) -> Result<usize> {
        self.backend().len()
    }
    fn compact(&self) -> Result<String> {
        self.backend().compact()
    }
    fn clear(&self) -> Result<()> {
        self.backend().clear()
    }
    fn location(&self) -> String {
        self.backend().location()
    }
}

/// The envelope of a file archive's entry, as the byte stores keep it.
fn envelope(key: &AnyKey, value: &Any, args: Option<&[u8]>) -> Result<Vec<u8>> {
    let value = rmp_serde::to_vec(value).map_err(|e| Error::Encode {
        what: "a value".into(),
        reason: e.to_string(),
    })?;
    Ok(Envelope {
        key: Some(&key.bytes),
        args,
        value: &value,
    }
    .encode())
}

/// An envelope's parts, for a file archive: the value tree and arguments.
fn open_envelope(key: &[u8], stored: &[u8], at: &str) -> Result<(AnyKey, Any, Option<Vec<u8>>)> {
    let envelope = Envelope::decode(stored, at)?;
    let key = AnyKey::from_bytes(key).map_err(|reason| Error::Corrupt {
        location: at.to_owned(),
        reason,
    })?;
    let value = rmp_serde::from_slice(envelope.value).map_err(|e| Error::Corrupt {
        location: at.to_owned(),
        reason: format!("the value is not MessagePack: {e}"),
    })?;
    Ok((key, value, envelope.args.map(<[u8]>::to_vec)))
}

/// An archive of typed entries (a file archive, HDF5), seen as raw
/// entries: each read entry encoded as the byte stores keep it, each
/// written one decoded. `compact` is its way to give back space.
pub struct Typed<A> {
    pub archive: A,
    pub compact: fn(&A) -> Result<String>,
}

impl<A: Archive<AnyKey, Any>> Raw for Typed<A> {
    fn scan(&self) -> Result<RawItems<'_>> {
        let items = self.archive.iter_with_args()?;
        Ok(Box::new(items.map(|item| {
            let (key, value, args) = item?;
            let stored = envelope(&key, &value, args.as_deref())?;
            Ok((key.bytes, stored))
        })))
    }
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let key = AnyKey::from_bytes(key).map_err(|reason| Error::Config { reason })?;
        match self.archive.get(&key)? {
            Some(value) => {
                let args = self.archive.args(&key)?;
                envelope(&key, &value, args.as_deref()).map(Some)
            }
            None => Ok(None),
        }
    }
    fn put_batch(&self, entries: Vec<RawEntry>) -> Result<()> {
        let at = self.archive.location();
        let items = entries
            .iter()
            .map(|(key, stored)| open_envelope(key, stored, &at))
            .collect::<Result<Vec<_>>>()?;
        self.archive.extend_with_args(items)
    }
    fn delete(&self, key: &[u8]) -> Result<bool> {
        let key = AnyKey::from_bytes(key).map_err(|reason| Error::Config { reason })?;
        Ok(self.archive.remove(&key)?.is_some())
    }
    fn len(&self) -> Result<usize> {
        self.archive.len()
    }
    fn compact(&self) -> Result<String> {
        (self.compact)(&self.archive)
    }
    fn clear(&self) -> Result<()> {
        self.archive.clear()
    }
    fn location(&self) -> String {
        self.archive.location()
    }
}

/// A file archive, as raw entries.
pub fn file(archive: FileArchive<AnyKey, Any>) -> Box<dyn Raw> {
    Box::new(Typed {
        archive,
        compact: |a| {
            a.compact()?;
            Ok("rewrote the file as one snapshot".into())
        },
    })
}

/// An HDF5 archive (file or directory), as raw entries.
#[cfg(feature = "hdf5")]
pub fn hdf5<A: Archive<AnyKey, Any> + 'static>(archive: A) -> Box<dyn Raw> {
    Box::new(Typed {
        archive,
        compact: |_| Ok("nothing to compact (HDF5 files reuse freed space)".into()),
    })
}
