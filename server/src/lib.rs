//! Swamp's storage node: Tahoe-LAFS's GBS storage protocol over HTTPS (HTTP/1.1 and
//! HTTP/2), on Tahoe's own node directory and disk format.
//!
//! # Layout
//! - [`backend`]: shares on disk in Tahoe's format; uploads, read-test-write, leases.
pub mod backend;
pub mod node;
