//! Secrets of the storage protocol, and the two headers that carry them.
//!
//! Every secret is its own type with a redacted `Debug`, so a stray `{:?}` in a log line
//! cannot leak one, and comparisons are constant-time so a remote client cannot learn a
//! secret byte by byte from response times.
//!
//! - `Authorization: Tahoe-LAFS <base64 of the swissnum's text>` on every request;
//! - `X-Tahoe-Authorization: <kind> <base64>`, one header per extra secret an endpoint
//!   needs (lease secrets, upload secret, write enabler).

use std::collections::BTreeMap;
use std::fmt;

use data_encoding::{BASE64, BASE64_NOPAD};

use crate::DecodeError;

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // black_box keeps the optimizer from turning the fold into an early exit.
    std::hint::black_box(diff) == 0
}

/// The secret path component of a NURL (the same text as in the storage fURL).
#[derive(Clone)]
pub struct Swissnum(String);

impl Swissnum {
    /// Wraps the swissnum's text.
    ///
    /// # Errors
    /// [`DecodeError::Invalid`] if it is empty or has characters outside `[A-Za-z0-9_-]`
    /// (it must sit in a URL path unescaped).
    pub fn new(text: impl Into<String>) -> Result<Self, DecodeError> {
        let text = text.into();
        if text.is_empty()
            || !text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(DecodeError::Invalid(
                "a swissnum is a non-empty string of letters, digits, '-' and '_'".into(),
            ));
        }
        Ok(Self(text))
    }

    /// The swissnum's text, for writing into a NURL or fURL.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The value of the `Authorization` header that presents this swissnum.
    pub fn authorization_header(&self) -> String {
        format!("Tahoe-LAFS {}", BASE64.encode(self.0.as_bytes()))
    }

    /// Checks an `Authorization` header value against this swissnum, in constant time.
    pub fn matches_header(&self, value: &[u8]) -> bool {
        let Some(encoded) = value.strip_prefix(b"Tahoe-LAFS ") else {
            return false;
        };
        let encoded = trim_ascii(encoded);
        match decode_base64(encoded) {
            Some(decoded) => constant_time_eq(&decoded, self.0.as_bytes()),
            None => false,
        }
    }
}

impl PartialEq for Swissnum {
    fn eq(&self, other: &Self) -> bool {
        constant_time_eq(self.0.as_bytes(), other.0.as_bytes())
    }
}

impl fmt::Debug for Swissnum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Swissnum(<redacted>)")
    }
}

macro_rules! fixed_secret {
    ($(#[$doc:meta])* $name:ident, $len:expr, $what:expr) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name([u8; $len]);

        impl $name {
            /// Wraps the raw bytes.
            pub const fn from_bytes(bytes: [u8; $len]) -> Self {
                Self(bytes)
            }

            /// The raw bytes (only for hashing, storing or sending; never for logs).
            pub const fn expose(&self) -> &[u8; $len] {
                &self.0
            }
        }

        impl TryFrom<&[u8]> for $name {
            type Error = DecodeError;

            fn try_from(bytes: &[u8]) -> Result<Self, Self::Error> {
                let array: [u8; $len] = bytes.try_into().map_err(|_| DecodeError::Length {
                    what: $what,
                    expected: $len,
                    actual: bytes.len(),
                })?;
                Ok(Self(array))
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                constant_time_eq(&self.0, &other.0)
            }
        }

        impl Eq for $name {}

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(<redacted>)"))
            }
        }
    };
}

fixed_secret!(
    /// Renews a lease; the server keeps it (or, in v2 containers, its BLAKE2b hash).
    LeaseRenewSecret,
    32,
    "lease-renew-secret"
);
fixed_secret!(
    /// Would cancel a lease; GBS has no cancel call, but the server stores it.
    LeaseCancelSecret,
    32,
    "lease-cancel-secret"
);
fixed_secret!(
    /// Authorizes writes to a slot; the server stores it in each mutable container.
    WriteEnabler,
    32,
    "write-enabler"
);

/// Ties the PATCHes and abort of an immutable upload to the client that allocated it.
/// Any non-empty length is allowed (Tahoe's client uses 20 random bytes).
#[derive(Clone)]
pub struct UploadSecret(Vec<u8>);

