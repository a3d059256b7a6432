//! What all handles on one file archive path share: the parsed dictionary,
//! the fingerprint of the file it came from, and the reads and writes that
//! keep the two in step (full parse, catching up with appended records,
//! appending, rewriting).

use std::fs::{File, Metadata, OpenOptions};
use std::hash::Hash;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::RwLock;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::codec::{EntriesRef, EntryMap, JsonIn, JsonOut, Record, JSON_FORMAT, JSON_VERSION};
use super::layout::{self, push_frame, Frame};
use super::Entries;
use crate::archive::envelope::{from_msgpack, to_msgpack};
use crate::archive::faults::{self, Step};
use crate::archive::fs::{self, io_err, LockGuard};
use crate::{Error, Result};

/// Log bytes a MessagePack file may gather after its snapshot before a
/// write compacts it, at least: small archives are not rewritten often.
const COMPACT_MIN: u64 = 256 * 1024;

/// What one file path's handles share.
pub(super) struct Shared<K, V> {
    pub(super) path: PathBuf,
    pub(super) lock_path: PathBuf,
    pub(super) tmp_prefix: String,
    pub(super) format: Format,
    pub(super) cache: RwLock<Cache<K, V>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    MsgPack,
    Json,
}

/// The parsed dictionary and what it was parsed from.
pub(super) struct Cache<K, V> {
    pub(super) seen: Seen,
    /// Shared with running iterators; written through `Arc::make_mut`, which
    /// copies only while an iterator still holds the old version.
    pub(super) entries: Arc<Entries<K, V>>,
    /// Where a MessagePack file in the log layout stands; `None` for JSON,
    /// for the single-envelope files of earlier versions and for no file
    /// (writes then rewrite the whole file).
    pub(super) log: Option<LogState>,
    /// The file version `entries` came from, kept open on Unix so that its
    /// inode number stays taken and cannot fingerprint a later version; the
    /// appended records of that version are read through it.
    file: Option<File>,
    /// The same file opened for appending (writers only, opened lazily).
    appender: Option<File>,
}

/// The layout of a MessagePack file as far as it has been read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct LogState {
    /// Bytes of the header and the snapshot frame.
    snapshot: u64,
    /// The offset just past the last whole record.
    pub(super) end: u64,
    /// Bytes of a torn append after `end` (cut off by the next writer).
    pub(super) torn: u64,
}

impl<K, V> Cache<K, V> {
    /// No entries, from the file in state `seen`.
    pub(super) fn empty(seen: Seen) -> Self {
        Cache {
            seen,
            entries: Arc::default(),
            log: None,
            file: None,
            appender: None,
        }
    }
}

/// The state of the file a cache was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Seen {
    /// No file: the archive is empty.
    Absent,
    /// The file with this fingerprint.
    File(Fingerprint),
    /// Unknown (after a failed write): read the file again.
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Fingerprint {
    #[cfg(unix)]
    dev: u64,
    #[cfg(unix)]
    ino: u64,
    size: u64,
    mtime: Option<SystemTime>,
}

impl Fingerprint {
    fn of(meta: &Metadata) -> Self {
        #[cfg(unix)]
        use std::os::unix::fs::MetadataExt;
        Fingerprint {
            #[cfg(unix)]
            dev: meta.dev(),
            #[cfg(unix)]
            ino: meta.ino(),
            size: meta.len(),
            mtime: meta.modified().ok(),
        }
    }

    /// Whether both describe the same file (Unix: device and inode),
    /// perhaps at different lengths. Elsewhere files cannot be told apart.
    fn same_file(&self, other: &Fingerprint) -> bool {
        #[cfg(unix)]
        return self.dev == other.dev && self.ino == other.ino;
        #[cfg(not(unix))]
        {
            let _ = other;
            false
        }
    }
}

/// What a write does to the dictionary.
pub(super) enum Change<K, V> {
    /// Store entries (key, value, encoded arguments).
    Put(Vec<super::codec::Item<K, V>>),
    /// Remove one key.
    Remove(K),
    /// Remove every key.
    Clear,
}

