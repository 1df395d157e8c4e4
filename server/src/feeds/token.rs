//! Short-lived, scoped feed tokens, for clients that cannot set headers (browsers'
//! `EventSource` and `WebSocket`).
//!
//! A client holding the swissnum asks `POST /storage/v1/feed/token?ttl=SECONDS[&si=..]`
//! and gets `<payload>.<mac>` (both unpadded base64url): the payload is CBOR
//! `{exp: unix seconds, si: [storage indexes] or null}`, the MAC is HMAC-SHA256 under a
//! key derived from the swissnum. The token opens `GET /storage/v1/feed?token=...` only,
//! for the listed storage indexes only (all if none were listed), until `exp`; streams
//! opened with it end with `token_expired` at `exp`.

use data_encoding::BASE64URL_NOPAD;
use ring::hmac;
use serde::{Deserialize, Serialize};
use swamp_proto::StorageIndex;
use swamp_proto::secrets::Swissnum;

/// Longest lifetime a token may ask for.
pub const MAX_TTL_SECS: u64 = 24 * 3600;

/// How far a token's expiry may lie beyond `MAX_TTL_SECS` from now (the clock may have
/// stepped back since it was issued). Anything further was never issued by a node.
const CLOCK_SLACK_SECS: u64 = 3600;

#[derive(Serialize, Deserialize)]
struct Payload {
    exp: u64,
    si: Option<Vec<String>>,
}

/// What a valid token grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// Unix seconds after which the token is void.
    pub expires: u64,
    /// The storage indexes it may follow (`None`: any).
    pub storage_indexes: Option<Vec<StorageIndex>>,
}

fn key(swissnum: &Swissnum) -> hmac::Key {
    let mut material = b"swamp feed token key v1\0".to_vec();
    material.extend_from_slice(swissnum.expose().as_bytes());
    let derived = ring::digest::digest(&ring::digest::SHA256, &material);
    hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref())
}

/// Issues a token.
pub fn issue(swissnum: &Swissnum, grant: &Grant) -> String {
    let payload = Payload {
        exp: grant.expires,
        si: grant
            .storage_indexes
            .as_ref()
            .map(|v| v.iter().map(ToString::to_string).collect()),
    };
    let body = swamp_proto::v1::encode(&payload);
    let tag = hmac::sign(&key(swissnum), &body);
    format!(
        "{}.{}",
        BASE64URL_NOPAD.encode(&body),
        BASE64URL_NOPAD.encode(tag.as_ref())
    )
}

/// Checks a token's MAC and expiry.
///
/// # Errors
/// A message for a person: malformed, forged, or expired.
pub fn verify(swissnum: &Swissnum, token: &str, now: u64) -> Result<Grant, String> {
    let (body, tag) = token
        .split_once('.')
        .ok_or("a token is <payload>.<signature>")?;
    let body = BASE64URL_NOPAD
        .decode(body.as_bytes())
        .map_err(|_| "token payload is not base64url")?;
    let tag = BASE64URL_NOPAD
        .decode(tag.as_bytes())
        .map_err(|_| "token signature is not base64url")?;
    hmac::verify(&key(swissnum), &body, &tag).map_err(|_| "token signature does not verify")?;
    parse_payload(&body, now)
}

/// Decodes a token's payload once its MAC has verified, and checks its expiry (split
/// out of [`verify`] so the fuzzer reaches it without forging MACs).
///
/// # Errors
/// A message for a person: malformed or expired.
pub fn parse_payload(body: &[u8], now: u64) -> Result<Grant, String> {
    let payload: Payload =
        swamp_proto::v1::decode(body).map_err(|_| "token payload is malformed")?;
    if payload.exp <= now {
        return Err("token has expired".into());
    }
    if payload.exp - now > MAX_TTL_SECS + CLOCK_SLACK_SECS {
        return Err(format!(
            "token expiry is more than {} hours away; tokens last at most {} hours",
            (MAX_TTL_SECS + CLOCK_SLACK_SECS) / 3600,
            MAX_TTL_SECS / 3600
        ));
    }
    let storage_indexes = match payload.si {
        None => None,
        Some(list) => Some(
            list.iter()
                .map(|s| {
                    s.parse()
                        .map_err(|_| "token names a bad storage index".to_string())
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    Ok(Grant {
        expires: payload.exp,
        storage_indexes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_verify_expire_forge() {
        let swiss = Swissnum::new("abc").unwrap();
        let grant = Grant {
            expires: 1000,
            storage_indexes: Some(vec![StorageIndex::from_bytes([1; 16])]),
        };
        let token = issue(&swiss, &grant);
        assert_eq!(verify(&swiss, &token, 999).unwrap(), grant);
        assert!(
            verify(&swiss, &token, 1000)
                .unwrap_err()
                .contains("expired")
        );
        assert!(
            verify(&Swissnum::new("abd").unwrap(), &token, 999).is_err(),
            "another server's key"
        );
        let (body, tag) = token.split_once('.').unwrap();
        let mut forged = BASE64URL_NOPAD.decode(body.as_bytes()).unwrap();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        assert!(
            verify(
                &swiss,
                &format!("{}.{tag}", BASE64URL_NOPAD.encode(&forged)),
                999
            )
            .is_err()
        );
    }

    #[test]
    fn an_expiry_no_node_would_issue_is_refused() {
        let swiss = Swissnum::new("abc").unwrap();
        let now = 1_700_000_000;
        for expires in [u64::MAX, now + MAX_TTL_SECS + CLOCK_SLACK_SECS + 1] {
            let token = issue(
                &swiss,
                &Grant {
                    expires,
                    storage_indexes: None,
                },
            );
            let e = verify(&swiss, &token, now).unwrap_err();
            assert!(e.contains("hours away"), "{e}");
        }
        let longest = issue(
            &swiss,
            &Grant {
                expires: now + MAX_TTL_SECS,
                storage_indexes: None,
            },
        );
        assert!(verify(&swiss, &longest, now).is_ok());
    }
}
