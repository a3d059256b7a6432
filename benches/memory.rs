//! Live heap bytes per entry of a filled klepto `Memo` and of other caches.
//!
//! A counting global allocator tracks the bytes currently allocated. Each
//! cache is created empty and filled with N = 100,000 entries `u64 -> u64`
//! (keys `0..N`, capacity N); the live bytes it holds are then divided by
//! the entries it holds. The key and value take 16 bytes; the rest is the
//! cache's overhead.
//!
//! `cargo bench --bench memory` runs it. Command-line arguments (criterion's
//! `--bench`, filters, `--quick`, ...) are accepted and ignored, except that
//! without `--bench` (as under `cargo test --benches`) it runs a smaller N as
//! a smoke test.

use std::alloc::{GlobalAlloc, Layout, System};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};

use klepto::keymap::{Keymap, RawKeymap};
use klepto::policy::Policy;
use klepto::{Memo, MemoBuilder};

/// The system allocator, counting the bytes currently allocated.
struct Counting;

/// Bytes currently allocated through [`Counting`].
static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees (and the caller's obligations) carry
// over as they are; the counter updates do not touch the memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract
        // (non-zero size), which is `System::alloc`'s.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller passes a block allocated by this allocator
        // (hence by `System`) with the layout it was allocated with.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller passes a block of this allocator (so of
        // `System`) with its layout and a valid non-zero `new_size`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            // The old block is freed and a block of `new_size` is live.
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            LIVE.fetch_add(new_size, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> usize {
    LIVE.load(Ordering::Relaxed)
}

/// The memoized function / the stored value.
fn f(x: u64) -> u64 {
    x.wrapping_mul(2_654_435_761)
}

/// One measurement: which cache, entries it holds, live bytes it holds.
struct Row {
    name: &'static str,
    entries: usize,
    bytes: usize,
}

/// Builds and fills a cache with `fill`, which returns the cache and the
/// number of entries it holds; measures the live bytes while the cache is
/// still alive, then drops it.
fn measure<C>(name: &'static str, fill: impl FnOnce() -> (C, usize)) -> Row {
    let before = live();
    let (cache, entries) = fill();
    let bytes = live().saturating_sub(before);
    drop(cache);
    Row {
        name,
        entries,
        bytes,
    }
}

/// Builds the memo of `f` configured by `builder` and calls it with keys
/// `0..n`; returns it with the number of entries it holds.
fn fill_memo<K: Keymap<u64>, P: Policy>(
    builder: MemoBuilder<K, P>,
    n: usize,
) -> (impl Sized, usize) {
    let m = builder.build(f);
    for k in 0..n as u64 {
        m.call(k);
    }
    let size = m.info().size;
    (m, size)
}

fn main() {
    // Criterion-style arguments are ignored; `--bench` means a real run.
    let bench = std::env::args().any(|a| a == "--bench");
    let n: usize = if bench { 100_000 } else { 10_000 };

    let rows = vec![
        measure("klepto Memo lru (default HashKeymap)", || {
            fill_memo(Memo::builder().lru(n), n)
        }),
        measure("klepto Memo lru (RawKeymap)", || {
            fill_memo(Memo::builder().lru(n).keymap(RawKeymap::new()), n)
        }),
        measure("klepto Memo lfu (RawKeymap)", || {
            fill_memo(Memo::builder().lfu(n).keymap(RawKeymap::new()), n)
        }),
        measure("klepto Memo inf (RawKeymap)", || {
            fill_memo(Memo::builder().inf().keymap(RawKeymap::new()), n)
        }),
        measure("lru::LruCache", || {
            let mut c = lru::LruCache::new(NonZeroUsize::new(n).expect("n > 0"));
            for k in 0..n as u64 {
                c.put(k, f(k));
            }
            let len = c.len();
            (c, len)
        }),
        measure("quick_cache::sync::Cache", || {
            let c = quick_cache::sync::Cache::<u64, u64>::new(n);
            for k in 0..n as u64 {
                c.insert(k, f(k));
            }
            let len = c.len();
            (c, len)
        }),
        measure("moka::sync::Cache", || {
            let c = moka::sync::Cache::<u64, u64>::new(n as u64);
            for k in 0..n as u64 {
                c.insert(k, f(k));
            }
            c.run_pending_tasks();
            let len = usize::try_from(c.entry_count()).expect("fits usize");
            (c, len)
        }),
    ];

    println!("live heap bytes after inserting N = {n} entries u64 -> u64 (capacity N)");
    println!(
        "{:<38} {:>9} {:>12} {:>12} {:>16}",
        "cache", "entries", "live bytes", "bytes/entry", "overhead/entry"
    );
    for r in &rows {
        let per = r.bytes as f64 / r.entries.max(1) as f64;
        println!(
            "{:<38} {:>9} {:>12} {:>12.1} {:>16.1}",
            r.name,
            r.entries,
            r.bytes,
            per,
            per - 16.0
        );
    }
    println!("(bytes/entry = live bytes / entries held; overhead = bytes/entry - 16)");
}
