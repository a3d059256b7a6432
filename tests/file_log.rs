//! The MessagePack `FileArchive`'s append log, with real child processes
//! (this test binary re-executed with a role in its environment): SIGKILL
//! in the middle of appends and compactions, four writer processes forcing
//! compactions under each other, a torn tail and a damaged record.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use klepto::archive::{Archive, FileArchive};
use klepto::Error;
use rand::{RngExt, SeedableRng};

const ROLE: &str = "KLEPTO_FILE_LOG_ROLE";
const PATH: &str = "KLEPTO_FILE_LOG_PATH";
const WRITER: &str = "KLEPTO_FILE_LOG_WRITER";
const CHILD_TEST: &str = "child";

/// Keys each writer process stores.
const PER_WRITER: u64 = 1_000;

/// The value stored for `x`: 600 bytes, different for every key, so that
/// 4,000 of them outgrow the 256 KiB log bound many times over.
fn value(x: u64) -> Vec<u8> {
    (0..600).map(|i| (x.wrapping_mul(31) + i) as u8).collect()
}

type Log = FileArchive<u64, Vec<u8>>;

fn open(path: &Path) -> Log {
    FileArchive::open(path).unwrap()
}

fn spawn(role: &str, path: &Path, writer: u64) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([CHILD_TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env(PATH, path)
        .env(WRITER, writer.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the child test process")
}

/// The numbers a child reported as `OUT done <x>` lines.
fn reported(stdout: impl std::io::Read) -> Vec<u64> {
    BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| {
            let at = l.find("OUT done ")?;
            l[at + 9..].trim().parse().ok()
        })
        .collect()
}

/// The child side: does nothing in a normal test run.
#[test]
fn child() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let path = PathBuf::from(std::env::var(PATH).unwrap());
    let id: u64 = std::env::var(WRITER).unwrap().parse().unwrap();
    let a = open(&path).durable(false);
    match role.as_str() {
        // PER_WRITER distinct keys, single inserts with a batch now and then.
        "writer" => {
            let keys: Vec<u64> = (id * PER_WRITER..(id + 1) * PER_WRITER).collect();
            for chunk in keys.chunks(50) {
                let (batch, singles) = chunk.split_at(5);
                a.extend(batch.iter().map(|&x| (x, value(x))).collect())
                    .unwrap();
                for &x in singles {
                    a.insert(x, value(x)).unwrap();
                }
            }
        }
        // Appends until killed, reporting each acknowledged one; large
        // values make a kill inside a write (and inside a compaction) likely.
        "crasher" => {
            for x in id.. {
                let big: Vec<u8> = value(x).repeat(10);
                a.insert(x, big).unwrap();
                println!("OUT done {x}");
            }
        }
        other => panic!("unknown role {other}"),
    }
}

/// Names in `dir` other than the archive and its lock file.
fn litter(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "log.msgpack" && n != "log.msgpack.lock")
        .collect()
}

#[test]
fn sigkill_during_appends_and_compactions_loses_no_acknowledged_write() {
    let seed = rand::rng().random::<u64>();
    println!("kill timing seed {seed}");
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.msgpack");
    let mut acknowledged = Vec::new();
    let mut next = 0_u64;
    for round in 0..20 {
        let mut child = spawn("crasher", &path, next);
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || reported(stdout));
        std::thread::sleep(Duration::from_millis(rng.random_range(50..250)));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        let done = reader.join().unwrap();
        // A key past the last acknowledged one may or may not be stored.
        next = done.last().map_or(next, |x| x + 1) + 1;
        acknowledged.extend(done);
        // Opening removes a dead writer's temporary file and ignores a
        // torn append; every stored entry is a whole, right value.
        let a = open(&path);
        assert_eq!(litter(dir.path()), Vec::<String>::new(), "round {round}");
        for item in a.iter().unwrap() {
            let (x, v) = item.unwrap();
            assert!(x < next, "round {round}: key {x} was never written");
            assert_eq!(v, value(x).repeat(10), "round {round}: key {x}");
        }
        for &x in &acknowledged {
            assert!(
                a.contains_key(&x).unwrap(),
                "round {round}: acknowledged write {x} lost"
            );
        }
    }
    assert!(acknowledged.len() > 20, "too few writes: {acknowledged:?}");
    println!(
        "20 kills, {} acknowledged writes all present",
        acknowledged.len()
    );
}

#[test]
fn four_writer_processes_compacting_under_each_other_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.msgpack");
    let writers: Vec<Child> = (0..4).map(|id| spawn("writer", &path, id)).collect();
    for w in writers {
        let out = w.wait_with_output().unwrap();
        assert!(out.status.success(), "writer failed: {:?}", out.status);
    }
    let a = open(&path);
    assert_eq!(a.len().unwrap(), 4 * PER_WRITER as usize);
    for x in 0..4 * PER_WRITER {
        assert_eq!(a.get(&x).unwrap(), Some(value(x)), "key {x}");
    }
    // 2.4 MB of values went through a log bounded by the snapshot: the
    // file was compacted (it is not the 2.4 MB of all appends plus the
    // snapshots), and no temporary file is left.
    let size = std::fs::metadata(&path).unwrap().len();
    let live = 4 * PER_WRITER * 620;
    assert!(
        size < 2 * live + 300_000,
        "file {size} bytes for {live} live"
    );
    assert_eq!(litter(dir.path()), Vec::<String>::new());
}

/// An archive of `n` entries written one append at a time; returns the
/// file's bytes and where each record starts.
fn appended(path: &Path, n: u64) -> (Vec<u8>, Vec<usize>) {
    let a = open(path).durable(false);
    let mut starts = Vec::new();
    for x in 0..n {
        starts.push(std::fs::metadata(path).map_or(0, |m| m.len() as usize));
        a.insert(x, value(x)).unwrap();
    }
    (std::fs::read(path).unwrap(), starts)
}

#[test]
fn a_torn_tail_is_ignored_then_cut_off_and_a_damaged_record_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.msgpack");
    let (whole, starts) = appended(&path, 10);
    let last = starts[9];

    // A torn last append: the nine before it are there, the tenth is not.
    std::fs::write(&path, &whole[..whole.len() - 100]).unwrap();
    let a = open(&path);
    let got: BTreeMap<u64, Vec<u8>> = a.iter().unwrap().map(Result::unwrap).collect();
    assert_eq!(
        got.keys().copied().collect::<Vec<_>>(),
        (0..9).collect::<Vec<_>>()
    );
    a.insert(10, value(10)).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[..last], &whole[..last], "the whole records are kept");
    assert_eq!(open(&path).len().unwrap(), 10);

    // A bit flipped inside the fifth record: Corrupt naming the file, and
    // the file untouched.
    let mut damaged = whole.clone();
    damaged[starts[4] + 40] ^= 0x04;
    std::fs::write(&path, &damaged).unwrap();
    match FileArchive::<u64, Vec<u8>>::open(&path).unwrap_err() {
        Error::Corrupt { location, reason } => {
            assert_eq!(location, path.display().to_string());
            assert!(reason.contains("frame at byte"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert_eq!(std::fs::read(&path).unwrap(), damaged);
}
