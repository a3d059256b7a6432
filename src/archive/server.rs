//! What the server backends (PostgreSQL, Redis) share: a connection pool
//! that knows the server's health.
//!
//! After a transient failure (refused, dropped or timed-out connection),
//! operations fail at once for a short pause instead of each waiting out a
//! connect timeout, then one operation tries the server again, checking
//! pooled connections before use (a restarted server left them all dead).
//! Without this, a memo over a stopped server would spend the whole
//! connect timeout on every call; with it, a call while the server is down
//! costs one atomic load and computes, and the archive is used again
//! within [`RETRY_AFTER`] of the server coming back.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use r2d2::{ManageConnection, Pool, PooledConnection};

use crate::{Error, Result};

/// Connections per server pool: enough for a few threads' calls and leases.
const POOL_SIZE: u32 = 8;

/// A pool of connections to one server, with its health.
pub(crate) struct ServerPool<M: ManageConnection> {
    pool: Pool<M>,
    health: Health,
    /// Turns a driver error on `at` into ours, transient or not.
    classify: fn(&str, M::Error) -> Error,
    /// Whether a pooled connection still works (a cheap round trip).
    alive: fn(&mut M::Connection) -> bool,
}

impl<M: ManageConnection> ServerPool<M> {
    /// A pool of `manager`'s connections. One connection is tried now: a
    /// refusal by the server (a wrong password, no such database) is an
    /// error; a server that cannot be reached is not (the pool connects
    /// when it is back, and operations fail quickly until then).
    pub(crate) fn open(
        manager: M,
        connect_timeout: Duration,
        url: &str,
        classify: fn(&str, M::Error) -> Error,
        alive: fn(&mut M::Connection) -> bool,
    ) -> Result<Self> {
        let health = Health::default();
        if let Err(e) = manager.connect() {
            let e = classify(url, e);
            if !e.is_transient() {
                return Err(e);
            }
            log::warn!("klepto: {e}; the archive connects when the server is back");
            let _ = health.record::<()>(Err(e));
        }
        let pool = Pool::builder()
            .max_size(POOL_SIZE)
            .min_idle(Some(0))
            .test_on_check_out(false)
            .connection_timeout(connect_timeout)
            .build_unchecked(manager);
        Ok(ServerPool {
            pool,
            health,
            classify,
            alive,
        })
    }

    /// Runs `f` on a pooled connection, failing fast while the server is
    /// known to be down; `at` names the table or namespace in errors.
    pub(crate) fn with<T>(
        &self,
        at: &str,
        f: impl FnOnce(&mut M::Connection) -> std::result::Result<T, M::Error>,
    ) -> Result<T> {
        self.health.check(at)?;
        let result = match self.checkout() {
            Ok(mut conn) => f(&mut conn).map_err(|e| (self.classify)(at, e)),
            Err(e) => Err(Error::driver(at, e, true)),
        };
        self.health.record(result)
    }

    /// A pooled connection. After a failure that may have been a server
    /// restart, each one is checked first: a dead one fails its check at
    /// once, is marked closed and leaves the pool when dropped, so the
    /// first call after the server's return does not fail on it.
    fn checkout(&self) -> std::result::Result<PooledConnection<M>, r2d2::Error> {
        let mut conn = self.pool.get()?;
        if self.health.recovering() {
            for _ in 0..POOL_SIZE {
                if (self.alive)(&mut conn) {
                    break;
                }
                conn = self.pool.get()?;
            }
        }
        Ok(conn)
    }
}

/// How long operations fail fast after a transient failure.
pub(crate) const RETRY_AFTER: Duration = Duration::from_millis(500);

/// The failure state of one server, shared by every handle on it.
#[derive(Debug, Default)]
struct Health {
    /// Milliseconds since [`epoch`] until which operations fail fast
    /// (0: healthy).
    down_until: AtomicU64,
    /// The failure that started the pause, for the fail-fast errors.
    last: Mutex<String>,
}

impl Health {
    /// `Ok` if the server may be tried now; the fail-fast error naming
    /// `location` during a pause.
    #[inline]
    fn check(&self, location: &str) -> Result<()> {
        let until = self.down_until.load(Relaxed);
        if until == 0 || now_ms() >= until {
            return Ok(());
        }
        Err(Error::Archive {
            location: location.to_owned(),
            reason: format!(
                "server unavailable, not retried for up to {} ms after: {}",
                RETRY_AFTER.as_millis(),
                self.last.lock()
            ),
            transient: true,
            source: None,
        })
    }

    /// Whether a transient failure happened since the last success: pooled
    /// connections may be dead (a restarted server), so check each before use.
    #[inline]
    fn recovering(&self) -> bool {
        self.down_until.load(Relaxed) != 0
    }

    /// Records the outcome of an operation: a transient failure starts a
    /// pause; a success ends one.
    fn record<T>(&self, result: Result<T>) -> Result<T> {
        match &result {
            Err(e) if e.is_transient() => {
                *self.last.lock() = e.to_string();
                let until = now_ms() + RETRY_AFTER.as_millis() as u64;
                self.down_until.store(until.max(1), Relaxed);
                log::warn!(
                    "klepto: {e}; failing fast for {} ms",
                    RETRY_AFTER.as_millis()
                );
            }
            Ok(_) if self.down_until.load(Relaxed) != 0 => {
                self.down_until.store(0, Relaxed);
                log::info!("klepto: server reachable again");
            }
            _ => {}
        }
        result
    }
}

/// Milliseconds since the first call in this process (monotonic).
fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transient() -> Error {
        Error::Archive {
            location: "redis://h".into(),
            reason: "connection refused".into(),
            transient: true,
            source: None,
        }
    }

    #[test]
    fn a_transient_failure_pauses_and_a_success_resumes() {
        let h = Health::default();
        assert!(h.check("x").is_ok());
        let _ = h.record::<()>(Err(Error::archive("x", "permanent")));
        assert!(h.check("x").is_ok(), "permanent failures do not pause");
        let _ = h.record::<()>(Err(transient()));
        let err = h.check("redis://h").unwrap_err();
        assert!(err.is_transient());
        assert!(err.to_string().contains("connection refused"), "{err}");
        std::thread::sleep(RETRY_AFTER + Duration::from_millis(20));
        assert!(h.check("x").is_ok(), "tried again after the pause");
        let _ = h.record(Ok(()));
        assert_eq!(h.down_until.load(Relaxed), 0);
    }
}
