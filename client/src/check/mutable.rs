//! Checking, verifying and repairing a mutable (SDMF or MDMF) file, as Tahoe's
//! `mutable/checker.py` and `mutable/repairer.py` do.
//!
//! Every share is read and sorted by version (sequence number and root hash). A
//! check trusts a share whose signed prefix verifies; a verify also needs its blocks
//! and hash chain to, and lists those that do not as corrupt. The file is healthy
//! when exactly one version is recoverable, no version is unrecoverable, and the
//! best version has all N shares. A repair publishes the best version's contents
//! again, as the next sequence number over every share found (Tahoe's repairer
//! does the same): it needs a write cap.

use std::collections::{BTreeMap, BTreeSet};

use swamp_formats::cap::MutableCap;
use swamp_formats::mutable::MutableShare;
use swamp_proto::base32;

use super::results::{CheckAndRepairResults, CheckResults, CountFields, Counts, Tally, si_string};
use super::{CheckOptions, server_id};
use crate::grid::Grid;
use crate::servermap::ShareState;

/// A check's results and whether Tahoe would repair.
pub(super) struct MutableCheck {
    pub results: CheckResults,
    pub need_repair: bool,
}

/// One version's shares: share number to the ids of the servers holding it.
#[derive(Default)]
struct VersionShares {
    needed: usize,
    total: usize,
    shares: BTreeMap<usize, BTreeSet<String>>,
}

impl VersionShares {
    fn recoverable(&self) -> bool {
        self.shares.len() >= self.needed
    }

    /// Shares found, counting each copy.
    fn copies(&self) -> usize {
        self.shares.values().map(BTreeSet::len).sum()
    }
}

/// How Tahoe names a version: `seq` and the sequence number, then the first four
/// base32 characters of the root hash.
fn version_name(seqnum: u64, root_hash: &[u8; 32]) -> String {
    format!("seq{seqnum}-{}", &base32::encode(root_hash)[..4])
}

/// A server's short name, as Tahoe prints it in summaries.
fn short_name(id: &str) -> &str {
    let id = id.strip_prefix("v0-").unwrap_or(id);
    id.get(..8).unwrap_or(id)
}

