//! The node directory: Tahoe's `tahoe.cfg` and identity files, read and created, kept
//! runnable by Tahoe itself (`migrate`), and its grid-manager certificates.

pub mod config;
pub mod create;
pub mod grid_manager;
pub mod identity;
pub mod migrate;
pub mod settings;

pub use config::{Config, ConfigError, Limits, LogFormat};
pub use identity::{Access, IdentityError, NodeIdentity, OperatorSecret};
