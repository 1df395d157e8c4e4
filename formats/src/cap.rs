//! Tahoe capability strings (`allmydata/uri.py`): parse and format, and the keys and
//! storage index each one implies.
//!
//! A directory cap is its backing file's cap under another prefix (`URI:SSK:` becomes
//! `URI:DIR2:`, and so on). Strings this crate does not recognise parse as
//! [`Cap::Unknown`] and format back unchanged, because directories must preserve
//! children they do not understand.

use std::fmt;
use std::str::FromStr;

use swamp_proto::secrets::WriteEnabler;
use swamp_proto::{DecodeError, StorageIndex, base32};

use crate::hashutil;

/// SDMF or MDMF.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum MutableFormat {
    /// Small (one segment) mutable file.
    Sdmf,
    /// Medium (segmented) mutable file.
    Mdmf,
}

/// What a mutable cap lets its holder do, with the key that does it.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum MutableAccess {
    /// Write (and read): the write key.
    Write([u8; 16]),
    /// Read: the read key.
    Read([u8; 16]),
    /// Verify only: the storage index.
    Verify(StorageIndex),
}

/// A mutable file cap.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct MutableCap {
    /// SDMF or MDMF.
    pub format: MutableFormat,
    /// Access level and key.
    pub access: MutableAccess,
    /// SHA-256d fingerprint of the verification key.
    pub fingerprint: [u8; 32],
}

impl MutableCap {
    /// The read key (`None` for a verify cap).
    pub fn readkey(&self) -> Option<[u8; 16]> {
        match self.access {
            MutableAccess::Write(wk) => Some(hashutil::ssk_readkey_hash(&wk)),
            MutableAccess::Read(rk) => Some(rk),
            MutableAccess::Verify(_) => None,
        }
    }

    /// The write key, for a write cap.
    pub fn writekey(&self) -> Option<[u8; 16]> {
        match self.access {
            MutableAccess::Write(wk) => Some(wk),
            _ => None,
        }
    }

    /// The write enabler for this file on the server whose Foolscap tubid is `tubid`
    /// (`ssk_write_enabler_hash(writekey, tubid)`), for a write cap.
    pub fn write_enabler(&self, tubid: &[u8; 20]) -> Option<WriteEnabler> {
        self.writekey()
            .map(|wk| WriteEnabler::from_bytes(hashutil::ssk_write_enabler_hash(&wk, tubid)))
    }

    /// The storage index.
    pub fn storage_index(&self) -> StorageIndex {
        match self.access {
            MutableAccess::Verify(si) => si,
            _ => StorageIndex::from_bytes(hashutil::ssk_storage_index_hash(
                &self
                    .readkey()
                    .expect("invariant: write and read caps have a read key"),
            )),
        }
    }

    /// The read-only form of this cap (itself if already read-only).
    pub fn read_only(&self) -> Self {
        match self.readkey() {
            Some(rk) => Self {
                access: MutableAccess::Read(rk),
                ..*self
            },
            None => *self,
        }
    }
}

/// An immutable (CHK) file cap.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct ChkCap {
    /// The AES key.
    pub key: [u8; 16],
    /// Hash of the URI extension block.
    pub ueb_hash: [u8; 32],
    /// Shares needed (k).
    pub needed: u16,
    /// Shares total (N).
    pub total: u16,
    /// File size.
    pub size: u64,
}

impl ChkCap {
    /// The storage index.
    pub fn storage_index(&self) -> StorageIndex {
        StorageIndex::from_bytes(hashutil::storage_index_hash(&self.key))
    }
}

/// A CHK verify cap.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct ChkVerifierCap {
    /// The storage index.
    pub storage_index: StorageIndex,
    /// Hash of the URI extension block.
    pub ueb_hash: [u8; 32],
    /// Shares needed.
    pub needed: u16,
    /// Shares total.
    pub total: u16,
    /// File size.
    pub size: u64,
}

/// Any capability.
#[derive(Clone, PartialEq, Eq, Debug, Hash)]
pub enum Cap {
    /// A tiny file held in the cap itself.
    Lit(Vec<u8>),
    /// An immutable file.
    Chk(ChkCap),
    /// An immutable file's verify cap.
    ChkVerifier(ChkVerifierCap),
    /// A mutable file.
    Mutable(MutableCap),
    /// A directory backed by the inner file cap.
    Dir(Box<Cap>),
    /// Something this version does not know; kept verbatim.
    Unknown(String),
}

