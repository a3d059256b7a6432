//! Speed of a klepto `Memo` against other in-memory caches, on the same
//! inputs and in the same run.
//!
//! * `hit/*`: the hit path, `u64 -> u64`, 1,000 hot keys pre-populated in a
//!   capacity of 10,000; every contestant looks up the same pseudo-random
//!   sequence of hot keys (1,000 lookups per iteration). `hit/<arg>/*`: the
//!   same with the default `HashKeymap` (`klepto_hash`) against the `cached`
//!   crate's LRU store (`cached`), for arguments `u64`, `(u64, f64)` and a
//!   32-byte `String` (`string32`).
//! * `pattern/<pattern>/<peer>`: every peer on every access pattern, each
//!   call a get-or-compute-and-insert of the same function:
//!   * `round_robin`: the 1,000 hot keys (pre-populated) called in order,
//!     round and round (1,000 calls per iteration);
//!   * `uniform`: uniform random calls over the hot keys (the 1,000-call
//!     sequence of `hit`, drawn beforehand);
//!   * `zipf_0.8`, `zipf_1.0`, `zipf_1.2`: 1,000,000 calls drawn beforehand
//!     from Zipf(s) over 100,000 keys, capacity 10,000, from an empty cache
//!     (one iteration is one pass); each cache's hit ratio is printed before
//!     its bench (the LRU peers' are equal).
//!
//!   Peers: `klepto_raw` (`RawKeymap`, LRU), `klepto_hash` (the default
//!   `HashKeymap`, LRU), `quick_cache` (`sync::Cache`), `lru_mutex`
//!   (`lru::LruCache` behind a `std::sync::Mutex`), `moka` (`sync::Cache`)
//!   and `cached` (`cached::SizedCache` behind a `parking_lot::RwLock`, locked
//!   for writing around `cache_get` and again around `cache_set`: what
//!   `#[cached(size = N)]` expands to).
//! * `zipf/*`: 1,000,000 calls with keys drawn from Zipf(s = 1.0) over
//!   100,000 keys, capacity 10,000, LRU, starting from an empty cache; one
//!   iteration is one full pass. The hit ratios are printed before the group.
//! * `hashkey/*`: the default `HashKeymap` hit path for a `(u64, f64)`
//!   argument, and the cost of building a key alone with each keymap.
//! * `threads/*`: one shared cache hit by 1 and by 2 threads; throughput is
//!   total calls over wall-clock time.
//!
//! Run with `cargo bench --bench memo` (or `-- --quick` for a fast pass;
//! `-- pattern` for the patterns only). `outside/memo` measures the same
//! patterns from a user's binary (default release profile).

use std::cell::Cell;
use std::hash::Hash;
use std::hint::black_box;
use std::num::NonZeroUsize;
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use cached::Cached;
use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BatchSize, BenchmarkGroup, Criterion, SamplingMode, Throughput,
};
use klepto::keymap::{HashKeymap, RawKeymap, SerialKeymap, StringKeymap};
use klepto::policy::Policy;
use klepto::{KeyGen, Memo, MemoBuilder};
use parking_lot::RwLock;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, Zipf};
use serde::Serialize;

/// Capacity of every cache in the `hit`, `zipf` and `threads` groups.
const CAPACITY: usize = 10_000;
/// Number of hot (pre-populated) keys.
const HOT: usize = 1_000;
/// Lookups per criterion iteration in the `hit`, `hashkey` and `threads` groups.
const BATCH: usize = 1_000;
/// Calls per `zipf` pass.
const ZIPF_CALLS: usize = 1_000_000;
/// Distinct keys of the Zipf distribution.
const ZIPF_KEYS: f64 = 100_000.0;
/// Fixed seed: every run and every contestant sees the same keys.
const SEED: u64 = 0x6b6c_6570_746f;

/// The memoized function (also what the peers store and compute).
fn f(x: u64) -> u64 {
    x.wrapping_mul(2_654_435_761)
}

/// `HOT` distinct pseudo-random keys, and a `BATCH`-long pseudo-random
/// sequence of lookups among them.
fn hot_keys() -> (Vec<u64>, Vec<u64>) {
    let mut rng = StdRng::seed_from_u64(SEED);
    let mut hot: Vec<u64> = Vec::with_capacity(HOT);
    while hot.len() < HOT {
        let k: u64 = rng.random();
        if !hot.contains(&k) {
            hot.push(k);
        }
    }
    let seq = (0..BATCH).map(|_| hot[rng.random_range(0..HOT)]).collect();
    (hot, seq)
}

