//! The `GET /storage/v1/version` body, whose map keys are CBOR byte strings (Tahoe's
//! CDDL writes them single-quoted), unlike every other body.

use ciborium::Value;

use crate::DecodeError;

const STORAGE_V1: &[u8] = b"http://allmydata.org/tahoe/protocols/storage/v1";
const APPLICATION_VERSION: &[u8] = b"application-version";
const MAX_IMMUTABLE: &[u8] = b"maximum-immutable-share-size";
const MAX_MUTABLE: &[u8] = b"maximum-mutable-share-size";
const AVAILABLE: &[u8] = b"available-space";

/// What a server says about its storage.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct StorageVersion {
    /// Largest immutable share it will accept (Tahoe reports its free space here).
    pub maximum_immutable_share_size: u64,
    /// Largest mutable share it will accept.
    pub maximum_mutable_share_size: u64,
    /// Free space for shares.
    pub available_space: u64,
}

/// The whole version response.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct VersionResponse {
    /// The storage protocol v1 parameters.
    pub storage: StorageVersion,
    /// The server software, e.g. `b"swamp/0.1.0"`.
    pub application_version: Vec<u8>,
}

impl VersionResponse {
    /// Encodes exactly the keys Tahoe's client schema allows.
    pub fn to_cbor(&self) -> Vec<u8> {
        let bytes = |b: &[u8]| Value::Bytes(b.to_vec());
        let uint = |n: u64| Value::Integer(n.into());
        let storage = Value::Map(vec![
            (
                bytes(MAX_IMMUTABLE),
                uint(self.storage.maximum_immutable_share_size),
            ),
            (
                bytes(MAX_MUTABLE),
                uint(self.storage.maximum_mutable_share_size),
            ),
            (bytes(AVAILABLE), uint(self.storage.available_space)),
        ]);
        let top = Value::Map(vec![
            (bytes(STORAGE_V1), storage),
            (bytes(APPLICATION_VERSION), bytes(&self.application_version)),
        ]);
        super::encode(&top)
    }

    /// Decodes a version response, insisting on Tahoe's closed schema.
    ///
    /// # Errors
    /// [`DecodeError::Cbor`] naming the missing, extra or mistyped key.
    pub fn from_cbor(body: &[u8]) -> Result<Self, DecodeError> {
        let top: Value = super::decode(body)?;
        let mut top = byte_keyed_map(top, "version response")?;
        let storage = take(&mut top, STORAGE_V1)?;
        let application_version = match take(&mut top, APPLICATION_VERSION)? {
            Value::Bytes(b) => b,
            _ => {
                return Err(DecodeError::Cbor(
                    "application-version must be a byte string".into(),
                ));
            }
        };
        no_extra(&top)?;
        let mut storage = byte_keyed_map(storage, "storage v1 parameters")?;
        let parsed = StorageVersion {
            maximum_immutable_share_size: take_uint(&mut storage, MAX_IMMUTABLE)?,
            maximum_mutable_share_size: take_uint(&mut storage, MAX_MUTABLE)?,
            available_space: take_uint(&mut storage, AVAILABLE)?,
        };
        no_extra(&storage)?;
        Ok(Self {
            storage: parsed,
            application_version,
        })
    }
}

fn byte_keyed_map(value: Value, what: &str) -> Result<Vec<(Vec<u8>, Value)>, DecodeError> {
    let Value::Map(entries) = value else {
        return Err(DecodeError::Cbor(format!("{what} must be a map")));
    };
    entries
        .into_iter()
        .map(|(k, v)| match k {
            Value::Bytes(k) => Ok((k, v)),
            _ => Err(DecodeError::Cbor(format!(
                "{what} keys must be byte strings"
            ))),
        })
        .collect()
}

fn take(map: &mut Vec<(Vec<u8>, Value)>, key: &[u8]) -> Result<Value, DecodeError> {
    let pos = map.iter().position(|(k, _)| k == key).ok_or_else(|| {
        DecodeError::Cbor(format!("missing key {:?}", String::from_utf8_lossy(key)))
    })?;
    Ok(map.remove(pos).1)
}

fn take_uint(map: &mut Vec<(Vec<u8>, Value)>, key: &[u8]) -> Result<u64, DecodeError> {
    match take(map, key)? {
        Value::Integer(i) => u64::try_from(i).map_err(|_| {
            DecodeError::Cbor(format!(
                "{} must be an unsigned integer",
                String::from_utf8_lossy(key)
            ))
        }),
        _ => Err(DecodeError::Cbor(format!(
            "{} must be an unsigned integer",
            String::from_utf8_lossy(key)
        ))),
    }
}

fn no_extra(map: &[(Vec<u8>, Value)]) -> Result<(), DecodeError> {
    match map.first() {
        None => Ok(()),
        Some((k, _)) => Err(DecodeError::Cbor(format!(
            "unexpected key {:?}",
            String::from_utf8_lossy(k)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_byte_keys() {
        let v = VersionResponse {
            storage: StorageVersion {
                maximum_immutable_share_size: 10,
                maximum_mutable_share_size: 20,
                available_space: 10,
            },
            application_version: b"swamp/0.1.0".to_vec(),
        };
        let bytes = v.to_cbor();
        // a2 = map of 2; 58 2f = byte string of 47 bytes: the storage protocol key.
        assert_eq!(&bytes[..3], &[0xa2, 0x58, 0x2f]);
        assert_eq!(VersionResponse::from_cbor(&bytes).unwrap(), v);
    }

    #[test]
    fn text_keys_are_rejected() {
        let top = Value::Map(vec![(
            Value::Text("application-version".into()),
            Value::Bytes(vec![]),
        )]);
        assert!(VersionResponse::from_cbor(&super::super::encode(&top)).is_err());
    }
}
