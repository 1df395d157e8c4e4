//! Slot changes that were logged ahead but could not be written in place (a full
//! disk, an I/O error), kept until they are.
//!
//! Why: once a read-test-write's redo is synced in the journal, the change must reach
//! the share file; a failed in-place write may have left the file torn. The journal
//! alone would repair it at the next start (the change is never reported applied, so
//! no checkpoint passes it), but until then readers would see the torn file and later
//! writes would build on it. So the redo also waits here, and every operation on the
//! slot applies it again first (`Storage::repair`): reads and writes of the slot fail
//! with the same error until it goes through, and none ever sees a torn share.
//! Applying a redo is idempotent, so trying again is always safe.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use swamp_proto::StorageIndex;

use super::redo::ShareRedo;

/// One read-test-write's logged changes: its journal ticket and its share redos.
type Logged = (u64, Vec<Arc<ShareRedo>>);

/// Logged changes waiting to be applied, per storage index, in log order, each with
/// the journal ticket to report once applied.
#[derive(Default)]
pub(crate) struct Repairs {
    waiting: Mutex<BTreeMap<StorageIndex, Vec<Logged>>>,
    /// Storage indexes with something waiting: lets the hot read path skip the lock.
    count: AtomicUsize,
}

impl Repairs {
    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<StorageIndex, Vec<Logged>>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a change whose in-place write failed.
    pub(crate) fn add(&self, si: StorageIndex, ticket: u64, redos: Vec<Arc<ShareRedo>>) {
        let mut map = self.map();
        let list = map.entry(si).or_default();
        if list.is_empty() {
            self.count.fetch_add(1, Ordering::SeqCst);
        }
        list.push((ticket, redos));
    }

    /// Whether anything waits for `si` (cheap when nothing waits anywhere).
    pub(crate) fn waiting(&self, si: &StorageIndex) -> bool {
        self.count.load(Ordering::SeqCst) > 0 && self.map().contains_key(si)
    }

    /// Takes what waits for `si`, to apply it.
    pub(crate) fn take(&self, si: &StorageIndex) -> Vec<Logged> {
        let mut map = self.map();
        match map.remove(si) {
            Some(list) => {
                self.count.fetch_sub(1, Ordering::SeqCst);
                list
            }
            None => Vec::new(),
        }
    }

    /// Puts back what could not be applied, ahead of anything added since.
    pub(crate) fn put_back(&self, si: StorageIndex, mut list: Vec<Logged>) {
        if list.is_empty() {
            return;
        }
        let mut map = self.map();
        let entry = map.entry(si).or_default();
        if entry.is_empty() {
            self.count.fetch_add(1, Ordering::SeqCst);
        }
        list.append(entry);
        *entry = list;
    }
}
