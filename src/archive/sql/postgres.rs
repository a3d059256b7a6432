//! The PostgreSQL driver (feature `postgres`): an r2d2 pool of `postgres`
//! clients, each with its own prepared statements, the [`Driver`]
//! operations, and leases kept in a table of their own.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use postgres::types::ToSql;
use postgres::{Client, NoTls, Statement};
use r2d2::ManageConnection;
use r2d2_postgres::PostgresConnectionManager;

use super::dialect::{Dialect, Statements, LEASE_TABLE};
use super::driver::Driver;
use super::target::PgTarget;
use crate::archive::server::ServerPool;
use crate::archive::RawEntry;
use crate::{Error, Result};

/// How long checking a pooled connection may take while recovering.
const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// Rows per statement in a batch (one transaction holds them all): keeps
/// each statement's parameters to a few megabytes.
const BATCH_ROWS: usize = 4096;

/// A client with the statements it has prepared, by SQL text: a statement
/// is parsed once per connection, and each later use is one round trip.
pub(crate) struct PgConn {
    client: Client,
    prepared: HashMap<String, Statement>,
}

impl PgConn {
    fn prepare(&mut self, sql: &str) -> std::result::Result<Statement, postgres::Error> {
        if let Some(statement) = self.prepared.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql)?;
        self.prepared.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }
}

/// Makes [`PgConn`]s for the pool.
#[derive(Debug)]
struct Manager(PostgresConnectionManager<NoTls>);

impl ManageConnection for Manager {
    type Connection = PgConn;
    type Error = postgres::Error;

    fn connect(&self) -> std::result::Result<PgConn, postgres::Error> {
        Ok(PgConn {
            client: self.0.connect()?,
            prepared: HashMap::new(),
        })
    }

    fn is_valid(&self, conn: &mut PgConn) -> std::result::Result<(), postgres::Error> {
        self.0.is_valid(&mut conn.client)
    }

    fn has_broken(&self, conn: &mut PgConn) -> bool {
        conn.client.is_closed()
    }
}

/// One PostgreSQL database and schema, shared (via `Arc`) by every table
/// handle opened from it.
pub(crate) struct PgDriver {
    pool: ServerPool<Manager>,
    /// `postgres://user:***@host:port/db` (and `?schema=` if not public).
    url: String,
    schema: String,
    /// Whether the lease table is known to exist.
    leases_ready: AtomicBool,
    /// The lease table, qualified and quoted.
    leases: String,
}

impl fmt::Debug for PgDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgDriver")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl PgDriver {
    /// A pool on the database of `target` (see [`ServerPool::open`] for
    /// what happens when the server cannot be reached).
    pub(crate) fn open(target: &PgTarget) -> Result<PgDriver> {
        let mut config = postgres::Config::new();
        config
            .host(&target.host)
            .port(target.port)
            .user(&target.user)
            .dbname(&target.dbname)
            .connect_timeout(target.connect_timeout)
            // A server whose machine vanishes mid-call (no reset, no reply)
            // is given up after about 10 s, not the kernel's minutes or hours:
            // keepalive probes from 5 s of silence, every 2 s, 3 tries, and
            // unacknowledged writes for at most 10 s.
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(5))
            .keepalives_interval(Duration::from_secs(2))
            .keepalives_retries(3)
            .tcp_user_timeout(Duration::from_secs(10))
            .application_name("klepto");
        if let Some(password) = &target.password {
            config.password(password);
        }
        let manager = Manager(PostgresConnectionManager::new(config, NoTls));
        let pool = ServerPool::open(
            manager,
            target.connect_timeout,
            &target.url,
            pg_error,
            |conn: &mut PgConn| conn.client.is_valid(CHECK_TIMEOUT).is_ok(),
        )?;
        Ok(PgDriver {
            pool,
            url: target.url.clone(),
            leases: Dialect::qualified(Some(&target.schema), LEASE_TABLE),
            schema: target.schema.clone(),
            leases_ready: AtomicBool::new(false),
        })
    }

    /// Runs `f` on a pooled connection; `at` names the table in errors.
    fn with<T>(
        &self,
        at: &str,
        f: impl FnOnce(&mut PgConn) -> std::result::Result<T, postgres::Error>,
    ) -> Result<T> {
        self.pool.with(at, f)
    }

    /// Creates the lease table once.
    fn lease_table(&self) -> Result<()> {
        if self.leases_ready.load(Relaxed) {
            return Ok(());
        }
        // UNLOGGED: a lease is worth nothing after a server crash (which
        // empties the table), and taking and releasing one then costs no
        // WAL write and no fsync.
        let sql = format!(
            "CREATE UNLOGGED TABLE IF NOT EXISTS {} (tbl TEXT NOT NULL, key BYTEA NOT NULL, \
             holder BYTEA NOT NULL, expires TIMESTAMPTZ NOT NULL, PRIMARY KEY (tbl, key))",
            self.leases
        );
        let created = self.with(&self.url, |c| c.client.batch_execute(&sql));
        // Another session may create it at the same moment.
        if let Err(e) = created {
            let exists = self.texts(
                &self.url,
                Dialect::Postgres.has_table(),
                &[&self.schema, LEASE_TABLE],
            );
            if !exists.is_ok_and(|t| !t.is_empty()) {
                return Err(e);
            }
        }
        self.leases_ready.store(true, Relaxed);
        Ok(())
    }
}

