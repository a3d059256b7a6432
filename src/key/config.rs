//! The options of the key pipeline, shared by `Memo` and `KeyGen`.

/// One argument to leave out of the key: by position or by name.
///
/// Built from a `usize` (position) or a string (name):
/// ```
/// use klepto::key::Ignore;
/// assert_eq!(Ignore::from(2), Ignore::Index(2));
/// assert_eq!(Ignore::from("verbose"), Ignore::Name("verbose".into()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ignore {
    /// The argument at this position (0-based).
    Index(usize),
    /// The argument with this name (from `.names(..)` or a struct field).
    Name(String),
}

impl From<usize> for Ignore {
    fn from(i: usize) -> Self {
        Ignore::Index(i)
    }
}
impl From<&str> for Ignore {
    fn from(s: &str) -> Self {
        Ignore::Name(s.to_owned())
    }
}
impl From<String> for Ignore {
    fn from(s: String) -> Self {
        Ignore::Name(s)
    }
}

/// How arguments become a key, before the keymap encodes it.
///
/// ```
/// use klepto::key::KeyConfig;
/// let c = KeyConfig::default();
/// assert!(c.is_identity());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyConfig {
    /// Names of the tuple's positions, for ignoring by name.
    pub names: Vec<String>,
    /// Arguments to leave out of the key.
    pub ignore: Vec<Ignore>,
    /// Decimal places floats are rounded to in the key (`None`: no rounding).
    pub tol: Option<i32>,
    /// Round floats at every depth, not only top-level float arguments.
    pub deep: bool,
    /// Keep each argument's type in the key (`3_i32` differs from `3_i64`).
    pub typed: bool,
}

impl KeyConfig {
    /// True when the configuration changes nothing: no mask, no rounding, no
    /// typing. Only such a configuration fits the raw keymap.
    pub fn is_identity(&self) -> bool {
        self.ignore.is_empty() && self.tol.is_none() && !self.typed
    }

    /// Checks that this configuration fits keymap `K` (a keymap that cannot
    /// apply masks, rounding or typing gets none) and is consistent
    /// ([`validate`](Self::validate)).
    pub fn check_for<Args: ?Sized, K: super::keymap::Keymap<Args>>(&self) -> crate::Result<()> {
        if !K::TRANSFORMS && !self.is_identity() {
            return Err(crate::Error::config(
                "this keymap uses the arguments as they are: it cannot ignore, round or type \
                 them; use HashKeymap, StringKeymap or SerialKeymap",
            ));
        }
        self.validate()
    }

    /// Checks what can be checked before any call: ignored names must be among
    /// `names` when names are given, and ignored positions within them.
    pub fn validate(&self) -> crate::Result<()> {
        if self.names.is_empty() {
            return Ok(());
        }
        for ig in &self.ignore {
            match ig {
                Ignore::Index(i) if *i >= self.names.len() => {
                    return Err(crate::Error::config(format!(
                        "ignore({i}) is out of range: {} argument names were given",
                        self.names.len()
                    )))
                }
                Ignore::Name(n) if !self.names.iter().any(|m| m == n) => {
                    return Err(crate::Error::config(format!(
                        "ignore({n:?}) names no argument; names are {:?}",
                        self.names
                    )))
                }
                _ => {}
            }
        }
        Ok(())
    }
}
