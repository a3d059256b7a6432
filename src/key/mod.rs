//! From arguments to keys: the canonical value tree, ignore masks, float
//! rounding, typing, and the keymaps that encode the result.
//!
//! The pipeline (DESIGN.md 3.1): `Args: Serialize` → [`Value`] tree (our own
//! serde `Serializer`, [`to_value`]) → [`positions`] (split into positions,
//! masks, rounding) → keymap encoding ([`encode`] describes the canonical
//! bytes). [`KeyGen`] runs the pipeline without a cache. [`describe_args`]
//! renders encoded arguments back as the readable form.
//!
//! # Stability
//!
//! Hash, string and serial keys depend only on the argument values (and the
//! configuration): maps are sorted, floats canonical, no random seed. One
//! caveat serde imposes: a `HashSet` serializes exactly like a `Vec`, in its
//! iteration order, which differs between processes, and no serializer can
//! tell the two apart. Use a `BTreeSet` (or a sorted `Vec`) in arguments for
//! keys that survive a restart.

pub mod encode;
pub mod keymap;

mod config;
mod describe;
mod float;
mod format;
mod keygen;
mod positions;
mod ser;
mod stream;
mod tree;
mod value;

pub use config::{Ignore, KeyConfig};
pub use describe::describe_args;
pub use float::round_float;
pub use keygen::KeyGen;
pub use positions::{positions, Positions};
pub use ser::to_value;
pub use value::Value;

/// Strategies shared by the key modules' property tests.
#[cfg(test)]
pub(crate) mod strategies {
    use proptest::prelude::*;

    /// Floats that stress keys: ordinary ones, both zeros, NaN, both
    /// infinities, a rounding tie, a whole number, a huge one, any.
    pub(crate) fn special_f64() -> impl Strategy<Value = f64> {
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
}