impl UploadSecret {
    /// Wraps the raw bytes.
    ///
    /// # Errors
    /// [`DecodeError::Invalid`] if empty.
    pub fn new(bytes: Vec<u8>) -> Result<Self, DecodeError> {
        if bytes.is_empty() {
            return Err(DecodeError::Invalid(
                "upload-secret must not be empty".into(),
            ));
        }
        Ok(Self(bytes))
    }

    /// The raw bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl PartialEq for UploadSecret {
    fn eq(&self, other: &Self) -> bool {
        constant_time_eq(&self.0, &other.0)
    }
}

impl Eq for UploadSecret {}

impl fmt::Debug for UploadSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UploadSecret(<redacted>)")
    }
}

/// The kinds of secret an `X-Tahoe-Authorization` header can carry.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum SecretKind {
    /// `lease-renew-secret`
    LeaseRenew,
    /// `lease-cancel-secret`
    LeaseCancel,
    /// `upload-secret`
    Upload,
    /// `write-enabler`
    WriteEnabler,
}

impl SecretKind {
    /// The kind's name on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::LeaseRenew => "lease-renew-secret",
            Self::LeaseCancel => "lease-cancel-secret",
            Self::Upload => "upload-secret",
            Self::WriteEnabler => "write-enabler",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        [
            Self::LeaseRenew,
            Self::LeaseCancel,
            Self::Upload,
            Self::WriteEnabler,
        ]
        .into_iter()
        .find(|k| k.as_str() == name)
    }
}

/// Formats one `X-Tahoe-Authorization` header value.
pub fn format_secret_header(kind: SecretKind, secret: &[u8]) -> String {
    format!("{} {}", kind.as_str(), BASE64.encode(secret))
}

/// The secrets a request presented, decoded and checked against the set an endpoint
/// requires.
#[derive(Default)]
pub struct PresentedSecrets {
    /// The lease renew secret, if the endpoint requires it.
    pub lease_renew: Option<LeaseRenewSecret>,
    /// The lease cancel secret, if the endpoint requires it.
    pub lease_cancel: Option<LeaseCancelSecret>,
    /// The upload secret, if the endpoint requires it.
    pub upload: Option<UploadSecret>,
    /// The write enabler, if the endpoint requires it.
    pub write_enabler: Option<WriteEnabler>,
}

impl PresentedSecrets {
    /// Decodes `X-Tahoe-Authorization` header values and checks that they name exactly
    /// the kinds in `required` (Tahoe rejects extra secrets too). When a kind repeats,
    /// the last one wins, as in Tahoe.
    ///
    /// # Errors
    /// [`DecodeError::Header`] naming the problem: an unknown kind, undecodable base64,
    /// an empty secret, a lease secret or write enabler that is not 32 bytes, or a set of
    /// kinds different from `required`.
    pub fn parse<'a>(
        values: impl IntoIterator<Item = &'a [u8]>,
        required: &[SecretKind],
    ) -> Result<Self, DecodeError> {
        let bad = |reason: String| DecodeError::Header {
            header: "X-Tahoe-Authorization",
            reason,
        };
        let mut found: BTreeMap<SecretKind, Vec<u8>> = BTreeMap::new();
        for raw in values {
            let text =
                std::str::from_utf8(trim_ascii(raw)).map_err(|_| bad("not valid UTF-8".into()))?;
            let (name, encoded) = text
                .split_once(' ')
                .ok_or_else(|| bad("expected '<kind> <base64>'".into()))?;
            let kind = SecretKind::parse(name)
                .ok_or_else(|| bad(format!("unknown secret kind {name:?}")))?;
            let decoded = decode_base64(encoded.trim().as_bytes())
                .ok_or_else(|| bad(format!("{} is not valid base64", kind.as_str())))?;
            if decoded.is_empty() {
                return Err(bad(format!("{} is empty", kind.as_str())));
            }
            found.insert(kind, decoded);
        }
        let mut wanted: Vec<SecretKind> = required.to_vec();
        wanted.sort();
        wanted.dedup();
        let got: Vec<SecretKind> = found.keys().copied().collect();
        if got != wanted {
            let names =
                |ks: &[SecretKind]| ks.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ");
            return Err(bad(format!(
                "this endpoint needs exactly [{}], got [{}]",
                names(&wanted),
                names(&got)
            )));
        }
        let mut out = Self::default();
        for (kind, bytes) in found {
            let header_err = |e: DecodeError| bad(e.to_string());
            match kind {
                SecretKind::LeaseRenew => {
                    out.lease_renew = Some(bytes.as_slice().try_into().map_err(header_err)?)
                }
                SecretKind::LeaseCancel => {
                    out.lease_cancel = Some(bytes.as_slice().try_into().map_err(header_err)?)
                }
                SecretKind::WriteEnabler => {
                    out.write_enabler = Some(bytes.as_slice().try_into().map_err(header_err)?)
                }
                SecretKind::Upload => {
                    out.upload = Some(UploadSecret::new(bytes).map_err(header_err)?)
                }
            }
        }
        Ok(out)
    }
}

