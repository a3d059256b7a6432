//! [`KeyGen`]: the key pipeline without a cache.

use super::keymap::{HashKeymap, Keymap};
use super::{Ignore, KeyConfig};
use crate::Result;

/// The key pipeline on its own: the keys a memo would use, without a cache.
/// This is Rust's counterpart of Python klepto's `keygen` decorator.
///
/// Configure it like a memo builder (`.names`, `.ignore`, `.tol`, `.deep`,
/// `.typed`, `.keymap`) and ask for [`key`](KeyGen::key)s. The default keymap
/// is [`HashKeymap`].
///
/// ```
/// use klepto::KeyGen;
/// use klepto::keymap::StringKeymap;
///
/// let keys = KeyGen::new()
///     .names(["x", "y", "verbose"])
///     .ignore("verbose")
///     .tol(1)
///     .keymap(StringKeymap::new());
/// assert_eq!(keys.key(&(1.04_f64, 2_u8, true)).unwrap(), "(1.0, 2, NULL)");
/// assert_eq!(keys.key(&(0.96_f64, 2_u8, false)).unwrap(), "(1.0, 2, NULL)");
///
/// // The default keymap gives 128-bit hashes.
/// let hashes = KeyGen::new().ignore(1);
/// assert_eq!(hashes.key(&(1, 2)).unwrap(), hashes.key(&(1, 99)).unwrap());
/// assert_ne!(hashes.key(&(1, 2)).unwrap(), hashes.key(&(2, 2)).unwrap());
/// ```
#[derive(Debug, Clone, Default)]
pub struct KeyGen<K = HashKeymap> {
    keymap: K,
    config: KeyConfig,
}

impl KeyGen<HashKeymap> {
    /// A key generator with the default [`HashKeymap`] and no masks,
    /// rounding or typing.
    pub fn new() -> Self {
        KeyGen::default()
    }
}

impl<K> KeyGen<K> {
    /// Names the tuple's positions, so they can be ignored by name.
    #[must_use]
    pub fn names<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.config.names = names.into_iter().map(Into::into).collect();
        self
    }

    /// Leaves one argument out of the key: by position (`usize`) or by name
    /// (`&str`, from [`names`](KeyGen::names) or a struct argument's fields).
    /// Repeat for several.
    #[must_use]
    pub fn ignore(mut self, arg: impl Into<Ignore>) -> Self {
        self.config.ignore.push(arg.into());
        self
    }

    /// Rounds floats to `tol` decimal places in the key, as Python's
    /// `round(x, tol)` does (the double's exact value, ties to even only on
    /// exact halves); negative values round to tens, hundreds, ... See
    /// [`round_float`](crate::key::round_float).
    #[must_use]
    pub fn tol(mut self, tol: i32) -> Self {
        self.config.tol = Some(tol);
        self
    }

    /// With `true`, rounding also reaches floats nested in sequences, tuples,
    /// structs and maps; with `false` (the default) only top-level floats.
    #[must_use]
    pub fn deep(mut self, deep: bool) -> Self {
        self.config.deep = deep;
        self
    }

    /// With `true`, the key keeps each argument's type (`3_i32` and `3_i64`
    /// differ); with `false` (the default) only values count.
    #[must_use]
    pub fn typed(mut self, typed: bool) -> Self {
        self.config.typed = typed;
        self
    }

    /// Uses another keymap, keeping the configuration.
    #[must_use]
    pub fn keymap<K2>(self, keymap: K2) -> KeyGen<K2> {
        KeyGen {
            keymap,
            config: self.config,
        }
    }

    /// The configuration: names, masks, rounding, typing.
    pub fn config(&self) -> &KeyConfig {
        &self.config
    }

    /// The key of `args`.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) when the configuration is
    /// inconsistent (an ignored name not among `names`) or does not fit the
    /// keymap (masks with [`RawKeymap`](crate::keymap::RawKeymap));
    /// [`Error::Key`](crate::Error::Key) when a mask does not fit these
    /// arguments or they cannot be serialized.
    pub fn key<Args: ?Sized>(&self, args: &Args) -> Result<K::Key>
    where
        K: Keymap<Args>,
    {
        self.config.check_for::<Args, K>()?;
        self.keymap.key(args, &self.config)
    }
}
