//! A Rust client for Tahoe-LAFS storage servers speaking Great Black Swamp (GBS):
//! Swamp, and the Python server.
//!
//! [`StorageClient::new`] takes a NURL, pins the server's certificate by its SPKI hash,
//! and speaks HTTP/2 (falling back to HTTP/1.1 when the server offers no ALPN, as the
//! Python server does). Its facades follow Tahoe's: [`StorageClient::general`],
//! [`StorageClient::immutable`], [`StorageClient::mutable`].
//!
//! # Layout
//! - `tls.rs`: the SPKI-pinning certificate verifier.
//! - `storage.rs`: the client and its typed method per endpoint; `trace.rs`: a span
//!   per storage request, its W3C trace context sent to the server.
//! - `grid.rs`: servers of a grid, lease secrets; `grid/upload.rs` and
//!   `grid/download.rs`: immutable upload and download, streamed and concurrent.
//! - `servermap.rs`: a mutable file's shares across the grid, verified.
//! - `publish.rs`: creating and overwriting mutable files.
//! - `check/`: check, verify and repair (one file, or a whole tree), reported as
//!   Tahoe reports them.
//! - `create.rs`: new client node directories and their servers.
//! - `nodedir.rs`: reading a client node directory (`tahoe.cfg`, secrets, `servers.yaml`).
//! - `dirs.rs`: reading directories and following paths.
//! - `tree/`: walking a whole tree in Tahoe's order (manifest, deep-stats).
//! - `dir_edit.rs`: changing directories (read-modify-write, retried).
//! - `watch/`: watching a directory or mutable file: feeds as triggers, re-read,
//!   decrypt, diff (printed by `tahoe watch`).
//! - `magic_folder/`: `tahoe magic-folder-push`, feeds to magic-folder's `poll-remote`.
//! - `feed.rs`: the change-feed client (WebSocket, SSE, long-poll; resume).
//! - `error.rs`: [`ClientError`].

pub mod check;
pub mod create;
pub mod dir_edit;
pub mod dirs;
pub mod error;
pub mod feed;
pub mod grid;
pub mod magic_folder;
pub mod nodedir;
mod publish;
mod servermap;
pub mod storage;
pub mod tls;
mod trace;
pub mod tree;
pub mod watch;

pub use error::ClientError;
pub use storage::{ClientOptions, StorageClient, UploadWrite};
