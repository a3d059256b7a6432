//! From arguments to keys: ignore masks, float rounding, typing, and the
//! keymaps that encode the result.
//!
//! The pipeline (DESIGN.md 3.1): `Args: Serialize` → the canonical encoding
//! ([`encode`] describes the bytes; one serde `Serializer` splits the
//! argument into positions and applies masks, rounding and typing as it
//! writes) → the keymap's key (the bytes, their blake3 digest, or their
//! readable form). [`KeyGen`] runs the pipeline without a cache.
//! [`describe_args`] renders encoded arguments as the readable form.
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
mod stream;

pub use config::{Ignore, KeyConfig};
pub use describe::describe_args;
pub use float::round_float;
pub use keygen::KeyGen;
