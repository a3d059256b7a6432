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

    /// An archive backend reported an error: a database or server
    /// statement failed, a connection could not be had, a table is not an
    /// archive's.
    ///
    /// `transient` tells a failure that may pass by itself (connection
    /// refused or dropped, a timeout, a server restarting or a lock held
    /// too long) from one that will not (a bad table, a refused statement):
    /// see [`Error::is_transient`]. `source` is the driver's own error,
    /// when there is one.
    #[error("archive {location}: {reason}")]
    Archive {
        /// The archive (path, URL with its password masked, or table) involved.
        location: String,
        /// What the backend said.
        reason: String,
        /// Whether retrying later may succeed (the server or lock may come back).
        transient: bool,
        /// The driver's error, if the failure came from one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },
}

/// How the reason of a type mismatch starts (see [`Error::type_mismatch`]).
const TYPE_MISMATCH: &str = "stored data";

impl Error {
    pub(crate) fn key(reason: impl Into<String>) -> Self {
        Error::Key {
            reason: reason.into(),
        }
    }

    /// A permanent backend failure with no driver error behind it.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) fn archive(location: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Error::Archive {
            location: location.into(),
            reason: reason.to_string(),
            transient: false,
            source: None,
        }
    }

    /// A backend failure caused by the driver error `source`; `transient`
    /// as classified by the backend.
    #[allow(dead_code)] // unused in builds without any SQL or server backend
    pub(crate) fn driver(
        location: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
        transient: bool,
    ) -> Self {
        // The whole chain: drivers often say "invalid configuration" or
        // "timed out" at the top and the why further down.
        let mut reason = source.to_string();
        let mut cause = source.source();
        while let Some(c) = cause {
            let text = c.to_string();
            if !reason.contains(&text) {
                reason.push_str(": ");
                reason.push_str(&text);
            }
            cause = c.source();
        }
        Error::Archive {
            location: location.into(),
            reason,
            transient,
            source: Some(Box::new(source)),
        }
    }

    /// Whether the failure may pass if the operation is tried again later:
    /// an archive's server that refused or dropped the connection, timed
    /// out or is restarting, or a database lock held past the busy timeout.
    /// Everything else (bad data, bad configuration, a refused statement)
    /// is permanent.
    ///
    /// ```
    /// let err = klepto::Error::Key { reason: "bad".into() };
    /// assert!(!err.is_transient());
    /// ```
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Archive {
                transient: true,
                ..
            }
        )
    }

    /// [`Error::Corrupt`] for sound stored data that is not a `T`: an entry
    /// written for another value type. `stored` describes what is there
    /// (or is empty), `detail` is the decoder's message.
    pub(crate) fn type_mismatch<T: ?Sized>(
        location: impl std::fmt::Display,
        stored: &str,
        detail: impl std::fmt::Display,
    ) -> Self {
        let stored = if stored.is_empty() {
            String::new()
        } else {
            format!(" ({stored})")
        };
        Error::Corrupt {
            location: location.to_string(),
            reason: format!(
                "{TYPE_MISMATCH}{stored} does not decode as `{}`: {detail}",
                std::any::type_name::<T>()
            ),
        }
    }

    /// Whether this is an entry that is sound but holds another value type
    /// than the one asked for (see [`type_mismatch`](Error::type_mismatch)),
    /// as opposed to damaged data.
    pub(crate) fn is_type_mismatch(&self) -> bool {
        matches!(self, Error::Corrupt { reason, .. } if reason.starts_with(TYPE_MISMATCH))
    }

    pub(crate) fn config(reason: impl Into<String>) -> Self {
        Error::Config {
            reason: reason.into(),
        }
    }
}

/// `Result` with [`klepto::Error`](Error).
pub type Result<T, E = Error> = std::result::Result<T, E>;
