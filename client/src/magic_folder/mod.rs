//! `tahoe magic-folder-push`: makes a magic-folder daemon react to other
//! participants' changes within a second instead of at its next poll.
//!
//! magic-folder learns of remote changes only by listing every participant's
//! personal directory every `poll_interval` (60 s by default). Every such change is a
//! write to a mutable directory, which Swamp servers announce on their change feeds.
//! The bridge follows those directories (through [`crate::watch`], feeds as triggers)
//! and asks the daemon for `poll-remote` of the folder at once; magic-folder itself
//! is unchanged and does the download.
//!
//! # Layout
//! - `config.rs`: the daemon's API endpoint and token, from its config directory.
//! - `api.rs`: the daemon calls: list folders with caps, `poll-remote`.
//! - `folders.rs`: which folders to start and stop following after a new list.
//! - `follow.rs`: following one folder's collective and personal directories.
//! - `participants.rs`: what a change under the collective means (who changed).
//! - `coalesce.rs`: causes into few, prompt poll requests, one in flight per folder.
//! - `status.rs`: the daemon's status WebSocket, a push signal for folders added or left.
//! - `bridge.rs`: the loop that ties them together.
//! - `report.rs`: what the bridge reports (printed by the CLI, text or JSON).

pub mod api;
mod bridge;
pub mod coalesce;
pub mod config;
pub mod folders;
mod follow;
pub mod participants;
pub mod report;
pub mod status;

pub use api::{DaemonApi, DaemonError, FolderInfo};
pub use bridge::{BridgeOptions, run};
pub use report::BridgeEvent;