fn lru_cache(cap: usize) -> Mutex<lru::LruCache<u64, u64>> {
    Mutex::new(lru::LruCache::new(
        NonZeroUsize::new(cap).expect("non-zero capacity"),
    ))
}

/// Benchmarks the hits of a memo of `f` configured by `builder` (with raw
/// keys), pre-populated with `hot`, then checks that nothing missed.
fn klepto_hits<P: Policy>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    builder: MemoBuilder<HashKeymap, P>,
    hot: &[u64],
    seq: &[u64],
) {
    let memo = builder.keymap(RawKeymap::new()).build(f);
    for &k in hot {
        memo.call(k);
    }
    g.bench_function(name, |b| {
        b.iter(|| {
            for &k in seq {
                black_box(memo.call(black_box(k)));
            }
        })
    });
    assert_eq!(memo.info().misses, HOT as u64, "{name}: every lookup a hit");
}

fn hit(c: &mut Criterion) {
    let (hot, seq) = hot_keys();
    let mut g = c.benchmark_group("hit");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(3));

    klepto_hits(
        &mut g,
        "klepto_lru",
        Memo::builder().lru(CAPACITY),
        &hot,
        &seq,
    );

    let qc = quick_cache::sync::Cache::<u64, u64>::new(CAPACITY);
    for &k in &hot {
        qc.insert(k, f(k));
    }
    g.bench_function("quick_cache", |b| {
        b.iter(|| {
            for &k in &seq {
                black_box(qc.get(black_box(&k)));
            }
        })
    });
    assert!(
        seq.iter().all(|k| qc.get(k).is_some()),
        "quick_cache: all hot"
    );
    drop(qc);

    let mk = moka::sync::Cache::<u64, u64>::new(CAPACITY as u64);
    for &k in &hot {
        mk.insert(k, f(k));
    }
    mk.run_pending_tasks();
    g.bench_function("moka", |b| {
        b.iter(|| {
            for &k in &seq {
                black_box(mk.get(black_box(&k)));
            }
        })
    });
    assert!(seq.iter().all(|k| mk.get(k).is_some()), "moka: all hot");
    drop(mk);

    let lr = lru_cache(CAPACITY);
    {
        let mut l = lr.lock().unwrap();
        for &k in &hot {
            l.put(k, f(k));
        }
    }
    g.bench_function("lru_mutex", |b| {
        b.iter(|| {
            for &k in &seq {
                black_box(lr.lock().unwrap().get(black_box(&k)).copied());
            }
        })
    });
    drop(lr);

    klepto_hits(&mut g, "klepto_inf", Memo::builder().inf(), &hot, &seq);

    klepto_hits(
        &mut g,
        "klepto_lfu",
        Memo::builder().lfu(CAPACITY),
        &hot,
        &seq,
    );

    // The default keymap per argument type, against `cached` keyed by the
    // same arguments (`f64` is not `Hash`: a `#[cached]` user keys it by its
    // bits, with `key = "(u64, u64)", convert = ...`).
    hash_hits(&mut g, "u64", &hot, &seq, f, |&k| k, |&k| f(k));
    hash_hits(
        &mut g,
        "u64_f64",
        &hot,
        &seq,
        |(k, x): (u64, f64)| f(k) as f64 + x,
        |&(k, x)| (k, x.to_bits()),
        |&(k, x)| f(k) as f64 + x,
    );
    hash_hits(
        &mut g,
        "string32",
        &hot,
        &seq,
        |s: String| string_f(&s),
        String::clone,
        |s| string_f(s),
    );
    g.finish();
}

