//! HDF5 archives as outside tools see them (feature `hdf5`): h5py reads
//! what a memo stored, damaged files are errors that leave them untouched,
//! and datasets swapped or damaged inside one file are caught.
//!
//! The h5py test runs the real Python h5py (`bash scripts/hdf5.sh install`
//! installs it); without it the test prints one line and skips, except
//! under `CI=true`, where it fails. The multi-process scenarios (restart,
//! four writers, SIGKILL) run on both HDF5 archives in `tests/persistence.rs`.

#![cfg(feature = "hdf5")]

mod common;

use std::path::Path;
use std::process::Command;

use klepto::archive::{Archive, HdfArchive, HdfDirArchive};
use klepto::{Error, Memo};

/// A Python interpreter that imports h5py, if the machine has one.
fn h5py_python() -> Option<String> {
    for python in ["python3", "/usr/bin/python3"] {
        let ok = Command::new(python)
            .args(["-c", "import h5py"])
            .output()
            .is_ok_and(|out| out.status.success());
        if ok {
            return Some(python.to_owned());
        }
    }
    if common::in_ci() {
        panic!("no python3 imports h5py but CI=true (bash scripts/hdf5.sh install)");
    }
    common::skip("no python3 on this machine imports h5py (bash scripts/hdf5.sh install)");
    None
}

/// Runs `script` with `args` under `python` and returns its stdout.
fn run_python(python: &str, script: &str, args: &[&Path]) -> String {
    let out = Command::new(python)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "python failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn series(n: u64) -> Vec<f64> {
    (0..n).map(|i| i as f64 / 4.0).collect()
}

fn grid((rows, cols): (u64, u64)) -> Vec<Vec<f64>> {
    (0..rows)
        .map(|r| (0..cols).map(|c| (r * 10 + c) as f64 + 0.5).collect())
        .collect()
}

/// h5py's view of every dataset of a group: one line per entry with the
/// readable call, dtype, shape and values (sorted by call).
const LIST: &str = r#"
import sys, h5py
def text(attr):
    return attr.decode() if isinstance(attr, bytes) else attr
with h5py.File(sys.argv[1], "r") as f:
    group = f[sys.argv[2]] if len(sys.argv) > 2 else f
    rows = []
    for name, d in group.items():
        v = d[()]
        values = v.tolist() if hasattr(v, "tolist") else v
        rows.append(f"{text(d.attrs['call'])} {d.dtype} {d.shape} {values} {text(d.attrs['klepto_format'])}")
    print("\n".join(sorted(rows)))
"#;

#[test]
fn h5py_reads_what_a_memo_stored_as_typed_arrays() {
    let Some(python) = h5py_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.h5");
    let s = Memo::builder()
        .inf()
        .name("series")
        .archive(HdfArchive::open(&path).unwrap())
        .build(series);
    let g = Memo::builder()
        .inf()
        .name("grid")
        .archive(HdfArchive::open(&path).unwrap())
        .build(grid);
    let c = Memo::builder()
        .inf()
        .name("count")
        .archive(HdfArchive::open(&path).unwrap())
        .build(|(a, b): (i64, f64)| a * b as i64);
    s.call(3);
    g.call((2, 3));
    c.call((-4, 2.5));
    s.dump().unwrap();
    g.dump().unwrap();
    c.dump().unwrap();

    let listed = |group: &str| run_python(&python, LIST, &[&path, Path::new(group)]);
    assert_eq!(
        listed("series"),
        "(3,) float64 (3,) [0.0, 0.25, 0.5] native\n"
    );
    assert_eq!(
        listed("grid"),
        "(2, 3) float64 (2, 3) [[0.5, 1.5, 2.5], [10.5, 11.5, 12.5]] native\n"
    );
    assert_eq!(listed("count"), "(-4, 2.5) int64 () -8 native\n");

    // The same through a directory of files, one per entry.
    let d = dir.path().join("results.d");
    let f = Memo::builder()
        .inf()
        .name("grid")
        .archive(HdfDirArchive::open(&d).unwrap())
        .build(grid);
    f.call((1, 2));
    f.dump().unwrap();
    let files: Vec<_> = std::fs::read_dir(d.join("grid"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "h5"))
        .collect();
    assert_eq!(files.len(), 1);
    assert_eq!(
        run_python(&python, LIST, &[&files[0]]),
        "(1, 2) float64 (1, 2) [[0.5, 1.5]] native\n"
    );
}

