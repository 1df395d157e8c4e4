//! The write-ahead log of the storage: every committed change, numbered and synced
//! before it is acknowledged. It makes read-test-write durable (a slot's change is
//! logged with its redo, synced, then written in place), and it is also the change
//! feeds' history on disk: the feeds get each entry once it is synced, through the one
//! hook [`Publisher`], and keep the history in memory (`crate::feeds`).
//!
//! [`Storage::open`](crate::backend::Storage::open) opens it ([`Wal::open`]) and
//! replays the redo logged after the last checkpoint before anything else; the
//! storage owns it.
//!
//! Files, under `<storage>/swamp-feed/` (names and formats unchanged since the log
//! lived in the feeds):
//! - `epoch`: 16 hex digits, made once; only a lost, reset or damaged journal changes
//!   it;
//! - `journal`: records `length | 4-byte SHA-256 prefix | CBOR (seq, time, change,
//!   redo?)`, appended (into zero-filled space allocated ahead, `appender.rs`) and
//!   synced before the write they record is acknowledged; a torn tail (crash
//!   mid-append) is cut off at start, damage in the middle is a loud recovery (see
//!   [`log::Log::open`]); format in `records.rs`;
//! - `latest`: the feeds' latest-state index as of a sequence number, written when the
//!   journal is compacted (then the journal keeps only the feeds' exact history and
//!   the redo no checkpoint covers; `compact.rs`, `publish.rs`);
//! - `checkpoint`: the sequence number up to which every logged redo is durable in the
//!   share files (`records.rs`, `redo.rs`); redo after it is replayed at start.
//!
//! Every sync goes through one [`durable::Syncer`]: after a failed one, nothing more
//! is written (`durable.rs`).
//!
//! # Layout
//! `commit.rs` ([`Wal`]: group commit, publishing, logged slot writes, checkpoints,
//! compaction runs), `group.rs` (group commit: who syncs, who waits, threads and
//! tasks alike), `log.rs` (the journal file's bookkeeping and recovery at open),
//! `records.rs` (record format, checkpoint file), `appender.rs` (appends into space
//! allocated ahead), `durable.rs` (the sync latch), `compact.rs` (compaction phases),
//! `redo.rs` (redo records and applying them to share files), `repairs.rs` (logged
//! writes whose in-place write failed), `change.rs` (what a record says changed),
//! `publish.rs` (the hook to the feeds, and the `latest` file's format).

pub mod appender;
pub mod change;
pub mod commit;
pub mod compact;
pub mod durable;
mod group;
#[cfg(test)]
mod inline_tests;
pub mod log;
#[cfg(test)]
pub(crate) mod log_tests;
pub mod publish;
pub mod records;
pub mod redo;
mod repairs;
#[cfg(test)]
mod wal_tests;

pub use commit::Wal;
pub use group::GroupMetrics;
#[cfg(test)]
pub use publish::NoFeeds;
pub use publish::{LatestFile, Publisher, Saved};
