//! `PUT /storage/v1/lease/:si`: add or renew a lease on every share of a storage index.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use swamp_proto::secrets::SecretKind;

use super::error::ApiError;
use super::{App, extract};
use crate::backend::LeaseGrant;
use crate::backend::lease::LEASE_DURATION_SECS;

/// The handler: 204 on success, 404 if the index has no shares.
pub async fn add_or_renew(
    State(app): State<App>,
    Path(si): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let si = extract::storage_index(&si)?;
    let secrets = extract::secrets(&headers, &[SecretKind::LeaseRenew, SecretKind::LeaseCancel])?;
    let grant = lease_grant(&app, 1, secrets)?;
    app.blocking(move |s| s.add_or_renew_leases(&si, &grant))
        .await?;
    app.activity.add(crate::activity::Counter::LeaseRenewals, 1);
    Ok(StatusCode::NO_CONTENT)
}

/// A lease for the presented secrets, expiring 31 days from now.
///
/// # Errors
/// Only if the secrets are missing, which `extract::secrets` already rules out.
pub fn lease_grant(
    app: &App,
    owner: u32,
    secrets: swamp_proto::secrets::PresentedSecrets,
) -> Result<LeaseGrant, ApiError> {
    let (Some(renew), Some(cancel)) = (secrets.lease_renew, secrets.lease_cancel) else {
        return Err(ApiError::Internal(
            "lease secrets missing after validation".into(),
        ));
    };
    Ok(LeaseGrant {
        owner,
        renew,
        cancel,
        expiry: app.storage.now() + LEASE_DURATION_SECS,
        nodeid: app.storage.settings().nodeid,
    })
}
