//! The node's identity: its TLS certificate (whose key the NURL pins), its Foolscap
//! tubid, its storage swissnum, its Ed25519 server id and its permutation seed, all kept
//! in the node directory where Tahoe keeps them, so a Python node directory keeps its
//! NURL, tubid and write enablers when Swamp serves it.
//!
//! - `private/node.pem`: certificate and private key, PEM. The tubid is the SHA-1 of the
//!   certificate's DER (Foolscap's rule); clients derive lease secrets and write enablers
//!   from it, so it must never change for the life of the storage.
//! - `private/storage.furl`: `pb://<tubid>@<hints>/<swissnum>`; the swissnum is also the
//!   NURL's path and the `Authorization` secret.
//! - `private/node.privkey`, `node.pubkey`: Ed25519 keys (`priv-v0-`/`pub-v0-` + base32);
//!   the server id is `v0-<base32 public key>`.
//! - `permutation-seed`: base32; where clients place this server in each file's ring.
//!
//! Missing pieces are created; existing ones are never replaced.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use ring::signature::{Ed25519KeyPair, KeyPair};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use swamp_proto::secrets::Swissnum;
use swamp_proto::{Nurl, SpkiHash, base32};

use super::settings::LocationHint;

/// A problem with the node's identity files.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// A file could not be read or written.
    #[error("cannot {op} {path}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A file that must exist does not (the node has never run).
    #[error("{0} does not exist: run `swamp-server run` or `create-node` on this directory first")]
    Missing(PathBuf),
    /// A file's content is not what Tahoe would have written.
    #[error("{path} is malformed: {reason}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Whether loading may create and record missing identity files.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Access {
    /// Create what is missing and record the fURL and node id (`run`, `create-node`).
    CreateMissing,
    /// Change nothing; a missing file is an error (`nurl`, `announcement`, which may
    /// run beside a serving node).
    ReadOnly,
}

/// Everything that identifies this storage node to clients.
pub struct NodeIdentity {
    /// The one self-signed certificate, DER.
    pub certificate: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
    /// SHA-256 of the certificate's SubjectPublicKeyInfo (the NURL pin).
    pub spki_hash: SpkiHash,
    /// Foolscap tubid: SHA-1 of the certificate DER.
    pub tubid: [u8; 20],
    /// The storage swissnum.
    pub swissnum: Swissnum,
    /// `v0-<base32 Ed25519 public key>`.
    pub server_id: String,
    /// Base32 permutation seed.
    pub permutation_seed: String,
    /// Opens the operator's activity stream (`private/operator.secret`).
    pub operator_secret: OperatorSecret,
}

/// The operator's secret for the activity stream: not the swissnum, which every client
/// holds.
#[derive(Clone)]
pub struct OperatorSecret(String);

/// The environment variable naming a file with the operator secret; when it is set,
/// that file is used instead of `private/operator.secret`.
pub const OPERATOR_SECRET_FILE_VAR: &str = "SWAMP_OPERATOR_SECRET_FILE";

/// The shortest operator secret a node accepts (a generated one has 32 characters).
pub const MIN_OPERATOR_SECRET_LEN: usize = 16;

impl OperatorSecret {
    fn random() -> Self {
        Self(base32::encode(&rand::random::<[u8; 20]>()))
    }

    /// The secret in `text` (surrounding white space ignored).
    ///
    /// # Errors
    /// A reason for a person if it is shorter than [`MIN_OPERATOR_SECRET_LEN`]: an
    /// empty file must never open the activity stream to anyone.
    pub fn parse(text: &str) -> Result<Self, String> {
        let secret = text.trim();
        if secret.chars().count() < MIN_OPERATOR_SECRET_LEN {
            return Err(format!(
                "the operator secret has {} characters; it needs at least {MIN_OPERATOR_SECRET_LEN} (delete the file to have a new one made)",
                secret.chars().count()
            ));
        }
        Ok(Self(secret.to_string()))
    }

    /// The secret in the file at `path` (a secret the container runtime mounts, named
    /// by [`OPERATOR_SECRET_FILE_VAR`]).
    ///
    /// # Errors
    /// [`IdentityError`] if it cannot be read or is too short.
    pub fn from_file(path: &Path) -> Result<Self, IdentityError> {
        Self::parse(&String::from_utf8_lossy(&read(path)?))
            .map_err(|reason| malformed(path, reason))
    }

    /// The secret's text (for the operator's eyes only).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `presented` is this secret (constant time). Nothing matches a secret
    /// shorter than the minimum, should one ever be made.
    pub fn matches(&self, presented: &str) -> bool {
        self.0.len() >= MIN_OPERATOR_SECRET_LEN
            && swamp_proto::secrets::constant_time_eq(
                self.0.as_bytes(),
                presented.trim().as_bytes(),
            )
    }
}