impl Cap {
    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        matches!(self, Self::Dir(_))
    }

    /// Whether this cap names a mutable file or directory.
    pub fn is_mutable(&self) -> bool {
        match self {
            Self::Mutable(_) => true,
            Self::Dir(inner) => inner.is_mutable(),
            _ => false,
        }
    }

    /// The storage index (none for LIT and unknown caps).
    pub fn storage_index(&self) -> Option<StorageIndex> {
        match self {
            Self::Lit(_) | Self::Unknown(_) => None,
            Self::Chk(c) => Some(c.storage_index()),
            Self::ChkVerifier(v) => Some(v.storage_index),
            Self::Mutable(m) => Some(m.storage_index()),
            Self::Dir(inner) => inner.storage_index(),
        }
    }

    /// The read-only form (immutable caps are already read-only).
    pub fn read_only(&self) -> Self {
        match self {
            Self::Mutable(m) => Self::Mutable(m.read_only()),
            Self::Dir(inner) => Self::Dir(Box::new(inner.read_only())),
            other => other.clone(),
        }
    }

    /// The verify cap (Tahoe's `get_verify_cap`): enough to check and verify, not to
    /// read. None for LIT and unknown caps, which have no shares.
    pub fn verify_cap(&self) -> Option<Self> {
        match self {
            Self::Lit(_) | Self::Unknown(_) => None,
            Self::Chk(c) => Some(Self::ChkVerifier(ChkVerifierCap {
                storage_index: c.storage_index(),
                ueb_hash: c.ueb_hash,
                needed: c.needed,
                total: c.total,
                size: c.size,
            })),
            Self::ChkVerifier(_) => Some(self.clone()),
            Self::Mutable(m) => Some(Self::Mutable(MutableCap {
                access: MutableAccess::Verify(m.storage_index()),
                ..*m
            })),
            Self::Dir(inner) => inner.verify_cap().map(|v| Self::Dir(Box::new(v))),
        }
    }

    /// Whether this cap grants writing.
    pub fn is_writable(&self) -> bool {
        match self {
            Self::Mutable(m) => matches!(m.access, MutableAccess::Write(_)),
            Self::Dir(inner) => inner.is_writable(),
            _ => false,
        }
    }
}

fn key16(text: &str, what: &'static str) -> Result<[u8; 16], DecodeError> {
    let bytes = base32::decode(text)?;
    bytes.try_into().map_err(|v: Vec<u8>| DecodeError::Length {
        what,
        expected: 16,
        actual: v.len(),
    })
}

fn hash32(text: &str, what: &'static str) -> Result<[u8; 32], DecodeError> {
    let bytes = base32::decode(text)?;
    bytes.try_into().map_err(|v: Vec<u8>| DecodeError::Length {
        what,
        expected: 32,
        actual: v.len(),
    })
}

fn number<T: FromStr>(text: &str, what: &str) -> Result<T, DecodeError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DecodeError::Invalid(format!(
            "{what} {text:?} is not a decimal number"
        )));
    }
    text.parse()
        .map_err(|_| DecodeError::Invalid(format!("{what} {text:?} is out of range")))
}

/// Mutable cap prefixes: (prefix, format, access kind 0 write / 1 read / 2 verify).
const MUTABLE_PREFIXES: [(&str, MutableFormat, u8); 6] = [
    ("SSK", MutableFormat::Sdmf, 0),
    ("SSK-RO", MutableFormat::Sdmf, 1),
    ("SSK-Verifier", MutableFormat::Sdmf, 2),
    ("MDMF", MutableFormat::Mdmf, 0),
    ("MDMF-RO", MutableFormat::Mdmf, 1),
    ("MDMF-Verifier", MutableFormat::Mdmf, 2),
];

/// Directory prefixes and the file prefix each wraps.
const DIR_PREFIXES: [(&str, &str); 9] = [
    ("DIR2", "SSK"),
    ("DIR2-RO", "SSK-RO"),
    ("DIR2-Verifier", "SSK-Verifier"),
    ("DIR2-MDMF", "MDMF"),
    ("DIR2-MDMF-RO", "MDMF-RO"),
    ("DIR2-MDMF-Verifier", "MDMF-Verifier"),
    ("DIR2-CHK", "CHK"),
    ("DIR2-CHK-Verifier", "CHK-Verifier"),
    ("DIR2-LIT", "LIT"),
];

