//! Where a running magic-folder daemon answers, and with which token: the two files
//! it keeps in its config directory. `api_client_endpoint` holds a Twisted client
//! endpoint (`tcp:HOST:PORT`, the host's colons escaped with `\`) while the daemon
//! runs and `not running` otherwise; `api_token` holds the bearer token. Both are read
//! again on every (re)connection, because a restarted daemon listens on a new port.

use std::fmt;
use std::path::{Path, PathBuf};

/// Files larger than this are not a magic-folder config file.
const MAX_FILE: u64 = 4096;

/// The daemon's API token. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken(String);

impl ApiToken {
    /// The `Authorization` header value.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.0)
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken(..)")
    }
}

/// Why the daemon's config directory gives no usable endpoint or token.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A file is missing or unreadable.
    #[error("cannot read {path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The daemon wrote `not running`.
    #[error("the magic-folder daemon is not running ({path} says so)")]
    NotRunning {
        /// The endpoint file.
        path: PathBuf,
    },
    /// A file's content is not what magic-folder writes.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// What is needed to talk to the daemon.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaemonConfig {
    /// The API root, e.g. `http://127.0.0.1:4321` (without `/v1`).
    pub base_url: String,
    /// The host part of the endpoint (no brackets).
    pub host: String,
    /// The port.
    pub port: u16,
    /// The bearer token.
    pub token: ApiToken,
}

fn read_small(path: &Path) -> Result<String, ConfigError> {
    use std::io::Read;
    let failed = |reason: String| ConfigError::Read {
        path: path.to_path_buf(),
        reason,
    };
    // Read through `take`, not by the size the metadata claims: a device or a file
    // still growing must not make us read without end.
    let file = std::fs::File::open(path).map_err(|e| failed(e.to_string()))?;
    let mut text = String::new();
    file.take(MAX_FILE + 1)
        .read_to_string(&mut text)
        .map_err(|e| failed(e.to_string()))?;
    if text.len() as u64 > MAX_FILE {
        return Err(failed(format!("larger than {MAX_FILE} bytes")));
    }
    Ok(text)
}

impl DaemonConfig {
    /// Reads `api_client_endpoint` and `api_token` from the daemon's config directory.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file and the problem.
    pub fn read(dir: &Path) -> Result<Self, ConfigError> {
        let endpoint_path = dir.join("api_client_endpoint");
        let endpoint = read_small(&endpoint_path)?;
        let endpoint = endpoint.trim();
        if endpoint == "not running" {
            return Err(ConfigError::NotRunning {
                path: endpoint_path,
            });
        }
        let (host, port) = parse_endpoint(endpoint).map_err(|reason| ConfigError::Invalid {
            path: endpoint_path,
            reason,
        })?;
        let token_path = dir.join("api_token");
        let token = read_small(&token_path)?.trim().to_string();
        // The token goes into a header: only the URL-safe base64 magic-folder makes.
        if token.is_empty()
            || !token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_=".contains(&b))
        {
            return Err(ConfigError::Invalid {
                path: token_path,
                reason: "not a magic-folder API token".into(),
            });
        }
        Ok(Self {
            base_url: http_url(&host, port),
            host,
            port,
            token: ApiToken(token),
        })
    }
}

/// Splits a Twisted endpoint description at unescaped colons, unescaping `\:`.
fn split_endpoint(text: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let (Some(next), Some(last)) = (chars.next(), parts.last_mut()) {
                    last.push(next);
                }
            }
            ':' => parts.push(String::new()),
            c => {
                if let Some(last) = parts.last_mut() {
                    last.push(c);
                }
            }
        }
    }
    parts
}

/// The HTTP base URL for `host` and `port`.
fn http_url(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("http://[{host}]:{port}")
    } else {
        format!("http://{host}:{port}")
    }
}

/// Turns a Twisted client endpoint (`tcp:HOST:PORT`, `tcp:host=HOST:port=PORT`) into
/// an HTTP base URL.
///
/// # Errors
/// A sentence saying what is wrong.
pub fn endpoint_to_url(endpoint: &str) -> Result<String, String> {
    parse_endpoint(endpoint).map(|(host, port)| http_url(&host, port))
}

