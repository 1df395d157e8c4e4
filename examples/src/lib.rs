//! Runnable examples of the Swamp client library: see `src/bin/`. The mirror's
//! engine lives here, in [`mirror`], so that the end-to-end tests can drive it.

pub mod mirror;
