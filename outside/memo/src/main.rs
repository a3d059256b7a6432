//! klepto-cache's memo calls measured from a user's binary (default
//! release profile), next to other caches doing the same work: every call
//! is a get-or-compute-and-insert of `f(k) = k * 2654435761`.
//!
//! Peers, all LRU-ish with capacity 10,000:
//!
//! * `klepto_raw`: `Memo::builder().lru(N).keymap(RawKeymap::new()).build(f)`;
//! * `klepto_hash`: `Memo::builder().lru(N).build(f)` (the default
//!   `HashKeymap`);
//! * `quick_cache`: `quick_cache::sync::Cache`, `get` then `insert`;
//! * `lru_mutex`: `lru::LruCache` behind a `std::sync::Mutex`;
//! * `moka`: `moka::sync::Cache`, `get` then `insert`;
//! * `cached`: `cached::SizedCache` behind a `parking_lot::RwLock`, written
//!   the way `#[cached(size = N)]` expands: the write lock around
//!   `cache_get`, and on a miss `f` outside the lock, then the write lock
//!   around `cache_set`.
//!
//! Patterns:
//!
//! * `round robin`: the 1,000 hot keys (called once beforehand) called in
//!   order, round and round;
//! * `uniform`: uniform random calls over the hot keys (drawn beforehand);
//! * `zipf 0.8`, `zipf 1.0`, `zipf 1.2`: 1,000,000 calls drawn beforehand
//!   from Zipf(s) over 100,000 keys, from an empty cache each round (built
//!   and dropped outside the timing); the hit ratio of each cache is shown
//!   (the strict LRUs: klepto, `lru`, `cached` have the same);
//! * `hit <arg>`: the default keymap against `cached` keyed by the same
//!   arguments, for `u64`, `(u64, f64)` (`cached` keys the float by its
//!   bits: `f64` is not `Hash`) and a 32-byte `String`; uniform over the
//!   hot keys, each call taking its arguments by value (a clone at the call
//!   site, for both).
//!
//! Every pattern runs one warm-up round (a quarter of the calls) and 7
//! rounds; in each round every peer makes the same calls, one after the
//! other, the first peer rotating from round to round. The table shows,
//! per peer, the median over rounds of the round's mean ns per call, and
//! the ratios of those medians.
//!
//! Then the heap bytes per entry of memos filled with 1,000,000 entries
//! `u64 -> u64` (capacity 1,000,000), counted by a global allocator that
//! counts only while a fill is measured.
//!
//! ```text
//! cargo run --release              # the comparison (about a minute)
//! cargo run --release -- --quick   # fewer calls and rounds (CI)
//! cargo run --release -- probe PEER PATTERN N
//!                                  # N calls of one peer, for perf / callgrind
//! ```
//!
//! Probe peers: the names above; patterns: `round_robin`, `uniform`,
//! `zipf_0.8`, `zipf_1.0`, `zipf_1.2` (the cache is built and, for the hit
//! patterns, filled before; a Zipf probe repeats its 1,000,000 calls on a
//! fresh cache until N calls are made).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hash::Hash;
use std::hint::black_box;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Instant;

use cached::Cached;
use klepto::keymap::{HashKeymap, Keymap, RawKeymap};
use klepto::Memo;
use parking_lot::RwLock;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, Zipf};

// ---------------------------------------------------------------- allocator

/// The system allocator, counting the bytes allocated while [`COUNTING`]
/// is on (off during the timings: one relaxed load per allocation).
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
/// Bytes allocated minus bytes freed while counting.
static LIVE: AtomicIsize = AtomicIsize::new(0);

