//! Checking and verifying an immutable (CHK) file, as Tahoe's `immutable/checker.py`
//! does: every server is asked which shares it holds; a check believes the answer,
//! a verify reads each share whole (its metadata, then its blocks a few MiB at a
//! time) and checks every hash. Only the UEB, once it matches the cap, sizes what is
//! read, so a server cannot make the verifier read more than the file's shares hold.

use std::collections::BTreeSet;

use futures::future::join_all;
use swamp_formats::cap::ChkCap;
use swamp_formats::chk::Decoder;
use swamp_proto::ShareNumber;

use super::results::{CheckResults, CountFields, Counts, Tally, si_string};
use super::{CheckOptions, server_id};
use crate::grid::{Failure, Grid, READ_BYTES, Server, advise_corrupt, fetch_meta};

/// What verifying one share found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    /// Every hash checked out (or, in a check, the server said it holds it).
    Good,
    /// A hash or the layout did not check out.
    Corrupt,
    /// Its server failed while it was read: neither good nor corrupt.
    Unknown,
}

/// A check's results, and where the shares are (what a repair needs).
pub(super) struct ImmutableCheck<'g> {
    /// The results, as reported.
    pub results: CheckResults,
    /// The servers, in the file's permuted order.
    pub servers: Vec<&'g Server>,
    /// Per server: the share numbers it listed (good, corrupt or unknown), or `None`
    /// if it did not answer.
    pub listed: Vec<Option<BTreeSet<usize>>>,
    /// Per server: the share numbers found good on it.
    pub good: Vec<BTreeSet<usize>>,
}

impl Grid {
    /// Checks (or verifies) `cap`'s shares on every server, adding leases if asked.
    pub(super) async fn check_immutable(
        &self,
        cap: &ChkCap,
        options: CheckOptions,
    ) -> ImmutableCheck<'_> {
        let si = cap.storage_index();
        let servers = self.permuted(&si);
        let total = usize::from(cap.total);
        let per_server = join_all(servers.iter().map(|&server| async move {
            let listed = server.client.immutable().list_shares(&si).await.ok()?;
            if options.add_lease && !listed.is_empty() {
                let (renew, cancel) = self.lease_secrets(&si, server);
                // Tahoe ignores a failed add-lease too: the check is what is asked.
                let _ = server
                    .client
                    .general()
                    .add_or_renew_lease(&si, &renew, &cancel)
                    .await;
            }
            let shares: Vec<usize> = listed.iter().map(|n| usize::from(n.get())).collect();
            let verdicts = join_all(shares.iter().map(|&shnum| async move {
                if !options.verify {
                    // A share number the cap does not allow is not one of its shares.
                    return if shnum < total {
                        Verdict::Good
                    } else {
                        Verdict::Unknown
                    };
                }
                let verdict = verify_share(cap, server, shnum).await;
                if verdict == Verdict::Corrupt {
                    advise_corrupt(
                        server,
                        &si,
                        shnum,
                        "share failed verification (swamp checker)",
                    )
                    .await;
                }
                verdict
            }))
            .await;
            Some(shares.into_iter().zip(verdicts).collect::<Vec<_>>())
        }))
        .await;

        let mut tally = Tally::default();
        let mut listed = Vec::with_capacity(servers.len());
        let mut good = Vec::with_capacity(servers.len());
        for (server, found) in servers.iter().zip(per_server) {
            let id = server_id(server);
            let mut mine = BTreeSet::new();
            if let Some(found) = &found {
                tally.responding.insert(id.clone());
                for &(shnum, verdict) in found {
                    match verdict {
                        Verdict::Good => {
                            mine.insert(shnum);
                            tally.good(shnum.to_string(), &id);
                        }
                        Verdict::Corrupt => {
                            tally
                                .corrupt
                                .push((id.clone(), si_string(&si), shnum as u8));
                        }
                        Verdict::Unknown => {}
                    }
                }
            }
            listed.push(found.map(|f| f.into_iter().map(|(n, _)| n).collect()));
            good.push(mine);
        }
        let results = immutable_results(cap, &tally, false);
        ImmutableCheck {
            results,
            servers,
            listed,
            good,
        }
    }
}

/// Tahoe's results for an immutable file from what was found. The summary is its
/// checker's, or with `after_repair` its repairer's (which leaves it empty, and an
/// empty summary reads "healthy" or "not healthy").
pub(super) fn immutable_results(cap: &ChkCap, tally: &Tally, after_repair: bool) -> CheckResults {
    let (k, n) = (usize::from(cap.needed), usize::from(cap.total));
    let good = tally.sharemap.len();
    let healthy = good >= n;
    let recoverable = good >= k;
    let hosts: BTreeSet<&String> = tally.sharemap.values().flatten().collect();
    let summary = match (after_repair, healthy) {
        (true, true) => "healthy".to_owned(),
        (true, false) => "not healthy".to_owned(),
        (false, true) => "Healthy".to_owned(),
        (false, false) => format!("Not Healthy: {good} shares (enc {k}-of-{n})"),
    };
    CheckResults {
        storage_index: si_string(&cap.storage_index()),
        summary: Some(summary),
        results: Counts {
            shares: Some(tally.counts(CountFields {
                good,
                needed: k,
                expected: n,
                hosts: hosts.len(),
                wrong: 0,
                recoverable_versions: usize::from(recoverable),
                unrecoverable_versions: usize::from(!recoverable),
            })),
            healthy,
            recoverable: Some(recoverable),
        },
    }
}

/// Reads share `shnum` whole from `server` and checks every hash in it.
async fn verify_share(cap: &ChkCap, server: &Server, shnum: usize) -> Verdict {
    let meta = match fetch_meta(cap, server, shnum).await {
        Ok(meta) => meta,
        Err(Failure::Corrupt) => return Verdict::Corrupt,
        Err(Failure::Server) => return Verdict::Unknown,
    };
    // The UEB matched the cap's hash, so its sizes are the uploader's.
    let Ok(decoder) = Decoder::new(cap, shnum, &meta) else {
        return Verdict::Corrupt;
    };
    let ueb = decoder.ueb();
    let block_size = (ueb.segment_size / u64::from(cap.needed)).max(1);
    let per_read = (READ_BYTES / block_size).max(1);
    let si = cap.storage_index();
    let n = ShareNumber::new(shnum as u8);
    let mut first = 0;
    while first < ueb.num_segments {
        let last = (first + per_read).min(ueb.num_segments);
        let start = decoder.block_range(first).start;
        let end = decoder.block_range(last - 1).end;
        let Ok(body) = server
            .client
            .immutable()
            .read_share_chunk(&si, n, meta.offsets.data + start, end - start)
            .await
        else {
            return Verdict::Unknown;
        };
        for seg in first..last {
            let range = decoder.block_range(seg);
            let block = body.get((range.start - start) as usize..(range.end - start) as usize);
            if !block.is_some_and(|b| decoder.block_ok(&meta, seg, b)) {
                return Verdict::Corrupt;
            }
        }
        first = last;
    }
    Verdict::Good
}
