//! From arguments to keys: the canonical value tree, ignore masks, float
//! rounding, typing, and the keymaps that encode the result.
//!
//! The pipeline (DESIGN.md 3.1): `Args: Serialize` → [`Value`] tree (our own
//! serde `Serializer`) → masks → rounding → keymap encoding.

pub mod keymap;

mod config;

pub use config::{Ignore, KeyConfig};