#[test]
fn h5py_sees_other_values_as_envelope_bytes_and_every_type_reads_back() {
    let Some(python) = h5py_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.h5");
    let words: HdfArchive<String, Vec<String>> = HdfArchive::open(&path).unwrap();
    words
        .insert("w".into(), vec!["a".into(), "b".into()])
        .unwrap();
    let bytes: HdfArchive<String, Vec<u8>> =
        HdfArchive::open(&path).unwrap().namespaced("u8").unwrap();
    bytes.insert("b".into(), vec![1, 2, 255]).unwrap();
    let floats: HdfArchive<String, [f32; 2]> =
        HdfArchive::open(&path).unwrap().namespaced("f32").unwrap();
    floats.insert("f".into(), [1.5, -2.0]).unwrap();
    assert_eq!(
        words.get(&"w".into()).unwrap(),
        Some(vec!["a".into(), "b".into()])
    );
    assert_eq!(bytes.get(&"b".into()).unwrap(), Some(vec![1, 2, 255]));
    assert_eq!(floats.get(&"f".into()).unwrap(), Some([1.5, -2.0]));

    let script = r#"
import sys, h5py
rows = []
with h5py.File(sys.argv[1], "r") as f:
    for name, item in f.items():
        if isinstance(item, h5py.Dataset):
            rows.append(f"root {item.dtype} {item.attrs['klepto_format'].decode()} {bytes(item[:2])}")
        else:
            for d in item.values():
                rows.append(f"{name} {d.dtype} {d.shape} {d[()].tolist()}")
print("\n".join(sorted(rows)))
"#;
    assert_eq!(
        run_python(&python, script, &[&path]),
        "f32 float32 (2,) [1.5, -2.0]\nroot uint8 envelope b'KL'\nu8 uint8 (3,) [1, 2, 255]\n"
    );
}

#[test]
fn a_file_that_is_not_hdf5_is_an_error_naming_it_and_is_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in [
        ("garbage.h5", b"this is not an HDF5 file".to_vec()),
        ("empty.h5", Vec::new()),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        match HdfArchive::<u64, u64>::open(&path) {
            Err(Error::Corrupt { location, .. }) => assert!(location.contains(name), "{location}"),
            other => panic!("{name}: expected Error::Corrupt, got {other:?}"),
        }
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "{name} was modified");
    }

    // A real archive, truncated.
    let path = dir.path().join("real.h5");
    let a: HdfArchive<u64, Vec<f64>> = HdfArchive::open(&path).unwrap();
    a.extend((0..20).map(|x| (x, series(x + 1))).collect())
        .unwrap();
    let whole = std::fs::read(&path).unwrap();
    for cut in [1, whole.len() / 3, whole.len() - 1] {
        std::fs::write(&path, &whole[..cut]).unwrap();
        let err = HdfArchive::<u64, Vec<f64>>::open(&path).unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "cut {cut}: {err}");
        assert!(err.to_string().contains("real.h5"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), &whole[..cut]);
    }
}

/// The dataset name of key `k`.
fn digest(k: &str) -> String {
    blake3::hash(&rmp_serde::to_vec(k).unwrap()).to_hex()[..32].to_owned()
}

#[test]
fn datasets_swapped_or_damaged_inside_the_file_are_corrupt_and_the_rest_reads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.h5");
    let a: HdfArchive<String, Vec<i32>> = HdfArchive::open(&path).unwrap();
    for (k, v) in [
        ("a", vec![1]),
        ("b", vec![2, 2]),
        ("c", vec![3]),
        ("d", vec![4]),
    ] {
        a.insert(k.into(), v).unwrap();
    }
    {
        let file = hdf5::File::open_rw(&path).unwrap();
        // Swap a and b.
        file.relink(&digest("a"), "tmp").unwrap();
        file.relink(&digest("b"), &digest("a")).unwrap();
        file.relink("tmp", &digest("b")).unwrap();
        // Change c's numbers behind the archive's back.
        file.dataset(&digest("c"))
            .unwrap()
            .write_raw(&[30_i32])
            .unwrap();
    }
    for k in ["a", "b"] {
        let err = a.get(&k.into()).unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{k}: {err}");
        let msg = err.to_string();
        assert!(
            msg.contains("another key") && msg.contains(&digest(k)),
            "{msg}"
        );
    }
    let msg = a.get(&"c".into()).unwrap_err().to_string();
    assert!(msg.contains("checksum") && msg.contains("t.h5"), "{msg}");
    assert_eq!(a.get(&"d".into()).unwrap(), Some(vec![4]));
    let bad = a.iter().unwrap().filter(Result::is_err).count();
    assert_eq!(bad, 3);
    // Removing a damaged entry reports it and removes it.
    assert!(a.remove(&"c".into()).is_err());
    assert_eq!(a.get(&"c".into()).unwrap(), None);
    assert_eq!(a.len().unwrap(), 3);
}
