//! Journal compaction, with its writes and syncs outside the hub's lock.
//!
//! Compaction rewrites the journal with only what it must keep (the exact ring, and
//! redo no checkpoint covers yet) and saves the latest-state index. It used to run
//! whole under the hub's lock, so every writer and subscriber waited for its syncs.
//! Now it goes in phases (driven by `hub.rs`, or inline by `Journal::append`):
//!
//! 1. under the lock, [`Journal::start_compaction`] takes a copy of what to keep (shared
//!    handles, no I/O) and notes how far the journal file goes;
//! 2. outside it, [`Compaction::write`] saves the index (temporary file, sync, rename,
//!    directory sync) and writes the new journal to `journal.tmp`, synced;
//! 3. under the lock, [`Journal::catch_up`] checks whether records were appended to the
//!    old file meanwhile. If so, [`Compaction::copy_pending`] copies those bytes into
//!    `journal.tmp` and syncs it, outside the lock, and this step repeats (after three
//!    rounds the last copy, at most what one round let in, is made under the lock).
//!    Once nothing is missing, still under the lock, `journal.tmp` is renamed over the
//!    journal and appends go to it.
//!
//! Why nothing is lost: at the rename, every byte of the old journal is in the new one,
//! and every byte that was synced in the old one (so possibly acknowledged) was synced
//! in the new one. Records appended but not yet synced are synced by the next group
//! commit, which syncs the journal file current *at its start* and, after a rename,
//! the directory too before anyone is answered (`Journal::sync_job`). Until that
//! directory sync, a crash leaves either name: the old file holds every acknowledged
//! record, and so does the new one. Subscribing and publishing stay under the one
//! hub lock throughout: compaction changes no sequence number and publishes nothing.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use super::durable::Syncer;
use super::durable::write_durably;
use super::publish::LatestFile;
use super::records;
use super::records::Entry;
use super::redo::ShareRedo;

/// A compaction in progress.
pub struct Compaction {
    pub(super) dir: PathBuf,
    pub(super) latest: LatestFile,
    pub(super) records: Vec<(Entry, Option<Arc<ShareRedo>>)>,
    /// The old journal file.
    pub(super) source: Arc<File>,
    /// Bytes of `source` that `journal.tmp` holds (re-encoded or copied) and has synced.
    pub(super) copied: u64,
    /// The last sequence number `journal.tmp` holds.
    pub(super) head: u64,
    /// Records in `journal.tmp`.
    pub(super) count: usize,
    /// Bytes of `source` (and the last sequence number there) to copy next.
    pub(super) pending: Option<(u64, u64)>,
    pub(super) tmp: Option<File>,
    pub(super) tmp_len: u64,
    pub(super) syncer: Arc<Syncer>,
}

impl Compaction {
    /// The path of the new journal while it is built.
    pub(super) fn tmp_path(&self) -> PathBuf {
        self.dir.join("journal.tmp")
    }

    /// Phase 2: saves the index and writes the new journal (synced). No lock held.
    ///
    /// # Errors
    /// I/O errors (a failed sync also latches the [`Syncer`]).
    pub fn write(&mut self) -> io::Result<()> {
        write_durably(
            &self.dir.join("latest"),
            &swamp_proto::v1::encode(&self.latest),
            &self.syncer,
        )?;
        let mut buf = Vec::new();
        for (entry, redo) in &self.records {
            records::encode(entry, redo.as_deref(), &mut buf);
        }
        let mut tmp = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(self.tmp_path())?;
        tmp.write_all(&buf)?;
        self.syncer.sync_all(&tmp)?;
        self.tmp_len = buf.len() as u64;
        self.tmp = Some(tmp);
        Ok(())
    }

    /// Phase 3, outside the lock: copies the bytes [`Journal::catch_up`] found missing
    /// and syncs them.
    ///
    /// # Errors
    /// I/O errors (a failed sync also latches the [`Syncer`]).
    pub fn copy_pending(&mut self) -> io::Result<()> {
        let Some((to, head)) = self.pending.take() else {
            return Ok(());
        };
        let tmp = self
            .tmp
            .as_ref()
            .ok_or_else(|| io::Error::other("compaction: journal.tmp not written"))?;
        let mut bytes = vec![0u8; usize::try_from(to - self.copied).map_err(io::Error::other)?];
        self.source.read_exact_at(&mut bytes, self.copied)?;
        tmp.write_all_at(&bytes, self.tmp_len)?;
        self.syncer.sync_all(tmp)?;
        self.tmp_len += bytes.len() as u64;
        self.count += usize::try_from(head - self.head).map_err(io::Error::other)?;
        self.copied = to;
        self.head = head;
        Ok(())
    }

    /// Gives up: removes `journal.tmp` (the old journal stays, whole).
    pub fn discard(self) {
        let _ = fs::remove_file(self.tmp_path());
    }
}
