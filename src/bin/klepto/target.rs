//! From a command line's TARGET (a path or a URL) and `--ns` to an open
//! archive, and the namespaces a target holds.

use std::path::Path;
use std::time::SystemTime;

use klepto::archive::{mask_password, Archive, DirArchive, FileArchive, SqlArchive, SqlDatabase};

use crate::dynamic::AnyKey;
use crate::store::{self, Any, Raw};
use crate::Failure;

/// What kind of archive a target is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Sql,
    File,
    Dir,
    #[cfg(feature = "redis")]
    Redis,
    #[cfg(feature = "hdf5")]
    Hdf,
    #[cfg(feature = "hdf5")]
    HdfDir,
}

/// The kind of `target`; `create`: a missing path may be created (a
/// destination), as a directory archive unless its extension says more.
pub fn kind(target: &str, create: bool) -> Result<Kind, Failure> {
    if let Some((scheme, _)) = target.split_once("://") {
        return match scheme {
            "sqlite" | "postgres" | "postgresql" => Ok(Kind::Sql),
            #[cfg(feature = "redis")]
            "redis" | "rediss" => Ok(Kind::Redis),
            other => Err(Failure::usage(format!(
                "{}: unsupported URL scheme `{other}` (expected sqlite://, postgres:// or redis://)",
                mask_password(target)
            ))),
        };
    }
    let path = Path::new(target);
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    match extension.to_ascii_lowercase().as_str() {
        "db" | "sqlite" | "sqlite3" => return existing(path, create).map(|()| Kind::Sql),
        // A file archive whose memos all have names has no root file, only
        // `<stem>.<ns>.<ext>` files beside where it would be.
        "msgpack" | "json" if namespace_files(path).next().is_some() => return Ok(Kind::File),
        "msgpack" | "json" => return existing(path, create).map(|()| Kind::File),
        #[cfg(feature = "hdf5")]
        "h5" | "hdf5" => return existing(path, create).map(|()| Kind::Hdf),
        #[cfg(not(feature = "hdf5"))]
        "h5" | "hdf5" => {
            return Err(Failure::usage(format!(
                "{target}: an HDF5 archive, and this klepto was built without the `hdf5` feature"
            )))
        }
        _ => {}
    }
    // A directory of `.h5` entry files; a new one is named `*.h5d`.
    #[cfg(feature = "hdf5")]
    if (path.is_dir() && holds_h5(path)) || (create && !path.exists() && extension == "h5d") {
        return Ok(Kind::HdfDir);
    }
    if path.is_dir() || (create && !path.exists()) {
        return Ok(Kind::Dir);
    }
    if path.exists() {
        return Err(Failure::usage(format!(
            "{target}: not an archive (expected a .db/.sqlite, .msgpack/.json file, a directory or a URL)"
        )));
    }
    Err(Failure::io(format!("{target}: no such file or directory")))
}

/// The namespace files beside the file archive `path`: `<stem>.<ns>.<ext>`,
/// with their namespaces.
fn namespace_files(path: &Path) -> impl Iterator<Item = String> {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    let ext = path
        .extension()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    let (prefix, suffix) = (format!("{stem}."), format!(".{ext}"));
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.into_iter().filter_map(move |name| {
        let ns = name.strip_prefix(&prefix)?.strip_suffix(&suffix)?;
        (!ns.is_empty() && !ns.starts_with('.') && !ns.contains(".tmp-")).then(|| ns.to_owned())
    })
}

/// Whether the directory `dir` (or a namespace directory in it) holds
/// `.h5` entry files: an `HdfDirArchive`.
#[cfg(feature = "hdf5")]
fn holds_h5(dir: &Path) -> bool {
    let is_h5 = |p: &Path| p.extension().is_some_and(|e| e == "h5");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.filter_map(|e| e.ok()).any(|e| {
        let p = e.path();
        is_h5(&p)
            || (p.is_dir()
                && std::fs::read_dir(&p)
                    .map(|d| d.filter_map(|e| e.ok()).any(|e| is_h5(&e.path())))
                    .unwrap_or(false))
    })
}

/// A file target must exist unless it may be created.
fn existing(path: &Path, create: bool) -> Result<(), Failure> {
    if create || path.exists() {
        Ok(())
    } else {
        Err(Failure::io(format!("{}: no such file", path.display())))
    }
}

/// The archive of `target` in namespace `ns` (`None`: the default one).
pub fn open(target: &str, ns: Option<&str>, create: bool) -> Result<Box<dyn Raw>, Failure> {
    let kind = kind(target, create)?;
    if let (Some(ns), false, true) = (ns, create, ns != Some("")) {
        let known = namespaces(target)?;
        if !known.iter().any(|(name, _)| name == ns) {
            let names: Vec<_> = known.iter().map(|(n, _)| n.as_str()).collect();
            return Err(Failure::not_found(format!(
                "{}: no namespace `{ns}` (it has: {})",
                mask_password(target),
                if names.is_empty() {
                    "none".into()
                } else {
                    names.join(", ")
                }
            )));
        }
    }
    let ns = ns.unwrap_or("");
    Ok(match kind {
        Kind::Sql => {
            let table: SqlArchive<AnyKey, Any> = if ns.is_empty() {
                SqlArchive::open(target)?
            } else {
                SqlDatabase::open(target)?.table(ns)?
            };
            Box::new(table)
        }
        Kind::File => store::file(scoped(FileArchive::open(target)?, ns)?),
        Kind::Dir => {
            make_dir(target, create)?;
            let dir: DirArchive<AnyKey, Any> = DirArchive::open(target)?;
            Box::new(scoped(dir, ns)?)
        }
        #[cfg(feature = "redis")]
        Kind::Redis => {
            let redis: klepto::archive::RedisArchive<AnyKey, Any> =
                klepto::archive::RedisArchive::open(target)?;
            Box::new(scoped(redis, ns)?)
        }
        #[cfg(feature = "hdf5")]
        Kind::Hdf => store::hdf5(scoped(klepto::archive::HdfArchive::open(target)?, ns)?),
        #[cfg(feature = "hdf5")]
        Kind::HdfDir => {
            make_dir(target, create)?;
            store::hdf5(scoped(klepto::archive::HdfDirArchive::open(target)?, ns)?)
        }
    })
}

