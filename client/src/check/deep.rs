//! Checking (and repairing) every file and directory under a directory, as Tahoe's
//! deep-check does: the tree is walked from the root, each object checked once
//! (a directory linked twice, or into itself, is visited once), directories read
//! after they are checked (and repaired), and the results kept per path with
//! Tahoe's counters. LIT files are walked but, as in Tahoe, not counted.

use std::collections::{BTreeSet, VecDeque};

use serde_json::{Value, json};
use swamp_formats::cap::Cap;

use super::results::{CheckAndRepairResults, CheckResults, CorruptShare};
use super::{CheckOptions, si_string_of};
use crate::grid::{Grid, GridError};

/// One object of the tree.
#[derive(Clone, Debug)]
pub struct DeepNode {
    /// Names from the root (empty for the root).
    pub path: Vec<String>,
    /// Its cap as linked.
    pub cap: Cap,
    /// The check (before any repair).
    pub check: CheckResults,
    /// The repair, when one was asked for.
    pub repair: Option<CheckAndRepairResults>,
}

impl DeepNode {
    /// The state after repair (the check, without one).
    pub fn post(&self) -> &CheckResults {
        self.repair
            .as_ref()
            .and_then(|r| r.post_repair_results.as_ref())
            .unwrap_or(&self.check)
    }

    /// This object's line of Tahoe's `t=stream-deep-check` (one JSON object per
    /// line, in the order visited).
    pub fn to_stream_json(&self) -> Value {
        // Tahoe repairs an immutable file from its verify cap and a mutable one
        // from its write cap; read-only mutables and immutable directories have none.
        let repair_cap = match &self.cap {
            Cap::Chk(_) => self.cap.verify_cap(),
            cap if cap.is_writable() => Some(cap.clone()),
            _ => None,
        };
        let text = |cap: Option<Cap>| cap.map(|c| c.to_string()).unwrap_or_default();
        let mut line = json!({
            "path": self.path,
            "cap": self.cap.to_string(),
            "type": if self.cap.is_dir() { "directory" } else { "file" },
            "verifycap": text(self.cap.verify_cap()),
            "repaircap": text(repair_cap),
            "storage-index": si_string_of(&self.cap),
        });
        match &self.repair {
            Some(repair) => line["check-and-repair-results"] = repair.to_json(),
            None => line["check-results"] = self.check.to_json(),
        }
        line
    }

    fn counted(&self) -> bool {
        !self.check.storage_index.is_empty()
    }
}

/// The results of a deep check.
#[derive(Clone, Debug)]
pub struct DeepCheckResults {
    /// The root's storage index in base32.
    pub root_storage_index: String,
    /// Every object, in the order visited (the root first).
    pub nodes: Vec<DeepNode>,
    /// Directories that could not be read (their children were not visited), with
    /// why.
    pub unreadable: Vec<(Vec<String>, String)>,
    repair: bool,
}

impl DeepCheckResults {
    /// Objects checked (LIT files are not).
    pub fn count_objects_checked(&self) -> usize {
        self.nodes.iter().filter(|n| n.counted()).count()
    }

    /// Objects found healthy (before repair).
    pub fn count_objects_healthy(&self) -> usize {
        self.count(|n| n.check.is_healthy())
    }

    /// Objects found healthy after repair.
    pub fn count_objects_healthy_post_repair(&self) -> usize {
        self.count(|n| n.post().is_healthy())
    }

    fn count(&self, what: impl Fn(&DeepNode) -> bool) -> usize {
        self.nodes.iter().filter(|n| n.counted() && what(n)).count()
    }

    fn corrupt(&self, post: bool) -> Vec<CorruptShare> {
        self.nodes
            .iter()
            .flat_map(|n| {
                if post {
                    n.post().corrupt_shares()
                } else {
                    n.check.corrupt_shares()
                }
            })
            .cloned()
            .collect()
    }

