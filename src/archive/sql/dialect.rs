//! The SQL dialects: every statement text the SQL archives run, built
//! once per table, so that SQLite and PostgreSQL share all the logic above
//! the driver and differ only here and in their drivers.

use crate::{Error, Result};

/// Rows fetched per query while iterating.
pub(crate) const PAGE: usize = 512;

/// The name of the table that holds PostgreSQL leases, in the archive's
/// schema; never listed as an archive.
pub(crate) const LEASE_TABLE: &str = "klepto_leases";

/// An SQL dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// SQLite 3.35 or later (bundled).
    Sqlite,
    /// PostgreSQL 9.5 or later.
    Postgres,
}

/// The statements on one table, with `$n`/`?n` parameters: the key is
/// parameter 1, the value parameter 2.
#[derive(Debug)]
pub(crate) struct Statements {
    pub(crate) get: String,
    pub(crate) contains: String,
    pub(crate) upsert: String,
    /// Upserts every row of two arrays (keys, values) in one statement;
    /// PostgreSQL only (SQLite runs `upsert` per row, which costs it no
    /// round trip).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) upsert_many: String,
    pub(crate) delete: String,
    pub(crate) count: String,
    pub(crate) clear: String,
    /// Keyset paging: the keys after parameter 1, in key order.
    pub(crate) page_keys: String,
    pub(crate) page_items: String,
    pub(crate) create: String,
    /// Fails unless the table has `key` and `value` columns.
    pub(crate) check_columns: String,
    pub(crate) drop: String,
}

impl Dialect {
    /// Refuses table (and schema) names the database cannot take: empty,
    /// with a NUL byte, SQLite's reserved `sqlite_…`, PostgreSQL's names
    /// over 63 bytes (which it would silently cut, merging two tables) and
    /// the lease table. Anything else is quoted, never spliced as SQL.
    pub(crate) fn check_table_name(self, name: &str) -> Result<()> {
        let reason = if name.is_empty() {
            "is empty"
        } else if name.contains('\0') {
            "contains a NUL byte"
        } else if self == Dialect::Sqlite
            && name
                .get(..7)
                .is_some_and(|p| p.eq_ignore_ascii_case("sqlite_"))
        {
            "is in SQLite's reserved `sqlite_` namespace"
        } else if self == Dialect::Postgres && name.len() > 63 {
            "is longer than PostgreSQL's 63 bytes"
        } else if name == LEASE_TABLE {
            "is the table klepto keeps its leases in"
        } else {
            return Ok(());
        };
        Err(Error::config(format!("SQL table name {name:?} {reason}")))
    }

    /// `table`, in `schema` if given, as quoted SQL identifiers.
    pub(crate) fn qualified(schema: Option<&str>, table: &str) -> String {
        match schema {
            Some(schema) => format!("{}.{}", quote_identifier(schema), quote_identifier(table)),
            None => quote_identifier(table),
        }
    }

    /// Parameter `n` (from 1).
    fn param(self, n: u8) -> String {
        match self {
            Dialect::Sqlite => format!("?{n}"),
            Dialect::Postgres => format!("${n}"),
        }
    }