impl std::fmt::Debug for OperatorSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OperatorSecret(<redacted>)")
    }
}

impl NodeIdentity {
    /// An in-memory identity from a PEM certificate and key (tests, tools).
    ///
    /// # Errors
    /// [`IdentityError::Malformed`] if either does not parse.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, IdentityError> {
        let (certificate, key) = parse_pem(
            cert_pem.as_bytes(),
            key_pem.as_bytes(),
            Path::new("<memory>"),
        )?;
        let seed: [u8; 32] = rand::random();
        let pubkey = ed25519_public(&seed, Path::new("<memory>"))?;
        Self::assemble(
            certificate,
            key,
            Swissnum::new(new_swissnum()).map_err(|e| malformed("<memory>", e))?,
            pubkey,
            None,
        )
    }

    /// A fresh identity held only in memory (tests, benchmarks).
    ///
    /// # Errors
    /// Only if key generation fails.
    pub fn ephemeral() -> Result<Self, IdentityError> {
        let (cert_pem, key_pem) = generate_certificate()?;
        Self::from_pem(&cert_pem, &key_pem)
    }

    /// Loads the identity from a node directory, creating whatever is missing, and
    /// records `private/storage.furl` for `location` (same swissnum).
    ///
    /// # Errors
    /// [`IdentityError`] naming the file that cannot be read, written or parsed.
    pub fn load_or_create(
        node_dir: &Path,
        has_shares: bool,
        location: &[LocationHint],
    ) -> Result<Self, IdentityError> {
        Self::load(node_dir, has_shares, location, Access::CreateMissing)
    }

    /// Loads the identity; with [`Access::ReadOnly`] nothing is written.
    ///
    /// # Errors
    /// [`IdentityError`] naming the file that is missing, unreadable or malformed.
    pub fn load(
        node_dir: &Path,
        has_shares: bool,
        location: &[LocationHint],
        access: Access,
    ) -> Result<Self, IdentityError> {
        let create = access == Access::CreateMissing;
        let private = node_dir.join("private");
        let pem_path = private.join("node.pem");
        let furl_path = private.join("storage.furl");
        let privkey_path = private.join("node.privkey");
        if !create
            && let Some(missing) = [&pem_path, &furl_path, &privkey_path]
                .into_iter()
                .find(|p| !p.exists())
        {
            return Err(IdentityError::Missing(missing.clone()));
        }
        if create {
            create_private_dir(&private)?;
        }
        if !pem_path.exists() {
            let (cert, key) = generate_certificate()?;
            write_private(&pem_path, &format!("{cert}{key}"))?;
        }
        let pem = read(&pem_path)?;
        let (certificate, key) = parse_pem(&pem, &pem, &pem_path)?;

        let swissnum = if furl_path.exists() {
            let text = String::from_utf8_lossy(&read(&furl_path)?)
                .trim()
                .to_string();
            let swiss = text
                .rsplit_once('/')
                .map(|(_, s)| s.to_string())
                .ok_or_else(|| malformed(&furl_path, "expected pb://TUBID@HINTS/SWISSNUM"))?;
            Swissnum::new(swiss).map_err(|e| malformed(&furl_path, e))?
        } else {
            Swissnum::new(new_swissnum()).map_err(|e| malformed(&furl_path, e))?
        };

        if !privkey_path.exists() {
            let seed: [u8; 32] = rand::random();
            write_private(
                &privkey_path,
                &format!("priv-v0-{}\n", base32::encode(&seed)),
            )?;
        }
        let privkey = String::from_utf8_lossy(&read(&privkey_path)?)
            .trim()
            .to_string();
        let seed = privkey
            .strip_prefix("priv-v0-")
            .and_then(|s| base32::decode(s).ok())
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| malformed(&privkey_path, "expected priv-v0-<52 base32 characters>"))?;
        let pubkey = ed25519_public(&seed, &privkey_path)?;
        let pubkey_path = node_dir.join("node.pubkey");
        if create && !pubkey_path.exists() {
            write_public(
                &pubkey_path,
                &format!("pub-v0-{}\n", base32::encode(&pubkey)),
            )?;
        }

        let seed_path = node_dir.join("permutation-seed");
        let recorded_seed = if seed_path.exists() {
            Some(
                String::from_utf8_lossy(&read(&seed_path)?)
                    .trim()
                    .to_string(),
            )
        } else {
            None
        };
        let mut identity =
            Self::assemble(certificate, key, swissnum, pubkey, recorded_seed.clone())?;
        if recorded_seed.is_none() {
            // Tahoe's rule: a server that already holds shares keeps the tubid as its
            // seed (its clients placed shares by it); a new one uses its public key.
            if has_shares {
                identity.permutation_seed = base32::encode(&identity.tubid);
            }
            if create {
                write_public(&seed_path, &format!("{}\n", identity.permutation_seed))?;
            }
        }
        let operator_path = private.join("operator.secret");
        if create && !operator_path.exists() {
            write_private(
                &operator_path,
                &format!("{}\n", identity.operator_secret.expose()),
            )?;
        }
        if operator_path.exists() {
            identity.operator_secret =
                OperatorSecret::parse(&String::from_utf8_lossy(&read(&operator_path)?))
                    .map_err(|reason| malformed(&operator_path, reason))?;
        }
        if !create {
            return Ok(identity);
        }
        write_public(
            &node_dir.join("my_nodeid"),
            &format!("{}\n", base32::encode(&identity.tubid)),
        )?;
        identity.write_furl(node_dir, location)?;
        Ok(identity)
    }

    fn assemble(
        certificate: CertificateDer<'static>,
        key: PrivateKeyDer<'static>,
        swissnum: Swissnum,
        pubkey: [u8; 32],
        permutation_seed: Option<String>,
    ) -> Result<Self, IdentityError> {
        let spki_hash = spki_hash_of(&certificate)?;
        let tubid: [u8; 20] =
            ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &certificate)
                .as_ref()
                .try_into()
                .expect("invariant: SHA-1 is 20 bytes");
        Ok(Self {
            certificate,
            key,
            spki_hash,
            tubid,
            swissnum,
            server_id: format!("v0-{}", base32::encode(&pubkey)),
            permutation_seed: permutation_seed.unwrap_or_else(|| base32::encode(&pubkey)),
            operator_secret: OperatorSecret::random(),
        })
    }

    /// The private key, for the TLS server configuration.
    pub fn tls_key(&self) -> PrivateKeyDer<'static> {
        self.key.clone_key()
    }

    /// One NURL per TCP location hint.
    pub fn nurls(&self, location: &[LocationHint]) -> Vec<Nurl> {
        location
            .iter()
            .map(|hint| Nurl {
                spki_hash: self.spki_hash,
                host: hint.host.clone(),
                port: hint.port,
                swissnum: self.swissnum.clone(),
            })
            .collect()
    }

    /// The storage fURL Tahoe clients require in an announcement (they take only the
    /// tubid from it when NURLs are present).
    pub fn furl(&self, location: &[LocationHint]) -> String {
        let hints: Vec<String> = location
            .iter()
            .map(|h| format!("tcp:{}:{}", h.host, h.port))
            .collect();
        format!(
            "pb://{}@{}/{}",
            base32::encode(&self.tubid),
            hints.join(","),
            self.swissnum.expose()
        )
    }

    /// A `servers.yaml` stanza (to go under `storage:`) for a Tahoe client, with the
    /// grid-manager certificates the node announces.
    pub fn announcement_yaml(
        &self,
        nickname: &str,
        location: &[LocationHint],
        certificates: &super::grid_manager::GridCertificates,
    ) -> String {
        let nurls: Vec<String> = self
            .nurls(location)
            .iter()
            .map(|n| format!("      - \"{n}\"\n"))
            .collect();
        format!(
            "{}:\n  ann:\n    nickname: \"{}\"\n    anonymous-storage-FURL: \"{}\"\n    anonymous-storage-NURLs:\n{}    permutation-seed-base32: \"{}\"\n{}",
            self.server_id,
            nickname.replace(['"', '\\'], ""),
            self.furl(location),
            nurls.concat(),
            self.permutation_seed,
            certificates.announcement_yaml(),
        )
    }

    /// Rewrites `private/storage.furl` for the current location (same swissnum).
    ///
    /// # Errors
    /// [`IdentityError::Io`] if it cannot be written.
    pub fn write_furl(
        &self,
        node_dir: &Path,
        location: &[LocationHint],
    ) -> Result<(), IdentityError> {
        write_private(
            &node_dir.join("private").join("storage.furl"),
            &format!("{}\n", self.furl(location)),
        )
    }
}

