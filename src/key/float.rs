//! Floats in keys: the canonical NaN, and rounding to `tol` decimal places
//! exactly as Python's `round(x, t)` does.

use std::cmp::Ordering;
use std::fmt::Write as _;

/// The bits every NaN is keyed as.
pub(crate) const CANONICAL_NAN_BITS: u64 = 0x7ff8_0000_0000_0000;

/// Every NaN → the canonical NaN; everything else, `-0.0` included, as is
/// (`-0.0` and `0.0` are different arguments to sign-dependent functions).
#[inline]
pub(crate) fn canonical_float(x: f64) -> f64 {
    if x.is_nan() {
        f64::from_bits(CANONICAL_NAN_BITS)
    } else {
        x
    }
}

/// Above this many decimal places every double is unchanged by rounding
/// (Python's `NDIGITS_MAX`: the smallest subnormal has 1074 binary places).
const MAX_PLACES: i32 = 323;
/// Below this (rounding to more than 10^308) every double rounds to zero
/// (Python's `NDIGITS_MIN`).
const MIN_PLACES: i32 = -308;

/// Powers of ten that are exact in `f64`.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Rounds `x` to `t` decimal places exactly as Python's `round(x, t)`: the
/// double's *exact* binary value is rounded correctly, ties to even only for
/// exact halves (so `0.35` → `0.3`, since `0.35` is `0.34999…`; `2.675` →
/// `2.67`; `2.5` → `2.0` with `t = 0`), and the decimal result is read back
/// as the nearest double. Negative `t` rounds to tens (`-1`), hundreds
/// (`-2`), ...
///
/// Differences from Python, all about values Python cannot round: NaN and
/// the infinities come back unchanged (NaN canonical), and so does a value
/// whose rounded form would overflow (Python raises `OverflowError`). A zero
/// result is `+0.0` (Python may give `-0.0`, but its keys treat the two as
/// equal, as the rounded key does here).
///
/// ```
/// use klepto::key::round_float;
/// assert_eq!(round_float(0.35, 1), 0.3);   // 0.35 is 0.34999999999999997...
/// assert_eq!(round_float(2.675, 2), 2.67);
/// assert_eq!(round_float(2.5, 0), 2.0);    // an exact half: to even
/// assert_eq!(round_float(1250.0, -2), 1200.0);
/// ```
pub fn round_float(x: f64, t: i32) -> f64 {
    if !x.is_finite() {
        return canonical_float(x);
    }
    let r = if t > MAX_PLACES {
        x
    } else if t < MIN_PLACES {
        0.0
    } else {
        match round_fast(x, t) {
            Some(r) => r,
            None => round_exact(x, t),
        }
    };
    if r == 0.0 {
        0.0
    } else {
        r
    }
}

/// The common case in floating point: `x · 10^t` far enough from a half
/// that its rounding error cannot cross it. Then rounding the scaled value
/// rounds the exact value the same way, and dividing the (exact) integer by
/// the (exact) power of ten gives the double nearest the decimal result, as
/// reading the decimal back would. `None` when that cannot be shown.
#[inline]
fn round_fast(x: f64, t: i32) -> Option<f64> {
    let p = *POW10.get(usize::try_from(t).ok()?)?;
    let y = x * p;
    // Integers below 2^52 and their halves are exact; beyond, give up.
    if y.is_nan() || y.abs() >= 4_503_599_627_370_496.0 {
        return None;
    }
    let below = y.floor();
    let distance_to_half = ((y - below) - 0.5).abs();
    // `y` is within half an ulp of the exact product; a margin of a few ulps
    // (at least one ulp of 1.0, for tiny products) keeps ties out.
    let margin = 4.0 * f64::EPSILON * y.abs().max(1.0);
    if distance_to_half <= margin {
        return None;
    }
    Some(y.round() / p)
}

/// Rounds through the exact decimal expansion: the standard library prints
/// a double's exact value correctly rounded to a precision (ties to even),
/// and parsing reads a decimal back as the nearest double.
#[cold]
fn round_exact(x: f64, t: i32) -> f64 {
    let mut s = String::with_capacity(48);
    let rounded = if t >= 0 {
        // `t <= MAX_PLACES`, so the cast cannot wrap.
        let _ = write!(s, "{:.*}", t as usize, x.abs());
        s.parse::<f64>().ok()
    } else {
        round_integer_digits(x.abs(), t.unsigned_abs() as usize, &mut s)
    };
    match rounded {
        Some(r) if r.is_finite() => r.copysign(x),
        // Rounding up past f64::MAX: Python raises; keep the value.
        _ => x,
    }
}

