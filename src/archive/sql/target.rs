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
//! postgres://user:pw@host:5432/db   a PostgreSQL database (feature `postgres`),
//! ...?table=fib&schema=s&connect_timeout=2   with these parameters
//! ```
//!
//! Unlike SQLAlchemy (Python klepto), three slashes mean an absolute path,
//! matching the usual `file:///` reading. URLs are parsed by the `url`
//! crate; path and parameter values are percent-decoded (`?table=a%26b`
//! names the table `a&b`; in parameters `+` is a space, as in forms).

use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::Duration;

use super::dialect::Dialect;
use crate::archive::target::parse_url;
use crate::archive::target::{bad, decode, encode_into, masked, params, parse_bool, parse_u64};
use crate::Result;

/// The table used when the target names none.
pub(crate) const DEFAULT_TABLE: &str = "memo";

/// The PostgreSQL schema used when the target names none.
pub(crate) const DEFAULT_SCHEMA: &str = "public";

/// How long opening a connection to a server may take, by default.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Where a database lives: one variant per backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Backend {
    /// An SQLite file.
    SqliteFile(PathBuf),
    /// A private in-memory SQLite database.
    SqliteMemory,
    /// A PostgreSQL database on a server.
    Postgres(PgTarget),
}

/// A PostgreSQL server, database and schema, as parsed from a URL.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct PgTarget {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) user: String,
    pub(crate) password: Option<String>,
    pub(crate) dbname: String,
    pub(crate) schema: String,
    pub(crate) connect_timeout: Duration,
    /// The URL without query, the password masked.
    pub(crate) url: String,
}

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTarget")
            .field("url", &self.url)
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

/// A parsed target: the database, the table (if named) and the options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) backend: Backend,
    pub(crate) table: Option<String>,
    /// SQLite `synchronous=FULL` instead of `NORMAL`: commits survive power loss.
    pub(crate) durable: bool,
}

impl Target {
    /// Parses a path or URL.
    pub(crate) fn parse(target: &OsStr) -> Result<Target> {
        let Some(text) = target.to_str() else {
            // Not UTF-8, so no URL: a path.
            return Ok(Target::file(PathBuf::from(target)));
        };
        let scheme = text.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("sqlite") => Self::parse_sqlite(text),
            Some("postgres" | "postgresql") => Self::parse_postgres(text),
            Some(other)
                if text.contains("://")
                    && other
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
            {
                Err(bad(
                    text,
                    format_args!(
                        "unsupported scheme `{other}` (expected a path, `sqlite://` or `postgres://`)"
                    ),
                ))
            }
            // A plain path: taken literally (it may contain `?` or `%`).
            _ if text.is_empty() => Err(bad(text, "empty path")),
            _ if text.contains('\0') => Err(bad(text, "path contains a NUL byte")),
            _ => Ok(Target::file(PathBuf::from(text))),
        }
    }

    fn file(path: PathBuf) -> Target {
        Target {
            backend: Backend::SqliteFile(path),
            table: None,
            durable: false,
        }
    }

    fn parse_sqlite(raw: &str) -> Result<Target> {
        let url = parse_url(raw)?;
        let backend = if url.cannot_be_a_base() {
            if url.path() != ":memory:" {
                return Err(bad(
                    raw,
                    "expected `sqlite:///absolute/path`, `sqlite://relative/path` or `sqlite::memory:`",
                ));
            }
            Backend::SqliteMemory
        } else {
            if !raw["sqlite:".len()..].starts_with("//") {
                return Err(bad(raw, "expected `sqlite://` before the path"));
            }
            // `sqlite://rel/db` parses with `rel` as the host: it is the
            // first component of a relative path.
            let host = url.host_str().unwrap_or("");
            let path = format!("{}{}", decode(raw, host)?, decode(raw, url.path())?);
            if path.is_empty() || path == "/" {
                return Err(bad(raw, "no database path after `sqlite://`"));
            }
            if path.contains('\0') {
                return Err(bad(raw, "path contains a NUL byte"));
            }
            Backend::SqliteFile(PathBuf::from(path))
        };
        let mut parsed = Target {
            backend,
            table: None,
            durable: false,
        };
        for (name, value) in params(&url, raw, &["table", "durable"])? {
            match name.as_str() {
                "table" => parsed.table = Some(value),
                _ => parsed.durable = parse_bool(raw, &name, &value)?,
            }
        }
        parsed.check_table()?;
        Ok(parsed)
    }

    fn parse_postgres(raw: &str) -> Result<Target> {
        let url = parse_url(raw)?;
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad(raw, "no server host"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let dbname = decode(raw, url.path().trim_start_matches('/'))?;
        let user = decode(raw, url.username())?;
        let mut pg = PgTarget {
            host,
            port: url.port().unwrap_or(5432),
            user: if user.is_empty() {
                "postgres".into()
            } else {
                user
            },
            password: url.password().map(|p| decode(raw, p)).transpose()?,
            dbname: if dbname.is_empty() {
                "postgres".into()
            } else {
                dbname
            },
            schema: DEFAULT_SCHEMA.into(),
            connect_timeout: CONNECT_TIMEOUT,
            url: masked(&url),
        };
        let mut table = None;
        let known = ["table", "schema", "connect_timeout"];
        for (name, value) in params(&url, raw, &known)? {
            match name.as_str() {
                "table" => table = Some(value),
                "schema" => pg.schema = value,
                _ => {
                    let secs = parse_u64(raw, &name, &value)?;
                    if secs == 0 {
                        return Err(bad(raw, "`connect_timeout` must be at least 1 second"));
                    }
                    pg.connect_timeout = Duration::from_secs(secs);
                }
            }
        }
        Dialect::Postgres
            .check_table_name(&pg.schema)
            .map_err(|e| bad(raw, format_args!("schema: {e}")))?;
        if pg.schema != DEFAULT_SCHEMA {
            pg.url.push_str("?schema=");
            encode_into(&mut pg.url, &pg.schema, "%&#=+");
        }
        let parsed = Target {
            backend: Backend::Postgres(pg),
            table,
            durable: false,
        };
        parsed.check_table()?;
        Ok(parsed)
    }

    fn check_table(&self) -> Result<()> {
        match &self.table {
            Some(table) => self.dialect().check_table_name(table),
            None => Ok(()),
        }
    }

    /// The SQL dialect of the database.
    pub(crate) fn dialect(&self) -> Dialect {
        match self.backend {
            Backend::SqliteFile(_) | Backend::SqliteMemory => Dialect::Sqlite,
            Backend::Postgres(_) => Dialect::Postgres,
        }
    }

    /// The database part of the URL (`sqlite:///abs/db`,
    /// `postgres://user:***@host:5432/db`), without table or password.
    #[cfg_attr(not(any(feature = "sqlite", test)), allow(dead_code))]
    pub(crate) fn database_url(&self) -> String {
        match &self.backend {
            Backend::SqliteMemory => "sqlite::memory:".to_owned(),
            Backend::SqliteFile(path) => {
                let path = path.to_string_lossy();
                let mut out = String::from("sqlite://");
                encode_into(&mut out, &path, "%?#");
                out
            }
            Backend::Postgres(pg) => pg.url.clone(),
        }
    }
}

