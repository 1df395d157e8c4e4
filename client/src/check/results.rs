//! Check results as Tahoe reports them: the shapes of `t=check&output=JSON` (and of
//! `check_and_repair`), so that a program written against Tahoe's web API reads
//! Swamp's results unchanged. Field names, their order and the LIT special cases
//! follow Tahoe 1.20's `web/check_results.py`.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use swamp_proto::StorageIndex;

use super::happiness::servers_of_happiness;

/// A corrupt share: (server id, storage index in base32, share number), as Tahoe's
/// `list-corrupt-shares` lists it.
pub type CorruptShare = (String, String, u8);

/// The result of checking (or verifying) one file or directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckResults {
    /// Base32 storage index ("" for a LIT file, which has none).
    #[serde(rename = "storage-index")]
    pub storage_index: String,
    /// One line: "Healthy", or what is wrong (absent for a LIT file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// The counts.
    pub results: Counts,
}

/// The `results` object of a check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Everything but the two verdicts (absent for a LIT file).
    #[serde(flatten)]
    pub shares: Option<ShareCounts>,
    /// Every one of the N shares (of the best version, for a mutable file) was found.
    pub healthy: bool,
    /// At least k shares (of some version) were found (absent for a LIT file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recoverable: Option<bool>,
}

/// Share and server counts, named as Tahoe names them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ShareCounts {
    /// Servers of happiness over the good shares (a maximum matching of share
    /// numbers to distinct servers).
    pub count_happiness: usize,
    /// Distinct good share numbers (of the best version).
    pub count_shares_good: usize,
    /// k.
    pub count_shares_needed: usize,
    /// N.
    pub count_shares_expected: usize,
    /// Servers holding at least one good share (of the best version).
    pub count_good_share_hosts: usize,
    /// Shares that failed verification.
    pub count_corrupt_shares: usize,
    /// Which.
    pub list_corrupt_shares: Vec<CorruptShare>,
    /// Servers that answered.
    pub servers_responding: Vec<String>,
    /// Good share (a number for immutable files, `seqN-xxxx-shK` for mutable ones)
    /// to the servers holding it, sorted.
    pub sharemap: BTreeMap<String, Vec<String>>,
    /// Shares of other versions than the best (mutable files only).
    pub count_wrong_shares: usize,
    /// Versions with at least k shares.
    pub count_recoverable_versions: usize,
    /// Versions with fewer.
    pub count_unrecoverable_versions: usize,
}

impl CheckResults {
    /// The results Tahoe gives a LIT file: no storage index, healthy.
    pub fn literal() -> Self {
        Self {
            storage_index: String::new(),
            summary: None,
            results: Counts {
                shares: None,
                healthy: true,
                recoverable: None,
            },
        }
    }

    /// Whether every share is there.
    pub fn is_healthy(&self) -> bool {
        self.results.healthy
    }

    /// Whether the file can be read (a LIT file always can).
    pub fn is_recoverable(&self) -> bool {
        self.results.recoverable.unwrap_or(true)
    }

    /// The shares that failed verification.
    pub fn corrupt_shares(&self) -> &[CorruptShare] {
        self.results
            .shares
            .as_ref()
            .map_or(&[], |s| &s.list_corrupt_shares)
    }

    /// The JSON Tahoe's `t=check&output=JSON` gives.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("invariant: plain data serialises")
    }
}

/// The result of checking, and repairing if needed, one file or directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct CheckAndRepairResults {
    /// Base32 storage index ("" for a LIT file).
    pub storage_index: String,
    /// Whether a repair was tried (only for unhealthy files).
    pub repair_attempted: bool,
    /// Whether it made the file healthy (absent for a LIT file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repair_successful: Option<bool>,
    /// The check before (absent for a LIT file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pre_repair_results: Option<CheckResults>,
    /// The state after (the check before, when nothing was repaired).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post_repair_results: Option<CheckResults>,
}

