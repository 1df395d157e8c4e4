//! Bodies of the immutable share endpoints.

use serde::{Deserialize, Serialize};

use super::ShareSet;

/// `POST /storage/v1/immutable/:si`: which shares to allocate, and how big each is.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllocateRequest {
    /// The share numbers wanted.
    #[serde(rename = "share-numbers")]
    pub share_numbers: ShareSet,
    /// The exact size each share will have.
    #[serde(rename = "allocated-size")]
    pub allocated_size: u64,
}

/// The answer to an allocate request.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllocateResponse {
    /// Every complete share the server already holds for this storage index.
    #[serde(rename = "already-have")]
    pub already_have: ShareSet,
    /// The requested shares now open for upload.
    pub allocated: ShareSet,
}

/// A half-open byte range `[begin, end)` still missing from an upload.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequiredRange {
    /// First missing byte.
    pub begin: u64,
    /// One past the last missing byte.
    pub end: u64,
}

/// The body of a successful PATCH: what the upload still needs (empty when complete).
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadProgress {
    /// The missing ranges, ascending.
    pub required: Vec<RequiredRange>,
}

/// `POST /storage/v1/{immutable,mutable}/:si/:shnum/corrupt`
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdviseCorruptRequest {
    /// Why the client thinks the share is corrupt (1 to 32,765 characters).
    pub reason: String,
}

impl AdviseCorruptRequest {
    /// Checks the reason's length bounds.
    ///
    /// # Errors
    /// [`crate::DecodeError::Invalid`] for an empty or too long reason.
    pub fn validate(&self) -> Result<(), crate::DecodeError> {
        let len = self.reason.chars().count();
        if len == 0 || len > super::MAX_CORRUPTION_REASON {
            return Err(crate::DecodeError::Invalid(format!(
                "reason must be 1 to {} characters, got {len}",
                super::MAX_CORRUPTION_REASON
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ShareNumber;
    use crate::v1::{decode, encode};
    use ciborium::Value;

    #[test]
    fn allocate_round_trip() {
        let req = AllocateRequest {
            share_numbers: [0u8, 3].into_iter().map(ShareNumber::new).collect(),
            allocated_size: 1024,
        };
        assert_eq!(decode::<AllocateRequest>(&encode(&req)).unwrap(), req);
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let body = Value::Map(vec![
            (
                Value::Text("share-numbers".into()),
                Value::Tag(258, Box::new(Value::Array(vec![]))),
            ),
            (
                Value::Text("allocated-size".into()),
                Value::Integer(1.into()),
            ),
            (Value::Text("extra".into()), Value::Integer(1.into())),
        ]);
        assert!(decode::<AllocateRequest>(&encode(&body)).is_err());
    }

    #[test]
    fn reason_bounds() {
        assert!(
            AdviseCorruptRequest {
                reason: String::new()
            }
            .validate()
            .is_err()
        );
        assert!(
            AdviseCorruptRequest {
                reason: "x".repeat(32_765)
            }
            .validate()
            .is_ok()
        );
        assert!(
            AdviseCorruptRequest {
                reason: "x".repeat(32_766)
            }
            .validate()
            .is_err()
        );
    }
}