fn parse_file(kind: &str, rest: &str) -> Result<Cap, DecodeError> {
    let fields: Vec<&str> = rest.split(':').collect();
    if kind == "LIT" {
        return Ok(Cap::Lit(base32::decode(rest)?));
    }
    if kind == "CHK" || kind == "CHK-Verifier" {
        let [a, h, k, n, size] = fields.as_slice() else {
            return Err(DecodeError::Invalid(format!(
                "URI:{kind} needs 5 fields, got {}",
                fields.len()
            )));
        };
        let (needed, total, size) = (number(k, "k")?, number(n, "N")?, number(size, "size")?);
        let ueb_hash = hash32(h, "URI extension hash")?;
        return Ok(if kind == "CHK" {
            Cap::Chk(ChkCap {
                key: key16(a, "CHK key")?,
                ueb_hash,
                needed,
                total,
                size,
            })
        } else {
            Cap::ChkVerifier(ChkVerifierCap {
                storage_index: StorageIndex::from_bytes(key16(a, "storage index")?),
                ueb_hash,
                needed,
                total,
                size,
            })
        });
    }
    let Some((_, format, access)) = MUTABLE_PREFIXES.iter().find(|(p, _, _)| *p == kind) else {
        return Err(DecodeError::Invalid(format!("unknown cap kind URI:{kind}")));
    };
    // MDMF caps may carry extra fields (old extension hints); SDMF caps may not.
    let ok_len = fields.len() == 2 || (*format == MutableFormat::Mdmf && fields.len() > 2);
    if !ok_len {
        return Err(DecodeError::Invalid(format!(
            "URI:{kind} needs 2 fields, got {}",
            fields.len()
        )));
    }
    let key = key16(fields[0], "mutable key")?;
    let access = match access {
        0 => MutableAccess::Write(key),
        1 => MutableAccess::Read(key),
        _ => MutableAccess::Verify(StorageIndex::from_bytes(key)),
    };
    Ok(Cap::Mutable(MutableCap {
        format: *format,
        access,
        fingerprint: hash32(fields[1], "fingerprint")?,
    }))
}

impl Cap {
    /// Parses a cap, returning an error for a recognised kind with bad fields.
    ///
    /// # Errors
    /// [`DecodeError`] naming the bad field.
    pub fn parse_strict(text: &str) -> Result<Self, DecodeError> {
        let text = text.trim();
        let rest = text.strip_prefix("URI:").ok_or_else(|| {
            DecodeError::Invalid(format!("{text:?} is not a Tahoe cap (URI:...)"))
        })?;
        let (kind, fields) = rest
            .split_once(':')
            .ok_or_else(|| DecodeError::Invalid(format!("{text:?} has no fields")))?;
        if let Some((_, inner)) = DIR_PREFIXES.iter().find(|(d, _)| *d == kind) {
            return Ok(Cap::Dir(Box::new(parse_file(inner, fields)?)));
        }
        parse_file(kind, fields)
    }

    /// Parses a cap as a directory entry does: recognised kinds must be well formed;
    /// anything else is kept as [`Cap::Unknown`].
    pub fn parse_lenient(text: &str) -> Result<Self, DecodeError> {
        match Self::parse_strict(text) {
            Err(DecodeError::Invalid(msg))
                if msg.starts_with("unknown cap kind") || msg.contains("is not a Tahoe cap") =>
            {
                Ok(Cap::Unknown(text.to_string()))
            }
            other => other,
        }
    }
}

impl FromStr for Cap {
    type Err = DecodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_strict(s)
    }
}

fn file_kind(cap: &Cap) -> Option<&'static str> {
    Some(match cap {
        Cap::Lit(_) => "LIT",
        Cap::Chk(_) => "CHK",
        Cap::ChkVerifier(_) => "CHK-Verifier",
        Cap::Mutable(m) => {
            let a = match m.access {
                MutableAccess::Write(_) => 0,
                MutableAccess::Read(_) => 1,
                MutableAccess::Verify(_) => 2,
            };
            MUTABLE_PREFIXES
                .iter()
                .find(|(_, f, x)| *f == m.format && *x == a)
                .map(|(p, _, _)| *p)?
        }
        Cap::Dir(_) | Cap::Unknown(_) => return None,
    })
}

fn file_fields(cap: &Cap) -> String {
    match cap {
        Cap::Lit(data) => base32::encode(data),
        Cap::Chk(c) => format!(
            "{}:{}:{}:{}:{}",
            base32::encode(&c.key),
            base32::encode(&c.ueb_hash),
            c.needed,
            c.total,
            c.size
        ),
        Cap::ChkVerifier(v) => format!(
            "{}:{}:{}:{}:{}",
            v.storage_index,
            base32::encode(&v.ueb_hash),
            v.needed,
            v.total,
            v.size
        ),
        Cap::Mutable(m) => {
            let key = match m.access {
                MutableAccess::Write(k) | MutableAccess::Read(k) => base32::encode(&k),
                MutableAccess::Verify(si) => si.to_base32(),
            };
            format!("{key}:{}", base32::encode(&m.fingerprint))
        }
        Cap::Dir(_) | Cap::Unknown(_) => String::new(),
    }
}