impl<K: Eq + Hash, V> Change<K, V> {
    /// Whether the change would leave `entries` as they are.
    fn is_noop(&self, entries: &Entries<K, V>) -> bool {
        match self {
            Change::Put(items) => items.is_empty(),
            Change::Remove(key) => !entries.contains_key(key),
            Change::Clear => entries.is_empty(),
        }
    }

    /// Applies the change; returns the removed value of `Remove`.
    fn apply(self, entries: &mut Entries<K, V>) -> Option<V> {
        match self {
            Change::Put(items) => {
                Record::Put(items).apply(entries);
                None
            }
            Change::Remove(key) => entries.remove(&key).map(|(v, _)| v),
            Change::Clear => {
                entries.clear();
                None
            }
        }
    }
}

impl<K: Serialize, V: Serialize> Change<K, V> {
    /// The record frame appending the change, if it can be appended.
    fn frame(&self) -> Result<Option<Vec<u8>>> {
        let value = match self {
            Change::Put(items) => super::codec::put_record(items)?,
            Change::Remove(key) => super::codec::remove_record(key)?,
            Change::Clear => return Ok(None),
        };
        let mut frame = Vec::new();
        push_frame(&mut frame, &value);
        Ok(Some(frame))
    }
}

impl<K, V> Shared<K, V>
where
    K: Serialize + DeserializeOwned + Eq + Hash + Clone,
    V: Serialize + DeserializeOwned + Clone,
{
    pub(super) fn location(&self) -> String {
        self.path.display().to_string()
    }

    /// The state of the file now (one `stat`).
    pub(super) fn current(&self) -> Result<Seen> {
        match std::fs::metadata(&self.path) {
            Ok(meta) => Ok(Seen::File(Fingerprint::of(&meta))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Seen::Absent),
            Err(e) => Err(io_err(&self.path)(e)),
        }
    }

    /// Brings `cache` up to the file: nothing if it is the version already
    /// read, only the new records if the same file grew, else a full parse.
    /// On error `cache` is left as it was (and still does not match the
    /// file, so the next access tries again).
    pub(super) fn refresh(&self, cache: &mut Cache<K, V>) -> Result<()> {
        let now = self.current()?;
        if cache.seen == now {
            return Ok(());
        }
        if self.catch_up(cache, now)? {
            return Ok(());
        }
        let mut file = match File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                *cache = Cache::empty(Seen::Absent);
                return Ok(());
            }
            Err(e) => return Err(io_err(&self.path)(e)),
        };
        // The fingerprint of the version actually read, which may be newer
        // than the one just stat'ed; records appended later are read later.
        let meta = file.metadata().map_err(io_err(&self.path))?;
        let bytes = read_from(&mut file, 0, meta.len()).map_err(io_err(&self.path))?;
        let (entries, log) = self.parse(&bytes)?;
        if let Some(log) = log.filter(|l| l.torn > 0) {
            log::debug!(
                "klepto: {}: {} bytes after the last whole record (an append in progress or a crashed writer's)",
                self.location(),
                log.torn
            );
        }
        *cache = Cache {
            seen: Seen::File(Fingerprint::of(&meta)),
            entries: Arc::new(entries),
            log,
            file: hold(file),
            appender: None,
        };
        Ok(())
    }

    /// Reads only the records appended since `cache` was read, if the file
    /// is the same one grown (`false`: parse it whole).
    fn catch_up(&self, cache: &mut Cache<K, V>, now: Seen) -> Result<bool> {
        let (Seen::File(old), Seen::File(now), Some(log), Some(file)) =
            (cache.seen, now, cache.log, cache.file.as_mut())
        else {
            return Ok(false);
        };
        if !old.same_file(&now) || now.size < log.end {
            return Ok(false);
        }
        let meta = file.metadata().map_err(io_err(&self.path))?;
        let bytes = read_from(file, log.end, meta.len()).map_err(io_err(&self.path))?;
        let scan = layout::scan(&bytes, log.end, &self.location())?;
        let records = self.records(&scan.frames)?;
        let entries = Arc::make_mut(&mut cache.entries);
        for record in records {
            record.apply(entries);
        }
        cache.log = Some(LogState {
            end: scan.end,
            torn: scan.torn,
            ..log
        });
        cache.seen = Seen::File(Fingerprint::of(&meta));
        Ok(true)
    }

    /// Decodes record values (all or none).
    fn records(&self, frames: &[Frame<'_>]) -> Result<Vec<Record<K, V>>> {
        let location = self.location();
        frames
            .iter()
            .map(|frame| from_msgpack::<Record<K, V>>(frame.value, &location))
            .collect()
    }

    /// Parses a whole file.
    fn parse(&self, bytes: &[u8]) -> Result<(Entries<K, V>, Option<LogState>)> {
        let location = self.location();
        let corrupt = |reason: String| Error::Corrupt {
            location: location.clone(),
            reason,
        };
        match self.format {
            Format::MsgPack => {
                let Some(body) = bytes.strip_prefix(&layout::MAGIC) else {
                    // A single envelope, as earlier versions wrote.
                    let value = layout::file_value(bytes, &location)?;
                    let entries = from_msgpack::<EntryMap<K, V>>(value, &location)?;
                    return Ok((entries.0, None));
                };
                let scan = layout::scan(body, layout::MAGIC.len() as u64, &location)?;
                let Some((snapshot, records)) = scan.frames.split_first() else {
                    return Err(corrupt("the snapshot is truncated or damaged".into()));
                };
                let mut entries = from_msgpack::<EntryMap<K, V>>(snapshot.value, &location)?.0;
                for record in self.records(records)? {
                    record.apply(&mut entries);
                }
                let log = LogState {
                    snapshot: snapshot.end,
                    end: scan.end,
                    torn: scan.torn,
                };
                Ok((entries, Some(log)))
            }
            Format::Json => {
                let doc: JsonIn<K, V> = serde_json::from_slice(bytes).map_err(|e| {
                    corrupt(format!(
                        "not a klepto JSON archive of `{}` -> `{}`: {e}",
                        std::any::type_name::<K>(),
                        std::any::type_name::<V>()
                    ))
                })?;
                if doc.format != JSON_FORMAT || doc.version != JSON_VERSION {
                    return Err(corrupt(format!(
                        "format {:?} version {} (this build reads {JSON_FORMAT:?} version {JSON_VERSION})",
                        doc.format, doc.version
                    )));
                }
                Ok((doc.entries.0, None))
            }
        }
    }

    /// Applies `change` to the file and to `cache`, under the archive's
    /// exclusive lock (held by the caller) and with `cache` refreshed:
    /// appended as one record when the file is in the log layout and the log
    /// stays within bounds, else by rewriting the whole file.
    pub(super) fn write(
        &self,
        cache: &mut Cache<K, V>,
        change: Change<K, V>,
        durable: bool,
    ) -> Result<Option<V>> {
        if change.is_noop(&cache.entries) {
            return Ok(None);
        }
        if let Some(log) = cache.log {
            if let Some(frame) = change.frame()? {
                let grown = log.end - log.snapshot + frame.len() as u64;
                if grown <= log.snapshot.max(COMPACT_MIN) {
                    self.append(cache, log, &frame, durable)?;
                    return Ok(change.apply(Arc::make_mut(&mut cache.entries)));
                }
            }
        }
        let out = change.apply(Arc::make_mut(&mut cache.entries));
        if let Err(e) = self.rewrite(cache, durable) {
            // The dictionary in memory no longer matches the file.
            *cache = Cache::empty(Seen::Unknown);
            return Err(e);
        }
        Ok(out)
    }

    /// Appends one record frame, first cutting off a torn append.
    fn append(
        &self,
        cache: &mut Cache<K, V>,
        log: LogState,
        frame: &[u8],
        durable: bool,
    ) -> Result<()> {
        let result = (|| {
            if cache.appender.is_none() {
                cache.appender = Some(OpenOptions::new().append(true).open(&self.path)?);
            }
            let file = cache.appender.as_ref().expect("just opened");
            if log.torn > 0 {
                log::warn!(
                    "klepto: {}: cutting off {} bytes of a torn record (a writer died while appending it)",
                    self.location(),
                    log.torn
                );
                file.set_len(log.end)?;
            }
            faults::write_all(file, frame)?;
            if durable {
                faults::check(Step::Sync)?;
                file.sync_data()?;
            }
            file.metadata()
        })();
        let end = log.end + frame.len() as u64;
        match result {
            Ok(meta) => {
                cache.seen = if meta.len() == end {
                    Seen::File(Fingerprint::of(&meta))
                } else {
                    // Someone wrote without the lock: read the file again.
                    Seen::Unknown
                };
                cache.log = Some(LogState {
                    end,
                    torn: 0,
                    ..log
                });
                Ok(())
            }
            Err(e) => {
                // Leave no partial record behind (best effort: else the next
                // writer cuts it off as torn).
                if let Some(file) = &cache.appender {
                    let _ = file.set_len(log.end);
                }
                *cache = Cache::empty(Seen::Unknown);
                Err(io_err(&self.path)(e))
            }
        }
    }

    /// Writes the whole dictionary to the file atomically (a new snapshot
    /// with no log, or the JSON document) and removes temporary files that
    /// crashed writers left.
    pub(super) fn rewrite(&self, cache: &mut Cache<K, V>, durable: bool) -> Result<()> {
        let entries = &*cache.entries;
        let (bytes, log) = match self.format {
            Format::MsgPack => {
                let value = to_msgpack(&EntriesRef(entries), "file archive entries")?;
                let mut bytes = layout::MAGIC.to_vec();
                push_frame(&mut bytes, &value);
                let end = bytes.len() as u64;
                let log = LogState {
                    snapshot: end,
                    end,
                    torn: 0,
                };
                (bytes, Some(log))
            }
            Format::Json => {
                let doc = JsonOut {
                    format: JSON_FORMAT,
                    version: JSON_VERSION,
                    entries: EntriesRef(entries),
                };
                let mut bytes = serde_json::to_vec_pretty(&doc).map_err(|e| Error::Encode {
                    what: "file archive entries as JSON".into(),
                    reason: e.to_string(),
                })?;
                bytes.push(b'\n');
                (bytes, None)
            }
        };
        fs::remove_stale_temps(&self.path, &self.tmp_prefix);
        let file = fs::write_atomic(&self.path, &self.tmp_prefix, &bytes, durable)?;
        let meta = file.metadata().map_err(io_err(&self.path))?;
        cache.seen = Seen::File(Fingerprint::of(&meta));
        cache.log = log;
        cache.file = hold(file);
        cache.appender = None;
        Ok(())
    }

    /// At open: removes what crashed writers left (stale temporary files),
    /// and reports a torn append that no running writer is finishing.
    /// Needs the lock; skipped (with a debug line) where it cannot be had,
    /// as on read-only media.
    pub(super) fn tidy_at_open(&self) {
        let torn = self.cache.read().log.is_some_and(|l| l.torn > 0);
        if !torn && !fs::has_stale_temps(&self.path, &self.tmp_prefix) {
            return;
        }
        let lock = match LockGuard::exclusive(&self.lock_path) {
            Ok(lock) => lock,
            Err(e) => {
                log::debug!("klepto: {}: not tidied at open: {e}", self.location());
                return;
            }
        };
        fs::remove_stale_temps(&self.path, &self.tmp_prefix);
        let mut cache = self.cache.write();
        // Parsed again whole: an unknown state is never caught up with.
        cache.seen = Seen::Unknown;
        if self.refresh(&mut cache).is_ok() {
            if let Some(log) = cache.log.filter(|l| l.torn > 0) {
                log::warn!(
                    "klepto: {}: ignoring {} bytes of a torn record after byte {} (a writer died while appending it; the next write cuts it off)",
                    self.location(),
                    log.torn,
                    log.end
                );
            }
        }
        drop(lock);
    }
}

/// Reads bytes `from..to` of `file`.
fn read_from(file: &mut File, from: u64, to: u64) -> io::Result<Vec<u8>> {
    let len = to.saturating_sub(from);
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.seek(SeekFrom::Start(from))?;
    file.take(len).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The file to keep open with a parsed version (Unix: see [`Cache`]).
fn hold(file: File) -> Option<File> {
    if cfg!(unix) {
        Some(file)
    } else {
        None
    }
}
