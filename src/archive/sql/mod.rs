//! SQL archives (feature `sqlite`): a table as an archive ([`SqlArchive`])
//! and a database as a dictionary of tables ([`SqlDatabase`]).
//!
//! `url` parses targets (paths and URLs), `sqlite` owns connections and
//! schema, `archive` and `database` are the public types. A server backend
//! (PostgreSQL) would add a variant to the parsed target and a connection
//! module beside `sqlite`.

mod archive;
mod database;
mod sqlite;
mod url;

pub use archive::SqlArchive;
pub use database::SqlDatabase;

#[cfg(test)]
mod tests;