fn count(bytes: usize, sign: isize) {
    if COUNTING.load(Relaxed) {
        LIVE.fetch_add(sign * bytes as isize, Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees (and the caller's obligations) carry
// over as they are; the counter updates do not touch the memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract
        // (non-zero size), which is `System::alloc`'s.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            count(layout.size(), 1);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            count(layout.size(), 1);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller passes a block allocated by this allocator
        // (hence by `System`) with the layout it was allocated with.
        unsafe { System.dealloc(ptr, layout) };
        count(layout.size(), -1);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller passes a block of this allocator (so of
        // `System`) with its layout and a valid non-zero `new_size`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            // The old block is freed and a block of `new_size` is live.
            count(layout.size(), -1);
            count(new_size, 1);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

// -------------------------------------------------------------------- setup

/// Capacity of every cache timed.
const CAPACITY: usize = 10_000;
/// Number of hot (pre-populated) keys.
const HOT: usize = 1_000;
/// Distinct keys of the Zipf distributions.
const ZIPF_KEYS: f64 = 100_000.0;
/// Fixed seed: every run and every peer sees the same keys.
const SEED: u64 = 0x6b6c_6570_746f;

/// How much to run.
struct Scale {
    /// Calls per peer and round on the hit patterns.
    hit_calls: usize,
    /// Calls per peer and round on the Zipf patterns.
    zipf_calls: usize,
    rounds: usize,
    /// Entries of the memory measurement.
    entries: usize,
}

const FULL: Scale = Scale {
    hit_calls: 1_000_000,
    zipf_calls: 1_000_000,
    rounds: 7,
    entries: 1_000_000,
};

const QUICK: Scale = Scale {
    hit_calls: 100_000,
    zipf_calls: 100_000,
    rounds: 3,
    entries: 100_000,
};

/// The memoized function (also what the peers store and compute).
fn f(x: u64) -> u64 {
    x.wrapping_mul(2_654_435_761)
}

/// The memoized function of `(u64, f64)` arguments.
fn f2((k, x): (u64, f64)) -> f64 {
    f(k) as f64 + x
}

/// The memoized function of `String` arguments.
fn fs(s: &str) -> u64 {
    s.bytes()
        .fold(0_u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
}

/// `HOT` distinct pseudo-random keys (those of `benches/memo.rs`).
fn hot_keys() -> Vec<u64> {
    let mut rng = StdRng::seed_from_u64(SEED);
    let mut hot: Vec<u64> = Vec::with_capacity(HOT);
    while hot.len() < HOT {
        let k: u64 = rng.random();
        if !hot.contains(&k) {
            hot.push(k);
        }
    }
    hot
}

/// `n` keys drawn uniformly from `hot`.
fn uniform_keys(hot: &[u64], n: usize) -> Vec<u64> {
    let mut rng = StdRng::seed_from_u64(SEED ^ 1);
    (0..n)
        .map(|_| hot[rng.random_range(0..hot.len())])
        .collect()
}

/// `n` keys drawn from Zipf(s) over `ZIPF_KEYS` keys.
fn zipf_keys(s: f64, n: usize) -> Vec<u64> {
    let mut rng = StdRng::seed_from_u64(SEED);
    let dist = Zipf::new(ZIPF_KEYS, s).expect("valid Zipf parameters");
    // Zipf samples ranks in [1, n]; the key is the rank minus one.
    (0..n).map(|_| dist.sample(&mut rng) as u64 - 1).collect()
}

// -------------------------------------------------------------------- peers

/// A peer with a count of the calls that computed the function (klepto
/// memos count their own).
struct Counted<C> {
    cache: C,
    misses: Cell<u64>,
}

impl<C> Counted<C> {
    fn new(cache: C) -> Self {
        Counted {
            cache,
            misses: Cell::new(0),
        }
    }

    /// A miss: computes `f(k)`.
    #[inline]
    fn miss(&self, k: u64) -> u64 {
        self.misses.set(self.misses.get() + 1);
        f(k)
    }
}

/// A `cached` LRU store as `#[cached(size = cap)]` declares it.
fn cached_lru<K: Hash + Eq + Clone, V>(cap: usize) -> RwLock<cached::SizedCache<K, V>> {
    RwLock::new(cached::SizedCache::with_size(cap))
}

/// One call of a `#[cached(size = N)]` function, as the macro expands
/// it: the write lock around `cache_get` (an LRU hit moves the entry), and
/// on a miss the value computed without the lock, then the write lock
/// again around `cache_set`.
#[inline]
fn cached_call<K: Hash + Eq + Clone, V: Clone>(
    cache: &RwLock<cached::SizedCache<K, V>>,
    key: K,
    compute: impl FnOnce() -> V,
) -> V {
    {
        let mut c = cache.write();
        if let Some(v) = Cached::cache_get(&mut *c, &key) {
            return v.clone();
        }
    }
    let v = compute();
    Cached::cache_set(&mut *cache.write(), key, v.clone());
    v
}

fn lru_mutex(cap: usize) -> Mutex<lru::LruCache<u64, u64>> {
    Mutex::new(lru::LruCache::new(
        NonZeroUsize::new(cap).expect("non-zero capacity"),
    ))
}

// --------------------------------------------------------------- the runner

/// What one peer's round gave: mean ns per call, and calls that missed.
#[derive(Clone, Copy)]
struct Round {
    ns: f64,
    misses: u64,
}

/// One contestant: runs `n` calls of a pattern (cycling over its keys).
struct Side<'a, A> {
    name: &'static str,
    run: Box<dyn FnMut(&[A], usize) -> Round + 'a>,
}

/// Calls `call` on the first `n` of `seq` cycled.
#[inline]
fn calls<A: Clone, R>(seq: &[A], n: usize, mut call: impl FnMut(A) -> R) {
    let mut left = n;
    while left > 0 {
        let chunk = &seq[..left.min(seq.len())];
        for a in chunk {
            black_box(call(black_box(a.clone())));
        }
        left -= chunk.len();
    }
}

/// A side whose cache is made by `new` and called with `prefill` once;
/// with a `prefill`, the cache is made (in the first round, before its
/// timing) and kept for every round; without, every round starts from a
/// new one (made and dropped outside the timing). `misses` tells how many
/// calls computed the function.
fn side<'a, A: Clone + 'a, C: 'a, R>(
    name: &'static str,
    prefill: &'a [A],
    new: impl Fn() -> C + 'a,
    call: impl Fn(&C, A) -> R + 'a,
    misses: impl Fn(&C) -> u64 + 'a,
) -> Side<'a, A> {
    let mut kept: Option<C> = None;
    let run = move |seq: &[A], n: usize| {
        let fresh;
        let cache = if prefill.is_empty() {
            fresh = new();
            &fresh
        } else {
            kept.get_or_insert_with(|| {
                let c = new();
                for a in prefill {
                    call(&c, a.clone());
                }
                c
            })
        };
        let before = misses(cache);
        let start = Instant::now();
        calls(seq, n, |a| call(cache, a));
        let ns = start.elapsed().as_nanos() as f64 / n as f64;
        Round {
            ns,
            misses: misses(cache) - before,
        }
    };
    Side {
        name,
        run: Box::new(run),
    }
}

/// The six peers on `u64 -> u64` calls, pre-filled with `prefill` (or
/// fresh each round when it is empty).
fn peers(prefill: &[u64]) -> Vec<Side<'_, u64>> {
    vec![
        side(
            "klepto_raw",
            prefill,
            || {
                Memo::builder()
                    .lru(CAPACITY)
                    .keymap(RawKeymap::new())
                    .build(f)
            },
            |m, k| m.call(k),
            |m| m.info().misses,
        ),
        side(
            "klepto_hash",
            prefill,
            || Memo::builder().lru(CAPACITY).build(f),
            |m, k| m.call(k),
            |m| m.info().misses,
        ),
        side(
            "quick_cache",
            prefill,
            || Counted::new(quick_cache::sync::Cache::<u64, u64>::new(CAPACITY)),
            |c, k| {
                c.cache.get(&k).unwrap_or_else(|| {
                    let v = c.miss(k);
                    c.cache.insert(k, v);
                    v
                })
            },
            |c| c.misses.get(),
        ),
        side(
            "lru_mutex",
            prefill,
            || Counted::new(lru_mutex(CAPACITY)),
            |c, k| {
                let mut l = c.cache.lock().unwrap();
                if let Some(&v) = l.get(&k) {
                    v
                } else {
                    let v = c.miss(k);
                    l.put(k, v);
                    v
                }
            },
            |c| c.misses.get(),
        ),
        side(
            "moka",
            prefill,
            || Counted::new(moka::sync::Cache::<u64, u64>::new(CAPACITY as u64)),
            |c, k| {
                c.cache.get(&k).unwrap_or_else(|| {
                    let v = c.miss(k);
                    c.cache.insert(k, v);
                    v
                })
            },
            |c| c.misses.get(),
        ),
        side(
            "cached",
            prefill,
            || Counted::new(cached_lru::<u64, u64>(CAPACITY)),
            |c, k| cached_call(&c.cache, k, || c.miss(k)),
            |c| c.misses.get(),
        ),
    ]
}

/// The default keymap and `cached` on arguments `A` (pre-filled with
/// `hot`): `func` is the memoized function, `key` the `cached` key of the
/// arguments, `compute` the function on borrowed arguments.
fn hash_vs_cached<'a, A, R, K>(
    hot: &'a [A],
    func: impl Fn(A) -> R + Copy + Send + Sync + 'a,
    key: impl Fn(&A) -> K + 'a,
    compute: impl Fn(&A) -> R + 'a,
) -> Vec<Side<'a, A>>
where
    A: Clone + 'a,
    HashKeymap: Keymap<A>,
    R: Clone + Send + 'static,
    K: Hash + Eq + Clone + 'a,
{
    vec![
        side(
            "klepto_hash",
            hot,
            move || Memo::builder().lru(CAPACITY).build(func),
            |m, a| m.call(a),
            |m| m.info().misses,
        ),
        side(
            "cached",
            hot,
            || Counted::new(cached_lru::<K, R>(CAPACITY)),
            move |c, a: A| {
                cached_call(&c.cache, key(&a), || {
                    c.misses.set(c.misses.get() + 1);
                    compute(&a)
                })
            },
            |c| c.misses.get(),
        ),
    ]
}

/// A pattern's result: per peer, its rounds.
struct Outcome {
    pattern: String,
    calls: usize,
    sides: Vec<(&'static str, Vec<Round>)>,
}

impl Outcome {
    fn median(&self, name: &str) -> Option<f64> {
        let (_, rounds) = self.sides.iter().find(|(n, _)| *n == name)?;
        let mut ns: Vec<f64> = rounds.iter().map(|r| r.ns).collect();
        ns.sort_by(f64::total_cmp);
        Some(ns[ns.len() / 2])
    }

    /// Hit ratio of the median round's misses (the same in every round for
    /// the deterministic caches).
    fn hit_ratio(&self, name: &str) -> Option<f64> {
        let (_, rounds) = self.sides.iter().find(|(n, _)| *n == name)?;
        let mut m: Vec<u64> = rounds.iter().map(|r| r.misses).collect();
        m.sort_unstable();
        Some(1.0 - m[m.len() / 2] as f64 / self.calls as f64)
    }
}

/// A warm-up round of a quarter of the calls, then `rounds` rounds; in
/// round `r` the sides run in turn starting from side `r`.
fn compare<A>(
    pattern: String,
    seq: &[A],
    n: usize,
    rounds: usize,
    mut sides: Vec<Side<'_, A>>,
) -> Outcome {
    for s in &mut sides {
        (s.run)(seq, (n / 4).max(1));
    }
    let mut results: Vec<Vec<Round>> = vec![Vec::new(); sides.len()];
    for r in 0..rounds {
        for i in 0..sides.len() {
            let j = (r + i) % sides.len();
            results[j].push((sides[j].run)(seq, n));
        }
    }
    let o = Outcome {
        pattern,
        calls: n,
        sides: sides.iter().map(|s| s.name).zip(results).collect(),
    };
    eprintln!(
        "{}: {}",
        o.pattern,
        o.sides
            .iter()
            .map(|(name, _)| format!("{name} {:.1} ns", o.median(name).unwrap_or(f64::NAN)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    o
}

const NAMES: [&str; 6] = [
    "klepto_raw",
    "klepto_hash",
    "quick_cache",
    "lru_mutex",
    "moka",
    "cached",
];

fn print_table(out: &[Outcome], scale: &Scale) {
    println!(
        "\n{} rounds per pattern after a warm-up, the peers in turn in each round (rotating which \
         goes first); medians over rounds of each round's mean ns per call (hit patterns: {} calls \
         per round, Zipf: {} calls from an empty cache, capacity {CAPACITY}):\n",
        scale.rounds, scale.hit_calls, scale.zipf_calls
    );
    println!(
        "| pattern | {} | raw/quick_cache | raw/lru_mutex | hash/cached | hit ratio {} |",
        NAMES.join(" | "),
        NAMES.join(" / ")
    );
    println!("|---|{}---:|---:|---:|---|", "---:|".repeat(NAMES.len()));
    for o in out {
        let cell = |name: &str| {
            o.median(name)
                .map_or_else(|| "-".to_owned(), |ns| format!("{ns:.1}"))
        };
        let ratio = |a: &str, b: &str| match (o.median(a), o.median(b)) {
            (Some(a), Some(b)) => format!("{:.2}x", a / b),
            _ => "-".to_owned(),
        };
        let hits = if o.pattern.starts_with("zipf") {
            NAMES
                .iter()
                .map(|n| {
                    o.hit_ratio(n)
                        .map_or_else(|| "-".to_owned(), |h| format!("{h:.4}"))
                })
                .collect::<Vec<_>>()
                .join(" / ")
        } else {
            "all hits".to_owned()
        };
        println!(
            "| {} | {} | {} | {} | {} | {hits} |",
            o.pattern,
            NAMES.map(cell).join(" | "),
            ratio("klepto_raw", "quick_cache"),
            ratio("klepto_raw", "lru_mutex"),
            ratio("klepto_hash", "cached"),
        );
    }
}

// ------------------------------------------------------------------- memory

/// Heap bytes allocated by `fill` (which builds and fills a cache, and
/// returns it with its number of entries), while the cache is alive.
fn heap_of<C>(fill: impl FnOnce() -> (C, usize)) -> (usize, isize) {
    LIVE.store(0, Relaxed);
    COUNTING.store(true, Relaxed);
    let (cache, entries) = fill();
    let bytes = LIVE.load(Relaxed);
    COUNTING.store(false, Relaxed);
    drop(cache);
    (entries, bytes)
}

fn memory(n: usize) {
    let rows: Vec<(&str, (usize, isize))> = vec![
        (
            "klepto_hash: Memo::builder().lru(N) (HashKeymap)",
            heap_of(|| {
                let m = Memo::builder().lru(n).build(f);
                for k in 0..n as u64 {
                    m.call(k);
                }
                let size = m.info().size;
                (m, size)
            }),
        ),
        (
            "klepto_raw: .lru(N).keymap(RawKeymap::new())",
            heap_of(|| {
                let m = Memo::builder().lru(n).keymap(RawKeymap::new()).build(f);
                for k in 0..n as u64 {
                    m.call(k);
                }
                let size = m.info().size;
                (m, size)
            }),
        ),
        (
            "cached: SizedCache behind an RwLock",
            heap_of(|| {
                let c = cached_lru::<u64, u64>(n);
                for k in 0..n as u64 {
                    cached_call(&c, k, || f(k));
                }
                let size = c.read().cache_size();
                (c, size)
            }),
        ),
        (
            "lru_mutex: lru::LruCache",
            heap_of(|| {
                let c = lru_mutex(n);
                for k in 0..n as u64 {
                    c.lock().unwrap().put(k, f(k));
                }
                let size = c.lock().unwrap().len();
                (c, size)
            }),
        ),
        (
            "quick_cache::sync::Cache",
            heap_of(|| {
                let c = quick_cache::sync::Cache::<u64, u64>::new(n);
                for k in 0..n as u64 {
                    c.insert(k, f(k));
                }
                let size = c.len();
                (c, size)
            }),
        ),
    ];
    println!(
        "\nheap bytes held after {n} calls with distinct keys u64 -> u64, capacity {n} \
         (allocated minus freed during the fill, counted by the global allocator):\n"
    );
    println!("| cache | entries | heap bytes | bytes/entry | beyond key and value |");
    println!("|---|---:|---:|---:|---:|");
    for (name, (entries, bytes)) in rows {
        let per = bytes as f64 / entries.max(1) as f64;
        println!(
            "| {name} | {entries} | {bytes} | {per:.1} | {:.1} |",
            per - 16.0
        );
    }
}

// ------------------------------------------------------------------- probes

/// `n` calls of one peer on one pattern, for a profiler: the cache is built
/// (and for the hit patterns filled) before.
fn probe(peer: &str, pattern: &str, n: usize) {
    let hot = hot_keys();
    let (seq, prefill) = match pattern {
        "round_robin" => (hot.clone(), hot.clone()),
        "uniform" => (uniform_keys(&hot, 1_000_000), hot.clone()),
        _ => {
            let s = pattern
                .strip_prefix("zipf_")
                .and_then(|s| s.parse::<f64>().ok())
                .unwrap_or_else(|| panic!("unknown pattern {pattern}"));
            (zipf_keys(s, 1_000_000), Vec::new())
        }
    };
    let mut sides = peers(&prefill);
    let side = sides
        .iter_mut()
        .find(|s| s.name == peer)
        .unwrap_or_else(|| panic!("unknown peer {peer}"));
    eprintln!("probe-begin {peer} {pattern} {n}");
    let mut left = n;
    let mut ns = 0.0;
    while left > 0 {
        // A Zipf pass starts from an empty cache.
        let now = left.min(seq.len());
        let r = (side.run)(&seq, now);
        ns += r.ns * now as f64;
        left -= now;
    }
    eprintln!("probe-end {peer} {pattern}: {:.1} ns/call", ns / n as f64);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let scale = match args.first().map(String::as_str) {
        None => &FULL,
        Some("--quick") => &QUICK,
        Some("probe") => {
            let arg = |i: usize| args.get(i).cloned().expect("probe PEER PATTERN N");
            let n = arg(3).parse().expect("probe PEER PATTERN N");
            probe(&arg(1), &arg(2), n);
            return;
        }
        Some(other) => panic!("unknown argument {other}"),
    };

    let hot = hot_keys();
    let mut out = Vec::new();
    out.push(compare(
        "round robin".into(),
        &hot,
        scale.hit_calls,
        scale.rounds,
        peers(&hot),
    ));
    let uniform = uniform_keys(&hot, scale.hit_calls);
    out.push(compare(
        "uniform".into(),
        &uniform,
        scale.hit_calls,
        scale.rounds,
        peers(&hot),
    ));
    for s in [0.8, 1.0, 1.2] {
        let seq = zipf_keys(s, scale.zipf_calls);
        out.push(compare(
            format!("zipf {s:.1}"),
            &seq,
            scale.zipf_calls,
            scale.rounds,
            peers(&[]),
        ));
    }

    let hot_pairs: Vec<(u64, f64)> = hot.iter().map(|&k| (k, k as f64 * 0.5)).collect();
    let hot_strings: Vec<String> = hot.iter().map(|k| format!("{k:032}")).collect();
    out.push(compare(
        "hit u64".into(),
        &uniform,
        scale.hit_calls,
        scale.rounds,
        hash_vs_cached(&hot, f, |&k| k, |&k| f(k)),
    ));
    let pairs: Vec<(u64, f64)> = uniform.iter().map(|&k| (k, k as f64 * 0.5)).collect();
    out.push(compare(
        "hit (u64, f64)".into(),
        &pairs,
        scale.hit_calls,
        scale.rounds,
        hash_vs_cached(&hot_pairs, f2, |&(k, x)| (k, x.to_bits()), |&a| f2(a)),
    ));
    let strings: Vec<String> = uniform.iter().map(|k| format!("{k:032}")).collect();
    out.push(compare(
        "hit String32".into(),
        &strings,
        scale.hit_calls,
        scale.rounds,
        hash_vs_cached(&hot_strings, |s: String| fs(&s), String::clone, |s| fs(s)),
    ));
    for o in &out {
        if !o.pattern.starts_with("zipf") {
            for (name, rounds) in &o.sides {
                assert!(
                    rounds.iter().all(|r| r.misses == 0),
                    "{} {name}: every call a hit",
                    o.pattern
                );
            }
        }
    }

    print_table(&out, scale);
    memory(scale.entries);
}
