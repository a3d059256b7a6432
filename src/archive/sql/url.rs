//! Parsing the `target` of [`SqlArchive::open`](super::SqlArchive::open) and
//! [`SqlDatabase::open`](super::SqlDatabase::open): a path or a URL.
//!
//! Accepted forms:
//!
//! ```text
//! cache.db                          a path (relative or absolute), table `memo`
//! sqlite:///abs/path/cache.db       absolute path
//! sqlite://relative/cache.db        relative path
//! sqlite::memory:                   a private in-memory database
//! ...?table=fib&durable=true        query parameters (URL forms only)
//! postgres://... / postgresql://... a server backend (not in this build)
//! ```
//!
//! Unlike SQLAlchemy (Python klepto), three slashes mean an absolute path,
//! matching the usual `file:///` reading. Path and parameter values are
//! percent-decoded, so `?table=a%26b` names the table `a&b`.

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::{Error, Result};

/// The table used when the target names none.
pub(crate) const DEFAULT_TABLE: &str = "memo";

/// Where a database lives. One variant per backend, so a server backend
/// (PostgreSQL) slots in as another variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Backend {
    /// An SQLite file.
    SqliteFile(PathBuf),
    /// A private in-memory SQLite database.
    SqliteMemory,
}

/// A parsed target: the database, the table (if named) and the options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) backend: Backend,
    pub(crate) table: Option<String>,
    /// `synchronous=FULL` instead of `NORMAL`: commits survive power loss.
    pub(crate) durable: bool,
}

impl Target {
    /// Parses a path or URL.
    pub(crate) fn parse(target: &str) -> Result<Target> {
        let bad = |reason: String| Error::config(format!("SQL target `{target}`: {reason}"));
        if let Some((scheme, _)) = target.split_once("://") {
            let is_scheme = !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
            if is_scheme && scheme != "sqlite" {
                return Err(match scheme.to_ascii_lowercase().as_str() {
                    "postgres" | "postgresql" => bad(
                        "the PostgreSQL backend is not available in this build \
                         (planned behind the `postgres` feature)"
                            .into(),
                    ),
                    other => bad(format!(
                        "unsupported scheme `{other}` (expected a path, `sqlite://` or `postgres://`)"
                    )),
                });
            }
        }
        let Some(rest) = target.strip_prefix("sqlite:") else {
            if target.is_empty() {
                return Err(bad("empty path".into()));
            }
            if target.contains('\0') {
                return Err(bad("path contains a NUL byte".into()));
            }
            // A plain path: taken literally (it may contain `?` or `%`).
            return Ok(Target {
                backend: Backend::SqliteFile(PathBuf::from(target)),
                table: None,
                durable: false,
            });
        };
        let (location, query) = match rest.split_once('?') {
            Some((l, q)) => (l, Some(q)),
            None => (rest, None),
        };
        let backend = if location == ":memory:" {
            Backend::SqliteMemory
        } else if let Some(path) = location.strip_prefix("//") {
            let path = decode(path).map_err(&bad)?;
            if path.is_empty() {
                return Err(bad("no database path after `sqlite://`".into()));
            }
            if path.contains('\0') {
                return Err(bad("path contains a NUL byte".into()));
            }
            Backend::SqliteFile(PathBuf::from(path))
        } else {
            return Err(bad(
                "expected `sqlite:///absolute/path`, `sqlite://relative/path` or `sqlite::memory:`"
                    .into(),
            ));
        };
        let mut parsed = Target {
            backend,
            table: None,
            durable: false,
        };
        let mut durable_seen = false;
        for pair in query.into_iter().flat_map(|q| q.split('&')) {
            if pair.is_empty() {
                continue;
            }
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = decode(value).map_err(&bad)?;
            match name {
                "table" if parsed.table.is_none() => {
                    check_table_name(&value)?;
                    parsed.table = Some(value);
                }
                "durable" if !durable_seen => {
                    durable_seen = true;
                    parsed.durable = match value.as_str() {
                        "true" | "1" | "yes" | "on" => true,
                        "false" | "0" | "no" | "off" => false,
                        other => {
                            return Err(bad(format!("`durable={other}`: expected true or false")))
                        }
                    };
                }
                "table" | "durable" => return Err(bad(format!("parameter `{name}` given twice"))),
                other => {
                    return Err(bad(format!(
                        "unknown parameter `{other}` (known: table, durable)"
                    )))
                }
            }
        }
        Ok(parsed)
    }

