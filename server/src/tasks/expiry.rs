//! The lease expiry sweep: walks the 1,024 two-character prefix directories one at a
//! time on the blocking pool, pausing after each that held storage indexes, so
//! requests never wait on it for more than one storage index's lock (an empty or
//! missing prefix directory takes no lock, so no pause). A full pass starts again an
//! hour after the last.
//!
//! Its progress (prefixes done in the pass, passes, shares examined and deleted) goes
//! to [`SweepProgress`], which the operator listener reads for `/metrics` and
//! `/status`.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::backend::Storage;
use crate::backend::expiry::{ExpiryPolicy, SweepProgress, SweepReport};
use crate::live::Live;

const PAUSE_BETWEEN_PREFIXES: Duration = Duration::from_millis(20);
const PAUSE_BETWEEN_PASSES: Duration = Duration::from_secs(3600);

/// Prefix directories in a pass: every two-character base32 prefix.
pub const PREFIX_COUNT: u64 = 1024;

/// Every two-character base32 prefix.
fn prefixes() -> impl Iterator<Item = String> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    ALPHABET.iter().flat_map(|&a| {
        ALPHABET
            .iter()
            .map(move |&b| String::from_utf8(vec![a, b]).expect("invariant: ASCII"))
    })
}

/// Runs passes until cancelled, while a policy is set: each prefix is swept with the
/// policy in force when it starts (a reload may change it, or turn expiry off or on).
pub async fn run(
    storage: Arc<Storage>,
    policy: Live<Option<ExpiryPolicy>>,
    shutdown: CancellationToken,
) {
    let mut changes = policy.changes();
    loop {
        if policy.get().is_none() {
            tokio::select! {
                () = shutdown.cancelled() => return,
                changed = changes.changed() => if changed.is_err() { return },
            }
            continue;
        }
        let progress: &SweepProgress = storage.expiry_progress();
        progress.pass_started();
        let mut total = SweepReport::default();
        let mut completed = true;
        for prefix in prefixes() {
            let Some(policy) = Option::clone(&policy.get()) else {
                completed = false;
                break;
            };
            let result = super::on_blocking_pool(&storage, move |s| {
                let mut report = SweepReport::default();
                let buckets = s.buckets_in_prefix(&prefix)?;
                for si in &buckets {
                    s.expire_bucket(si, &policy, &mut report)?;
                }
                Ok((report, !buckets.is_empty()))
            })
            .await;
            let mut worked = true;
            match result {
                Ok((r, any)) => {
                    progress.prefix_done(&r);
                    total.examined += r.examined;
                    total.deleted += r.deleted;
                    worked = any;
                }
                Err(e) => {
                    progress.prefix_done(&SweepReport::default());
                    tracing::error!(error = %e, "lease expiry failed for a prefix; continuing");
                }
            }
            if shutdown.is_cancelled() {
                progress.pass_ended(None);
                return;
            }
            if worked {
                tokio::select! {
                    () = shutdown.cancelled() => { progress.pass_ended(None); return }
                    () = tokio::time::sleep(PAUSE_BETWEEN_PREFIXES) => {}
                }
            }
        }
        if completed {
            progress.pass_ended(Some(storage.now()));
            tracing::info!(
                examined = total.examined,
                deleted = total.deleted,
                "lease expiry pass done"
            );
        } else {
            progress.pass_ended(None);
            tracing::info!(
                examined = total.examined,
                deleted = total.deleted,
                "lease expiry turned off during a pass; pass stopped"
            );
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            // A new policy starts a new pass at once.
            changed = changes.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(PAUSE_BETWEEN_PASSES) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pass_visits_every_prefix_once() {
        let all: std::collections::BTreeSet<String> = prefixes().collect();
        assert_eq!(all.len() as u64, PREFIX_COUNT);
        assert!(all.contains("aa") && all.contains("77"));
    }
}