/// Rounds `a >= 0` to a multiple of `10^places` (ties to even), using the
/// exact digits of its integer part and whether it has a fraction.
fn round_integer_digits(a: f64, places: usize, s: &mut String) -> Option<f64> {
    let whole = a.trunc();
    let has_fraction = a != whole;
    // An integral double prints exactly.
    let _ = write!(s, "{whole:.0}");
    let digits = s.as_bytes();
    let n = digits.len();
    let (head, tail) = if n > places {
        digits.split_at(n - places)
    } else {
        (&b""[..], digits)
    };
    // The dropped part (`tail`, then the fraction) against half of 10^places.
    let dropped = if tail.len() < places {
        Ordering::Less
    } else {
        compare_to_half(tail, has_fraction)
    };
    let last_odd = head.last().is_some_and(|d| (d - b'0') % 2 == 1);
    let up = dropped == Ordering::Greater || (dropped == Ordering::Equal && last_odd);
    let mut out: Vec<u8> = head.to_vec();
    if up {
        increment_decimal(&mut out);
    }
    if out.is_empty() {
        return Some(0.0);
    }
    out.resize(out.len() + places, b'0');
    std::str::from_utf8(&out).ok()?.parse().ok()
}

/// Compares `0.tail…` (the digits of `tail`, then a nonzero fraction if
/// `more`) with one half.
fn compare_to_half(tail: &[u8], more: bool) -> Ordering {
    match tail.first().map(|d| d.cmp(&b'5')) {
        None => Ordering::Less,
        Some(Ordering::Equal) => {
            if more || tail[1..].iter().any(|&d| d != b'0') {
                Ordering::Greater
            } else {
                Ordering::Equal
            }
        }
        Some(o) => o,
    }
}

/// Adds one to a decimal digit string, growing it on a carry out.
fn increment_decimal(digits: &mut Vec<u8>) {
    for d in digits.iter_mut().rev() {
        if *d == b'9' {
            *d = b'0';
        } else {
            *d += 1;
            return;
        }
    }
    digits.insert(0, b'1');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn python_examples() {
        for (x, t, want) in [
            (0.35, 1, 0.3),
            (0.45, 1, 0.5),
            (2.675, 2, 2.67),
            (0.015, 2, 0.01),
            (0.0025, 3, 0.003),
            (2.5, 0, 2.0),
            (3.5, 0, 4.0),
            (-2.5, 0, -2.0),
            (0.25, 1, 0.2),
            (0.125, 2, 0.12),
            (0.375, 2, 0.38),
            (15.0, -1, 20.0),
            (25.0, -1, 20.0),
            (25.000000000000004, -1, 30.0),
            (1234.0, -1, 1230.0),
            (1250.0, -2, 1200.0),
            (4e5, -6, 0.0),
            (5e5, -6, 0.0),
            (5.0000000001e5, -6, 1e6),
            (6e5, -6, 1e6),
            (1.0 / 3.0, 3, 0.333),
        ] {
            assert_eq!(round_float(x, t), want, "round({x}, {t})");
        }
    }

    #[test]
    fn edges() {
        assert_eq!(
            round_float(-0.4, 0).to_bits(),
            0.0_f64.to_bits(),
            "zero is +0.0"
        );
        assert!(round_float(f64::NAN, 2).is_nan());
        assert_eq!(round_float(f64::INFINITY, 2), f64::INFINITY);
        assert_eq!(round_float(1e300, 20), 1e300);
        assert_eq!(round_float(1.5, 400), 1.5);
        assert_eq!(round_float(123.0, -400), 0.0);
        assert_eq!(round_float(f64::MAX, -308), f64::MAX, "overflow: unchanged");
        assert_eq!(round_float(0.123456789, 25), 0.123456789);
        assert_eq!(canonical_float(-0.0).to_bits(), (-0.0_f64).to_bits());
        assert_eq!(canonical_float(-f64::NAN).to_bits(), CANONICAL_NAN_BITS);
    }

    #[test]
    fn decimal_helpers() {
        let mut v = b"199".to_vec();
        increment_decimal(&mut v);
        assert_eq!(v, b"200");
        let mut v = b"99".to_vec();
        increment_decimal(&mut v);
        assert_eq!(v, b"100");
        assert_eq!(compare_to_half(b"500", false), Ordering::Equal);
        assert_eq!(compare_to_half(b"500", true), Ordering::Greater);
        assert_eq!(compare_to_half(b"501", false), Ordering::Greater);
        assert_eq!(compare_to_half(b"499", true), Ordering::Less);
    }

    proptest! {
        /// The fast path, whenever it answers, agrees with the exact one.
        #[test]
        fn fast_path_agrees_with_exact(
            x in prop_oneof![any::<f64>(), -1e6..1e6f64, -10.0..10.0f64],
            t in 0..=22_i32,
        ) {
            prop_assume!(x.is_finite());
            if let Some(fast) = round_fast(x, t) {
                prop_assert_eq!(fast, round_exact(x, t), "round({}, {})", x, t);
            }
        }

        /// Short decimals with a 5 after the rounding place (the cases where
        /// the binary value lies just beside the half) agree with exact.
        #[test]
        fn near_halves_agree_with_exact(n in 0_u64..1_000_000, t in 0..=4_i32) {
            let x: f64 = format!("{}.{}5", n, "0".repeat(t as usize)).parse().unwrap();
            let want = round_exact(x, t);
            prop_assert_eq!(round_float(x, t), if want == 0.0 { 0.0 } else { want });
        }
    }
}