impl std::fmt::Debug for NodeIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeIdentity")
            .field("server_id", &self.server_id)
            .field("tubid", &base32::encode(&self.tubid))
            .field("spki_hash", &self.spki_hash)
            .field("swissnum", &self.swissnum)
            .finish_non_exhaustive()
    }
}

/// SHA-256 of a certificate's SubjectPublicKeyInfo.
///
/// # Errors
/// [`IdentityError::Malformed`] if the DER is not a certificate.
pub fn spki_hash_of(certificate: &[u8]) -> Result<SpkiHash, IdentityError> {
    let (_, cert) = x509_parser::parse_x509_certificate(certificate).map_err(|e| {
        malformed(
            "private/node.pem",
            format!("certificate does not parse: {e}"),
        )
    })?;
    Ok(SpkiHash::of_spki_der(cert.tbs_certificate.subject_pki.raw))
}

fn generate_certificate() -> Result<(String, String), IdentityError> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| malformed("<new key>", e.to_string()))?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
        .map_err(|e| malformed("<new certificate>", e.to_string()))?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "newpb_thingy");
    let cert = params
        .self_signed(&key)
        .map_err(|e| malformed("<new certificate>", e.to_string()))?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn parse_pem(
    cert_pem: &[u8],
    key_pem: &[u8],
    path: &Path,
) -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), IdentityError> {
    let cert = CertificateDer::pem_slice_iter(cert_pem)
        .next()
        .ok_or_else(|| malformed(path, "no CERTIFICATE block"))?
        .map_err(|e| malformed(path, format!("bad CERTIFICATE block: {e}")))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| malformed(path, format!("no usable PRIVATE KEY block: {e}")))?;
    Ok((cert, key))
}

