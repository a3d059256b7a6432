//! Memos oversubscribed: 64 threads on the machine's cores (2 on the
//! project's VM) share one cache of a slow function, so that lock holders
//! are preempted and waiters compete for time slices. Each thread makes
//! its calls with keys from Zipf(1.0) over 10,000 keys; the caches hold
//! 1,000 (LRU-ish), so calls mix hits, misses and waits for another
//! thread's computation of the same key. The function spins for 20 µs.
//!
//! Peers, each with single flight (a key is computed once at a time):
//!
//! * `klepto`: `Memo::builder().lru(1000).build(f)`, whose memory is behind
//!   klepto's striped spin locks (spin, then yield);
//! * `moka`: `moka::sync::Cache::get_with`;
//! * `quick_cache`: `quick_cache::sync::Cache::get_or_insert_with`.
//!
//! Built with `RUSTFLAGS="--cfg klepto_parking_stripes"`, klepto's stripes
//! are parking_lot mutexes instead (spin, then park): the same memo on
//! parking_lot's locks, for the comparison the README quotes.
//!
//! Rounds rotate the peers; the table shows the median round's calls per
//! second, the share of calls that computed `f`, and the latency
//! percentiles of one call over all rounds.
//!
//! ```text
//! cargo run --release --bin oversubscribed              # 5 rounds
//! cargo run --release --bin oversubscribed -- --quick   # 1 round, fewer calls
//! RUSTFLAGS="--cfg klepto_parking_stripes" CARGO_TARGET_DIR=target/parking \
//!     cargo run --release --bin oversubscribed
//! ```

use std::hint::spin_loop;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use klepto::Memo;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Zipf};

const THREADS: usize = 64;
const KEYS: u64 = 10_000;

/// A workload: the caches' capacity, and how long `f` spins.
#[derive(Clone, Copy)]
struct Load {
    capacity: usize,
    work: Duration,
}

/// Mixed: a third of the calls compute a slow `f`.
const MIXED: Load = Load {
    capacity: 1_000,
    work: Duration::from_micros(20),
};
/// Hits: every key fits, `f` is quick; after the first calls, nearly
/// every call is a hit, and the locks are all there is to contend for.
const HITS: Load = Load {
    capacity: KEYS as usize,
    work: Duration::from_micros(1),
};

/// Calls of [`slow`] so far.
static COMPUTED: AtomicU64 = AtomicU64::new(0);

/// How long [`slow`] spins, in ns (set per workload).
static WORK_NS: AtomicU64 = AtomicU64::new(0);

/// The slow function: it spins for the workload's time, then returns a
/// value of the key.
fn slow(key: u64) -> u64 {
    COMPUTED.fetch_add(1, Relaxed);
    let work = Duration::from_nanos(WORK_NS.load(Relaxed));
    let start = Instant::now();
    while start.elapsed() < work {
        spin_loop();
    }
    key.wrapping_mul(2_654_435_761)
}

/// A cache under test, as its call of a key.
type Peer = Box<dyn Fn(u64) -> u64 + Sync>;

fn peer(name: &str, capacity: usize) -> Peer {
    match name {
        "klepto" => {
            let memo = Memo::builder().lru(capacity).build(slow);
            Box::new(move |key| memo.call(key))
        }
        "moka" => {
            let cache = moka::sync::Cache::<u64, u64>::new(capacity as u64);
            Box::new(move |key| cache.get_with(key, || slow(key)))
        }
        "quick_cache" => {
            let cache = quick_cache::sync::Cache::<u64, u64>::new(capacity);
            Box::new(
                move |key| match cache.get_or_insert_with(&key, || Ok::<_, ()>(slow(key))) {
                    Ok(value) => value,
                    Err(()) => unreachable!("the function never fails"),
                },
            )
        }
        _ => unreachable!("unknown peer {name}"),
    }
}

