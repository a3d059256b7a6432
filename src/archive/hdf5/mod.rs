//! HDF5 archives (feature `hdf5`): [`HdfArchive`], one HDF5 file, and
//! [`HdfDirArchive`], a directory of HDF5 files, whose numeric results
//! h5py, HDFView or any HDF5 tool reads as ordinary datasets.
//!
//! `native` turns values into typed arrays and back, `entry` reads and
//! writes one entry (a dataset with its key and arguments as attributes),
//! and `file` and `dir` keep entries in one file or in one file each.
//! The feature links the system's HDF5 library (Debian: `libhdf5-dev`,
//! found through `pkg-config`).

mod dir;
mod entry;
mod file;
mod native;

pub use dir::HdfDirArchive;
pub use file::HdfArchive;

use std::path::Path;

use crate::{Error, Result};

/// `path` opened read-only; a file HDF5 cannot open is [`Error::Corrupt`]
/// naming it (a missing one is [`Error::Io`]).
fn open_read_only(path: &Path) -> Result<hdf5::File> {
    hdf5::File::open(path).map_err(|e| open_error(path, &e))
}

/// A new, empty HDF5 file at `path` for an [`HdfArchive`]: its free space
/// is kept in the file, so that space freed by a removed or replaced entry
/// is reused by later writes (each of which opens the file anew) instead of
/// being lost at close. Readers need HDF5 1.10 or later.
fn create_file(path: &Path) -> hdf5::Result<hdf5::File> {
    use hdf5::plist::file_create::FileSpaceStrategy;
    hdf5::File::with_options()
        .with_fcpl(|p| {
            p.file_space_strategy(FileSpaceStrategy::FreeSpaceManager {
                paged: false,
                persist: true,
                threshold: 1,
            })
        })
        .create(path)
}

/// The copy of an [`HdfArchive`]'s file that a write changes, opened for
/// writing without HDF5's metadata and small-data aggregation blocks: each
/// write is a session of its own, and every session would otherwise leave
/// its partly used blocks behind.
fn open_for_write(path: &Path) -> hdf5::Result<hdf5::File> {
    hdf5::File::with_options()
        .with_fapl(|p| p.meta_block_size(0).small_data_block_size(0))
        .open_rw(path)
}

/// The error for a file HDF5 could not open or create at `path`.
fn open_error(path: &Path, e: &hdf5::Error) -> Error {
    match std::fs::metadata(path) {
        Err(io) if io.kind() == std::io::ErrorKind::NotFound => Error::Io {
            path: path.to_path_buf(),
            source: io,
        },
        _ => Error::Corrupt {
            location: path.display().to_string(),
            reason: format!("not a readable HDF5 file: {e}"),
        },
    }
}
