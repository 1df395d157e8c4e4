//! CBOR encoding and decoding, and the tagged share-number set.

use std::collections::BTreeSet;

use ciborium::tag::Required;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{DecodeError, ShareNumber};

/// Encodes a body as CBOR.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out)
        .expect("invariant: serializing to a Vec cannot fail for our types");
    out
}

/// Decodes a CBOR body, rejecting trailing bytes.
///
/// # Errors
/// [`DecodeError::Cbor`] with the decoder's explanation.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    let mut reader = bytes;
    let value = ciborium::from_reader(&mut reader).map_err(|e| {
        DecodeError::Cbor(match e {
            ciborium::de::Error::Semantic(_, msg) => msg,
            other => other.to_string(),
        })
    })?;
    if !reader.is_empty() {
        return Err(DecodeError::Cbor(format!(
            "{} bytes after the end of the body",
            reader.len()
        )));
    }
    Ok(value)
}

/// A set of share numbers: CBOR tag 258 around an array, as Python's `cbor2` writes a
/// `set` and as Tahoe's schemas require.
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub struct ShareSet(pub BTreeSet<ShareNumber>);

impl ShareSet {
    /// The share numbers in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = ShareNumber> + '_ {
        self.0.iter().copied()
    }
}

impl FromIterator<ShareNumber> for ShareSet {
    fn from_iter<I: IntoIterator<Item = ShareNumber>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl Serialize for ShareSet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let numbers: Vec<u64> = self.0.iter().map(|n| u64::from(n.get())).collect();
        Required::<Vec<u64>, 258>(numbers).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ShareSet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let Required(numbers) = Required::<Vec<u64>, 258>::deserialize(deserializer)?;
        if numbers.len() > crate::v1::MAX_SHARES_PER_REQUEST {
            return Err(serde::de::Error::custom("more than 256 share numbers"));
        }
        numbers
            .into_iter()
            .map(|n| ShareNumber::try_from(n).map_err(serde::de::Error::custom))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_is_tag_258_like_cbor2() {
        // cbor2.dumps({1, 2}) == d9 0102 82 01 02
        let set: ShareSet = [1u8, 2].into_iter().map(ShareNumber::new).collect();
        assert_eq!(encode(&set), [0xd9, 0x01, 0x02, 0x82, 0x01, 0x02]);
        assert_eq!(
            decode::<ShareSet>(&[0xd9, 0x01, 0x02, 0x82, 0x01, 0x02]).unwrap(),
            set
        );
    }

    #[test]
    fn untagged_array_is_rejected() {
        assert!(decode::<ShareSet>(&[0x82, 0x01, 0x02]).is_err());
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        assert!(decode::<ShareSet>(&[0xd9, 0x01, 0x02, 0x80, 0x00]).is_err());
    }
}
