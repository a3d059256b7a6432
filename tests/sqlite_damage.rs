//! Damage to an SQLite archive's file is reported, never silent: pages of a
//! closed database are overwritten with random bytes, one damage per copy,
//! and every entry is then read back. Each read must give the stored value
//! or an error; a lookup that finds nothing must be an `Error::Corrupt`
//! naming the file when the file is damaged (the archive checks the file
//! with `PRAGMA integrity_check` at its first lookup that finds nothing).
//!
//! The write-ahead log is damaged the same way, in copies taken while the
//! writer still has the database open (so that the log holds the entries):
//! SQLite itself would read the log up to the damaged frame and drop the
//! transactions after it, without a word; the archive refuses to open such
//! a database (`Error::Corrupt` naming the log, both files left as they
//! are), and otherwise every entry is intact, except that damage in the
//! last transaction's own frame looks like a commit cut short by a crash
//! (documented in FORMAT.md).

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use klepto::archive::{Archive, SqlArchive};
use klepto::Error;

const ENTRIES: u64 = 2_000;
const DAMAGES: u64 = 200;
const PAGE: u64 = 4096;

fn value(k: u64) -> Vec<u8> {
    (0..100)
        .map(|i| (k as u8).wrapping_mul(31).wrapping_add(i))
        .collect()
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Overwrites 8 to 64 bytes of one page (not the first: a damaged header
/// is refused at open, tested elsewhere) with random bytes.
fn damage(path: &Path, rng: &mut Rng) {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let pages = file.metadata().unwrap().len() / PAGE;
    let page = 1 + rng.below(pages - 1);
    let len = 8 + rng.below(57);
    let at = page * PAGE + rng.below(PAGE - len);
    let mut old = vec![0; len as usize];
    file.seek(SeekFrom::Start(at)).unwrap();
    file.read_exact(&mut old).unwrap();
    let new: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
    file.seek(SeekFrom::Start(at)).unwrap();
    file.write_all(&new).unwrap();
}

/// How the reads of one damaged copy went.
#[derive(Default, Debug)]
struct Outcome {
    intact: u64,
    reported: u64,
    silent: u64,
}

fn read_back(path: &Path) -> Result<Outcome, Error> {
    let archive: SqlArchive<u64, Vec<u8>> = SqlArchive::open(path)?;
    let mut outcome = Outcome::default();
    for k in 0..ENTRIES {
        match archive.get(&k) {
            Ok(Some(v)) => {
                assert_eq!(v, value(k), "entry {k}: a wrong value, not an error");
                outcome.intact += 1;
            }
            Ok(None) => outcome.silent += 1,
            Err(e) => {
                if matches!(e, Error::Corrupt { .. }) {
                    let text = e.to_string();
                    assert!(
                        text.contains(&path.display().to_string()),
                        "the error names the file: {text}"
                    );
                }
                outcome.reported += 1;
            }
        }
    }
    Ok(outcome)
}

#[test]
fn damaged_pages_are_reported_never_silently_lost() {
    let dir = tempfile::tempdir().unwrap();
    let pristine = dir.path().join("pristine.db");
    {
        let archive: SqlArchive<u64, Vec<u8>> = SqlArchive::open(&pristine).unwrap();
        archive
            .extend((0..ENTRIES).map(|k| (k, value(k))).collect())
            .unwrap();
    }
    assert!(
        !dir.path().join("pristine.db-wal").exists()
            || std::fs::metadata(dir.path().join("pristine.db-wal"))
                .unwrap()
                .len()
                == 0,
        "the last connection's close checkpoints the log"
    );
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut at_open, mut harmless, mut reported) = (0, 0, 0);
    for round in 0..DAMAGES {
        let copy = dir.path().join(format!("damaged-{round}.db"));
        std::fs::copy(&pristine, &copy).unwrap();
        damage(&copy, &mut rng);
        match read_back(&copy) {
            Err(_) => at_open += 1,
            Ok(o) => {
                // (A damaged key leaves its row out of key order, where
                // only `integrity_check` of SQLite's checks sees it.)
                assert_eq!(o.silent, 0, "round {round}: entries lost silently: {o:?}");
                if o.reported == 0 {
                    harmless += 1;
                } else {
                    reported += 1;
                }
            }
        }
        std::fs::remove_file(&copy).unwrap();
    }
    println!(
        "{DAMAGES} damaged copies: {at_open} refused at open, {reported} with entries \
         reported damaged, {harmless} with every entry intact, 0 silent losses"
    );
}

/// Entries written one transaction each, for the log test.
const LOGGED: u64 = 300;

#[test]
fn a_damaged_log_is_refused_never_silently_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live.db");
    let archive: SqlArchive<u64, Vec<u8>> = SqlArchive::open(&live).unwrap();
    for k in 0..LOGGED {
        archive.insert(k, value(k)).unwrap();
    }
    // The writer is still open: its log holds every entry.
    let db = std::fs::read(&live).unwrap();
    let wal = std::fs::read(dir.path().join("live.db-wal")).unwrap();
    assert!(wal.len() > 100_000, "the entries are in the log");
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let (mut refused, mut intact, mut last_lost) = (0, 0, 0);
    for round in 0..DAMAGES {
        let copy = dir.path().join(format!("copy-{round}.db"));
        let copy_wal = dir.path().join(format!("copy-{round}.db-wal"));
        std::fs::write(&copy, &db).unwrap();
        let mut damaged = wal.clone();
        let len = 1 + rng.below(16) as usize;
        let at = rng.below((wal.len() - len) as u64) as usize;
        for byte in &mut damaged[at..at + len] {
            *byte ^= (rng.next() as u8) | 1;
        }
        std::fs::write(&copy_wal, &damaged).unwrap();
        match SqlArchive::<u64, Vec<u8>>::open(&copy) {
            Err(e) => {
                assert!(matches!(e, Error::Corrupt { .. }), "round {round}: {e}");
                let text = e.to_string();
                assert!(text.contains(&copy_wal.display().to_string()), "{text}");
                assert_eq!(
                    std::fs::read(&copy).unwrap(),
                    db,
                    "the database is untouched"
                );
                assert_eq!(std::fs::read(&copy_wal).unwrap(), damaged, "the log too");
                refused += 1;
            }
            Ok(opened) => {
                let mut missing = Vec::new();
                for k in 0..LOGGED {
                    match opened.get(&k) {
                        Ok(Some(v)) => assert_eq!(v, value(k), "round {round}: entry {k}"),
                        _ => missing.push(k),
                    }
                }
                match missing.as_slice() {
                    [] => intact += 1,
                    [k] if *k == LOGGED - 1 => last_lost += 1,
                    _ => panic!("round {round}: entries lost silently: {missing:?}"),
                }
            }
        }
        let _ = std::fs::remove_file(&copy);
        let _ = std::fs::remove_file(&copy_wal);
        let _ = std::fs::remove_file(dir.path().join(format!("copy-{round}.db-shm")));
    }
    println!(
        "{DAMAGES} damaged logs: {refused} refused at open, {intact} with every entry intact, \
         {last_lost} that lost the last transaction (a damaged commit frame)"
    );
}