/// The memoized function of `String` arguments.
fn string_f(s: &str) -> u64 {
    s.bytes()
        .fold(0_u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
}

/// An argument of each type made from a `u64` key: the key itself, the
/// key and half of it as a float, or the key as 32 decimal digits.
trait FromKey: Clone {
    fn from_key(k: u64) -> Self;
}

impl FromKey for u64 {
    fn from_key(k: u64) -> u64 {
        k
    }
}

impl FromKey for (u64, f64) {
    fn from_key(k: u64) -> (u64, f64) {
        (k, k as f64 * 0.5)
    }
}

impl FromKey for String {
    fn from_key(k: u64) -> String {
        format!("{k:032}")
    }
}

/// `hit/<arg>/klepto_hash` and `hit/<arg>/cached`: a default-keymap memo of
/// `func` and a `cached` LRU keyed by `key(args)`, both pre-populated with
/// the hot keys, called on the `seq` of hot keys. Every call takes its
/// arguments by value (a clone at the call site, the same for both).
fn hash_hits<A, R, K>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    arg: &str,
    hot: &[u64],
    seq: &[u64],
    func: impl Fn(A) -> R + Send + Sync,
    key: impl Fn(&A) -> K,
    compute: impl Fn(&A) -> R,
) where
    A: FromKey + Serialize + 'static,
    R: Clone + Send + 'static,
    K: Hash + Eq + Clone,
{
    let hot: Vec<A> = hot.iter().map(|&k| A::from_key(k)).collect();
    let args: Vec<A> = seq.iter().map(|&k| A::from_key(k)).collect();

    let memo = Memo::builder().lru(CAPACITY).build(func);
    for a in &hot {
        memo.call(a.clone());
    }
    g.bench_function(format!("{arg}/klepto_hash"), |b| {
        b.iter(|| {
            for a in &args {
                black_box(memo.call(black_box(a.clone())));
            }
        })
    });
    assert_eq!(memo.info().misses, HOT as u64, "{arg}: every lookup a hit");
    drop(memo);

    let cache = cached_lru::<K, R>(CAPACITY);
    let call = |a: A| cached_call(&cache, key(&a), || compute(&a));
    for a in &hot {
        call(a.clone());
    }
    g.bench_function(format!("{arg}/cached"), |b| {
        b.iter(|| {
            for a in &args {
                black_box(call(black_box(a.clone())));
            }
        })
    });
    assert_eq!(
        cache.read().cache_size(),
        HOT,
        "{arg}: cached holds the hot keys"
    );
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

// ------------------------------------------------------------ patterns

/// One access pattern of the `pattern` groups.
struct Pattern {
    name: &'static str,
    /// The calls of one iteration.
    seq: Vec<u64>,
    /// Keys called before timing (the hot keys), or none: then every
    /// iteration starts from an empty cache.
    prefill: Vec<u64>,
}

/// `ZIPF_CALLS` keys drawn from Zipf(s) over `ZIPF_KEYS` keys.
fn zipf_keys(s: f64) -> Vec<u64> {
    let mut rng = StdRng::seed_from_u64(SEED);
    let dist = Zipf::new(ZIPF_KEYS, s).expect("valid Zipf parameters");
    // Zipf samples ranks in [1, n]; the key is the rank minus one.
    (0..ZIPF_CALLS)
        .map(|_| dist.sample(&mut rng) as u64 - 1)
        .collect()
}

/// A peer with a count of the calls that computed `f` (klepto memos count
/// their own).
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

/// Benchmarks `pattern/<pattern>/<name>`: the cache made by `new` (then
/// called with the pattern's prefill) answering the pattern's calls with
/// `call`; `misses` tells how many calls computed `f` so far. A pattern
/// without prefill first makes one untimed pass and prints the hit ratio.
fn peer<C>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    p: &Pattern,
    name: &str,
    new: impl Fn() -> C,
    call: impl Fn(&C, u64) -> u64,
    misses: impl Fn(&C) -> u64,
) {
    if p.prefill.is_empty() {
        let cache = new();
        for &k in &p.seq {
            black_box(call(&cache, k));
        }
        let hits = p.seq.len() as u64 - misses(&cache);
        eprintln!(
            "pattern/{}/{name}: hit ratio {:.4} ({hits} hits of {} calls)",
            p.name,
            hits as f64 / p.seq.len() as f64,
            p.seq.len()
        );
        // Building and dropping the cache are outside the timing (the
        // routine returns the cache).
        g.bench_function(name, |b| {
            b.iter_batched(
                &new,
                |cache| {
                    for &k in &p.seq {
                        black_box(call(&cache, k));
                    }
                    cache
                },
                BatchSize::PerIteration,
            )
        });
    } else {
        let cache = new();
        for &k in &p.prefill {
            call(&cache, k);
        }
        g.bench_function(name, |b| {
            b.iter(|| {
                for &k in &p.seq {
                    black_box(call(&cache, black_box(k)));
                }
            })
        });
        assert_eq!(
            misses(&cache),
            p.prefill.len() as u64,
            "pattern/{}/{name}: every call a hit",
            p.name
        );
    }
}