fn ed25519_public(seed: &[u8; 32], path: &Path) -> Result<[u8; 32], IdentityError> {
    let pair = Ed25519KeyPair::from_seed_unchecked(seed)
        .map_err(|e| malformed(path, format!("bad Ed25519 key: {e}")))?;
    pair.public_key()
        .as_ref()
        .try_into()
        .map_err(|_| malformed(path, "Ed25519 public key is not 32 bytes"))
}

/// A new swissnum: 160 random bits in base32, as Foolscap makes them.
fn new_swissnum() -> String {
    base32::encode(&rand::random::<[u8; 20]>())
}

fn malformed(path: impl AsRef<Path>, reason: impl ToString) -> IdentityError {
    IdentityError::Malformed {
        path: path.as_ref().to_path_buf(),
        reason: reason.to_string(),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, IdentityError> {
    fs::read(path).map_err(|source| IdentityError::Io {
        op: "read",
        path: path.to_path_buf(),
        source,
    })
}

fn create_private_dir(path: &Path) -> Result<(), IdentityError> {
    use std::os::unix::fs::DirBuilderExt;
    if path.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|source| IdentityError::Io {
            op: "create",
            path: path.to_path_buf(),
            source,
        })
}

fn write_with_mode(path: &Path, contents: &str, mode: u32) -> Result<(), IdentityError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io_err = |source| IdentityError::Io {
        op: "write",
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io_err)?;
    f.write_all(contents.as_bytes()).map_err(io_err)?;
    f.sync_all().map_err(io_err)?;
    fs::rename(&tmp, path).map_err(io_err)
}

fn write_private(path: &Path, contents: &str) -> Result<(), IdentityError> {
    write_with_mode(path, contents, 0o600)
}

fn write_public(path: &Path, contents: &str) -> Result<(), IdentityError> {
    write_with_mode(path, contents, 0o644)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_identity_is_stable_across_loads() {
        let dir = tempfile::tempdir().unwrap();
        let hint = [LocationHint {
            host: "127.0.0.1".into(),
            port: 5,
        }];
        let a = NodeIdentity::load_or_create(dir.path(), false, &hint).unwrap();
        let b = NodeIdentity::load_or_create(dir.path(), false, &hint).unwrap();
        assert_eq!(a.tubid, b.tubid);
        assert_eq!(a.spki_hash, b.spki_hash);
        assert_eq!(a.swissnum, b.swissnum);
        assert_eq!(a.server_id, b.server_id);
        assert_eq!(a.permutation_seed, b.permutation_seed);
        assert_eq!(a.server_id.len(), 3 + 52);
        let nurl = a.nurls(&hint)[0].to_string();
        assert!(
            nurl.starts_with(&format!("pb://{}@127.0.0.1:5/", a.spki_hash)),
            "{nurl}"
        );
        assert!(a.furl(&hint).starts_with(&format!(
            "pb://{}@tcp:127.0.0.1:5/",
            base32::encode(&a.tubid)
        )));
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &fs::metadata(dir.path().join("private/node.pem"))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o077, 0, "node.pem is private");
    }

    #[test]
    fn tubid_is_sha1_of_certificate_der() {
        let id = NodeIdentity::ephemeral().unwrap();
        let expect = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &id.certificate);
        assert_eq!(&id.tubid[..], expect.as_ref());
    }

    #[test]
    fn a_short_operator_secret_is_refused_and_never_matches() {
        for text in ["", "\n", "  short  \n"] {
            let e = OperatorSecret::parse(text).unwrap_err();
            assert!(e.contains("at least 16"), "{e}");
        }
        let secret = OperatorSecret::parse(" 0123456789abcdef\n").unwrap();
        assert!(secret.matches("0123456789abcdef"));
        assert!(!secret.matches(""));
        assert!(
            !OperatorSecret(String::new()).matches(""),
            "an empty secret opens nothing"
        );
    }
}
