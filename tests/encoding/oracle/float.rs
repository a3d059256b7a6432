//! The oracle's canonical floats: every NaN as one NaN, `-0.0` kept (the
//! library's encoder does the same in its own code).

use rmp::encode as mp;

use super::format::write_err;
use klepto::Result;

/// The one NaN of keys.
pub const CANONICAL_NAN_BITS: u64 = 0x7ff8_0000_0000_0000;

/// Every NaN as the one canonical NaN; everything else as is (`-0.0` too).
pub fn canonical_float(x: f64) -> f64 {
    if x.is_nan() {
        f64::from_bits(CANONICAL_NAN_BITS)
    } else {
        x
    }
}

/// A float as the key encoding writes it: a canonical `f64`.
pub fn write_float(buf: &mut Vec<u8>, x: f64) -> Result<()> {
    mp::write_f64(buf, canonical_float(x)).map_err(write_err)
}