impl fmt::Display for Cap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cap::Unknown(text) => f.write_str(text),
            Cap::Dir(inner) => {
                let file = file_kind(inner).unwrap_or("?");
                let dir = DIR_PREFIXES
                    .iter()
                    .find(|(_, fk)| *fk == file)
                    .map_or("?", |(d, _)| *d);
                write!(f, "URI:{dir}:{}", file_fields(inner))
            }
            other => write!(
                f,
                "URI:{}:{}",
                file_kind(other).unwrap_or("?"),
                file_fields(other)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaa";
    const H: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbba";

    #[test]
    fn verify_caps_keep_the_storage_index_and_drop_the_keys() {
        let h = H.replace('b', "a");
        for (cap, verifier) in [
            (format!("URI:SSK:{K}:{h}"), "URI:SSK-Verifier:"),
            (format!("URI:MDMF-RO:{K}:{h}"), "URI:MDMF-Verifier:"),
            (format!("URI:DIR2-MDMF:{K}:{h}"), "URI:DIR2-MDMF-Verifier:"),
            (format!("URI:CHK:{K}:{h}:3:10:1234"), "URI:CHK-Verifier:"),
            (
                format!("URI:DIR2-CHK:{K}:{h}:3:10:1234"),
                "URI:DIR2-CHK-Verifier:",
            ),
        ] {
            let cap = Cap::parse_strict(&cap).unwrap();
            let v = cap.verify_cap().unwrap();
            assert!(v.to_string().starts_with(verifier), "{v}");
            assert_eq!(v.storage_index(), cap.storage_index());
            assert_eq!(v.verify_cap(), Some(v.clone()));
        }
        assert_eq!(Cap::Lit(b"x".to_vec()).verify_cap(), None);
    }

    #[test]
    fn every_kind_round_trips() {
        let h = H.replace('b', "a");
        for text in [
            format!("URI:CHK:{K}:{h}:3:10:1234"),
            format!("URI:CHK-Verifier:{K}:{h}:3:10:1234"),
            "URI:LIT:mzxw6".to_string(),
            "URI:LIT:".to_string(),
            format!("URI:SSK:{K}:{h}"),
            format!("URI:SSK-RO:{K}:{h}"),
            format!("URI:SSK-Verifier:{K}:{h}"),
            format!("URI:MDMF:{K}:{h}"),
            format!("URI:MDMF-RO:{K}:{h}"),
            format!("URI:MDMF-Verifier:{K}:{h}"),
            format!("URI:DIR2:{K}:{h}"),
            format!("URI:DIR2-RO:{K}:{h}"),
            format!("URI:DIR2-Verifier:{K}:{h}"),
            format!("URI:DIR2-MDMF:{K}:{h}"),
            format!("URI:DIR2-MDMF-RO:{K}:{h}"),
            format!("URI:DIR2-MDMF-Verifier:{K}:{h}"),
            format!("URI:DIR2-CHK:{K}:{h}:1:3:99"),
            format!("URI:DIR2-CHK-Verifier:{K}:{h}:1:3:99"),
            "URI:DIR2-LIT:mzxw6".to_string(),
        ] {
            let cap: Cap = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(cap.to_string(), text);
        }
    }

    #[test]
    fn keys_and_storage_indexes_follow_tahoe() {
        let h = H.replace('b', "a");
        let write: Cap = format!("URI:SSK:{K}:{h}").parse().unwrap();
        let read = write.read_only();
        assert!(read.to_string().starts_with("URI:SSK-RO:"));
        assert_eq!(write.storage_index(), read.storage_index());
        // readkey = ssk_readkey_hash(writekey); si = ssk_storage_index_hash(readkey)
        let rk = hashutil::ssk_readkey_hash(&[0; 16]);
        assert_eq!(
            write.storage_index().unwrap().as_bytes(),
            &hashutil::ssk_storage_index_hash(&rk)
        );
        assert!(write.is_writable() && !read.is_writable() && write.is_mutable());
        let dir: Cap = format!("URI:DIR2-MDMF:{K}:{h}").parse().unwrap();
        assert!(dir.is_dir() && dir.read_only().to_string().starts_with("URI:DIR2-MDMF-RO:"));
        let chk: Cap = format!("URI:CHK:{K}:{h}:3:10:5").parse().unwrap();
        assert_eq!(
            chk.storage_index().unwrap().as_bytes(),
            &hashutil::storage_index_hash(&[0; 16])
        );
    }

    #[test]
    fn mdmf_extra_fields_are_ignored_and_unknowns_kept() {
        let h = H.replace('b', "a");
        let cap: Cap = format!("URI:MDMF:{K}:{h}:3:131073").parse().unwrap();
        assert_eq!(cap.to_string(), format!("URI:MDMF:{K}:{h}"));
        assert!(format!("URI:SSK:{K}:{h}:3").parse::<Cap>().is_err());
        assert_eq!(
            Cap::parse_lenient("URI:NEWKIND:xyz").unwrap(),
            Cap::Unknown("URI:NEWKIND:xyz".into())
        );
        assert!(
            Cap::parse_lenient(&format!("URI:CHK:{K}:short:3:10:5")).is_err(),
            "known kind, bad field"
        );
        assert!("URI:CHK:AAAA".parse::<Cap>().is_err());
    }
}