    /// The database part of the URL, without query (`sqlite:///abs/db`).
    pub(crate) fn database_url(&self) -> String {
        match &self.backend {
            Backend::SqliteMemory => "sqlite::memory:".to_owned(),
            Backend::SqliteFile(path) => {
                let path = path.to_string_lossy();
                let mut out = String::from("sqlite://");
                encode_into(&mut out, &path, "%?#");
                out
            }
        }
    }
}

/// The URL of one table of a database (what `location()` shows); parses
/// back into the same target.
pub(crate) fn table_url(database_url: &str, table: &str, durable: bool) -> String {
    let mut out = format!("{database_url}?table=");
    encode_into(&mut out, table, "%&#=+");
    if durable {
        out.push_str("&durable=true");
    }
    out
}

/// Refuses table names SQLite cannot take: empty, with a NUL byte, or in
/// SQLite's reserved `sqlite_` namespace. Anything else is quoted.
pub(crate) fn check_table_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::config("SQL table name is empty"));
    }
    if name.contains('\0') {
        return Err(Error::config(format!(
            "SQL table name {name:?} contains a NUL byte"
        )));
    }
    if name
        .get(..7)
        .is_some_and(|p| p.eq_ignore_ascii_case("sqlite_"))
    {
        return Err(Error::config(format!(
            "SQL table name `{name}` is in SQLite's reserved `sqlite_` namespace"
        )));
    }
    Ok(())
}

/// `name` as an SQL quoted identifier: `a"b` becomes `"a""b"`.
pub(crate) fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Percent-decodes a URL component.
fn decode(s: &str) -> std::result::Result<String, String> {
    if !s.contains('%') {
        return Ok(s.to_owned());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent escape at byte {i}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "percent escapes do not decode as UTF-8".to_owned())
}

/// Appends `s`, percent-encoding control characters and those in `special`.
fn encode_into(out: &mut String, s: &str, special: &str) {
    for c in s.chars() {
        if c.is_control() || special.contains(c) {
            let mut buf = [0; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "%{b:02X}");
            }
        } else {
            out.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, table: Option<&str>) -> Target {
        Target {
            backend: Backend::SqliteFile(PathBuf::from(path)),
            table: table.map(str::to_owned),
            durable: false,
        }
    }

    #[test]
    fn paths_and_urls() {
        assert_eq!(Target::parse("cache.db").unwrap(), file("cache.db", None));
        assert_eq!(Target::parse("/a/b?c.db").unwrap(), file("/a/b?c.db", None));
        assert_eq!(
            Target::parse("sqlite:///abs/db?table=t").unwrap(),
            file("/abs/db", Some("t"))
        );
        assert_eq!(
            Target::parse("sqlite://rel/db").unwrap(),
            file("rel/db", None)
        );
        assert_eq!(
            Target::parse("sqlite://rel/db?table=fib%402&durable=true").unwrap(),
            Target {
                durable: true,
                ..file("rel/db", Some("fib@2"))
            }
        );
        assert_eq!(
            Target::parse("sqlite:///a%20b/db?").unwrap(),
            file("/a b/db", None)
        );
        assert_eq!(
            Target::parse("sqlite::memory:?table=x").unwrap().backend,
            Backend::SqliteMemory
        );
    }

    #[test]
    fn errors_are_config_errors() {
        for bad in [
            "",
            "postgres://user@host/db",
            "postgresql://host/db",
            "mysql://host/db",
            "sqlite:",
            "sqlite:db",
            "sqlite://",
            "sqlite:///db?tabel=t",
            "sqlite:///db?table=",
            "sqlite:///db?table=a&table=b",
            "sqlite:///db?table=%00",
            "sqlite:///db?table=sqlite_master",
            "sqlite:///db?table=%zz",
            "sqlite:///db?durable=maybe",
        ] {
            let err = Target::parse(bad).unwrap_err();
            assert!(matches!(err, Error::Config { .. }), "{bad}: {err}");
        }
        let err = Target::parse("postgres://h/db").unwrap_err().to_string();
        assert!(err.contains("postgres"), "{err}");
    }

    #[test]
    fn table_urls_parse_back() {
        for table in ["memo", "fib@2", "a&b=c", "100%", "x y\"z", "tab\tle", "é"] {
            for (path, durable) in [("/tmp/a b/c%d.db", false), ("/x?y#z", true)] {
                let target = Target {
                    durable,
                    ..file(path, Some(table))
                };
                let url = table_url(&target.database_url(), table, durable);
                assert_eq!(Target::parse(&url).unwrap(), target, "{url}");
            }
        }
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_identifier("memo"), "\"memo\"");
        assert_eq!(quote_identifier("a\"b"), "\"a\"\"b\"");
    }
}
