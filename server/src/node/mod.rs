//! The node directory: Tahoe's `tahoe.cfg` and identity files, read and created.

pub mod config;
pub mod create;
pub mod identity;
pub mod settings;

pub use config::{Config, ConfigError, Limits, LogFormat};
pub use identity::{Access, IdentityError, NodeIdentity, OperatorSecret};