    /// The JSON of Tahoe's `t=start-deep-check` operation once finished (with
    /// `repair=true`, its check-and-repair form), field for field, except `stats`
    /// (Tahoe's deep-stats), which is left out.
    pub fn to_json(&self) -> Value {
        let checked = self.count_objects_checked();
        let healthy = self.count_objects_healthy();
        let unhealthy_files: Vec<Value> = self
            .nodes
            .iter()
            .filter(|n| n.counted() && !n.check.is_healthy())
            .map(|n| json!([n.path, n.check.to_json()]))
            .collect();
        let corrupt = self.corrupt(false);
        if !self.repair {
            return json!({
                "finished": true,
                "root-storage-index": self.root_storage_index,
                "count-objects-checked": checked,
                "count-objects-healthy": healthy,
                "count-objects-unhealthy": checked - healthy,
                "count-corrupt-shares": corrupt.len(),
                "list-corrupt-shares": corrupt,
                "list-unhealthy-files": unhealthy_files,
            });
        }
        let healthy_post = self.count_objects_healthy_post_repair();
        let attempted = self.count(|n| n.repair.as_ref().is_some_and(|r| r.repair_attempted));
        let successful = self.count(|n| {
            n.repair
                .as_ref()
                .is_some_and(|r| r.repair_attempted && r.repair_successful == Some(true))
        });
        let remaining = self.corrupt(true);
        json!({
            "finished": true,
            "root-storage-index": self.root_storage_index,
            "count-objects-checked": checked,
            "count-objects-healthy-pre-repair": healthy,
            "count-objects-unhealthy-pre-repair": checked - healthy,
            "count-objects-healthy-post-repair": healthy_post,
            "count-objects-unhealthy-post-repair": checked - healthy_post,
            "count-repairs-attempted": attempted,
            "count-repairs-successful": successful,
            "count-repairs-unsuccessful": attempted - successful,
            "count-corrupt-shares-pre-repair": corrupt.len(),
            // Tahoe 1.20 reports the count before repair here (its web page reads
            // the wrong counter); the list after repair is right.
            "count-corrupt-shares-post-repair": corrupt.len(),
            "list-corrupt-shares": corrupt,
            "list-remaining-corrupt-shares": remaining,
            "list-unhealthy-files": unhealthy_files,
        })
    }
}

impl Grid {
    /// Checks (with `repair`, checks and repairs) `root` and everything under it.
    ///
    /// # Errors
    /// As [`Grid::check`], for the root only; below it, what cannot be checked or
    /// read is recorded and skipped.
    pub async fn deep_check(
        &self,
        root: &Cap,
        options: CheckOptions,
        repair: bool,
    ) -> Result<DeepCheckResults, GridError> {
        let mut results = DeepCheckResults {
            root_storage_index: si_string_of(root),
            nodes: Vec::new(),
            unreadable: Vec::new(),
            repair,
        };
        let mut seen = BTreeSet::new();
        let mut queue: VecDeque<(Vec<String>, Cap)> = VecDeque::from([(Vec::new(), root.clone())]);
        while let Some((path, cap)) = queue.pop_front() {
            // LIT caps have no storage index: each is its own object.
            if let Some(si) = cap.storage_index()
                && !seen.insert(si)
            {
                continue;
            }
            let checked = if repair {
                self.check_and_repair(&cap, options).await.map(|r| {
                    let pre = r
                        .pre_repair_results
                        .clone()
                        .unwrap_or_else(CheckResults::literal);
                    (pre, Some(r))
                })
            } else {
                self.check(&cap, options).await.map(|c| (c, None))
            };
            let (check, repaired) = match checked {
                Ok(c) => c,
                Err(e) if !path.is_empty() => {
                    results.unreadable.push((path, e.to_string()));
                    continue;
                }
                Err(e) => return Err(e),
            };
            results.nodes.push(DeepNode {
                path: path.clone(),
                cap: cap.clone(),
                check,
                repair: repaired,
            });
            if !cap.is_dir() {
                continue;
            }
            match self.read_dir(&cap).await {
                Ok(listing) => {
                    for entry in listing.entries {
                        match entry.cap() {
                            Ok(Cap::Unknown(_)) | Err(_) => {}
                            Ok(child) => {
                                let mut child_path = path.clone();
                                child_path.push(entry.name.clone());
                                queue.push_back((child_path, child));
                            }
                        }
                    }
                }
                Err(e) => results.unreadable.push((path, e.to_string())),
            }
        }
        Ok(results)
    }
}
