//! Quickstart: memoize a slow function, call it again, look at the stats.
//!
//! Run with `cargo run --example quickstart`.

use std::thread::sleep;
use std::time::{Duration, Instant};

use klepto::archive::{Archive, DictArchive};
use klepto::Memo;

/// Something worth caching: pretend each call costs 50 ms.
fn slow_distance((x, y): (f64, f64)) -> f64 {
    sleep(Duration::from_millis(50));
    (x * x + y * y).sqrt()
}

fn main() -> Result<(), klepto::Error> {
    // An LRU of 100 results; keys round floats to 2 decimal places, and
    // results evicted from memory go to an in-memory archive.
    let archive = DictArchive::new();
    let distance = Memo::builder()
        .lru(100)
        .tol(2)
        .name("distance")
        .archive(archive.clone())
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
    assert_eq!((info.hits, info.misses), (2, 2));

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

    distance.dump()?;
    println!(
        "archived entries: {}",
        archive.namespaced("distance")?.len()?
    );
    Ok(())
}
