//! Grid-manager certificates, as Tahoe-LAFS 1.20 defines them (`docs/managed-grid.rst`).
//!
//! A managed grid's operator holds an Ed25519 key, the grid manager, and signs for each
//! storage node a certificate naming the node's own Ed25519 key (`node.pubkey`) and an
//! expiry. The node announces its certificates; clients configured with the grid
//! manager's key (`[grid_managers]`) upload only to nodes with a valid, unexpired one.
//!
//! In `tahoe.cfg`: `[storage] grid_management = true` and `[grid_manager_certificates]`
//! with `NAME = FILE` entries (paths relative to the node directory), as `tahoe admin
//! add-grid-manager-cert` writes them. A file holds a JSON object with exactly two
//! strings: `certificate`, the signed bytes (compact JSON with sorted keys: `expires`,
//! an ISO 8601 time with its zone; `public_key`, `pub-v0-<base32>`; `version`, 1) and
//! `signature`, the grid manager's signature over those bytes in base32. The
//! announcement carries the objects unchanged, under `grid-manager-certificates`.
//!
//! Tahoe announces whatever the files hold (its ticket 3977). Swamp checks them at
//! start, since a certificate clients cannot use is a node that silently gets no
//! uploads:
//! - refused (the node does not start): a file missing, unreadable, too large or not
//!   of that shape; a signature that is not 64 bytes of base32; a time without a zone
//!   (Tahoe's clients fail comparing it); a certificate for another key than this
//!   node's; and, when `tahoe.cfg` has a `[grid_managers]` section (the grid managers
//!   this node trusts, `NAME = pub-v0-...`, Tahoe's client-side section), one signed by
//!   none of them. The grid manager's key is not otherwise in a storage node's
//!   configuration, so without that section the signature's shape is all that can be
//!   checked.
//! - accepted and reported: an expired certificate (error in the log, and its state),
//!   or one expiring within [`EXPIRY_WARNING`] (warning). Expiry alone does not stop
//!   the node: the grid manager restricts uploads only, and a node that refused to
//!   start would also stop serving downloads of the shares it holds.
//!
//! [`watch_expiry`] logs again whenever a certificate's state changes while the node
//! runs, and once a day while one is expiring or expired; [`GridCertificates::statuses`]
//! gives each certificate's name, expiry and state for metrics and status pages.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ring::signature::{ED25519, UnparsedPublicKey};
use swamp_proto::base32;

use super::config::{Config, ConfigError};
use crate::backend::Clock;

/// A certificate expiring within this (14 days) is logged as a warning: time for the
/// operator to ask the grid manager for a new one.
pub const EXPIRY_WARNING: Duration = Duration::from_secs(14 * 86_400);

/// The largest certificate file read (Tahoe's grid manager writes about 400 bytes).
const MAX_CERTIFICATE_FILE: u64 = 64 * 1024;

/// The grid-manager settings of `tahoe.cfg`, parsed but not yet checked against the
/// certificate files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GridManagerConfig {
    /// `[storage] grid_management`: certificates are announced.
    pub enabled: bool,
    /// `[grid_manager_certificates]`: name and file (resolved against the node
    /// directory), sorted by name.
    pub certificates: Vec<(String, PathBuf)>,
    /// `[grid_managers]`: name and Ed25519 public key of each grid manager whose
    /// signature this node's certificates must carry (one of them), sorted by name.
    pub trusted: Vec<(String, [u8; 32])>,
}

/// Parses a grid manager's public key as Tahoe writes it: `pub-v0-<base32>`.
///
/// # Errors
/// A reason for a person.
pub fn parse_public_key(text: &str) -> Result<[u8; 32], String> {
    text.trim()
        .strip_prefix("pub-v0-")
        .and_then(|b| base32::decode(b).ok())
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| {
            format!("{text:?} is not an Ed25519 public key like pub-v0-<52 base32 characters>")
        })
}

