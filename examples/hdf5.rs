//! Array-valued results in an HDF5 file that h5py reads: a memoized
//! function returning a `Vec<Vec<f64>>` (a 2-D dataset) and another
//! returning a `Vec<f64>`, each in its own group.
//!
//! Run with `cargo run --example hdf5 --features hdf5` (needs the system's
//! HDF5 library: `apt-get install libhdf5-dev pkg-config`), then read the
//! results in Python:
//!
//! ```python
//! import h5py
//! f = h5py.File("klepto-example.h5", "r")
//! for digest, d in f["grid"].items():
//!     print(d.attrs["call"].decode(), d.shape, d.dtype)
//! ```

use klepto::archive::{Archive, HdfArchive};
use klepto::Memo;

/// The HDF5 file the results are kept in (in the current directory).
const FILE: &str = "klepto-example.h5";

/// A `rows x cols` grid of sin(x)·cos(y) samples.
fn grid((rows, cols): (u32, u32)) -> Vec<Vec<f64>> {
    (0..rows)
        .map(|r| {
            (0..cols)
                .map(|c| (f64::from(r) / 10.0).sin() * (f64::from(c) / 10.0).cos())
                .collect()
        })
        .collect()
}

/// The first `n` partial sums of the harmonic series.
fn harmonic(n: u32) -> Vec<f64> {
    (1..=n)
        .scan(0.0, |sum, k| {
            *sum += 1.0 / f64::from(k);
            Some(*sum)
        })
        .collect()
}

fn main() -> Result<(), klepto::Error> {
    let grids = Memo::builder()
        .lru(16)
        .name("grid")
        .write_through()
        .archive(HdfArchive::open(FILE)?)
        .build(grid);
    let sums = Memo::builder()
        .lru(16)
        .name("harmonic")
        .write_through()
        .archive(HdfArchive::open(FILE)?)
        .build(harmonic);

    for shape in [(3, 4), (100, 50), (3, 4)] {
        let g = grids.call(shape);
        let key = grids.key(&shape)?;
        println!(
            "grid{shape:?}: {}x{} -> f[{:?}]",
            g.len(),
            g[0].len(),
            grids.archive().dataset_path(&key)?
        );
    }
    for n in [10, 1000] {
        let s = sums.call(n);
        let key = sums.key(&n)?;
        println!(
            "harmonic({n}) ends in {:.4} -> f[{:?}]",
            s[s.len() - 1],
            sums.archive().dataset_path(&key)?
        );
    }
    println!(
        "{FILE}: {} grids, {} series (info: {:?})",
        grids.archive().len()?,
        sums.archive().len()?,
        grids.info()
    );
    Ok(())
}
