//! Checking (and repairing) every file and directory under a directory, as Tahoe's
//! deep-check does: the tree is walked from the root in Tahoe's order
//! ([`Grid::walk_tree`]), each object checked once (a directory linked twice, or into
//! itself, is visited once), directories read after they are checked (and
//! repaired), and the results kept per path with Tahoe's counters. LIT files are
//! walked but, as in Tahoe, not counted. [`Grid::check_node`] is the one step, for
//! walkers that stream each result as it comes.

use std::ops::ControlFlow;

use serde_json::{Value, json};
use swamp_formats::cap::Cap;

use super::results::{CheckAndRepairResults, CheckResults, CorruptShare};
use super::{CheckOptions, si_string_of};
use crate::grid::{Grid, GridError};
use crate::tree::{DeepStats, TreeNode, Walker};

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
        let mut line = TreeNode {
            path: self.path.clone(),
            cap: self.cap.clone(),
        }
        .to_manifest_json();
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
    /// Tahoe's deep-stats of the tree.
    pub stats: DeepStats,
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
    /// and Tahoe's deep-stats (`stats`).
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
                "stats": self.stats.to_json(),
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
            "stats": self.stats.to_json(),
        })
    }
}

impl Grid {
    /// Checks (with `repair`, checks and repairs) one object of a tree.
    ///
    /// # Errors
    /// As [`Grid::check`].
    pub async fn check_node(
        &self,
        node: TreeNode,
        options: CheckOptions,
        repair: bool,
    ) -> Result<DeepNode, GridError> {
        let (check, repair) = if repair {
            let r = self.check_and_repair(&node.cap, options).await?;
            let pre = r
                .pre_repair_results
                .clone()
                .unwrap_or_else(CheckResults::literal);
            (pre, Some(r))
        } else {
            (self.check(&node.cap, options).await?, None)
        };
        Ok(DeepNode {
            path: node.path,
            cap: node.cap,
            check,
            repair,
        })
    }

    /// Checks (with `repair`, checks and repairs) `root` and everything under it,
    /// in Tahoe's order ([`Grid::walk_tree`]). Objects of a kind this client cannot
    /// read are skipped.
    ///
    /// # Errors
    /// As [`Grid::check`], for the root only; below it, what cannot be checked or
    /// read is recorded and skipped. [`GridError::TreeTooLarge`] as [`Grid::walk_tree`].
    pub async fn deep_check(
        &self,
        root: &Cap,
        options: CheckOptions,
        repair: bool,
    ) -> Result<DeepCheckResults, GridError> {
        let mut collector = Collector {
            grid: self,
            options,
            repair,
            nodes: Vec::new(),
            unreadable: Vec::new(),
            root_error: None,
        };
        let end = self.walk_tree(root, &mut collector).await?;
        if let Some(e) = collector.root_error {
            return Err(e);
        }
        Ok(DeepCheckResults {
            root_storage_index: si_string_of(root),
            nodes: collector.nodes,
            unreadable: collector.unreadable,
            stats: end.stats,
            repair,
        })
    }
}

/// A walk that checks each object and keeps the results.
struct Collector<'g> {
    grid: &'g Grid,
    options: CheckOptions,
    repair: bool,
    nodes: Vec<DeepNode>,
    unreadable: Vec<(Vec<String>, String)>,
    root_error: Option<GridError>,
}

impl Walker for Collector<'_> {
    async fn visit(&mut self, node: TreeNode) -> ControlFlow<()> {
        if matches!(node.cap, Cap::Unknown(_)) {
            return ControlFlow::Continue(());
        }
        let path = node.path.clone();
        match self.grid.check_node(node, self.options, self.repair).await {
            Ok(checked) => self.nodes.push(checked),
            Err(e) if path.is_empty() => {
                self.root_error = Some(e);
                return ControlFlow::Break(());
            }
            Err(e) => self.unreadable.push((path, e.to_string())),
        }
        ControlFlow::Continue(())
    }

    fn unreadable(&mut self, path: &[String], error: &GridError) -> ControlFlow<()> {
        self.unreadable.push((path.to_vec(), error.to_string()));
        ControlFlow::Continue(())
    }
}