/// One certificate, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GridCertificate {
    /// Its name in `[grid_manager_certificates]`.
    pub name: String,
    /// Its file.
    pub path: PathBuf,
    /// When it expires, Unix seconds (fractions dropped).
    pub expires: i64,
    /// `expires` as the certificate states it.
    pub expires_text: String,
    /// The `[grid_managers]` entry whose key signed it; `None` when none is configured.
    pub signed_by: Option<String>,
    /// That grid manager's key (`pub-v0-<base32>`); `None` when none is configured
    /// (the signature's shape was then all that could be checked).
    pub grid_manager_key: Option<String>,
    /// The signed JSON text, announced unchanged.
    certificate: String,
    /// The signature's base32, announced unchanged.
    signature: String,
}

/// Where a certificate stands at some moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CertificateState {
    /// Expires later than [`EXPIRY_WARNING`] from now.
    Valid,
    /// Expires within [`EXPIRY_WARNING`].
    Expiring,
    /// Expired: clients no longer count it.
    Expired,
}

impl CertificateState {
    /// Every state, for counts by state that show zeros too.
    pub const ALL: [Self; 3] = [Self::Valid, Self::Expiring, Self::Expired];

    /// Whether clients still count the certificate (valid or expiring).
    pub fn is_usable(self) -> bool {
        matches!(self, Self::Valid | Self::Expiring)
    }

    /// `valid`, `expiring` or `expired` (for metrics labels and status pages).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::Expiring => "expiring",
            Self::Expired => "expired",
        }
    }
}

/// A certificate's name, expiry, signer and state at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateStatus {
    /// Its name in `[grid_manager_certificates]`.
    pub name: String,
    /// Expiry, Unix seconds.
    pub expires: i64,
    /// Seconds from the moment asked about to the expiry; negative once expired.
    pub seconds_left: i64,
    /// State at the moment asked about.
    pub state: CertificateState,
    /// The `[grid_managers]` entry whose key verified its signature; `None` when
    /// `[grid_managers]` is absent and the signature was not checked.
    pub signed_by: Option<String>,
    /// That grid manager's key (`pub-v0-<base32>`), when checked.
    pub grid_manager_key: Option<String>,
}

/// The node's grid-manager certificates, checked ([`load_certificates`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GridCertificates {
    /// `[storage] grid_management`: the announcement carries the certificates (an
    /// empty list when there are none, as Tahoe's does).
    pub enabled: bool,
    /// Every configured certificate, sorted by name; empty when not `enabled`.
    pub certificates: Vec<GridCertificate>,
    /// Entries of `[grid_manager_certificates]` left unread because grid management is
    /// off (logged, since the operator probably meant to announce them).
    pub ignored: usize,
}