/// A PostgreSQL error on `at`, transient when it concerns the connection
/// or the server's state (refused, dropped, timed out, shutting down,
/// starting up, too many connections, a serialization failure or
/// deadlock) rather than the statement.
fn pg_error(at: &str, e: postgres::Error) -> Error {
    let transient = match e.code() {
        Some(code) => {
            let code = code.code();
            code.starts_with("08")
                || code.starts_with("57P")
                || matches!(code, "40001" | "40P01" | "53300" | "55P03")
        }
        None => {
            e.is_closed() || std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>())
        }
    };
    Error::driver(at, e, transient)
}

impl Driver for PgDriver {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn url(&self) -> &str {
        &self.url
    }

    fn name(&self) -> &str {
        &self.url
    }

    fn schema(&self) -> Option<&str> {
        Some(&self.schema)
    }

    fn query_value_with(
        &self,
        at: &str,
        sql: &str,
        key: &[u8],
        found: &mut dyn FnMut(&[u8]),
    ) -> Result<()> {
        self.with(at, |c| {
            let statement = c.prepare(sql)?;
            if let Some(row) = c.client.query_opt(&statement, &[&key])? {
                found(row.try_get::<_, &[u8]>(0)?);
            }
            Ok(())
        })
    }

    fn exists(&self, at: &str, sql: &str, key: &[u8]) -> Result<bool> {
        self.with(at, |c| {
            let statement = c.prepare(sql)?;
            Ok(c.client.query_opt(&statement, &[&key])?.is_some())
        })
    }

    fn put(&self, at: &str, sql: &str, key: &[u8], value: &[u8]) -> Result<()> {
        self.with(at, |c| {
            let statement = c.prepare(sql)?;
            c.client.execute(&statement, &[&key, &value]).map(drop)
        })
    }

    /// One transaction of multi-row upserts (`unnest` of two arrays), so a
    /// batch of 1,000 entries costs a few round trips, not 1,000.
    fn put_batch(&self, at: &str, sql: &Statements, rows: &[RawEntry]) -> Result<()> {
        self.with(at, |c| {
            let statement = c.prepare(&sql.upsert_many)?;
            let mut tx = c.client.transaction()?;
            for chunk in rows.chunks(BATCH_ROWS) {
                let keys: Vec<&[u8]> = chunk.iter().map(|(k, _)| k.as_slice()).collect();
                let values: Vec<&[u8]> = chunk.iter().map(|(_, v)| v.as_slice()).collect();
                tx.execute(&statement, &[&keys, &values])?;
            }
            // Dropping `tx` on an error above rolls the whole batch back.
            tx.commit()
        })
    }

