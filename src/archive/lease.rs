//! Leases: how processes sharing an archive compute a missing result once.

use std::fmt;

/// A lease taken on one key of a shared archive (see
/// [`Archive::try_lease`](super::Archive::try_lease)): while it is live,
/// other processes that miss the same key wait for its holder's result
/// instead of computing it too. It expires by itself after the time given
/// when it was taken, so a holder that dies holds nobody up for longer.
///
/// The lease is identified by a random token, so a holder whose lease
/// expired and was taken by another can never release the other's lease.
///
/// ```
/// use std::time::Duration;
/// use klepto::archive::{Archive, DictArchive};
/// let a: DictArchive<u64, u64> = DictArchive::new();
/// // An in-process archive has no other process to wait for: always granted.
/// let lease = a.try_lease(&7, Duration::from_secs(1))?.expect("granted");
/// a.insert(7, 49)?;
/// a.release(&7, &lease)?;
/// # Ok::<(), klepto::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Lease {
    token: [u8; 16],
}

impl Lease {
    /// A lease with a fresh random token.
    pub fn new() -> Self {
        Lease {
            token: rand::random(),
        }
    }

    /// The token that identifies this lease in the archive.
    pub fn token(&self) -> &[u8] {
        &self.token
    }
}

impl Default for Lease {
    fn default() -> Self {
        Lease::new()
    }
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Lease({})", crate::hex::encode(&self.token))
    }
}