fn pattern(c: &mut Criterion) {
    let (hot, uniform) = hot_keys();
    let mut patterns = vec![
        Pattern {
            name: "round_robin",
            seq: hot.clone(),
            prefill: hot.clone(),
        },
        Pattern {
            name: "uniform",
            seq: uniform,
            prefill: hot,
        },
    ];
    for (name, s) in [("zipf_0.8", 0.8), ("zipf_1.0", 1.0), ("zipf_1.2", 1.2)] {
        patterns.push(Pattern {
            name,
            seq: zipf_keys(s),
            prefill: Vec::new(),
        });
    }

    for p in &patterns {
        let mut g = c.benchmark_group(format!("pattern/{}", p.name));
        g.throughput(Throughput::Elements(p.seq.len() as u64));
        g.warm_up_time(Duration::from_secs(1));
        if p.prefill.is_empty() {
            // One iteration is a whole pass (up to 0.6 s for moka): the
            // same number of passes per sample keeps the run short.
            g.sampling_mode(SamplingMode::Flat);
            g.sample_size(10);
            g.measurement_time(Duration::from_secs(3));
        } else {
            g.measurement_time(Duration::from_secs(2));
        }

        peer(
            &mut g,
            p,
            "klepto_raw",
            || {
                Memo::builder()
                    .lru(CAPACITY)
                    .keymap(RawKeymap::new())
                    .build(f)
            },
            |m, k| m.call(k),
            |m| m.info().misses,
        );
        peer(
            &mut g,
            p,
            "klepto_hash",
            || Memo::builder().lru(CAPACITY).build(f),
            |m, k| m.call(k),
            |m| m.info().misses,
        );
        peer(
            &mut g,
            p,
            "quick_cache",
            || Counted::new(quick_cache::sync::Cache::<u64, u64>::new(CAPACITY)),
            |c, k| {
                c.cache.get(&k).unwrap_or_else(|| {
                    let v = c.miss(k);
                    c.cache.insert(k, v);
                    v
                })
            },
            |c| c.misses.get(),
        );
        peer(
            &mut g,
            p,
            "lru_mutex",
            || Counted::new(lru_cache(CAPACITY)),
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
        );
        peer(
            &mut g,
            p,
            "moka",
            || Counted::new(moka::sync::Cache::<u64, u64>::new(CAPACITY as u64)),
            |c, k| {
                c.cache.get(&k).unwrap_or_else(|| {
                    let v = c.miss(k);
                    c.cache.insert(k, v);
                    v
                })
            },
            |c| c.misses.get(),
        );
        peer(
            &mut g,
            p,
            "cached",
            || Counted::new(cached_lru::<u64, u64>(CAPACITY)),
            |c, k| cached_call(&c.cache, k, || c.miss(k)),
            |c| c.misses.get(),
        );
        g.finish();
    }
}

/// One get-or-insert on an `lru::LruCache` behind a mutex; returns the
/// value and whether it was a hit.
fn lru_get_or_insert(cache: &Mutex<lru::LruCache<u64, u64>>, k: u64) -> (u64, bool) {
    let mut c = cache.lock().unwrap();
    if let Some(&v) = c.get(&k) {
        (v, true)
    } else {
        let v = f(k);
        c.put(k, v);
        (v, false)
    }
}

