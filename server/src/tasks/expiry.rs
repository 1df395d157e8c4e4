//! The lease expiry sweep: walks the 1,024 two-character prefix directories one at a
//! time on the blocking pool, pausing between them, so requests never wait on it for
//! more than one storage index's lock. A full pass starts again an hour after the last.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::backend::Storage;
use crate::backend::expiry::{ExpiryPolicy, SweepReport};
use crate::live::Live;

const PAUSE_BETWEEN_PREFIXES: Duration = Duration::from_millis(20);
const PAUSE_BETWEEN_PASSES: Duration = Duration::from_secs(3600);

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
        let mut total = SweepReport::default();
        for prefix in prefixes() {
            let Some(policy) = Option::clone(&policy.get()) else {
                break;
            };
            let result = super::on_blocking_pool(&storage, move |s| {
                let mut report = SweepReport::default();
                for si in s.buckets_in_prefix(&prefix)? {
                    s.expire_bucket(&si, &policy, &mut report)?;
                }
                Ok(report)
            })
            .await;
            match result {
                Ok(r) => {
                    total.examined += r.examined;
                    total.deleted += r.deleted;
                }
                Err(e) => {
                    tracing::error!(error = %e, "lease expiry failed for a prefix; continuing")
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(PAUSE_BETWEEN_PREFIXES) => {}
            }
        }
        tracing::info!(
            examined = total.examined,
            deleted = total.deleted,
            "lease expiry pass done"
        );
        tokio::select! {
            () = shutdown.cancelled() => return,
            // A new policy starts a new pass at once.
            changed = changes.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(PAUSE_BETWEEN_PASSES) => {}
        }
    }
}
