//! The `version` scenario: `GET /storage/v1/version` as fast as `concurrency` workers
//! can ask (Tahoe clients poll it about once a second per server). It measures the
//! fixed cost of a request: TLS record, HTTP, swissnum check, CBOR encoding.

use std::sync::Arc;

use crate::runner::{Budget, Tally, Target, merged, run_workers};

/// Runs the timed phase.
///
/// # Errors
/// If a worker panicked.
pub async fn run(
    target: &Target,
    concurrency: usize,
    budget: Arc<Budget>,
) -> anyhow::Result<Tally> {
    let tallies = run_workers(concurrency, |n| {
        let (client, budget, timeout) = (target.client(n), Arc::clone(&budget), target.timeout);
        async move {
            let mut tally = Tally::default();
            while budget.claim() {
                tally.time(timeout, client.general().version()).await;
            }
            tally
        }
    })
    .await?;
    Ok(merged(tallies))
}