impl CheckAndRepairResults {
    /// What Tahoe gives a LIT file: nothing to repair.
    pub fn literal() -> Self {
        Self {
            storage_index: String::new(),
            repair_attempted: false,
            repair_successful: None,
            pre_repair_results: None,
            post_repair_results: None,
        }
    }

    /// No repair was needed (or possible): after is before.
    pub(crate) fn unrepaired(pre: CheckResults) -> Self {
        Self {
            storage_index: pre.storage_index.clone(),
            repair_attempted: false,
            repair_successful: Some(false),
            post_repair_results: Some(pre.clone()),
            pre_repair_results: Some(pre),
        }
    }

    /// A repair was tried.
    pub(crate) fn repaired(pre: CheckResults, post: CheckResults, successful: bool) -> Self {
        Self {
            storage_index: pre.storage_index.clone(),
            repair_attempted: true,
            repair_successful: Some(successful),
            pre_repair_results: Some(pre),
            post_repair_results: Some(post),
        }
    }

    /// The JSON Tahoe's `t=check&repair=true&output=JSON` gives.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("invariant: plain data serialises")
    }
}

/// What a check found, before it is turned into [`CheckResults`]: good shares and
/// their servers (by id), which servers answered, which shares failed.
#[derive(Default)]
pub(crate) struct Tally {
    /// Good share name to the ids of the servers holding it.
    pub sharemap: BTreeMap<String, BTreeSet<String>>,
    /// Ids of the servers that answered.
    pub responding: BTreeSet<String>,
    /// Shares that failed verification.
    pub corrupt: Vec<CorruptShare>,
}

impl Tally {
    /// Records a good share.
    pub fn good(&mut self, share: String, server: &str) {
        self.sharemap
            .entry(share)
            .or_default()
            .insert(server.to_owned());
    }

    /// Servers of happiness over the good shares.
    pub fn happiness(&self) -> usize {
        servers_of_happiness(&self.sharemap)
    }

    /// The counts Tahoe reports, with the shares and hosts of the best version
    /// given by the caller (they differ from the sharemap's for mutable files).
    pub fn counts(&self, fields: CountFields) -> ShareCounts {
        ShareCounts {
            count_happiness: self.happiness(),
            count_shares_good: fields.good,
            count_shares_needed: fields.needed,
            count_shares_expected: fields.expected,
            count_good_share_hosts: fields.hosts,
            count_corrupt_shares: self.corrupt.len(),
            list_corrupt_shares: self.corrupt.clone(),
            servers_responding: self.responding.iter().cloned().collect(),
            sharemap: self
                .sharemap
                .iter()
                .map(|(share, servers)| (share.clone(), servers.iter().cloned().collect()))
                .collect(),
            count_wrong_shares: fields.wrong,
            count_recoverable_versions: fields.recoverable_versions,
            count_unrecoverable_versions: fields.unrecoverable_versions,
        }
    }
}

/// The numbers [`Tally::counts`] cannot work out alone.
pub(crate) struct CountFields {
    pub good: usize,
    pub needed: usize,
    pub expected: usize,
    pub hosts: usize,
    pub wrong: usize,
    pub recoverable_versions: usize,
    pub unrecoverable_versions: usize,
}

/// Base32 of a storage index, as Tahoe prints it.
pub(crate) fn si_string(si: &StorageIndex) -> String {
    si.to_base32()
}

impl Tally {
    /// What `results` found again (to add a repair's shares to it).
    pub fn from_results(results: &CheckResults) -> Self {
        let mut tally = Self::default();
        if let Some(counts) = &results.results.shares {
            for (share, servers) in &counts.sharemap {
                for server in servers {
                    tally.good(share.clone(), server);
                }
            }
            tally.responding = counts.servers_responding.iter().cloned().collect();
            tally.corrupt = counts.list_corrupt_shares.clone();
        }
        tally
    }
}
