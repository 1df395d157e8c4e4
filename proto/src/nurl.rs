//! NURLs and the SPKI hash they pin.
//!
//! A NURL is `pb://<spki-hash>@<host>:<port>/<swissnum>#v=1`. The hash is the unpadded
//! base64url SHA-256 of the server certificate's DER SubjectPublicKeyInfo (43
//! characters); a client trusts exactly the one self-signed certificate whose key hashes
//! to it, and nothing else (no CA, no expiry check), as Tahoe does.

use std::fmt;
use std::str::FromStr;

use data_encoding::BASE64URL_NOPAD;
use sha2::{Digest, Sha256};

use crate::DecodeError;
use crate::secrets::Swissnum;

/// SHA-256 of a certificate's DER SubjectPublicKeyInfo.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpkiHash([u8; 32]);

impl SpkiHash {
    /// Hashes a DER-encoded SubjectPublicKeyInfo.
    pub fn of_spki_der(spki_der: &[u8]) -> Self {
        Self(Sha256::digest(spki_der).into())
    }

    /// Wraps a raw 32-byte hash.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw hash.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for SpkiHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&BASE64URL_NOPAD.encode(&self.0))
    }
}

impl fmt::Debug for SpkiHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpkiHash({self})")
    }
}

impl FromStr for SpkiHash {
    type Err = DecodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = BASE64URL_NOPAD
            .decode(s.as_bytes())
            .map_err(|e| DecodeError::Nurl(format!("SPKI hash is not unpadded base64url: {e}")))?;
        let array: [u8; 32] = bytes.try_into().map_err(|v: Vec<u8>| DecodeError::Length {
            what: "SPKI hash",
            expected: 32,
            actual: v.len(),
        })?;
        Ok(Self(array))
    }
}

/// The address of a GBS storage server, with the certificate pin and the swissnum.
#[derive(Clone, PartialEq)]
pub struct Nurl {
    /// The pinned certificate key hash.
    pub spki_hash: SpkiHash,
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// The storage swissnum.
    pub swissnum: Swissnum,
}

impl Nurl {
    /// `https://host:port`, the base URL requests go to.
    pub fn base_url(&self) -> String {
        format!("https://{}", self.authority())
    }

    fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for Nurl {
    /// The full NURL, swissnum included: it is a secret, so print it only where the
    /// operator asked for it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pb://{}@{}/{}#v=1",
            self.spki_hash,
            self.authority(),
            self.swissnum.expose()
        )
    }
}

impl fmt::Debug for Nurl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Nurl(pb://{}@{}/<redacted>#v=1)",
            self.spki_hash,
            self.authority()
        )
    }
}

impl FromStr for Nurl {
    type Err = DecodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| DecodeError::Nurl(why.to_string());
        let rest = s
            .strip_prefix("pb://")
            .ok_or_else(|| bad("must start with pb://"))?;
        let (rest, fragment) = rest
            .split_once('#')
            .ok_or_else(|| bad("missing the #v=1 fragment (a fURL is not a NURL)"))?;
        if fragment != "v=1" {
            return Err(bad("only version #v=1 is supported"));
        }
        let (hash, rest) = rest
            .split_once('@')
            .ok_or_else(|| bad("missing '@' after the SPKI hash"))?;
        let spki_hash: SpkiHash = hash.parse()?;
        let (authority, swissnum) = rest
            .split_once('/')
            .ok_or_else(|| bad("missing '/<swissnum>'"))?;
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, port) = v6
                .split_once("]:")
                .ok_or_else(|| bad("IPv6 host must be [addr]:port"))?;
            (host, port)
        } else {
            authority
                .rsplit_once(':')
                .ok_or_else(|| bad("missing ':port'"))?
        };
        // A DNS name, an IPv4 address or an IPv6 literal: nothing that could end the
        // authority early or read differently once formatted again (`[`, `]`, `@`...).
        if host.is_empty()
            || !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'))
        {
            return Err(bad("the host must be a DNS name or an IP address"));
        }
        let port: u16 = port
            .parse()
            .map_err(|_| bad("port is not a number 0-65535"))?;
        let swissnum = Swissnum::new(swissnum.trim_end_matches('/'))?;
        Ok(Self {
            spki_hash,
            host: host.to_string(),
            port,
            swissnum,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let text =
            "pb://AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA@127.0.0.1:3457/abcdef234567#v=1";
        let nurl: Nurl = text.parse().unwrap();
        assert_eq!(nurl.host, "127.0.0.1");
        assert_eq!(nurl.port, 3457);
        assert_eq!(nurl.swissnum.expose(), "abcdef234567");
        assert_eq!(nurl.to_string(), text);
        assert_eq!(nurl.base_url(), "https://127.0.0.1:3457");
        assert!(!format!("{nurl:?}").contains("abcdef234567"));
    }

    #[test]
    fn ipv6() {
        let text = "pb://AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA@[::1]:80/s#v=1";
        let nurl: Nurl = text.parse().unwrap();
        assert_eq!(nurl.host, "::1");
        assert_eq!(nurl.to_string(), text);
    }

    #[test]
    fn hosts_that_would_format_ambiguously_are_rejected() {
        // Found by the `nurl` fuzz target: this host formatted as `[a7s[:]:1]-]:37`,
        // which does not parse back.
        let text = "pb://AfpH00SKUpiuc68a7sVUbADs_WEC6AtLweIkdxITFV0@a7s[:]:1]-:37/abcdefg#v=1";
        assert!(text.parse::<Nurl>().is_err());
        for host in ["h@x", "h/x", "h]", "[h", "h x", "h#x"] {
            let text = format!("pb://AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA@{host}:1/s#v=1");
            assert!(text.parse::<Nurl>().is_err(), "{host}");
        }
        let nurl: Nurl = "pb://AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA@fe80::1:443/s#v=1"
            .parse()
            .unwrap();
        assert_eq!(nurl.host, "fe80::1");
        assert_eq!(nurl.to_string().parse::<Nurl>().unwrap(), nurl);
    }

    #[test]
    fn rejects_furls_and_garbage() {
        assert!("pb://tubid@tcp:127.0.0.1:1/swiss".parse::<Nurl>().is_err());
        assert!("https://x@h:1/s#v=1".parse::<Nurl>().is_err());
        assert!("pb://short@h:1/s#v=1".parse::<Nurl>().is_err());
        assert!(
            "pb://AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA@h:99999/s#v=1"
                .parse::<Nurl>()
                .is_err()
        );
        assert!(
            "pb://AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA@h:1/s#v=2"
                .parse::<Nurl>()
                .is_err()
        );
    }
}
