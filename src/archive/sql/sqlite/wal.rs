//! A check of SQLite's write-ahead log for committed transactions that
//! SQLite would silently drop.
//!
//! SQLite reads its log (`<db>-wal`, format in FORMAT.md and SQLite's
//! `fileformat2.html#walformat`) up to the first frame whose salts or
//! checksum do not match, and treats that frame as the log's end: a commit
//! cut short by a crash is ignored that way, but so is every transaction
//! after a frame damaged on disk. This reads the log the same way and then
//! looks past its end: a commit frame there, carrying the log's own salts,
//! is a transaction that was committed after the damage and that SQLite
//! would lose. A damaged log header (SQLite then ignores the whole log) is
//! reported when frames follow it.
//!
//! What this cannot see: damage in the last transaction's own commit frame
//! looks like a commit cut short by a crash.

use std::io::Read;
use std::path::Path;

/// The log's magic numbers: checksums in little- or big-endian words.
const MAGIC_LITTLE: u32 = 0x377f_0682;
const MAGIC_BIG: u32 = 0x377f_0683;
const VERSION: u32 = 3_007_000;
const HEADER: usize = 32;
const FRAME_HEADER: usize = 24;

/// What reading the log at `wal` found: `None` when SQLite will read every
/// committed transaction in it (or there is no log), else what is lost.
pub(crate) fn lost_commits(wal: &Path) -> std::io::Result<Option<String>> {
    let mut bytes = Vec::new();
    match std::fs::File::open(wal) {
        Ok(mut file) => file.read_to_end(&mut bytes)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(scan(&bytes))
}

fn be32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(bytes[at..at + 4].try_into().expect("four bytes"))
}

/// SQLite's log checksum: pairs of 32-bit words, continuing from `sum`.
fn checksum(big: bool, sum: (u32, u32), data: &[u8]) -> (u32, u32) {
    let (mut s1, mut s2) = sum;
    for pair in data.chunks_exact(8) {
        let word = |at: usize| {
            let w = pair[at..at + 4].try_into().expect("four bytes");
            if big {
                u32::from_be_bytes(w)
            } else {
                u32::from_le_bytes(w)
            }
        };
        s1 = s1.wrapping_add(word(0)).wrapping_add(s2);
        s2 = s2.wrapping_add(word(4)).wrapping_add(s1);
    }
    (s1, s2)
}

/// The check of a whole log's bytes (see [`lost_commits`]).
fn scan(bytes: &[u8]) -> Option<String> {
    if bytes.len() < HEADER {
        return None; // no header yet: nothing was committed to it
    }
    let magic = be32(bytes, 0);
    let page = be32(bytes, 8) as usize;
    let frame = FRAME_HEADER + page;
    let header_ok = (magic == MAGIC_LITTLE || magic == MAGIC_BIG)
        && be32(bytes, 4) == VERSION
        && page.is_power_of_two()
        && (512..=65_536).contains(&page)
        && checksum(magic == MAGIC_BIG, (0, 0), &bytes[..24]) == (be32(bytes, 24), be32(bytes, 28));
    if !header_ok {
        // SQLite ignores the whole log. Frames after a damaged header may
        // hold commits: count what looks like frames (at the usual page
        // size when the header cannot say).
        let page = if (512..=65_536).contains(&page) && page.is_power_of_two() {
            page
        } else {
            4096
        };
        let frames = (bytes.len() - HEADER) / (FRAME_HEADER + page);
        return (frames > 0).then(|| {
            format!("its header is damaged, so SQLite ignores all {frames} frames after it")
        });
    }
    let big = magic == MAGIC_BIG;
    let salts = (be32(bytes, 16), be32(bytes, 20));
    let mut sum = (be32(bytes, 24), be32(bytes, 28));
    let frames = (bytes.len() - HEADER) / frame;
    let at = |i: usize| HEADER + i * frame;
    // The frames SQLite reads: up to the first that does not match.
    let mut end = frames;
    for i in 0..frames {
        let f = &bytes[at(i)..at(i) + frame];
        if (be32(f, 8), be32(f, 12)) != salts || be32(f, 0) == 0 {
            end = i;
            break;
        }
        let next = checksum(big, checksum(big, sum, &f[..8]), &f[FRAME_HEADER..]);
        if next != (be32(f, 16), be32(f, 20)) {
            end = i;
            break;
        }
        sum = next;
    }
    // Commit frames of this log past that end: committed after the damage.
    let lost = (end + 1..frames)
        .filter(|&i| {
            let f = &bytes[at(i)..at(i) + FRAME_HEADER];
            (be32(f, 8), be32(f, 12)) == salts && be32(f, 4) != 0 && be32(f, 0) != 0
        })
        .count();
    (lost > 0).then(|| {
        format!(
            "frame {} of {frames} is damaged, and SQLite would drop the {lost} transaction(s) \
             committed after it",
            end + 1
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database with a log of `n` one-row transactions, copied (database
    /// and log) while its connection is open, so that the log stays.
    fn logged(dir: &Path, n: usize) -> (std::path::PathBuf, Vec<u8>) {
        let live = dir.join("live.db");
        let conn = rusqlite::Connection::open(&live).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; CREATE TABLE t(k INTEGER PRIMARY KEY, v BLOB)",
        )
        .unwrap();
        for k in 0..n {
            conn.execute("INSERT INTO t VALUES (?1, zeroblob(300))", [k as i64])
                .unwrap();
        }
        let copy = dir.join("copy.db");
        std::fs::copy(&live, &copy).unwrap();
        let wal = std::fs::read(dir.join("live.db-wal")).unwrap();
        drop(conn);
        (copy, wal)
    }

    fn rows(db: &Path) -> i64 {
        let conn = rusqlite::Connection::open(db).unwrap();
        conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn a_sound_log_and_a_damaged_one() {
        let dir = tempfile::tempdir().unwrap();
        let (copy, wal) = logged(dir.path(), 20);
        assert_eq!(scan(&wal), None, "a sound log loses nothing");
        assert_eq!(scan(&wal[..HEADER]), None, "a header alone holds nothing");
        // A torn last frame (a commit cut short) is not a loss.
        assert_eq!(scan(&wal[..wal.len() - 100]), None);

        // Damage in the page of the third frame.
        let page = be32(&wal, 8) as usize;
        let mut damaged = wal.clone();
        damaged[HEADER + 2 * (FRAME_HEADER + page) + FRAME_HEADER + 10] ^= 0x40;
        let found = scan(&damaged).expect("commits after the damage are lost");
        assert!(found.starts_with("frame 3 of"), "{found}");
        // SQLite does drop them: the database then holds fewer rows.
        std::fs::write(dir.path().join("copy.db-wal"), &damaged).unwrap();
        assert!(
            rows(&copy) < 20,
            "SQLite ignored the frames after the damage"
        );

        // A damaged header: SQLite ignores the whole log.
        let mut header = wal.clone();
        header[17] ^= 1;
        assert!(scan(&header).unwrap().contains("header is damaged"));
    }
}