    /// Every statement on the table `q` (already qualified and quoted).
    pub(crate) fn statements(self, q: &str) -> Statements {
        let (k, v) = (self.param(1), self.param(2));
        Statements {
            get: format!("SELECT value FROM {q} WHERE key = {k}"),
            contains: format!("SELECT 1 FROM {q} WHERE key = {k}"),
            upsert: match self {
                Dialect::Sqlite => {
                    format!("INSERT OR REPLACE INTO {q} (key, value) VALUES ({k}, {v})")
                }
                Dialect::Postgres => format!(
                    "INSERT INTO {q} (key, value) VALUES ({k}, {v}) \
                     ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
                ),
            },
            upsert_many: match self {
                Dialect::Sqlite => String::new(),
                Dialect::Postgres => format!(
                    "INSERT INTO {q} (key, value) SELECT * FROM unnest($1::bytea[], $2::bytea[]) \
                     ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
                ),
            },
            delete: format!("DELETE FROM {q} WHERE key = {k} RETURNING value"),
            count: format!("SELECT count(*) FROM {q}"),
            clear: format!("DELETE FROM {q}"),
            page_keys: format!("SELECT key FROM {q} WHERE key > {k} ORDER BY key LIMIT {PAGE}"),
            page_items: format!(
                "SELECT key, value FROM {q} WHERE key > {k} ORDER BY key LIMIT {PAGE}"
            ),
            create: match self {
                Dialect::Sqlite => format!(
                    "CREATE TABLE IF NOT EXISTS {q} \
                     (key BLOB PRIMARY KEY NOT NULL, value BLOB NOT NULL) WITHOUT ROWID"
                ),
                Dialect::Postgres => format!(
                    "CREATE TABLE IF NOT EXISTS {q} (key BYTEA PRIMARY KEY, value BYTEA NOT NULL)"
                ),
            },
            check_columns: format!("SELECT key, value FROM {q} LIMIT 0"),
            drop: format!("DROP TABLE IF EXISTS {q}"),
        }
    }

    /// The user tables of the database (or of schema parameter 1), sorted.
    pub(crate) fn list_tables(self) -> &'static str {
        match self {
            Dialect::Sqlite => {
                "SELECT name FROM sqlite_schema \
                 WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
            }
            Dialect::Postgres => {
                "SELECT c.relname::text FROM pg_catalog.pg_class c \
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1::text AND c.relkind IN ('r', 'p') ORDER BY c.relname"
            }
        }
    }

    /// Whether the table named by the last parameter exists (SQLite
    /// compares names without regard to ASCII case, as it resolves them).
    pub(crate) fn has_table(self) -> &'static str {
        match self {
            Dialect::Sqlite => {
                "SELECT 'yes' FROM sqlite_schema \
                 WHERE type = 'table' AND name = ?1 COLLATE NOCASE"
            }
            Dialect::Postgres => {
                "SELECT 'yes' FROM pg_catalog.pg_class c \
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1::text AND c.relname = $2::text AND c.relkind IN ('r', 'p')"
            }
        }
    }
}

/// `name` as an SQL quoted identifier: `a"b` becomes `"a""b"`.
pub(crate) fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_identifier("memo"), "\"memo\"");
        assert_eq!(quote_identifier("a\"b"), "\"a\"\"b\"");
        assert_eq!(
            Dialect::qualified(Some("s"), "x'; DROP TABLE memo; --"),
            "\"s\".\"x'; DROP TABLE memo; --\""
        );
    }

    #[test]
    fn statements_use_each_dialects_parameters_and_upsert() {
        let lite = Dialect::Sqlite.statements("\"t\"");
        assert!(lite.get.ends_with("key = ?1"));
        assert!(lite.upsert.starts_with("INSERT OR REPLACE"));
        let pg = Dialect::Postgres.statements("\"s\".\"t\"");
        assert!(pg.get.ends_with("key = $1"));
        assert!(pg.upsert.contains("ON CONFLICT (key) DO UPDATE"));
        assert!(pg.create.contains("BYTEA"));
    }

    #[test]
    fn names_each_database_refuses() {
        assert!(Dialect::Sqlite.check_table_name("sqlite_x").is_err());
        assert!(Dialect::Postgres.check_table_name("sqlite_x").is_ok());
        assert!(Dialect::Postgres.check_table_name(&"x".repeat(64)).is_err());
        assert!(Dialect::Sqlite.check_table_name(&"x".repeat(64)).is_ok());
        for d in [Dialect::Sqlite, Dialect::Postgres] {
            assert!(d.check_table_name("").is_err());
            assert!(d.check_table_name("a\0b").is_err());
            assert!(d.check_table_name(LEASE_TABLE).is_err());
            assert!(d.check_table_name("x'; DROP TABLE memo; --").is_ok());
        }
    }
}