    fn count(&self, at: &str, sql: &str) -> Result<u64> {
        self.with(at, |c| {
            let statement = c.prepare(sql)?;
            let n: i64 = c.client.query_one(&statement, &[])?.try_get(0)?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    fn page(&self, at: &str, sql: &str, after: &[u8], values: bool) -> Result<Vec<RawEntry>> {
        self.with(at, |c| {
            let statement = c.prepare(sql)?;
            let rows = c.client.query(&statement, &[&after])?;
            rows.iter()
                .map(|r| {
                    let key: Vec<u8> = r.try_get(0)?;
                    let value = if values { r.try_get(1)? } else { Vec::new() };
                    Ok((key, value))
                })
                .collect()
        })
    }

    fn texts(&self, at: &str, sql: &str, params: &[&str]) -> Result<Vec<String>> {
        self.with(at, |c| {
            let statement = c.prepare(sql)?;
            let params: Vec<&(dyn ToSql + Sync)> =
                params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
            let rows = c.client.query(&statement, &params)?;
            rows.iter().map(|r| r.try_get(0)).collect()
        })
    }

    fn run(&self, at: &str, sql: &str) -> Result<()> {
        self.with(at, |c| c.client.batch_execute(sql))
    }

    /// Inserts the lease row, or takes over an expired one, in one
    /// statement; the server's clock decides expiry, so machines with
    /// skewed clocks agree.
    fn try_lease(&self, table: &str, key: &[u8], ttl: Duration, token: &[u8]) -> Result<bool> {
        self.lease_table()?;
        let sql = format!(
            "INSERT INTO {l} AS l (tbl, key, holder, expires) \
             VALUES ($1::text, $2::bytea, $3::bytea, \
                     clock_timestamp() + $4::bigint * interval '1 millisecond') \
             ON CONFLICT (tbl, key) DO UPDATE \
             SET holder = EXCLUDED.holder, expires = EXCLUDED.expires \
             WHERE l.expires < clock_timestamp() RETURNING 1",
            l = self.leases
        );
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        self.with(&self.url, |c| {
            let statement = c.prepare(&sql)?;
            let row = c
                .client
                .query_opt(&statement, &[&table, &key, &token, &ttl_ms])?;
            Ok(row.is_some())
        })
    }

    fn forget_leases(&self, table: &str) -> Result<()> {
        let exists = self.texts(
            &self.url,
            Dialect::Postgres.has_table(),
            &[&self.schema, LEASE_TABLE],
        )?;
        if exists.is_empty() {
            return Ok(());
        }
        let sql = format!("DELETE FROM {} WHERE tbl = $1::text", self.leases);
        self.with(&self.url, |c| {
            let statement = c.prepare(&sql)?;
            c.client.execute(&statement, &[&table]).map(drop)
        })
    }

    fn release(&self, table: &str, key: &[u8], token: &[u8]) -> Result<()> {
        let sql = format!(
            "DELETE FROM {} WHERE tbl = $1::text AND key = $2::bytea AND holder = $3::bytea",
            self.leases
        );
        self.with(&self.url, |c| {
            let statement = c.prepare(&sql)?;
            c.client
                .execute(&statement, &[&table, &key, &token])
                .map(drop)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_errors_are_transient_and_name_no_password() {
        let target = PgTarget {
            host: "127.0.0.1".into(),
            // Nothing listens on port 1.
            port: 1,
            user: "u".into(),
            password: Some("s3cret".into()),
            dbname: "d".into(),
            schema: "public".into(),
            connect_timeout: Duration::from_secs(1),
            url: "postgres://u:***@127.0.0.1:1/d".into(),
        };
        let driver = PgDriver::open(&target).expect("an unreachable server is not an open error");
        let err = driver.count("t", "SELECT 1").unwrap_err();
        assert!(err.is_transient(), "{err}");
        assert!(!format!("{err} {err:?}").contains("s3cret"));
        // While down, operations fail at once.
        let start = std::time::Instant::now();
        assert!(driver.count("t", "SELECT 1").unwrap_err().is_transient());
        assert!(start.elapsed() < Duration::from_millis(100));
    }
}
