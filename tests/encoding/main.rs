//! The key encoder against a reference encoder kept as a test oracle
//! ([`oracle`]): the same bytes or the same error (`bytes`), and the same
//! readable form from `describe_args` and the `StringKeymap` (`text`).

mod bytes;
mod oracle;
mod text;

// What `crate::` names in the library files the oracle compiles.
use klepto::{Error, Result};

use proptest::prelude::*;

/// Floats that stress keys: ordinary ones, both zeros, NaN, both
/// infinities, a rounding tie, a whole number, a huge one, any.
fn special_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => -1e4..1e4f64,
        1 => Just(0.0),
        1 => Just(-0.0),
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => Just(2.5),
        1 => Just(15.0),
        1 => Just(1e300),
        1 => any::<f64>(),
    ]
}
