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
mod keygen;
mod positions;
mod ser;
mod stream;
mod value;

pub use config::{Ignore, KeyConfig};
pub use describe::describe_args;
pub use keygen::KeyGen;
pub use positions::{positions, round_float, Positions};
pub use ser::to_value;
pub use value::Value;
