//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong in `klepto`: building a key, configuring a
/// memo, or reading and writing an archive.
///
/// Each variant names what failed (the argument, the path, the table or the
/// key), so the message alone tells where to look.
///
/// ```
/// let err = klepto::Error::Key { reason: "ignore index 5 out of range for 2 arguments".into() };
/// assert!(err.to_string().contains("index 5"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The builder was given options that do not fit together, e.g. an ignore
    /// mask with a [`RawKeymap`](crate::keymap::RawKeymap).
    #[error("invalid memo configuration: {reason}")]
    Config {
        /// What is wrong with the configuration.
        reason: String,
    },

    /// The arguments could not be turned into a key (an ignore mask that names
    /// no argument, a type serde cannot describe, ...).
    #[error("cannot build a key: {reason}")]
    Key {
        /// Why the key could not be built.
        reason: String,
    },

    /// An I/O operation on an archive failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// Stored data could not be decoded: the file or entry is damaged or was
    /// written for another type. The data is left untouched.
    #[error("corrupt data in {location}: {reason}")]
    Corrupt {
        /// The file, table or key whose data is damaged.
        location: String,
        /// What was wrong with it.
        reason: String,
    },

    /// A value could not be encoded for an archive.
    #[error("cannot encode {what}: {reason}")]
    Encode {
        /// What was being encoded (a key, a value, ...).
        what: String,
        /// Why it failed.
        reason: String,
    },

    /// An archive backend reported an error.
    #[error("archive {location}: {reason}")]
    Archive {
        /// The archive (path, URL or table) involved.
        location: String,
        /// What the backend said.
        reason: String,
    },
}

impl Error {
    pub(crate) fn key(reason: impl Into<String>) -> Self {
        Error::Key {
            reason: reason.into(),
        }
    }

    pub(crate) fn archive(location: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Error::Archive {
            location: location.into(),
            reason: reason.to_string(),
        }
    }

    pub(crate) fn config(reason: impl Into<String>) -> Self {
        Error::Config {
            reason: reason.into(),
        }
    }
}

/// `Result` with [`klepto::Error`](Error).
pub type Result<T, E = Error> = std::result::Result<T, E>;
