//! Bodies of the mutable (slot) endpoints.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::{DecodeError, ShareNumber};

/// Compare `[offset, offset+size)` of the share (clipped to its length) with `specimen`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestVector {
    /// Where to read.
    pub offset: u64,
    /// How many bytes to read.
    pub size: u64,
    /// What they must equal.
    #[serde(with = "serde_bytes")]
    pub specimen: Vec<u8>,
}

/// Write `data` at `offset`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteVector {
    /// Where to write.
    pub offset: u64,
    /// The bytes.
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

/// Read `[offset, offset+size)` of every share (clipped).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadVector {
    /// Where to read.
    pub offset: u64,
    /// How many bytes.
    pub size: u64,
}

/// The tests and writes for one share.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestWriteVectors {
    /// All must pass for any write of the request to happen.
    pub test: Vec<TestVector>,
    /// Applied in order.
    pub write: Vec<WriteVector>,
    /// Shrink the share to this length (0 deletes it); never grows it.
    #[serde(rename = "new-length")]
    pub new_length: Option<u64>,
}

/// `POST /storage/v1/mutable/:si/read-test-write`
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadTestWriteRequest {
    /// Per share number: its tests and writes.
    #[serde(rename = "test-write-vectors")]
    pub test_write_vectors: BTreeMap<u64, TestWriteVectors>,
    /// Reads done on every existing share before any write.
    #[serde(rename = "read-vector")]
    pub read_vector: Vec<ReadVector>,
}

impl ReadTestWriteRequest {
    /// Checks the counts Tahoe's schema bounds and turns the share keys into
    /// [`ShareNumber`]s.
    ///
    /// # Errors
    /// [`DecodeError::Invalid`] naming the bound exceeded.
    pub fn validated(self) -> Result<ValidReadTestWrite, DecodeError> {
        if self.read_vector.len() > super::MAX_TEST_OR_READ_VECTORS {
            return Err(DecodeError::Invalid(
                "read-vector has more than 30 entries".into(),
            ));
        }
        if self.test_write_vectors.len() > super::MAX_SHARES_PER_REQUEST {
            return Err(DecodeError::Invalid(
                "test-write-vectors names more than 256 shares".into(),
            ));
        }
        let mut shares = BTreeMap::new();
        for (n, vectors) in self.test_write_vectors {
            if vectors.test.len() > super::MAX_TEST_OR_READ_VECTORS {
                return Err(DecodeError::Invalid(format!(
                    "share {n} has more than 30 test vectors"
                )));
            }
            shares.insert(ShareNumber::try_from(n)?, vectors);
        }
        Ok(ValidReadTestWrite {
            shares,
            read_vector: self.read_vector,
        })
    }
}

/// A read-test-write request whose bounds have been checked.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ValidReadTestWrite {
    /// Per share: tests, writes, new length.
    pub shares: BTreeMap<ShareNumber, TestWriteVectors>,
    /// Reads of every existing share.
    pub read_vector: Vec<ReadVector>,
}

/// The answer to a read-test-write (HTTP 200 whether or not the tests passed).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadTestWriteResponse {
    /// Whether every test passed and the writes were applied.
    pub success: bool,
    /// Per existing share: one byte string per read vector.
    pub data: BTreeMap<u64, Vec<ByteBuf>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::{decode, encode};

    #[test]
    fn round_trip() {
        let mut tw = BTreeMap::new();
        tw.insert(
            3,
            TestWriteVectors {
                test: vec![TestVector {
                    offset: 0,
                    size: 1,
                    specimen: vec![],
                }],
                write: vec![WriteVector {
                    offset: 0,
                    data: b"hello".to_vec(),
                }],
                new_length: None,
            },
        );
        let req = ReadTestWriteRequest {
            test_write_vectors: tw,
            read_vector: vec![ReadVector { offset: 0, size: 5 }],
        };
        let bytes = encode(&req);
        assert_eq!(decode::<ReadTestWriteRequest>(&bytes).unwrap(), req);
        let valid = req.validated().unwrap();
        assert!(valid.shares.contains_key(&ShareNumber::new(3)));
    }

    #[test]
    fn bounds() {
        let req = ReadTestWriteRequest {
            test_write_vectors: BTreeMap::new(),
            read_vector: vec![ReadVector { offset: 0, size: 1 }; 31],
        };
        assert!(req.validated().is_err());
        let mut tw = BTreeMap::new();
        tw.insert(
            256,
            TestWriteVectors {
                test: vec![],
                write: vec![],
                new_length: None,
            },
        );
        let req = ReadTestWriteRequest {
            test_write_vectors: tw,
            read_vector: vec![],
        };
        assert!(req.validated().is_err());
    }
}
