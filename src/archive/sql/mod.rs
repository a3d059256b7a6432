//! SQL archives (features `sqlite` and `postgres`): a table as an archive
//! ([`SqlArchive`]) and a database as a dictionary of tables
//! ([`SqlDatabase`]).
//!
//! Layers, top down: `archive` and `database` are the public types;
//! `table` is the byte-level [`Backend`](crate::archive::Backend) of one
//! table (statements, lazy creation, keyset paging, batches), shared by
//! every database; `dialect` writes each database's SQL; `driver` is the
//! seam to a database driver, implemented by `sqlite` (rusqlite through
//! r2d2) and `postgres` (the `postgres` crate through r2d2); `target`
//! parses paths and URLs.

mod archive;
mod database;
mod dialect;
mod driver;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;
mod table;
mod target;

use std::sync::Arc;

pub use archive::SqlArchive;
pub use database::SqlDatabase;
pub use table::SqlTable;

use crate::Result;
use driver::Driver;
use target::{Backend, Target};

/// The driver for the database of `target`.
fn connect(target: &Target) -> Result<Arc<dyn Driver>> {
    match &target.backend {
        #[cfg(feature = "sqlite")]
        Backend::SqliteFile(_) | Backend::SqliteMemory => {
            Ok(Arc::new(sqlite::SqliteDriver::open(target)?))
        }
        #[cfg(not(feature = "sqlite"))]
        Backend::SqliteFile(_) | Backend::SqliteMemory => Err(crate::Error::config(
            "SQLite archives are not in this build (enable the `sqlite` feature)",
        )),
        #[cfg(feature = "postgres")]
        Backend::Postgres(pg) => Ok(Arc::new(postgres::PgDriver::open(pg)?)),
        #[cfg(not(feature = "postgres"))]
        Backend::Postgres(pg) => Err(crate::Error::config(format!(
            "archive target `{}`: PostgreSQL archives are not in this build \
             (enable the `postgres` feature of klepto-cache)",
            pg.url
        ))),
    }
}

#[cfg(all(test, feature = "sqlite"))]
mod tests;
