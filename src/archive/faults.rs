//! Injected I/O faults, for tests: the file and directory archives call
//! [`check`] before each fsync and rename and write through [`write_all`],
//! and a test may plan that the Nth of one kind fails in its thread (a
//! write fails after writing half its bytes, as when a disk fills up). In
//! other builds both are plain pass-throughs. The tests below drive real
//! file and directory archives with proptest against a model of what must
//! be durable.

use std::io::{self, Write};

/// A kind of I/O step that a plan can fail.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) enum Step {
    /// Writing file content (an append, or a temporary file's bytes).
    Write,
    /// `fsync` of a file or a directory.
    Sync,
    /// Renaming a temporary file into place.
    Rename,
}

#[cfg(test)]
thread_local! {
    /// The step to fail, and how many steps of its kind to let pass first.
    static PLAN: std::cell::Cell<Option<(Step, u32)>> = const { std::cell::Cell::new(None) };
}

/// Plans that the `nth` (from 0) step of kind `step` in this thread fails;
/// steps after it succeed again.
#[cfg(test)]
pub(crate) fn plan(step: Step, nth: u32) {
    PLAN.with(|p| p.set(Some((step, nth))));
}

/// Whether the planned fault has not happened yet (and clears the plan).
#[cfg(test)]
pub(crate) fn unplan() -> bool {
    PLAN.with(|p| p.take()).is_some()
}

/// Whether this step is the one planned to fail.
#[cfg(test)]
fn fails(step: Step) -> bool {
    PLAN.with(|p| match p.get() {
        Some((planned, 0)) if planned == step => {
            p.set(None);
            true
        }
        Some((planned, n)) if planned == step => {
            p.set(Some((planned, n - 1)));
            false
        }
        _ => false,
    })
}

#[cfg(test)]
fn injected(step: Step) -> io::Error {
    io::Error::other(format!("injected fault: {step:?}"))
}

/// Before an fsync or a rename: the injected error if this one is planned
/// to fail.
#[inline]
pub(crate) fn check(step: Step) -> io::Result<()> {
    #[cfg(test)]
    if fails(step) {
        return Err(injected(step));
    }
    let _ = step;
    Ok(())
}