impl Grid {
    /// Checks (or verifies) a mutable file's shares on every server.
    pub(super) async fn check_mutable(
        &self,
        cap: &MutableCap,
        options: CheckOptions,
    ) -> MutableCheck {
        let si = cap.storage_index();
        // Only a verify reports corrupt shares (and advises their servers).
        let map = self.map_mutable_with(cap, options.verify).await;
        if options.add_lease {
            let holders: BTreeSet<usize> = map.shares.iter().map(|f| f.server).collect();
            futures::future::join_all(holders.into_iter().map(|i| {
                let server = map.servers[i];
                let (renew, cancel) = self.lease_secrets(&si, server);
                async move {
                    // A failed add-lease does not fail the check (as in Tahoe).
                    let _ = server
                        .client
                        .general()
                        .add_or_renew_lease(&si, &renew, &cancel)
                        .await;
                }
            }))
            .await;
        }
        let mut tally = Tally::default();
        for (server, answered) in map.servers.iter().zip(&map.answered) {
            if *answered {
                tally.responding.insert(server_id(server));
            }
        }
        let mut versions: BTreeMap<(u64, [u8; 32]), VersionShares> = BTreeMap::new();
        for found in &map.shares {
            let id = server_id(map.servers[found.server]);
            let shnum = usize::from(found.shnum.get());
            let counted: Option<&MutableShare> = match &found.state {
                ShareState::Good(share) => Some(&**share),
                ShareState::Bad { signed, .. } => {
                    if options.verify {
                        tally
                            .corrupt
                            .push((id.clone(), si_string(&si), found.shnum.get()));
                        None
                    } else {
                        signed.as_deref()
                    }
                }
            };
            let Some(share) = counted else { continue };
            let version = versions.entry((share.seqnum, share.root_hash)).or_default();
            version.needed = usize::from(share.needed);
            version.total = usize::from(share.total);
            version.shares.entry(shnum).or_default().insert(id.clone());
            tally.good(
                format!("{}-sh{shnum}", version_name(share.seqnum, &share.root_hash)),
                &id,
            );
        }
        let recoverable: Vec<&(u64, [u8; 32])> = versions
            .iter()
            .filter(|(_, v)| v.recoverable())
            .map(|(k, _)| k)
            .collect();
        let unrecoverable = versions.len() - recoverable.len();
        let mut summary = Vec::new();
        if unrecoverable > 0 {
            summary.push("some versions are unrecoverable".to_owned());
        }
        if recoverable.is_empty() {
            summary.push("no versions are recoverable".to_owned());
        }
        if recoverable.len() > 1 {
            summary.push("multiple versions are recoverable".to_owned());
        }
        let mut healthy = summary.is_empty();
        // The best version: the newest recoverable one, else an unrecoverable one.
        let best = recoverable
            .last()
            .copied()
            .or_else(|| versions.keys().next());
        let fields = match best {
            Some(key) => {
                let v = &versions[key];
                let hosts: BTreeSet<&String> = v.shares.values().flatten().collect();
                if v.recoverable() && v.shares.len() < v.total {
                    healthy = false;
                    summary.push(format!(
                        "{} shares (enc {}-of-{})",
                        v.shares.len(),
                        v.needed,
                        v.total
                    ));
                }
                CountFields {
                    good: v.shares.len(),
                    needed: v.needed,
                    expected: v.total,
                    hosts: hosts.len(),
                    wrong: versions
                        .iter()
                        .filter(|(k, _)| *k != key)
                        .map(|(_, v)| v.copies())
                        .sum(),
                    recoverable_versions: recoverable.len(),
                    unrecoverable_versions: unrecoverable,
                }
            }
            // Tahoe's defaults when nothing is found.
            None => CountFields {
                good: 0,
                needed: 3,
                expected: 10,
                hosts: 0,
                wrong: 0,
                recoverable_versions: 0,
                unrecoverable_versions: 0,
            },
        };
        if !tally.corrupt.is_empty() {
            summary.push("Corrupt Shares:".to_owned());
            summary.extend(
                tally
                    .corrupt
                    .iter()
                    .map(|(server, _, shnum)| format!("{}-sh{shnum}", short_name(server))),
            );
        }
        let need_repair = !healthy || !tally.corrupt.is_empty();
        let summary = if healthy {
            "Healthy".to_owned()
        } else {
            format!("Unhealthy: {}", summary.join(" "))
        };
        let results = CheckResults {
            storage_index: si_string(&si),
            summary: Some(summary),
            results: Counts {
                shares: Some(tally.counts(fields)),
                healthy,
                recoverable: Some(!recoverable.is_empty()),
            },
        };
        MutableCheck {
            results,
            need_repair,
        }
    }

    /// Checks a mutable file and, if it needs it and the cap can write, publishes its
    /// best version again; the results after are a new check.
    pub(super) async fn repair_mutable(
        &self,
        cap: &MutableCap,
        options: CheckOptions,
    ) -> CheckAndRepairResults {
        let check = self.check_mutable(cap, options).await;
        if !check.need_repair || cap.writekey().is_none() {
            return CheckAndRepairResults::unrepaired(check.results);
        }
        let repaired = match self.read_mutable(cap).await {
            Ok(current) => self
                .overwrite_mutable(
                    cap,
                    &current.data,
                    Some((current.seqnum, current.root_hash)),
                )
                .await
                .map(drop),
            Err(e) => Err(e),
        };
        if let Err(e) = &repaired {
            tracing::warn!(si = %check.results.storage_index, "repair failed: {e}");
        }
        let post = self
            .check_mutable(
                cap,
                CheckOptions {
                    add_lease: false,
                    ..options
                },
            )
            .await;
        CheckAndRepairResults::repaired(check.results, post.results, repaired.is_ok())
    }
}