/// `archive` itself for the default namespace `""`, else its namespace.
fn scoped<A: Archive<AnyKey, Any>>(archive: A, ns: &str) -> klepto::Result<A> {
    if ns.is_empty() {
        Ok(archive)
    } else {
        archive.namespaced(ns)
    }
}

/// Creates the directory of a directory archive that may be created.
fn make_dir(target: &str, create: bool) -> Result<(), Failure> {
    if create {
        std::fs::create_dir_all(target).map_err(|e| Failure::io(format!("{target}: {e}")))?;
    }
    Ok(())
}

/// The default namespace of `root`, and one per subdirectory of `target`.
fn subdirectories<A: Archive<AnyKey, Any>>(
    target: &str,
    root: &A,
    found: &mut Vec<(String, usize)>,
) -> Result<(), Failure> {
    found.push((String::new(), Archive::len(root)?));
    for entry in read_dir(Path::new(target))? {
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().is_dir() && !name.starts_with('.') {
            let archive = root.namespaced(&name)?;
            found.push((name, Archive::len(&archive)?));
        }
    }
    Ok(())
}

/// The namespaces of `target` with their entry counts: SQL tables, file
/// archives beside the file (`<stem>.<ns>.<ext>`), subdirectories of a
/// directory archive; `""` is the default namespace.
pub fn namespaces(target: &str) -> Result<Vec<(String, usize)>, Failure> {
    let mut found = Vec::new();
    match kind(target, false)? {
        Kind::Sql => {
            let db = SqlDatabase::open(target)?;
            for table in db.tables()? {
                let archive: SqlArchive<AnyKey, Any> = db.table(&table)?;
                found.push((table, Archive::len(&archive)?));
            }
        }
        Kind::File => {
            let path = Path::new(target);
            let root: FileArchive<AnyKey, Any> = FileArchive::open(path)?;
            if path.exists() {
                found.push((String::new(), Archive::len(&root)?));
            }
            for ns in namespace_files(path) {
                let archive = root.namespaced(&ns)?;
                found.push((ns, Archive::len(&archive)?));
            }
        }
        Kind::Dir => {
            let root: DirArchive<AnyKey, Any> = DirArchive::open(target)?;
            subdirectories(target, &root, &mut found)?;
        }
        #[cfg(feature = "redis")]
        Kind::Redis => {
            let redis: klepto::archive::RedisArchive<AnyKey, Any> =
                klepto::archive::RedisArchive::open(target)?;
            for name in redis.backend().namespaces()? {
                let archive = redis.namespaced(&name)?;
                found.push((name, Archive::len(&archive)?));
            }
        }
        #[cfg(feature = "hdf5")]
        Kind::Hdf => {
            // One group per namespace; datasets at the root are the default.
            let root: klepto::archive::HdfArchive<AnyKey, Any> =
                klepto::archive::HdfArchive::open(target)?;
            let file =
                hdf5::File::open(target).map_err(|e| Failure::io(format!("{target}: {e}")))?;
            let groups = file
                .groups()
                .map_err(|e| Failure::io(format!("{target}: {e}")))?;
            if !file.datasets().map(|d| d.is_empty()).unwrap_or(true) {
                found.push((String::new(), Archive::len(&root)?));
            }
            for group in groups {
                let name = group.name().trim_start_matches('/').to_owned();
                let archive = root.namespaced(&name)?;
                found.push((name, Archive::len(&archive)?));
            }
        }
        #[cfg(feature = "hdf5")]
        Kind::HdfDir => {
            let root: klepto::archive::HdfDirArchive<AnyKey, Any> =
                klepto::archive::HdfDirArchive::open(target)?;
            subdirectories(target, &root, &mut found)?;
        }
    }
    found.sort();
    Ok(found)
}

fn read_dir(dir: &Path) -> Result<Vec<std::fs::DirEntry>, Failure> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| Failure::io(format!("{}: {e}", dir.display())))?;
    entries
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|e| Failure::io(format!("{}: {e}", dir.display())))
}

/// The oldest and newest entry of `target`'s namespace `ns`, where the
/// archive knows when entries were written: directory archives, by their
/// entry files' modification times. `None` elsewhere.
pub fn entry_times(target: &str, ns: Option<&str>) -> Option<(SystemTime, SystemTime)> {
    let extension = match kind(target, false).ok()? {
        Kind::Dir => "kle",
        #[cfg(feature = "hdf5")]
        Kind::HdfDir => "h5",
        _ => return None,
    };
    let dir = Path::new(target).join(ns.unwrap_or(""));
    let times = std::fs::read_dir(dir).ok()?.filter_map(|entry| {
        let path = entry.ok()?.path();
        if path.extension()? != extension {
            return None;
        }
        path.metadata().ok()?.modified().ok()
    });
    times.fold(None, |span, t| match span {
        None => Some((t, t)),
        Some((old, new)) => Some((old.min(t), new.max(t))),
    })
}
