//! Quickstart: memoize a slow function into an SQLite file, then run this
//! example again: the results come back from disk.
//!
//! Run with `cargo run --example quickstart` (twice).

use std::thread::sleep;
use std::time::{Duration, Instant};

use klepto::archive::{Archive, SqlArchive};
use klepto::key::describe_args;
use klepto::Memo;

/// The SQLite file the results are kept in (in the current directory).
const DB: &str = "klepto-quickstart.db";

/// Something worth caching: pretend each call costs 50 ms.
fn slow_distance((x, y): (f64, f64)) -> f64 {
    sleep(Duration::from_millis(50));
    (x * x + y * y).sqrt()
}

fn main() -> Result<(), klepto::Error> {
    // An LRU of 100 results whose keys round floats to 2 decimal places,
    // kept in the table "distance" of an SQLite file.
    let distance = Memo::builder()
        .lru(100)
        .tol(2)
        .name("distance")
        .archive(SqlArchive::open(DB)?)
        .build(slow_distance);

    let points = [(3.0, 4.0), (6.0, 8.0), (3.001, 4.001), (3.0, 4.0)];
    for p in points {
        let start = Instant::now();
        let d = distance.call(p);
        println!(
            "distance{p:?} = {d:.3}  ({:.1} ms)",
            start.elapsed().as_secs_f64() * 1e3
        );
    }
    let info = distance.info();
    println!("{info:?}");
    if info.loads == 0 {
        println!(
            "first run: {} misses computed; run me again to load them from {DB}",
            info.misses
        );
    } else {
        println!(
            "second run: {} results loaded from {DB}, nothing recomputed",
            info.loads
        );
    }

    // Save what is in memory now (a memo also does this when dropped), then
    // show what the archive holds: hashed keys keep the call's arguments.
    distance.dump()?;
    for item in distance.archive().iter()? {
        let (key, d) = item?;
        let args = distance.archive().args(&key)?;
        let call = args.map_or(Ok("(?)".to_owned()), |a| describe_args(&a))?;
        println!("  archived: distance{call} = {d:.3}  (key {key})");
    }

    // A memoized recursive function: the closure gets a handle to the memo.
    let fib =
        Memo::builder().inf().build_recursive(
            |fib, n: u64| {
                if n < 2 {
                    n
                } else {
                    fib(n - 1) + fib(n - 2)
                }
            },
        );
    println!("fib(90) = {}  {:?}", fib.call(90), fib.info());
    Ok(())
}
