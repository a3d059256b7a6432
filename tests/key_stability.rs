//! Keys are stable across processes: a child process (this very test binary,
//! re-executed) computes the Hash, String and Serial keys of a fixed set of
//! arguments and prints them; the parent compares them with its own.
//!
//! A per-process random hash seed (as in Python klepto's default keymap), or
//! a map encoded in its iteration order (`HashMap` uses a random seed per
//! process), would make the two differ.
//!
//! (Sets are `BTreeSet` here: serde serializes a `HashSet` exactly like a
//! `Vec`, in its per-process iteration order, so no serializer can sort it;
//! the crate documents this.)

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::process::Command;

use klepto::keymap::{SerialKeymap, StringKeymap};
use klepto::KeyGen;
use serde::Serialize;

/// Set in the child's environment: print the keys.
const CHILD_ENV: &str = "KLEPTO_KEY_STABILITY_CHILD";
/// The child test's name, run with `--exact`.
const CHILD_TEST: &str = "child_prints_keys";
/// Prefix of the lines the child prints.
const PREFIX: &str = "KLEPTO-KEY ";

#[derive(Serialize)]
struct Params {
    name: String,
    weights: HashMap<String, f64>,
    tags: BTreeSet<u32>,
    verbose: bool,
}

#[derive(Serialize)]
enum Mode {
    Fast,
    Exact { digits: u8 },
}

/// Every key kind of a fixed set of arguments, one line each.
fn keys() -> Vec<String> {
    let mut out = Vec::new();
    let weights: HashMap<String, f64> = (0..40)
        .map(|i| (format!("w{i}"), f64::from(i) * 0.1))
        .collect();
    let tags: BTreeSet<u32> = (0..40).map(|i| i * 7919 % 1000).collect();
    let params = Params {
        name: "run \"1\"\n".into(),
        weights: weights.clone(),
        tags,
        verbose: true,
    };
    let nested: BTreeMap<i64, Vec<Option<f32>>> = [(-1, vec![Some(0.1), None]), (5, vec![])]
        .into_iter()
        .collect();

    macro_rules! all_keymaps {
        ($label:expr, $gen:expr, $args:expr) => {{
            let g = $gen;
            out.push(format!("{} hash {}", $label, g.clone().key($args).unwrap()));
            out.push(format!(
                "{} string {}",
                $label,
                g.clone().keymap(StringKeymap::new()).key($args).unwrap()
            ));
            let serial = g.keymap(SerialKeymap::new()).key($args).unwrap();
            let hex: String = serial.iter().map(|b| format!("{b:02x}")).collect();
            out.push(format!("{} serial {}", $label, hex));
        }};
    }

    all_keymaps!("tuple", KeyGen::new(), &(1_u8, 2.5_f64, "x"));
    all_keymaps!("int", KeyGen::new(), &u64::MAX);
    all_keymaps!("unit", KeyGen::new(), &());
    all_keymaps!("hashmap", KeyGen::new(), &weights);
    all_keymaps!("struct", KeyGen::new().ignore("verbose"), &params);
    all_keymaps!("struct-typed", KeyGen::new().typed(true), &params);
    all_keymaps!(
        "rounded",
        KeyGen::new().tol(1).deep(true),
        &(0.25_f64, vec![1.04_f64, -0.04], Mode::Exact { digits: 3 })
    );
    all_keymaps!(
        "named",
        KeyGen::new().names(["a", "b", "c"]).ignore("b").typed(true),
        &(Mode::Fast, 'z', nested.clone())
    );
    all_keymaps!(
        "big",
        KeyGen::new(),
        &(i128::MIN, u128::MAX, f64::NAN, -0.0_f64)
    );
    // -0.0 is its own key since 0.2 (before, it shared 0.0's).
    all_keymaps!("negzero", KeyGen::new(), &(-0.0_f64, 0.0_f64));
    out
}

/// Runs only in the child (the environment variable is set): prints the keys.
#[test]
fn child_prints_keys() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    for line in keys() {
        println!("{PREFIX}{line}");
    }
}

fn child_keys() -> Vec<String> {
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = Command::new(exe)
        .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .output()
        .expect("run the child process");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        // libtest may print "test NAME ... " on the same line first.
        .filter_map(|l| l.find(PREFIX).map(|i| l[i + PREFIX.len()..].to_owned()))
        .collect()
}

#[test]
fn keys_are_stable_across_processes() {
    let mine = keys();
    assert!(mine.len() >= 27, "all keymaps of all argument sets");
    for _ in 0..2 {
        let theirs = child_keys();
        assert_eq!(
            theirs.len(),
            mine.len(),
            "the child printed {} keys, expected {}",
            theirs.len(),
            mine.len()
        );
        for (a, b) in mine.iter().zip(&theirs) {
            assert_eq!(a, b, "a key differs between processes");
        }
    }
}

#[test]
fn keys_are_distinct_per_argument_set() {
    // The comparison above would be vacuous if every key were the same.
    let k = keys();
    let hashes: HashSet<&str> = k
        .iter()
        .filter_map(|l| l.split_once(" hash ").map(|(_, h)| h))
        .collect();
    assert_eq!(hashes.len(), k.len() / 3);
}