/// Reads and checks the certificates `config` names, for this node's server id
/// (`v0-<base32 Ed25519 public key>`). Callable again on reload: it reads the files
/// afresh and changes nothing.
///
/// # Errors
/// [`ConfigError::Certificate`] naming the certificate, its file and the problem.
pub fn load_certificates(
    config: &Config,
    server_id: &str,
) -> Result<GridCertificates, ConfigError> {
    let gm = &config.grid_manager;
    if !gm.enabled {
        return Ok(GridCertificates {
            enabled: false,
            certificates: Vec::new(),
            ignored: gm.certificates.len(),
        });
    }
    let expected_key = format!("pub-{server_id}");
    let certificates = gm
        .certificates
        .iter()
        .map(|(name, path)| {
            load_one(name, path, &expected_key, &gm.trusted).map_err(|reason| {
                ConfigError::Certificate {
                    name: name.clone(),
                    path: path.clone(),
                    reason,
                }
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(GridCertificates {
        enabled: true,
        certificates,
        ignored: 0,
    })
}

fn load_one(
    name: &str,
    path: &Path,
    expected_key: &str,
    trusted: &[(String, [u8; 32])],
) -> Result<GridCertificate, String> {
    let bytes = read_bounded(path)?;
    let outer: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| format!("not JSON ({e}); expected a grid manager's certificate"))?;
    let fields = outer
        .as_object()
        .filter(|o| o.len() == 2)
        .and_then(|o| {
            Some((
                o.get("certificate")?.as_str()?,
                o.get("signature")?.as_str()?,
            ))
        })
        .ok_or(
            "expected a JSON object with exactly two strings, \"certificate\" and \"signature\"",
        )?;
    let (certificate, signature) = fields;
    let signature_bytes = base32::decode(signature)
        .ok()
        .filter(|s| s.len() == 64)
        .ok_or("\"signature\" is not 64 bytes in base32")?;
    let inner: serde_json::Value = serde_json::from_str(certificate)
        .map_err(|e| format!("\"certificate\" is not JSON ({e})"))?;
    let version = inner.get("version").and_then(serde_json::Value::as_u64);
    if version != Some(1) {
        return Err(format!(
            "certificate version {} is not 1, the only one Tahoe 1.20 knows",
            inner.get("version").unwrap_or(&serde_json::Value::Null)
        ));
    }
    let public_key = inner
        .get("public_key")
        .and_then(serde_json::Value::as_str)
        .ok_or("the certificate has no \"public_key\" string")?;
    if public_key != expected_key {
        return Err(format!(
            "it certifies {public_key}, not this node's key {expected_key} (node.pubkey): clients would ignore it"
        ));
    }
    let expires_text = inner
        .get("expires")
        .and_then(serde_json::Value::as_str)
        .ok_or("the certificate has no \"expires\" string")?;
    let expires = parse_expires(expires_text)?;
    let (signed_by, grid_manager_key) = if trusted.is_empty() {
        (None, None)
    } else {
        let signer = trusted.iter().find(|(_, key)| {
            UnparsedPublicKey::new(&ED25519, key)
                .verify(certificate.as_bytes(), &signature_bytes)
                .is_ok()
        });
        match signer {
            Some((gm_name, key)) => (
                Some(gm_name.clone()),
                Some(format!("pub-v0-{}", base32::encode(key))),
            ),
            None => {
                let names: Vec<&str> = trusted.iter().map(|(n, _)| n.as_str()).collect();
                return Err(format!(
                    "not signed by any grid manager in [grid_managers] ({})",
                    names.join(", ")
                ));
            }
        }
    };
    Ok(GridCertificate {
        name: name.to_string(),
        path: path.to_path_buf(),
        expires,
        expires_text: expires_text.to_string(),
        signed_by,
        grid_manager_key,
        certificate: certificate.to_string(),
        signature: signature.to_string(),
    })
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read it: {e}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_CERTIFICATE_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read it: {e}"))?;
    if bytes.len() as u64 > MAX_CERTIFICATE_FILE {
        return Err(format!(
            "larger than {MAX_CERTIFICATE_FILE} bytes; not a certificate"
        ));
    }
    Ok(bytes)
}

impl GridCertificate {
    /// Its state at `now` (Unix seconds). Clients count it while `expires > now`.
    pub fn state(&self, now: u64) -> CertificateState {
        let now = i64::try_from(now).unwrap_or(i64::MAX);
        let warning = i64::try_from(EXPIRY_WARNING.as_secs()).unwrap_or(i64::MAX);
        if self.expires <= now {
            CertificateState::Expired
        } else if self.expires - now <= warning {
            CertificateState::Expiring
        } else {
            CertificateState::Valid
        }
    }
}

impl GridCertificates {
    /// Each certificate's name, expiry, signer and state at `now` (Unix seconds).
    pub fn statuses(&self, now: u64) -> Vec<CertificateStatus> {
        let signed_now = i64::try_from(now).unwrap_or(i64::MAX);
        self.certificates
            .iter()
            .map(|c| CertificateStatus {
                name: c.name.clone(),
                expires: c.expires,
                seconds_left: c.expires.saturating_sub(signed_now),
                state: c.state(now),
                signed_by: c.signed_by.clone(),
                grid_manager_key: c.grid_manager_key.clone(),
            })
            .collect()
    }

    /// The announcement's `grid-manager-certificates` entry as YAML for a
    /// `servers.yaml` stanza (indented to sit under `ann:`), or nothing when grid
    /// management is off.
    pub fn announcement_yaml(&self) -> String {
        if !self.enabled {
            return String::new();
        }
        if self.certificates.is_empty() {
            return "    grid-manager-certificates: []\n".to_string();
        }
        let mut out = String::from("    grid-manager-certificates:\n");
        for c in &self.certificates {
            // A JSON string is a YAML double-quoted scalar with the same value.
            out.push_str(&format!(
                "      - certificate: {}\n        signature: {}\n",
                serde_json::Value::from(c.certificate.as_str()),
                serde_json::Value::from(c.signature.as_str()),
            ));
        }
        out
    }

    /// Logs every certificate's state at `now`: info when valid, a warning when
    /// expiring, an error when expired; and a warning when grid management is on with
    /// no certificate, or off with some configured.
    pub fn log_states(&self, now: u64) {
        if self.ignored > 0 {
            tracing::warn!(
                certificates = self.ignored,
                "[grid_manager_certificates] lists certificates but [storage] grid_management is not true: they are not announced"
            );
        }
        if self.enabled && self.certificates.is_empty() {
            tracing::warn!(
                "[storage] grid_management is true but no certificate is configured: clients that use a grid manager will not upload here"
            );
        }
        for c in &self.certificates {
            log_state(c, c.state(now));
        }
    }
}

fn log_state(c: &GridCertificate, state: CertificateState) {
    let signed_by = c.signed_by.as_deref().unwrap_or("(not checked)");
    match state {
        CertificateState::Valid => tracing::info!(
            name = %c.name, expires = %c.expires_text, signed_by,
            "grid-manager certificate valid"
        ),
        CertificateState::Expiring => tracing::warn!(
            name = %c.name, expires = %c.expires_text, signed_by,
            "grid-manager certificate expires soon: ask the grid manager for a new one"
        ),
        CertificateState::Expired => tracing::error!(
            name = %c.name, expires = %c.expires_text, signed_by,
            "grid-manager certificate has expired: clients that use a grid manager no longer upload here on its strength"
        ),
    }
}

/// The next moment (Unix seconds) after `now` at which a certificate changes state.
fn next_change(certificates: &GridCertificates, now: u64) -> Option<u64> {
    let now = i64::try_from(now).ok()?;
    let warning = i64::try_from(EXPIRY_WARNING.as_secs()).ok()?;
    certificates
        .certificates
        .iter()
        .flat_map(|c| [c.expires - warning, c.expires])
        .filter(|t| *t > now)
        .min()
        .and_then(|t| u64::try_from(t).ok())
}

/// Logs a certificate whenever its state changes while the node runs, and once a day
/// while one is expiring or expired, until `shutdown`. A reload that replaces the
/// certificates (and logs their states itself) starts the watch again on the new ones.
pub async fn watch_expiry(
    live: crate::live::Live<GridCertificates>,
    clock: Clock,
    shutdown: tokio_util::sync::CancellationToken,
) {
    const DAY: u64 = 86_400;
    let mut changes = live.changes();
    'watch: loop {
        let certificates = live.get();
        let mut last: Vec<CertificateState> = certificates
            .certificates
            .iter()
            .map(|c| c.state(clock()))
            .collect();
        let mut last_reminder = clock();
        loop {
            let now = clock();
            // Wake at the next change, but at least hourly: the wall clock may jump.
            let wait = next_change(&certificates, now)
                .map_or(3_600, |t| t.saturating_sub(now))
                .clamp(1, 3_600);
            tokio::select! {
                () = shutdown.cancelled() => return,
                changed = changes.changed() => match changed {
                    Ok(()) => continue 'watch,
                    Err(_) => return,
                },
                () = tokio::time::sleep(Duration::from_secs(wait)) => {}
            }
            let now = clock();
            let remind = now.saturating_sub(last_reminder) >= DAY;
            if remind {
                last_reminder = now;
            }
            for (c, previous) in certificates.certificates.iter().zip(last.iter_mut()) {
                let state = c.state(now);
                if state != *previous || (remind && state != CertificateState::Valid) {
                    log_state(c, state);
                }
                *previous = state;
            }
        }
    }
}

/// `expires` as Python's `datetime.isoformat()` writes it for a zoned time
/// (`2031-12-05T20:21:09.059275+00:00`; also `Z`, a space for `T`, no fraction), as
/// Unix seconds with the fraction dropped.
///
/// # Errors
/// A reason for a person, also when the zone is missing: Tahoe's clients compare the
/// expiry with a zoned time and fail on one without.
pub fn parse_expires(text: &str) -> Result<i64, String> {
    let bad = |why: &str| format!("\"expires\" {text:?} {why}");
    let b = text.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Result<i64, String> {
        let part = text
            .get(range)
            .filter(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))
            .ok_or_else(|| bad("is not a time like 2031-12-05T20:21:09+00:00"))?;
        part.parse::<i64>()
            .map_err(|_| bad("is not a time like 2031-12-05T20:21:09+00:00"))
    };
    let shape_ok = b.len() >= 19
        && b[4] == b'-'
        && b[7] == b'-'
        && (b[10] == b'T' || b[10] == b' ')
        && b[13] == b':'
        && b[16] == b':';
    if !shape_ok {
        return Err(bad("is not a time like 2031-12-05T20:21:09+00:00"));
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &text[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return Err(bad("has a malformed fraction of a second"));
        }
        rest = &fraction[digits..];
    }
    let offset = match rest.as_bytes().first() {
        None => return Err(bad("has no time zone (like +00:00)")),
        Some(b'Z') if rest.len() == 1 => 0,
        Some(sign @ (b'+' | b'-')) => {
            let zone = &rest[1..];
            let (h, m) = match zone.len() {
                5 if zone.as_bytes()[2] == b':' => (&zone[0..2], &zone[3..5]),
                4 => (&zone[0..2], &zone[2..4]),
                _ => return Err(bad("has a malformed time zone")),
            };
            let parse = |s: &str| {
                s.parse::<i64>()
                    .ok()
                    .filter(|_| s.bytes().all(|c| c.is_ascii_digit()))
            };
            let (Some(h), Some(m)) = (parse(h), parse(m)) else {
                return Err(bad("has a malformed time zone"));
            };
            if h > 23 || m > 59 {
                return Err(bad("has a malformed time zone"));
            }
            let seconds = h * 3_600 + m * 60;
            if *sign == b'-' { -seconds } else { seconds }
        }
        Some(_) => return Err(bad("has a malformed time zone")),
    };
    let month_days = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        2 if leap => 29,
        1..=12 => month_days[usize::try_from(month - 1).unwrap_or(0)],
        _ => 0,
    };
    if year < 1 || !(1..=days_in_month).contains(&day) || hour > 23 || minute > 59 || second > 59 {
        return Err(bad("is not a valid date and time"));
    }
    Ok(days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second - offset)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    // Made by Tahoe 1.20's `grid-manager` (tests/fixtures/grid-manager/README.md).
    const CERT_5Y: &str = include_str!("../../../tests/fixtures/grid-manager/storage0-5y.cert");
    const CERT_1D: &str = include_str!("../../../tests/fixtures/grid-manager/storage0-1d.cert");
    const NODE_SERVER_ID: &str = "v0-2q23o4dykbtloiyjdjstl3zcpzchsb6r247aqjhrfkpgxafhvtjq";
    const GM_KEY: &str = "pub-v0-ev4fhyzgezoo4hqbf4mqgdko27rxecokadnhgjzvnsiaxcfhtzga";
    /// 2026-12-06T20:21:09Z, when the fixtures were made.
    const MADE: u64 = 1_796_588_469;

    fn gm(trusted: &[&str]) -> GridManagerConfig {
        GridManagerConfig {
            enabled: true,
            certificates: Vec::new(),
            trusted: trusted
                .iter()
                .enumerate()
                .map(|(i, k)| (format!("gm{i}"), parse_public_key(k).unwrap()))
                .collect(),
        }
    }

    fn load(text: &str, trusted: &[&str], server_id: &str) -> Result<GridCertificate, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.cert");
        std::fs::write(&path, text).unwrap();
        load_one(
            "c",
            &path,
            &format!("pub-{server_id}"),
            &gm(trusted).trusted,
        )
    }

    #[test]
    fn a_tahoe_made_certificate_is_read_and_its_signature_verified() {
        let c = load(CERT_5Y, &[GM_KEY], NODE_SERVER_ID).unwrap();
        assert_eq!(c.expires_text, "2031-12-05T20:21:09.059275+00:00");
        assert_eq!(c.expires, 1_954_268_469);
        assert_eq!(c.signed_by.as_deref(), Some("gm0"));
        assert_eq!(c.grid_manager_key.as_deref(), Some(GM_KEY));
        assert_eq!(c.state(MADE), CertificateState::Valid);
        assert_eq!(c.state(1_954_268_469), CertificateState::Expired);
        let short = load(CERT_1D, &[GM_KEY], NODE_SERVER_ID).unwrap();
        assert_eq!(short.state(MADE), CertificateState::Expiring);
        assert_eq!(short.state(MADE + 86_401), CertificateState::Expired);
        // Without [grid_managers] only the shape of the signature is checked.
        assert_eq!(load(CERT_5Y, &[], NODE_SERVER_ID).unwrap().signed_by, None);
    }

    #[test]
    fn the_announcement_carries_the_files_objects_unchanged() {
        let c = load(CERT_5Y, &[], NODE_SERVER_ID).unwrap();
        let certs = GridCertificates {
            enabled: true,
            certificates: vec![c],
            ignored: 0,
        };
        let yaml = certs.announcement_yaml();
        let original: serde_json::Value = serde_json::from_str(CERT_5Y).unwrap();
        // The YAML double-quoted scalars are JSON strings: read them back as JSON.
        let lines: Vec<&str> = yaml.lines().collect();
        assert_eq!(lines[0], "    grid-manager-certificates:");
        let cert: String =
            serde_json::from_str(lines[1].trim_start_matches("      - certificate: ")).unwrap();
        let sig: String =
            serde_json::from_str(lines[2].trim_start_matches("        signature: ")).unwrap();
        assert_eq!(cert, original["certificate"].as_str().unwrap());
        assert_eq!(sig, original["signature"].as_str().unwrap());
        let none = GridCertificates {
            enabled: true,
            ..Default::default()
        };
        assert_eq!(
            none.announcement_yaml(),
            "    grid-manager-certificates: []\n"
        );
        assert_eq!(GridCertificates::default().announcement_yaml(), "");
    }

    #[test]
    fn a_certificate_for_another_node_or_signed_by_another_manager_is_refused() {
        let other = "v0-ev4fhyzgezoo4hqbf4mqgdko27rxecokadnhgjzvnsiaxcfhtzga";
        let e = load(CERT_5Y, &[], other).unwrap_err();
        assert!(
            e.contains("not this node's key") && e.contains(other),
            "{e}"
        );
        let stranger = "pub-v0-2q23o4dykbtloiyjdjstl3zcpzchsb6r247aqjhrfkpgxafhvtjq";
        let e = load(CERT_5Y, &[stranger], NODE_SERVER_ID).unwrap_err();
        assert!(
            e.contains("not signed by any grid manager") && e.contains("gm0"),
            "{e}"
        );
        // One trusted manager that signed it is enough.
        let c = load(CERT_5Y, &[stranger, GM_KEY], NODE_SERVER_ID).unwrap();
        assert_eq!(c.signed_by.as_deref(), Some("gm1"));
    }

    #[test]
    fn a_changed_byte_breaks_the_signature() {
        let original: serde_json::Value = serde_json::from_str(CERT_5Y).unwrap();
        let certificate = original["certificate"]
            .as_str()
            .unwrap()
            .replace("2031-12-05", "2035-12-05");
        let forged = serde_json::json!({
            "certificate": certificate,
            "signature": original["signature"],
        });
        let e = load(&forged.to_string(), &[GM_KEY], NODE_SERVER_ID).unwrap_err();
        assert!(e.contains("not signed"), "{e}");
    }

    #[test]
    fn malformed_files_are_refused_with_the_reason() {
        let sig = "a".repeat(103);
        let inner = |s: &str| serde_json::Value::from(s).to_string();
        let ok_inner = format!(
            "{{\"expires\":\"2031-12-05T20:21:09+00:00\",\"public_key\":\"pub-{NODE_SERVER_ID}\",\"version\":1}}"
        );
        let cases = [
            ("not json".to_string(), "not JSON"),
            ("[]".to_string(), "exactly two strings"),
            (
                format!("{{\"certificate\":{},\"signature\":\"{sig}\",\"extra\":1}}", inner(&ok_inner)),
                "exactly two strings",
            ),
            (
                format!("{{\"certificate\":{},\"signature\":\"abc\"}}", inner(&ok_inner)),
                "64 bytes",
            ),
            (
                format!("{{\"certificate\":\"x\",\"signature\":\"{sig}\"}}"),
                "\"certificate\" is not JSON",
            ),
            (
                format!(
                    "{{\"certificate\":{},\"signature\":\"{sig}\"}}",
                    inner(&ok_inner.replace("\"version\":1", "\"version\":2"))
                ),
                "version 2",
            ),
            (
                format!(
                    "{{\"certificate\":{},\"signature\":\"{sig}\"}}",
                    inner(&ok_inner.replace("+00:00", ""))
                ),
                "no time zone",
            ),
            (
                format!(
                    "{{\"certificate\":{},\"signature\":\"{sig}\"}}",
                    inner(&ok_inner.replace(",\"public_key\":\"pub-v0-2q23o4dykbtloiyjdjstl3zcpzchsb6r247aqjhrfkpgxafhvtjq\"", ""))
                ),
                "no \"public_key\"",
            ),
        ];
        for (text, want) in cases {
            let e = load(&text, &[], NODE_SERVER_ID).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
        let big = " ".repeat(usize::try_from(MAX_CERTIFICATE_FILE).unwrap() + 1);
        assert!(
            load(&big, &[], NODE_SERVER_ID)
                .unwrap_err()
                .contains("larger than")
        );
        let e = load_one("c", Path::new("/nonexistent/c.cert"), "k", &[]).unwrap_err();
        assert!(e.contains("cannot read"), "{e}");
    }

    #[test]
    fn expiry_times_parse_as_python_writes_them() {
        assert_eq!(parse_expires("1970-01-01T00:00:00+00:00"), Ok(0));
        assert_eq!(parse_expires("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_expires("1970-01-01 01:00:00.5+01:00"), Ok(0));
        assert_eq!(parse_expires("1969-12-31T23:00:00-0100"), Ok(0));
        assert_eq!(parse_expires("2000-02-29T00:00:00+00:00"), Ok(951_782_400));
        assert_eq!(
            parse_expires("2031-12-05T20:21:09.059275+00:00"),
            Ok(1_954_268_469)
        );
        for bad in [
            "",
            "2031-12-05",
            "2031-12-05T20:21:09",
            "2031-12-05T20:21:09+0000000",
            "2031-13-05T20:21:09+00:00",
            "2031-02-29T20:21:09+00:00",
            "2031-12-05T24:00:00+00:00",
            "2031-12-05T20:21:09.+00:00",
            "2031-12-05T20:21:09+24:00",
            "2031-12-05T20:21:09 +00:00",
            "+031-12-05T20:21:09+00:00",
            "2031-12-05T20:21:09+00:00 ",
        ] {
            assert!(parse_expires(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_watcher_wakes_at_the_next_change() {
        let c = load(CERT_1D, &[], NODE_SERVER_ID).unwrap();
        let certs = GridCertificates {
            enabled: true,
            certificates: vec![c.clone()],
            ignored: 0,
        };
        let expires = u64::try_from(c.expires).unwrap();
        assert_eq!(next_change(&certs, MADE), Some(expires));
        assert_eq!(
            next_change(&certs, expires - 30 * 86_400),
            Some(expires - EXPIRY_WARNING.as_secs())
        );
        assert_eq!(next_change(&certs, expires), None);
        let statuses = certs.statuses(MADE);
        assert_eq!(
            statuses,
            vec![CertificateStatus {
                name: "c".into(),
                expires: c.expires,
                seconds_left: 86_400,
                state: CertificateState::Expiring,
                signed_by: None,
                grid_manager_key: None,
            }]
        );
        assert_eq!(statuses[0].state.as_str(), "expiring");
        assert_eq!(certs.statuses(expires + 5)[0].seconds_left, -5);
    }

    #[test]
    fn grid_manager_keys_parse_as_tahoe_writes_them() {
        assert!(parse_public_key(GM_KEY).is_ok());
        assert!(parse_public_key("pub-v0-abc").is_err());
        assert!(
            parse_public_key("v0-ev4fhyzgezoo4hqbf4mqgdko27rxecokadnhgjzvnsiaxcfhtzga").is_err()
        );
    }
}
