//! A Tahoe client node directory, as the `tahoe` CLI reads it: `tahoe.cfg` (shares
//! needed, happy, total), `private/secret` (the lease secret), `private/convergence`,
//! and `private/servers.yaml` (static server announcements).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use swamp_formats::chk::{DEFAULT_MAX_SEGMENT_SIZE, Params};
use swamp_proto::ini::Ini;
use swamp_proto::{Nurl, base32};

use crate::grid::{Grid, Server};
use crate::{ClientError, StorageClient};

/// Why a node directory could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeDirError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file's content is wrong.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A client could not be built.
    #[error(transparent)]
    Client(#[from] ClientError),
}

#[derive(Deserialize)]
struct ServersYaml {
    storage: std::collections::BTreeMap<String, ServerEntry>,
}

#[derive(Deserialize)]
struct ServerEntry {
    ann: Announcement,
}

#[derive(Deserialize)]
struct Announcement {
    #[serde(rename = "anonymous-storage-FURL")]
    furl: String,
    #[serde(rename = "anonymous-storage-NURLs", default)]
    nurls: Vec<String>,
    #[serde(rename = "permutation-seed-base32")]
    permutation_seed: Option<String>,
}

fn read(path: &Path) -> Result<String, NodeDirError> {
    std::fs::read_to_string(path).map_err(|source| NodeDirError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn invalid(path: &Path, reason: impl Into<String>) -> NodeDirError {
    NodeDirError::Invalid {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn base32_file(path: &Path) -> Result<Vec<u8>, NodeDirError> {
    base32::decode(read(path)?.trim()).map_err(|e| invalid(path, e.to_string()))
}

/// Loads the grid a client node directory describes.
///
/// # Errors
/// [`NodeDirError`] naming the file and the problem.
pub fn load_grid(dir: &Path) -> Result<Grid, NodeDirError> {
    let cfg_path = dir.join("tahoe.cfg");
    let ini = Ini::parse(&read(&cfg_path)?).map_err(|e| invalid(&cfg_path, e))?;
    let number = |key: &str, default: u16| -> Result<u16, NodeDirError> {
        match ini.get("client", key) {
            None | Some("") => Ok(default),
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| invalid(&cfg_path, format!("[client] {key} = {v:?} is not a number"))),
        }
    };
    let (needed, happy, total) = (
        number("shares.needed", 3)?,
        number("shares.happy", 7)?,
        number("shares.total", 10)?,
    );
    let lease_secret = base32_file(&dir.join("private/secret"))?;
    let convergence = base32_file(&dir.join("private/convergence"))?;
    let yaml_path = dir.join("private/servers.yaml");
    let yaml: ServersYaml =
        serde_yaml::from_str(&read(&yaml_path)?).map_err(|e| invalid(&yaml_path, e.to_string()))?;
    let mut servers = Vec::new();
    for (server_id, entry) in yaml.storage {
        let nurl: Nurl = entry
            .ann
            .nurls
            .first()
            .ok_or_else(|| invalid(&yaml_path, format!("{server_id} has no anonymous-storage-NURLs (Foolscap-only servers are not supported)")))?
            .parse()
            .map_err(|e| invalid(&yaml_path, format!("{server_id}: {e}")))?;
        let tubid = entry
            .ann
            .furl
            .strip_prefix("pb://")
            .and_then(|r| r.split('@').next())
            .and_then(|t| base32::decode(t).ok())
            .and_then(|b| <[u8; 20]>::try_from(b).ok())
            .ok_or_else(|| {
                invalid(
                    &yaml_path,
                    format!("{server_id}: bad anonymous-storage-FURL"),
                )
            })?;
        let permutation_seed = match &entry.ann.permutation_seed {
            Some(s) => {
                base32::decode(s).map_err(|e| invalid(&yaml_path, format!("{server_id}: {e}")))?
            }
            // Tahoe's rule: a `v0-` id of 52 base32 characters is the seed, anything
            // else is hashed.
            None => match server_id.strip_prefix("v0-") {
                Some(key) if key.len() == 52 && key.bytes().all(|b| b.is_ascii_alphanumeric()) => {
                    base32::decode(&key.to_ascii_lowercase())
                        .map_err(|e| invalid(&yaml_path, format!("{server_id}: {e}")))?
                }
                _ => ring::digest::digest(&ring::digest::SHA256, server_id.as_bytes())
                    .as_ref()
                    .to_vec(),
            },
        };
        let client = StorageClient::new(&nurl)?;
        servers.push(Server {
            nurl,
            tubid,
            permutation_seed,
            client,
        });
    }
    let params = Params {
        needed,
        total,
        max_segment_size: DEFAULT_MAX_SEGMENT_SIZE,
    };
    Ok(Grid::new(
        servers,
        lease_secret,
        convergence,
        params,
        usize::from(happy),
    ))
}

/// A configured server's names, as the web API's welcome page shows them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerName {
    /// Its server id (the `servers.yaml` key, `v0-...`).
    pub id: String,
    /// Its announced nickname ("" when it announced none).
    pub nickname: String,
}

#[derive(Deserialize)]
struct NamesYaml {
    storage: std::collections::BTreeMap<String, NameEntry>,
}

#[derive(Deserialize)]
struct NameEntry {
    ann: NameAnnouncement,
}

#[derive(Deserialize)]
struct NameAnnouncement {
    #[serde(default)]
    nickname: Option<String>,
}

/// The id and nickname of each server in `private/servers.yaml`, in the order of
/// [`load_grid`]'s [`Grid::servers`] (both follow the file's keys in sorted order).
///
/// # Errors
/// [`NodeDirError`] naming the file and the problem.
pub fn load_server_names(dir: &Path) -> Result<Vec<ServerName>, NodeDirError> {
    let yaml_path = dir.join("private/servers.yaml");
    let yaml: NamesYaml =
        serde_yaml::from_str(&read(&yaml_path)?).map_err(|e| invalid(&yaml_path, e.to_string()))?;
    Ok(yaml
        .storage
        .into_iter()
        .map(|(id, entry)| ServerName {
            id,
            nickname: entry.ann.nickname.unwrap_or_default(),
        })
        .collect())
}

/// Reads `private/aliases` (Tahoe's `name: cap` lines); a missing file means no
/// aliases.
///
/// # Errors
/// [`NodeDirError`] when the file exists but cannot be read.
pub fn load_aliases(
    dir: &Path,
) -> Result<std::collections::BTreeMap<String, String>, NodeDirError> {
    let path = dir.join("private").join("aliases");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => return Err(NodeDirError::Read { path, source }),
    };
    Ok(text
        .lines()
        .filter_map(|line| line.split_once(':'))
        .filter(|(name, _)| !name.trim().is_empty() && !name.trim_start().starts_with('#'))
        .map(|(name, cap)| (name.trim().to_string(), cap.trim().to_string()))
        .collect())
}
