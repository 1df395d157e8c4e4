//! Repairing an immutable (CHK) file, as Tahoe's repairer does: the file is
//! downloaded (every block checked), encoded again with its own key and the
//! parameters its UEB records, which gives the very shares it was uploaded as (the
//! new cap must equal the old one, so a repair can never put a different file
//! back), and each missing share number is uploaded to a server that answered and
//! does not hold it, those holding the fewest good shares first (then in permuted
//! order), which restores happiness as far as the grid allows.
//!
//! The file and all N of its shares are held in memory while it is encoded (Tahoe's
//! repairer streams; doing the same here is left to do), so a file over
//! [`MAX_REPAIR_SIZE`] is checked but not repaired (`GridError::TooLargeToRepair`);
//! each share is written a few MiB per request.

use std::collections::BTreeSet;

use bytes::Bytes;
use swamp_formats::cap::ChkCap;
use swamp_formats::chk::{self, Params};
use swamp_proto::{DecodeError, ShareNumber};

use super::immutable::{ImmutableCheck, immutable_results};
use super::results::{CheckAndRepairResults, Tally};
use super::{CheckOptions, server_id};
use crate::grid::{Grid, GridError, fetch_meta, new_upload_secret};

/// The largest CHK file repaired: the file, then its N shares (N/k times its size),
/// are in memory at once.
pub const MAX_REPAIR_SIZE: u64 = 1 << 30;

/// Bytes per write of a repaired share.
const WRITE_BYTES: usize = 2 * 1024 * 1024;

impl Grid {
    /// Checks `cap` and, if it is not healthy, repairs it. The results after a repair
    /// are Tahoe's: what the check found plus the shares uploaded.
    pub(super) async fn repair_immutable(
        &self,
        cap: &ChkCap,
        options: CheckOptions,
    ) -> CheckAndRepairResults {
        let check = self.check_immutable(cap, options).await;
        let pre = check.results.clone();
        if pre.is_healthy() {
            return CheckAndRepairResults::unrepaired(pre);
        }
        let placed = match self.put_back(cap, &check).await {
            Ok(placed) => placed,
            Err(e) => {
                tracing::warn!(si = %pre.storage_index, "repair failed: {e}");
                Vec::new()
            }
        };
        let mut tally = Tally::from_results(&pre);
        for (server, shnum) in placed {
            let id = server_id(check.servers[server]);
            tally.responding.insert(id.clone());
            tally.good(shnum.to_string(), &id);
        }
        let post = immutable_results(cap, &tally, true);
        let successful = post.is_healthy();
        CheckAndRepairResults::repaired(pre, post, successful)
    }

    /// Re-creates the share numbers no server holds a good copy of and uploads
    /// them; returns (server index in permuted order, share number) of each.
    async fn put_back(
        &self,
        cap: &ChkCap,
        check: &ImmutableCheck<'_>,
    ) -> Result<Vec<(usize, usize)>, GridError> {
        let si = cap.storage_index();
        let have: BTreeSet<usize> = check.good.iter().flatten().copied().collect();
        let missing: Vec<usize> = (0..usize::from(cap.total))
            .filter(|n| !have.contains(n))
            .collect();
        let not_enough = || GridError::NotEnoughShares {
            si,
            found: have.len(),
            needed: usize::from(cap.needed),
            corrupt: check.results.corrupt_shares().len(),
        };
        if have.len() < usize::from(cap.needed) {
            return Err(not_enough());
        }
        if cap.size > MAX_REPAIR_SIZE {
            return Err(GridError::TooLargeToRepair {
                size: cap.size,
                max: MAX_REPAIR_SIZE,
            });
        }
        // The UEB of a good share (checked against the cap) says how it was encoded.
        let mut ueb = None;
        for (server, good) in check.servers.iter().zip(&check.good) {
            for &shnum in good {
                if let Ok(meta) = fetch_meta(cap, server, shnum).await {
                    ueb = chk::check_ueb(cap, &meta.ueb).ok();
                }
                if ueb.is_some() {
                    break;
                }
            }
            if ueb.is_some() {
                break;
            }
        }
        let ueb = ueb.ok_or_else(not_enough)?;
        let plaintext = self.download(cap).await?;
        let params = Params {
            needed: cap.needed,
            total: cap.total,
            max_segment_size: ueb.segment_size,
        };
        let mut encoded = chk::encode(&plaintext, cap.key, &params)?;
        drop(plaintext);
        if encoded.cap != *cap {
            return Err(GridError::Format(DecodeError::Invalid(
                "encoding the file again does not give its cap: it cannot be repaired".into(),
            )));
        }
        // Good shares per server, the repaired ones added as they land.
        let mut load: Vec<usize> = check.good.iter().map(BTreeSet::len).collect();
        let mut placed = Vec::new();
        let mut last_error = None;
        for shnum in missing {
            let share = std::mem::take(&mut encoded.shares[shnum]);
            let mut candidates: Vec<usize> = (0..check.servers.len())
                .filter(|&i| {
                    check.listed[i]
                        .as_ref()
                        .is_some_and(|l| !l.contains(&shnum))
                })
                .collect();
            candidates.sort_by_key(|&i| (load[i], i));
            for server in candidates {
                match self.upload_share(cap, check, server, shnum, &share).await {
                    Ok(true) => {
                        load[server] += 1;
                        placed.push((server, shnum));
                        break;
                    }
                    Ok(false) => {}
                    Err(e) => last_error = Some(e),
                }
            }
        }
        if placed.is_empty()
            && let Some(e) = last_error
        {
            return Err(e);
        }
        Ok(placed)
    }

    /// Uploads one whole share to `check.servers[server]`; `Ok(false)` if the server
    /// would not take it.
    async fn upload_share(
        &self,
        cap: &ChkCap,
        check: &ImmutableCheck<'_>,
        server: usize,
        shnum: usize,
        share: &[u8],
    ) -> Result<bool, GridError> {
        let si = cap.storage_index();
        let target = check.servers[server];
        let failed = |source| GridError::Server {
            server: format!("{}:{}", target.nurl.host, target.nurl.port),
            source,
        };
        let (renew, cancel) = self.lease_secrets(&si, target);
        let secret = new_upload_secret();
        let n = ShareNumber::new(shnum as u8);
        let immutable = target.client.immutable();
        let allocation = immutable
            .allocate(&si, &secret, &renew, &cancel, [n], share.len() as u64)
            .await
            .map_err(failed)?;
        if !allocation.allocated.0.contains(&n) {
            return Ok(false);
        }
        let mut offset = 0;
        for chunk in share.chunks(WRITE_BYTES) {
            let written = immutable
                .write_share_chunk(&si, n, &secret, offset, Bytes::copy_from_slice(chunk))
                .await;
            if let Err(source) = written {
                let _ = immutable.abort(&si, n, &secret).await;
                return Err(failed(source));
            }
            offset += chunk.len() as u64;
        }
        Ok(true)
    }
}