fn trim_ascii(bytes: &[u8]) -> &[u8] {
    bytes.trim_ascii()
}

fn decode_base64(encoded: &[u8]) -> Option<Vec<u8>> {
    BASE64
        .decode(encoded)
        .or_else(|_| BASE64_NOPAD.decode(encoded))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_header_is_base64_of_the_text() {
        let s = Swissnum::new("abcd").unwrap();
        assert_eq!(s.authorization_header(), "Tahoe-LAFS YWJjZA==");
        assert!(s.matches_header(b"Tahoe-LAFS YWJjZA=="));
        assert!(!s.matches_header(b"Tahoe-LAFS YWJjZQ=="));
        assert!(!s.matches_header(b"Bearer YWJjZA=="));
        assert!(!s.matches_header(b""));
    }

    #[test]
    fn debug_is_redacted() {
        let s = Swissnum::new("topsecret").unwrap();
        assert!(!format!("{s:?}").contains("topsecret"));
        let we = WriteEnabler::from_bytes([0x41; 32]);
        assert!(!format!("{we:?}").contains("AAAA"));
    }

    #[test]
    fn secrets_must_match_the_required_set() {
        let renew = format_secret_header(SecretKind::LeaseRenew, &[1; 32]);
        let cancel = format_secret_header(SecretKind::LeaseCancel, &[2; 32]);
        let required = [SecretKind::LeaseRenew, SecretKind::LeaseCancel];
        let ok = PresentedSecrets::parse([renew.as_bytes(), cancel.as_bytes()], &required).unwrap();
        assert_eq!(ok.lease_renew.unwrap().expose(), &[1; 32]);
        assert!(
            PresentedSecrets::parse([renew.as_bytes()], &required).is_err(),
            "missing"
        );
        let upload = format_secret_header(SecretKind::Upload, b"xyz");
        assert!(
            PresentedSecrets::parse(
                [renew.as_bytes(), cancel.as_bytes(), upload.as_bytes()],
                &required
            )
            .is_err(),
            "extra"
        );
        assert!(
            PresentedSecrets::parse([upload.as_bytes()], &[]).is_err(),
            "extra on none"
        );
        let short = format_secret_header(SecretKind::LeaseRenew, &[1; 31]);
        assert!(PresentedSecrets::parse([short.as_bytes(), cancel.as_bytes()], &required).is_err());
        assert!(
            PresentedSecrets::parse(
                [b"lease-renew-secret !!!".as_slice(), cancel.as_bytes()],
                &required
            )
            .is_err()
        );
        assert!(PresentedSecrets::parse([b"bogus-secret AAAA".as_slice()], &[]).is_err());
        assert!(
            PresentedSecrets::parse([b"upload-secret ".as_slice()], &[SecretKind::Upload]).is_err()
        );
    }

    #[test]
    fn last_duplicate_wins() {
        let a = format_secret_header(SecretKind::Upload, b"first");
        let b = format_secret_header(SecretKind::Upload, b"second");
        let got =
            PresentedSecrets::parse([a.as_bytes(), b.as_bytes()], &[SecretKind::Upload]).unwrap();
        assert_eq!(got.upload.unwrap().expose(), b"second");
    }
}