/// The host and port of a Twisted client endpoint.
fn parse_endpoint(endpoint: &str) -> Result<(String, u16), String> {
    let parts = split_endpoint(endpoint);
    let (kind, args) = parts
        .split_first()
        .ok_or_else(|| "empty endpoint".to_string())?;
    if !kind.eq_ignore_ascii_case("tcp") {
        return Err(format!(
            "endpoint {endpoint:?}: only tcp endpoints are supported"
        ));
    }
    let (mut host, mut port) = (None, None);
    let mut positional = Vec::new();
    for arg in args {
        match arg.split_once('=') {
            Some(("host", v)) => host = Some(v.to_string()),
            Some(("port", v)) => port = Some(v.to_string()),
            Some(_) => {}
            None => positional.push(arg.clone()),
        }
    }
    let mut positional = positional.into_iter();
    let host = host
        .or_else(|| positional.next())
        .ok_or_else(|| format!("endpoint {endpoint:?} has no host"))?;
    let port = port
        .or_else(|| positional.next())
        .ok_or_else(|| format!("endpoint {endpoint:?} has no port"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("endpoint {endpoint:?}: port {port:?} is not a port number"))?;
    if host.is_empty()
        || host
            .chars()
            .any(|c| c.is_whitespace() || "/?#@[]".contains(c))
    {
        return Err(format!("endpoint {endpoint:?}: bad host {host:?}"));
    }
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_as_magic_folder_writes_them() {
        assert_eq!(
            endpoint_to_url("tcp:127.0.0.1:4321").as_deref(),
            Ok("http://127.0.0.1:4321")
        );
        assert_eq!(
            endpoint_to_url(r"tcp:\:\:1:80").as_deref(),
            Ok("http://[::1]:80")
        );
        assert_eq!(
            endpoint_to_url("tcp:host=localhost:port=9").as_deref(),
            Ok("http://localhost:9")
        );
        for bad in [
            "unix:/run/x",
            "tcp:127.0.0.1",
            "tcp:h:99999",
            "tcp:a/b:1",
            "",
        ] {
            assert!(endpoint_to_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reads_the_config_directory_and_hides_the_token() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = DaemonConfig::read(dir.path());
        assert!(matches!(missing, Err(ConfigError::Read { .. })));

        std::fs::write(dir.path().join("api_client_endpoint"), "not running\n").expect("write");
        assert!(matches!(
            DaemonConfig::read(dir.path()),
            Err(ConfigError::NotRunning { .. })
        ));

        std::fs::write(
            dir.path().join("api_client_endpoint"),
            "tcp:127.0.0.1:5555\n",
        )
        .expect("write");
        std::fs::write(dir.path().join("api_token"), "bad token\n").expect("write");
        assert!(matches!(
            DaemonConfig::read(dir.path()),
            Err(ConfigError::Invalid { .. })
        ));

        std::fs::write(dir.path().join("api_token"), "c2VjcmV0LXRva2Vu_-=\n").expect("write");
        let config = DaemonConfig::read(dir.path()).expect("a valid config");
        assert_eq!(config.base_url, "http://127.0.0.1:5555");
        assert_eq!(config.token.bearer(), "Bearer c2VjcmV0LXRva2Vu_-=");
        assert!(!format!("{config:?}").contains("c2VjcmV0"), "never printed");

        std::fs::write(dir.path().join("api_token"), vec![b'a'; 5000]).expect("write");
        assert!(matches!(
            DaemonConfig::read(dir.path()),
            Err(ConfigError::Read { .. })
        ));

        // A device that never ends is refused after the bound, not read forever.
        #[cfg(unix)]
        {
            std::fs::remove_file(dir.path().join("api_token")).expect("remove");
            std::os::unix::fs::symlink("/dev/zero", dir.path().join("api_token")).expect("symlink");
            assert!(matches!(
                DaemonConfig::read(dir.path()),
                Err(ConfigError::Read { .. })
            ));
        }
    }
}
