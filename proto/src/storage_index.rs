//! The storage index: 16 bytes, 26 base32 characters in URLs and directory names.

use std::fmt;
use std::str::FromStr;

use crate::{DecodeError, base32};

/// A storage index, the name under which a server keeps a file's shares.
///
/// Parsing accepts exactly what Tahoe's URL router accepts: 26 characters of canonical
/// lowercase base32. Anything else (including `..` or slashes) cannot become a
/// `StorageIndex`, which is what keeps path traversal out of the disk layer.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StorageIndex([u8; 16]);

impl StorageIndex {
    /// Wraps 16 raw bytes.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// The lowercase base32 form used in URLs, on disk and in feeds.
    pub fn to_base32(&self) -> String {
        base32::encode(&self.0)
    }

    /// The two-character directory prefix Tahoe shards share directories by.
    pub fn dir_prefix(&self) -> String {
        let mut s = self.to_base32();
        s.truncate(2);
        s
    }
}

impl FromStr for StorageIndex {
    type Err = DecodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 26 {
            return Err(DecodeError::Invalid(format!(
                "a storage index is 26 base32 characters, got {} characters",
                s.len()
            )));
        }
        let bytes = base32::decode(s)?;
        let array: [u8; 16] = bytes.try_into().map_err(|v: Vec<u8>| DecodeError::Length {
            what: "storage index",
            expected: 16,
            actual: v.len(),
        })?;
        Ok(Self(array))
    }
}

impl fmt::Display for StorageIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base32())
    }
}

impl fmt::Debug for StorageIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StorageIndex({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats() {
        let si = StorageIndex::from_bytes([7; 16]);
        let text = si.to_string();
        assert_eq!(text.len(), 26);
        assert_eq!(text.parse::<StorageIndex>().unwrap(), si);
        assert_eq!(si.dir_prefix(), &text[..2]);
    }

    #[test]
    fn rejects_traversal_and_case() {
        assert!("../../../../etc/passwd".parse::<StorageIndex>().is_err());
        assert!(
            "aaaaaaaaaaaaaaaaaaaaaaaaa/"
                .parse::<StorageIndex>()
                .is_err()
        );
        assert!(
            "AAAAAAAAAAAAAAAAAAAAAAAAAA"
                .parse::<StorageIndex>()
                .is_err()
        );
        // 26 chars but a non-zero final pad bit: not canonical.
        assert!(
            "aaaaaaaaaaaaaaaaaaaaaaaaab"
                .parse::<StorageIndex>()
                .is_err()
        );
        assert!("aaaaaaaaaaaaaaaaaaaaaaaaaa".parse::<StorageIndex>().is_ok());
    }
}