/// `out.write_all(bytes)`; a write planned to fail writes half of `bytes`
/// first.
#[inline]
pub(crate) fn write_all(mut out: impl Write, bytes: &[u8]) -> io::Result<()> {
    #[cfg(test)]
    if fails(Step::Write) {
        out.write_all(&bytes[..bytes.len() / 2])?;
        return Err(injected(Step::Write));
    }
    out.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use proptest::prelude::*;

    use super::{plan, unplan, Step};
    use crate::archive::{Archive, DirArchive, FileArchive};
    use crate::Error;

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u8, u16),
        Remove(u8),
        Extend(Vec<(u8, u16)>),
        Clear,
    }

    fn op() -> impl Strategy<Value = Op> {
        let key = 0..12u8;
        prop_oneof![
            5 => (key.clone(), any::<u16>()).prop_map(|(k, v)| Op::Insert(k, v)),
            2 => key.clone().prop_map(Op::Remove),
            2 => prop::collection::vec((key, any::<u16>()), 1..5).prop_map(Op::Extend),
            1 => Just(Op::Clear),
        ]
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![Just(Step::Write), Just(Step::Sync), Just(Step::Rename)]
    }

    #[derive(Debug, Clone, Copy)]
    enum Kind {
        File,
        Json,
        Dir,
    }

    fn open(kind: Kind, dir: &Path) -> Box<dyn Archive<u8, u16>> {
        match kind {
            Kind::File => Box::new(FileArchive::open(dir.join("a.msgpack")).unwrap()),
            Kind::Json => Box::new(FileArchive::open(dir.join("a.json")).unwrap()),
            Kind::Dir => Box::new(DirArchive::open(dir.join("d")).unwrap()),
        }
    }

    /// The values each key may have: one after an acknowledged write,
    /// either of two after a failed one (`None`: absent).
    type Model = BTreeMap<u8, Vec<Option<u16>>>;

    fn allowed(model: &Model, key: u8) -> Vec<Option<u16>> {
        model.get(&key).cloned().unwrap_or_else(|| vec![None])
    }

    /// Records the outcome of `op`: its values if it succeeded, its values
    /// as possible ones beside the old if it failed.
    fn record(model: &mut Model, op: &Op, ok: bool) {
        let mut set = |key: u8, value: Option<u16>| {
            let mut values = allowed(model, key);
            if ok {
                values = vec![value];
            } else if !values.contains(&value) {
                values.push(value);
            }
            model.insert(key, values);
        };
        match op {
            Op::Insert(k, v) => set(*k, Some(*v)),
            Op::Remove(k) => set(*k, None),
            // A key written twice in a batch ends with its last value; a
            // failed batch may have stored any of its writes (it is not one
            // transaction on a directory archive, whose writes are renames).
            Op::Extend(items) => {
                for (k, v) in items {
                    set(*k, Some(*v));
                }
            }
            Op::Clear => {
                for k in 0..12 {
                    set(k, None);
                }
            }
        }
    }

    fn apply(archive: &dyn Archive<u8, u16>, op: &Op) -> crate::Result<()> {
        match op {
            Op::Insert(k, v) => archive.insert(*k, *v),
            Op::Remove(k) => archive.remove(k).map(drop),
            Op::Extend(items) => archive.extend(items.clone()),
            Op::Clear => archive.clear(),
        }
    }

    /// Every key holds one of its allowed values, and every entry decodes.
    fn check(archive: &dyn Archive<u8, u16>, model: &Model, when: &str) {
        for k in 0..12 {
            let got = archive
                .get(&k)
                .unwrap_or_else(|e| panic!("{when}: key {k}: {e}"));
            assert!(
                allowed(model, k).contains(&got),
                "{when}: key {k} holds {got:?}, allowed {:?}",
                allowed(model, k)
            );
        }
        for item in archive.iter().unwrap() {
            item.unwrap_or_else(|e| panic!("{when}: a torn entry: {e}"));
        }
    }

    /// Temporary files left in `dir` or its subdirectories.
    fn temps(dir: &Path) -> Vec<String> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type().unwrap().is_dir() {
                found.extend(temps(&entry.path()));
            } else if name.contains(".tmp-") {
                found.push(name);
            }
        }
        found
    }

    /// One case: `ops` on a new archive of `kind`, the `nth` step of kind
    /// `fault` failing; whether the fault happened.
    fn run(kind: Kind, ops: &[Op], fault: Step, nth: u32) -> Result<bool, TestCaseError> {
        let dir = tempfile::tempdir().unwrap();
        let mut model = Model::new();
        let archive = open(kind, dir.path());
        plan(fault, nth);
        for op in ops {
            let result = apply(&*archive, op);
            if let Err(e) = &result {
                prop_assert!(
                    matches!(e, Error::Io { .. }) && e.to_string().contains("injected fault"),
                    "{op:?} failed with another error: {e}"
                );
            }
            record(&mut model, op, result.is_ok());
            check(&*archive, &model, &format!("after {op:?}"));
        }
        let faulted = !unplan();
        drop(archive);
        // Opened again, in a fresh handle: every acknowledged write, and
        // nothing torn, nothing temporary left behind.
        let reopened = open(kind, dir.path());
        check(&*reopened, &model, "reopened");
        prop_assert_eq!(temps(dir.path()), Vec::<String>::new());
        Ok(faulted)
    }

    /// 300 cases on archives of `kind`; most of them meet their fault.
    fn survives(kind: Kind) {
        use proptest::test_runner::{Config, TestRunner};
        use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
        const CASES: u32 = 300;
        let faulted = AtomicU32::new(0);
        let mut runner = TestRunner::new(Config {
            cases: CASES,
            failure_persistence: None,
            ..Config::default()
        });
        let strategy = (prop::collection::vec(op(), 1..16), step(), 0..6u32);
        runner
            .run(&strategy, |(ops, fault, nth)| {
                if run(kind, &ops, fault, nth)? {
                    faulted.fetch_add(1, Relaxed);
                }
                Ok(())
            })
            .unwrap();
        let faulted = faulted.load(Relaxed);
        println!("{kind:?}: {CASES} cases, {faulted} met their injected fault");
        assert!(faulted > CASES / 3, "too few faults happened: {faulted}");
    }

    #[test]
    fn file_archive_survives_injected_faults() {
        survives(Kind::File);
    }

    #[test]
    fn json_file_archive_survives_injected_faults() {
        survives(Kind::Json);
    }

    #[test]
    fn dir_archive_survives_injected_faults() {
        survives(Kind::Dir);
    }
}
