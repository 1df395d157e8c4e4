//! The few calls of the magic-folder daemon's HTTP API the bridge makes: list the
//! folders with their caps, and ask for a remote poll of one. The endpoint and token
//! are read from the daemon's config directory before every call, so a restarted
//! daemon (new port) or a replaced token is picked up without restarting the bridge.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::config::{ConfigError, DaemonConfig};

/// A listing answer larger than this is refused (a folder entry is well under 1 KiB).
const MAX_LISTING: usize = 4 << 20;

/// Why a call to the daemon failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DaemonError {
    /// The config directory gives no endpoint or token (daemon stopped, not set up).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The daemon refused the token.
    #[error("the magic-folder daemon refused the API token (401)")]
    Unauthorized,
    /// The daemon answered with another error status.
    #[error("the magic-folder daemon answered {status}: {body}")]
    Http {
        /// The status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// Connecting or the transfer failed (daemon down, restarting, timed out).
    #[error("cannot reach the magic-folder daemon: {0}")]
    Unreachable(String),
    /// The answer is not what magic-folder sends.
    #[error("the magic-folder daemon's answer does not decode: {0}")]
    Decode(String),
}

/// One folder as the daemon lists it (with `include_secret_information=1`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FolderInfo {
    /// The folder's name.
    pub name: String,
    /// This daemon's participant name in the folder.
    pub author: String,
    /// The collective directory's cap (read or write).
    pub collective_dircap: String,
}

#[derive(Deserialize)]
struct RawFolder {
    author: RawAuthor,
    collective_dircap: Option<String>,
}

#[derive(Deserialize)]
struct RawAuthor {
    name: String,
}

/// Decodes `GET /v1/magic-folder?include_secret_information=1`.
///
/// # Errors
/// [`DaemonError::Decode`] when the answer is not a folder map with caps.
pub fn parse_folders(body: &[u8]) -> Result<Vec<FolderInfo>, DaemonError> {
    let raw: BTreeMap<String, RawFolder> =
        serde_json::from_slice(body).map_err(|e| DaemonError::Decode(e.to_string()))?;
    raw.into_iter()
        .map(|(name, f)| {
            let collective_dircap = f.collective_dircap.ok_or_else(|| {
                DaemonError::Decode(format!("folder {name:?} is listed without its caps"))
            })?;
            Ok(FolderInfo {
                name,
                author: f.author.name,
                collective_dircap,
            })
        })
        .collect()
}

/// A client of one daemon, found through its config directory.
#[derive(Clone)]
pub struct DaemonApi {
    config_dir: Arc<PathBuf>,
    http: reqwest::Client,
    /// Bound on a listing.
    list_timeout: Duration,
    /// Bound on a poll (the daemon answers when its poll is done, downloads included).
    poll_timeout: Duration,
}

/// Path segment encoding for a folder name (anything but unreserved characters).
fn segment(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl DaemonApi {
    /// A client of the daemon whose config directory is `config_dir`.
    ///
    /// # Errors
    /// [`DaemonError::Unreachable`] when no HTTP client can be built.
    pub fn new(config_dir: PathBuf, poll_timeout: Duration) -> Result<Self, DaemonError> {
        // The daemon speaks plain HTTP on loopback; reqwest still wants a TLS backend,
        // so it gets one that trusts no certificate at all.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| DaemonError::Unreachable(e.to_string()))?
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .no_proxy()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| DaemonError::Unreachable(e.to_string()))?;
        Ok(Self {
            config_dir: Arc::new(config_dir),
            http,
            list_timeout: Duration::from_secs(30),
            poll_timeout,
        })
    }

    /// The daemon's current endpoint and token.
    ///
    /// # Errors
    /// [`DaemonError::Config`].
    pub fn config(&self) -> Result<DaemonConfig, DaemonError> {
        Ok(DaemonConfig::read(&self.config_dir)?)
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        timeout: Duration,
    ) -> Result<Vec<u8>, DaemonError> {
        let config = self.config()?;
        let response = self
            .http
            .request(method, format!("{}/v1/{path}", config.base_url))
            .header(http::header::AUTHORIZATION, config.token.bearer())
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| DaemonError::Unreachable(swamp_proto::error::chain(&e)))?;
        let status = response.status();
        let mut body = Vec::new();
        let mut stream = response;
        while let Some(chunk) = stream
            .chunk()
            .await
            .map_err(|e| DaemonError::Unreachable(swamp_proto::error::chain(&e)))?
        {
            if body.len() + chunk.len() > MAX_LISTING {
                return Err(DaemonError::Decode(format!(
                    "answer larger than {MAX_LISTING} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        if status == http::StatusCode::UNAUTHORIZED {
            return Err(DaemonError::Unauthorized);
        }
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            return Err(DaemonError::Http {
                status: status.as_u16(),
                body: text.chars().take(200).collect(),
            });
        }
        Ok(body)
    }

    /// Lists the daemon's folders with their collective caps.
    ///
    /// # Errors
    /// [`DaemonError`].
    pub async fn folders(&self) -> Result<Vec<FolderInfo>, DaemonError> {
        let body = self
            .call(
                reqwest::Method::GET,
                "magic-folder?include_secret_information=1",
                self.list_timeout,
            )
            .await?;
        parse_folders(&body)
    }

    /// Asks the daemon to poll `folder`'s remote side now; returns when it has.
    ///
    /// # Errors
    /// [`DaemonError`].
    pub async fn poll_remote(&self, folder: &str) -> Result<(), DaemonError> {
        let path = format!("magic-folder/{}/poll-remote", segment(folder));
        self.call(reqwest::Method::PUT, &path, self.poll_timeout)
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_listings_decode_with_their_caps() {
        let body = br#"{
            "docs": {"name": "docs", "author": {"name": "bob", "verify_key": "x", "signing_key": "y"},
                     "stash_path": "/s", "magic_path": "/m", "poll_interval": 60, "scan_interval": 60,
                     "is_admin": false, "collective_dircap": "URI:DIR2-RO:a:b", "upload_dircap": "URI:DIR2:c:d"}
        }"#;
        assert_eq!(
            parse_folders(body).expect("decodes"),
            [FolderInfo {
                name: "docs".into(),
                author: "bob".into(),
                collective_dircap: "URI:DIR2-RO:a:b".into(),
            }]
        );
        let without_caps = br#"{"docs": {"author": {"name": "bob"}}}"#;
        assert!(matches!(
            parse_folders(without_caps),
            Err(DaemonError::Decode(_))
        ));
        assert!(parse_folders(b"[]").is_err());
    }

    #[test]
    fn folder_names_are_one_path_segment() {
        assert_eq!(segment("my docs/../x"), "my%20docs%2F..%2Fx");
    }
}