/// One round of one peer from an empty cache: calls per second, the
/// calls that computed, and every call's latency in ns.
fn round(name: &str, capacity: usize, keys: &[Vec<u64>]) -> (f64, u64, Vec<u32>) {
    let cache = peer(name, capacity);
    let computed = COMPUTED.load(Relaxed);
    let cache = &*cache;
    let start = Barrier::new(THREADS + 1);
    let (elapsed, latencies) = std::thread::scope(|s| {
        let workers: Vec<_> = keys
            .iter()
            .map(|keys| {
                let start = &start;
                s.spawn(move || {
                    let mut latencies = Vec::with_capacity(keys.len());
                    start.wait();
                    for &key in keys {
                        let t = Instant::now();
                        let value = cache(key);
                        let ns = t.elapsed().as_nanos();
                        assert_eq!(value, key.wrapping_mul(2_654_435_761));
                        latencies.push(u32::try_from(ns).unwrap_or(u32::MAX));
                    }
                    latencies
                })
            })
            .collect();
        start.wait();
        let t = Instant::now();
        let latencies: Vec<u32> = workers
            .into_iter()
            .flat_map(|w| w.join().expect("a worker panicked"))
            .collect();
        (t.elapsed(), latencies)
    });
    let computed = COMPUTED.load(Relaxed) - computed;
    (
        latencies.len() as f64 / elapsed.as_secs_f64(),
        computed,
        latencies,
    )
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    f64::from(sorted[i]) / 1_000.0
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (calls, rounds) = if quick { (500, 1) } else { (4_000, 5) };
    let zipf = Zipf::new(KEYS as f64, 1.0).expect("a valid Zipf");
    let keys: Vec<Vec<u64>> = (0..THREADS)
        .map(|t| {
            let mut rng = StdRng::seed_from_u64(0x5eed + t as u64);
            (0..calls).map(|_| zipf.sample(&mut rng) as u64).collect()
        })
        .collect();
    let stripes = if cfg!(klepto_parking_stripes) {
        "parking_lot mutexes"
    } else {
        "spin locks"
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "{THREADS} threads on {cores} cores, {calls} calls each, Zipf(1.0) over {KEYS} keys; \
         klepto's stripes: {stripes}; {rounds} rounds"
    );
    for load in [MIXED, HITS] {
        println!("\ncapacity {}, f spins {:?}", load.capacity, load.work);
        measure(load, &keys, rounds);
    }
}

/// The table of one workload.
fn measure(load: Load, keys: &[Vec<u64>], rounds: usize) {
    WORK_NS.store(load.work.as_nanos() as u64, Relaxed);
    let peers = ["klepto", "moka", "quick_cache"];
    let mut rates = vec![Vec::new(); peers.len()];
    let mut latencies = vec![Vec::new(); peers.len()];
    let mut computed = vec![0; peers.len()];
    for r in 0..rounds {
        for i in 0..peers.len() {
            let p = (i + r) % peers.len();
            let (rate, c, mut l) = round(peers[p], load.capacity, keys);
            rates[p].push(rate);
            computed[p] += c;
            latencies[p].append(&mut l);
        }
    }
    println!(
        "{:<12} {:>12} {:>8} {:>9} {:>9} {:>10} {:>10}",
        "peer", "calls/s", "computed", "p50 µs", "p99 µs", "p99.9 µs", "max µs"
    );
    for (p, name) in peers.iter().enumerate() {
        rates[p].sort_by(f64::total_cmp);
        let rate = rates[p][rates[p].len() / 2];
        let l = &mut latencies[p];
        l.sort_unstable();
        println!(
            "{:<12} {:>12.0} {:>7.1}% {:>9.1} {:>9.1} {:>10.1} {:>10.1}",
            name,
            rate,
            100.0 * computed[p] as f64 / l.len() as f64,
            percentile(l, 0.5),
            percentile(l, 0.99),
            percentile(l, 0.999),
            percentile(l, 1.0)
        );
    }
}