/// The URL of one table of a database (what `location()` shows); parses
/// back into the same target (but for a masked password).
pub(crate) fn table_url(database_url: &str, table: &str, durable: bool) -> String {
    let mut out = database_url.to_owned();
    out.push(if database_url.contains('?') { '&' } else { '?' });
    out.push_str("table=");
    encode_into(&mut out, table, "%&#=+");
    if durable {
        out.push_str("&durable=true");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    fn parse(s: &str) -> Result<Target> {
        Target::parse(OsStr::new(s))
    }

    fn file(path: &str, table: Option<&str>) -> Target {
        Target {
            backend: Backend::SqliteFile(PathBuf::from(path)),
            table: table.map(str::to_owned),
            durable: false,
        }
    }

    #[test]
    fn paths_and_urls() {
        assert_eq!(parse("cache.db").unwrap(), file("cache.db", None));
        assert_eq!(parse("/a/b?c.db").unwrap(), file("/a/b?c.db", None));
        assert_eq!(parse("C:/x.db").unwrap(), file("C:/x.db", None));
        assert_eq!(
            parse("sqlite:///abs/db?table=t").unwrap(),
            file("/abs/db", Some("t"))
        );
        assert_eq!(parse("sqlite://rel/db").unwrap(), file("rel/db", None));
        assert_eq!(parse("sqlite://rel").unwrap(), file("rel", None));
        assert_eq!(
            parse("sqlite://rel/db?table=fib%402&durable=true").unwrap(),
            Target {
                durable: true,
                ..file("rel/db", Some("fib@2"))
            }
        );
        assert_eq!(parse("sqlite:///a%20b/db?").unwrap(), file("/a b/db", None));
        assert_eq!(
            parse("sqlite::memory:?table=x").unwrap().backend,
            Backend::SqliteMemory
        );
    }

    #[test]
    fn postgres_urls() {
        let t = parse("postgres://me:p%40ss@db.internal:6543/cache?table=fib&schema=s1").unwrap();
        assert_eq!(t.table.as_deref(), Some("fib"));
        let Backend::Postgres(pg) = &t.backend else {
            panic!("{t:?}")
        };
        assert_eq!(
            (
                pg.host.as_str(),
                pg.port,
                pg.user.as_str(),
                pg.dbname.as_str()
            ),
            ("db.internal", 6543, "me", "cache")
        );
        assert_eq!(pg.password.as_deref(), Some("p@ss"));
        assert_eq!(pg.schema, "s1");
        assert_eq!(pg.connect_timeout, CONNECT_TIMEOUT);
        assert_eq!(
            t.database_url(),
            "postgres://me:***@db.internal:6543/cache?schema=s1"
        );
        let t = parse("postgresql://h/db?connect_timeout=5").unwrap();
        let Backend::Postgres(pg) = &t.backend else {
            panic!()
        };
        assert_eq!((pg.port, pg.user.as_str()), (5432, "postgres"));
        assert_eq!(pg.connect_timeout, Duration::from_secs(5));
        assert!(!format!("{:?}", parse("postgres://u:secret@h/d").unwrap()).contains("secret"));
    }

    #[test]
    fn errors_are_config_errors() {
        for bad in [
            "",
            "mysql://host/db",
            "sqlite:",
            "sqlite:db",
            "sqlite://",
            "sqlite:///db?tabel=t",
            "sqlite:///db?table=",
            "sqlite:///db?table=a&table=b",
            "sqlite:///db?table=%00",
            "sqlite:///db?table=sqlite_master",
            "sqlite:///db?table=%zz%ff",
            "sqlite:///db?durable=maybe",
            "postgres:///db",
            "postgres://h/db?ttl=3",
            "postgres://h/db?connect_timeout=0",
            "postgres://h/db?connect_timeout=x",
            "postgres://u:secret@h/db?schema=",
        ] {
            let err = parse(bad).unwrap_err();
            assert!(matches!(err, Error::Config { .. }), "{bad}: {err}");
            assert!(!err.to_string().contains("secret"), "{err}");
        }
        let long = format!("postgres://h/db?table={}", "x".repeat(64));
        assert!(
            parse(&long).is_err(),
            "PostgreSQL names are at most 63 bytes"
        );
    }

    #[test]
    fn table_urls_parse_back() {
        for table in [
            "memo", "fib@2", "a&b=c", "100%", "x y\"z", "tab\tle", "é", "a+b",
        ] {
            for (path, durable) in [("/tmp/a b/c%d.db", false), ("/x?y#z", true)] {
                let target = Target {
                    durable,
                    ..file(path, Some(table))
                };
                let url = table_url(&target.database_url(), table, durable);
                assert_eq!(parse(&url).unwrap(), target, "{url}");
            }
        }
        let pg = parse("postgres://u@h:1/d?schema=s").unwrap();
        let url = table_url(&pg.database_url(), "t&u", false);
        assert_eq!(parse(&url).unwrap().table.as_deref(), Some("t&u"));
    }

    /// Mutations of valid targets (characters inserted, removed, doubled,
    /// replaced by URL syntax): parsing never panics, every error is a
    /// configuration error, and no message shows the password.
    #[test]
    fn mutated_targets_parse_or_fail_cleanly() {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, TestRunner};
        const SEEDS: [&str; 5] = [
            "sqlite:///tmp/a.db?table=t&durable=true",
            "sqlite://relative.db?table=fib%40v2",
            "sqlite::memory:",
            "postgres://user:hunter2@127.0.0.1:5432/db?table=t&schema=s",
            "plain/path.db",
        ];
        let piece = prop_oneof![
            Just("%".to_owned()),
            Just("%zz".to_owned()),
            Just("%00".to_owned()),
            Just("?".to_owned()),
            Just("&".to_owned()),
            Just("=".to_owned()),
            Just(":".to_owned()),
            Just("//".to_owned()),
            Just("@".to_owned()),
            Just("[::1]".to_owned()),
            Just("\u{0}".to_owned()),
            Just("é".to_owned()),
            Just("table=".to_owned()),
            Just(":99999999".to_owned()),
            "[a-z0-9]{1,4}",
        ];
        let edit = (any::<usize>(), any::<usize>(), 0..3u8, piece);
        let strategy = (
            prop::sample::select(&SEEDS[..]),
            prop::collection::vec(edit, 1..4),
        )
            .prop_map(|(seed, edits)| {
                let mut s: Vec<char> = seed.chars().collect();
                for (at, len, kind, piece) in edits {
                    let at = at % (s.len() + 1);
                    match kind {
                        0 => {
                            s.splice(at..at, piece.chars());
                        }
                        1 => {
                            let end = (at + len % 8).min(s.len());
                            s.drain(at..end);
                        }
                        _ => {
                            let end = (at + len % 8).min(s.len());
                            s.splice(at..end, piece.chars());
                        }
                    }
                }
                s.into_iter().collect::<String>()
            });
        let mut runner = TestRunner::new(Config {
            cases: 2_000,
            failure_persistence: None,
            ..Config::default()
        });
        runner
            .run(&strategy, |text| {
                match parse(&text) {
                    Ok(target) => {
                        let _ = format!("{target:?}");
                    }
                    // Still a URL with a password (`://` and the `:` before
                    // it kept): the password is never shown.
                    Err(Error::Config { reason })
                        if text.contains("://") && text.contains(":hunter2") =>
                    {
                        prop_assert!(!reason.contains("hunter2"), "password shown: {reason}");
                    }
                    Err(Error::Config { .. }) => {}
                    Err(e) => prop_assert!(false, "{text:?}: not a configuration error: {e}"),
                }
                Ok(())
            })
            .unwrap();
    }
}