fn zipf(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(SEED);
    let dist = Zipf::new(ZIPF_KEYS, 1.0).expect("valid Zipf parameters");
    // Zipf samples ranks in [1, n]; the key is the rank minus one.
    let seq: Vec<u64> = (0..ZIPF_CALLS)
        .map(|_| dist.sample(&mut rng) as u64 - 1)
        .collect();

    // One untimed pass of each, for the hit ratios.
    let memo = Memo::builder()
        .lru(CAPACITY)
        .keymap(RawKeymap::new())
        .build(f);
    for &k in &seq {
        memo.call(k);
    }
    let info = memo.info();
    let klepto_ratio = info.hits as f64 / (info.hits + info.misses) as f64;
    let lr = lru_cache(CAPACITY);
    let lru_hits = seq.iter().filter(|&&k| lru_get_or_insert(&lr, k).1).count();
    let lru_ratio = lru_hits as f64 / seq.len() as f64;
    eprintln!(
        "zipf hit ratio (s = 1.0, {} keys, {} calls, capacity {}): \
         klepto_lru {:.4} ({} hits), lru_mutex {:.4} ({} hits)",
        ZIPF_KEYS as u64, ZIPF_CALLS, CAPACITY, klepto_ratio, info.hits, lru_ratio, lru_hits
    );
    drop((memo, lr));

    let mut g = c.benchmark_group("zipf");
    g.throughput(Throughput::Elements(ZIPF_CALLS as u64));
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(6));

    // Each pass starts from an empty cache; building and dropping it are
    // outside the timing (the routine returns the cache).
    g.bench_function("klepto_lru", |b| {
        b.iter_batched(
            || {
                Memo::builder()
                    .lru(CAPACITY)
                    .keymap(RawKeymap::new())
                    .build(f)
            },
            |memo| {
                for &k in &seq {
                    black_box(memo.call(k));
                }
                memo
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("lru_mutex", |b| {
        b.iter_batched(
            || lru_cache(CAPACITY),
            |cache| {
                for &k in &seq {
                    black_box(lru_get_or_insert(&cache, k));
                }
                cache
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn hashkey(c: &mut Criterion) {
    let (hot, seq) = hot_keys();
    let args: Vec<(u64, f64)> = seq.iter().map(|&k| (k, k as f64 * 0.5)).collect();
    let mut g = c.benchmark_group("hashkey");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(3));

    let memo = Memo::builder()
        .lru(CAPACITY)
        .build(|(k, x): (u64, f64)| f(k) as f64 + x);
    for &k in &hot {
        memo.call((k, k as f64 * 0.5));
    }
    g.bench_function("hit_hash_keymap", |b| {
        b.iter(|| {
            for &a in &args {
                black_box(memo.call(black_box(a)));
            }
        })
    });
    assert_eq!(
        memo.info().misses,
        HOT as u64,
        "hashkey: every lookup a hit"
    );

    g.bench_function("key_hash_keymap", |b| {
        b.iter(|| {
            for a in &args {
                black_box(memo.key(black_box(a)).expect("key"));
            }
        })
    });
    let string = KeyGen::new().keymap(StringKeymap::new());
    g.bench_function("key_string_keymap", |b| {
        b.iter(|| {
            for a in &args {
                black_box(string.key(black_box(a)).expect("key"));
            }
        })
    });
    let serial = KeyGen::new().keymap(SerialKeymap::new());
    g.bench_function("key_serial_keymap", |b| {
        b.iter(|| {
            for a in &args {
                black_box(serial.key(black_box(a)).expect("key"));
            }
        })
    });
    g.finish();
}

/// Runs `threads` threads, each making `iters * BATCH` calls of `call` over
/// `seq`, all started together; returns the wall-clock time from the start
/// to the last thread's end.
fn run_threads(threads: usize, iters: u64, seq: &[u64], call: &(impl Fn(u64) + Sync)) -> Duration {
    let start = Barrier::new(threads + 1);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let start = &start;
                s.spawn(move || {
                    // Each thread walks the sequence from its own offset.
                    let offset = t * seq.len() / threads;
                    let mine: Vec<u64> = seq[offset..]
                        .iter()
                        .chain(&seq[..offset])
                        .copied()
                        .collect();
                    start.wait();
                    for _ in 0..iters {
                        for &k in &mine {
                            call(black_box(k));
                        }
                    }
                })
            })
            .collect();
        start.wait();
        let t0 = Instant::now();
        for h in handles {
            h.join().expect("bench thread panicked");
        }
        t0.elapsed()
    })
}

fn threads(c: &mut Criterion) {
    let (hot, seq) = hot_keys();
    let mut g = c.benchmark_group("threads");
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(3));

    let memo = Memo::builder()
        .lru(CAPACITY)
        .keymap(RawKeymap::new())
        .build(f);
    for &k in &hot {
        memo.call(k);
    }
    let qc = quick_cache::sync::Cache::<u64, u64>::new(CAPACITY);
    for &k in &hot {
        qc.insert(k, f(k));
    }
    let klepto_call = |k: u64| {
        black_box(memo.call(k));
    };
    let qc_call = |k: u64| {
        black_box(qc.get(&k));
    };

    for n in [1, 2] {
        g.throughput(Throughput::Elements((n * BATCH) as u64));
        g.bench_function(format!("klepto_lru/{n}"), |b| {
            b.iter_custom(|iters| run_threads(n, iters, &seq, &klepto_call))
        });
        g.bench_function(format!("quick_cache/{n}"), |b| {
            b.iter_custom(|iters| run_threads(n, iters, &seq, &qc_call))
        });
    }
    assert_eq!(
        memo.info().misses,
        HOT as u64,
        "threads: every lookup a hit"
    );
    g.finish();
}

criterion_group!(benches, hit, pattern, zipf, hashkey, threads);
criterion_main!(benches);
