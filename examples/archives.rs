//! A tour of the persistent archives: one memoized function kept in a file,
//! a directory and an SQLite table; the database as a dictionary of tables;
//! an in-memory front with explicit load and dump; and what a damaged entry
//! does.
//!
//! Run with `cargo run --example archives` (everything lives in a temporary
//! directory that is removed at the end).

use klepto::archive::{Archive, Cached, DirArchive, FileArchive, SqlArchive, SqlDatabase};
use klepto::key::describe_args;
use klepto::keymap::HashKey;
use klepto::Memo;

/// The function we memoize: the hypotenuse of a right triangle.
fn hypot((a, b): (f64, f64)) -> f64 {
    (a * a + b * b).sqrt()
}

/// Every entry of `archive`, shown as the call it stands for.
fn show<A: Archive<HashKey, f64>>(title: &str, archive: &A) -> klepto::Result<()> {
    println!("{title} ({}):", archive.location());
    for item in archive.iter()? {
        let (key, value) = item?;
        let call = match archive.args(&key)? {
            Some(args) => describe_args(&args)?,
            None => format!("<key {key}>"),
        };
        println!("  hypot{call} = {value}");
    }
    Ok(())
}

/// Memoizes a few calls of `hypot` into `archive` under the name "hypot".
fn memoize<A: Archive<HashKey, f64> + Clone>(archive: A) -> klepto::Result<A> {
    let memo = Memo::builder()
        .lru(2)
        .name("hypot")
        .archive(archive)
        .try_build(hypot)?;
    for args in [(3.0, 4.0), (5.0, 12.0), (8.0, 15.0), (3.0, 4.0)] {
        memo.try_call(args)?;
    }
    memo.dump()?; // also done when the memo is dropped
    println!("  {:?}", memo.info());
    Ok(memo.archive().clone())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;

    // One file (MessagePack; JSON when the name ends in .json), one file per
    // entry in a directory, one table of an SQLite database.
    let file = memoize(FileArchive::open(dir.path().join("memo.json"))?)?;
    show("one JSON file", &file)?;
    let folder = memoize(DirArchive::open(dir.path().join("memo.d"))?)?;
    show("a directory", &folder)?;
    let db = dir.path().join("cache.db");
    let table = memoize(SqlArchive::open(db.to_str().ok_or("non-UTF-8 path")?)?)?;
    show("an SQLite table", &table)?;

    // The JSON file is meant to be read by people too.
    let json = std::fs::read_to_string(dir.path().join("memo.hypot.json"))?;
    println!(
        "memo.hypot.json starts with: {}",
        json.lines().take(3).collect::<Vec<_>>().join(" ")
    );

    // A database is a dictionary of tables; a version salt is a new table.
    let v2 = Memo::builder()
        .name("hypot")
        .version("2")
        .archive(SqlArchive::open(db.to_str().ok_or("non-UTF-8 path")?)?)
        .write_through()
        .build(hypot);
    v2.call((6.0, 8.0));
    let database = SqlDatabase::open(db.to_str().ok_or("non-UTF-8 path")?)?;
    println!("tables in cache.db: {:?}", database.tables()?);

    // An in-memory front: reads and writes stay in memory until dump().
    let front = Cached::new(table.clone());
    front.load()?;
    front.insert(v2.key(&(7.0, 24.0))?, 25.0)?;
    println!(
        "cached front: {} entries in memory, {} in the table",
        front.len()?,
        table.len()?
    );
    front.dump()?;
    println!("after dump: {} in the table", table.len()?);

    // A damaged entry is an error for the archive, and a recomputation for
    // a memo (counted in info().errors) that writes the result over it.
    let key = v2.key(&(6.0, 8.0))?;
    let v2_table: SqlArchive<HashKey, f64> = database.table("hypot@2")?;
    let raw = rusqlite::Connection::open(&db)?;
    raw.execute(
        "UPDATE \"hypot@2\" SET value = CAST(value || x'00' AS BLOB)",
        [],
    )?;
    println!(
        "damaged entry reads as: {}",
        v2_table.get(&key).unwrap_err()
    );
    let repaired = Memo::builder()
        .name("hypot")
        .version("2")
        .archive(SqlArchive::open(db.to_str().ok_or("non-UTF-8 path")?)?)
        .build(hypot);
    println!(
        "a new memo recomputes it: hypot(6, 8) = {}, {:?}; stored again: {:?}",
        repaired.call((6.0, 8.0)),
        repaired.info(),
        v2_table.get(&key)?
    );
    Ok(())
}
