//! Making a Tahoe client node directory (`tahoe create-client`) that both Swamp's CLI
//! and a real Tahoe client node can use, and filling its `private/servers.yaml`.
//!
//! A server is added from its announcement stanza (what `swamp-server announcement`
//! prints, or a Python node's announcement), which carries everything a client
//! needs. From a NURL alone, the missing pieces are learned the way Foolscap would:
//! connect (pinning the certificate), and take the tubid as the SHA-1 of the
//! certificate; that tubid keys lease secrets and write enablers, and also serves as
//! the permutation seed (the server's own seed is only in its announcement, so
//! placement may differ from other clients' — never correctness).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde_yaml::{Mapping, Value};
use swamp_proto::{Nurl, base32};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::ClientError;
use crate::nodedir::NodeDirError;
use crate::tls::pinned_config;

/// Settings of a new client node directory.
#[derive(Clone, Debug)]
pub struct NewClient {
    /// `[node] nickname`.
    pub nickname: String,
    /// `[client] shares.needed`.
    pub needed: u16,
    /// `[client] shares.happy`.
    pub happy: u16,
    /// `[client] shares.total`.
    pub total: u16,
    /// `[node] web.port`, where `tahoe run` (Swamp's or Tahoe's) serves the web API.
    pub web_port: String,
}

impl Default for NewClient {
    fn default() -> Self {
        Self {
            nickname: String::new(),
            needed: 3,
            happy: 7,
            total: 10,
            web_port: "tcp:3456:interface=127.0.0.1".into(),
        }
    }
}

fn write_error(path: &Path, source: std::io::Error) -> NodeDirError {
    NodeDirError::Read {
        path: path.to_path_buf(),
        source,
    }
}

/// 32 random bytes in Tahoe's base32, as Tahoe makes `private/secret` and
/// `private/convergence`.
fn new_secret() -> String {
    format!("{}\n", base32::encode(&rand::random::<[u8; 32]>()))
}

/// Creates `dir` as a Tahoe client node directory with no servers yet.
///
/// # Errors
/// [`NodeDirError`] if `dir` already holds a `tahoe.cfg` or cannot be written.
pub fn create_client(dir: &Path, settings: &NewClient) -> Result<(), NodeDirError> {
    let cfg = dir.join("tahoe.cfg");
    if cfg.exists() {
        return Err(NodeDirError::Invalid {
            path: cfg,
            reason: "a node directory already exists here".into(),
        });
    }
    let private = dir.join("private");
    std::fs::create_dir_all(&private).map_err(|e| write_error(&private, e))?;
    let text = format!(
        "# A Tahoe-LAFS client node directory (made by Swamp's `tahoe create-client`).\n\
         [node]\nnickname = {}\nweb.port = {}\nweb.static = public_html\n\n\
         [client]\nintroducer.furl =\nshares.needed = {}\nshares.happy = {}\nshares.total = {}\n\n\
         [storage]\nenabled = false\n",
        settings.nickname, settings.web_port, settings.needed, settings.happy, settings.total
    );
    for (path, content) in [
        (cfg, text),
        (private.join("secret"), new_secret()),
        (private.join("convergence"), new_secret()),
        (private.join("servers.yaml"), "storage: {}\n".to_string()),
        // `tahoe run` recognises a client node directory by a `*client*.tac` file.
        (
            dir.join("tahoe-client.tac"),
            "# Marks a Tahoe-LAFS client node directory (run it with `tahoe run`).\n\
             import sys\n\
             print(\"This node directory needs Tahoe-LAFS 1.11 or newer: use `tahoe run`.\")\n\
             sys.exit(1)\n"
                .to_string(),
        ),
    ] {
        std::fs::write(&path, content).map_err(|e| write_error(&path, e))?;
    }
    Ok(())
}

/// Parses an announcement stanza (`<server id>: {ann: {...}}`, or a whole
/// `servers.yaml` with a `storage:` mapping) into server id → entry.
///
/// # Errors
/// A message saying what is wrong with the text.
pub fn parse_announcements(text: &str) -> Result<BTreeMap<String, Value>, String> {
    let value: Value = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
    let map = match value.get("storage") {
        Some(Value::Mapping(m)) => m.clone(),
        _ => match value {
            Value::Mapping(m) => m,
            _ => return Err("expected `<server id>: {ann: {...}}`".into()),
        },
    };
    let mut out = BTreeMap::new();
    for (id, entry) in map {
        let id = id
            .as_str()
            .ok_or("a server id is not a string")?
            .to_string();
        let ann = entry
            .get("ann")
            .ok_or_else(|| format!("{id}: no `ann` mapping"))?;
        if ann
            .get("anonymous-storage-FURL")
            .and_then(Value::as_str)
            .is_none()
        {
            return Err(format!(
                "{id}: the announcement has no anonymous-storage-FURL"
            ));
        }
        out.insert(id, entry);
    }
    if out.is_empty() {
        return Err("no server in the announcement".into());
    }
    Ok(out)
}

/// Connects to the server at `nurl` (pinning its certificate) and builds the
/// announcement a client needs: a fURL carrying the tubid (SHA-1 of the certificate),
/// the NURL, and the tubid as permutation seed.
///
/// # Errors
/// [`ClientError`] when the server cannot be reached or its certificate does not
/// match the NURL.
pub async fn announcement_from_nurl(nurl: &Nurl) -> Result<(String, Value), ClientError> {
    let config = pinned_config(nurl.spki_hash, &[b"http/1.1"]);
    let connector = TlsConnector::from(Arc::new(config));
    let connect = async {
        let tcp = TcpStream::connect((nurl.host.as_str(), nurl.port))
            .await
            .map_err(|e| {
                ClientError::Protocol(format!(
                    "cannot connect to {}:{}: {e}",
                    nurl.host, nurl.port
                ))
            })?;
        let name = rustls_pki_types::ServerName::try_from(nurl.host.clone())
            .map_err(|e| ClientError::Protocol(format!("bad host {}: {e}", nurl.host)))?;
        connector.connect(name, tcp).await.map_err(|e| {
            ClientError::Protocol(format!("TLS with {}:{} failed: {e}", nurl.host, nurl.port))
        })
    };
    let after = crate::storage::DEFAULT_CONNECT_TIMEOUT;
    let tls = tokio::time::timeout(after, connect)
        .await
        .map_err(|_| ClientError::Timeout {
            connecting: true,
            after,
        })??;
    let cert = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or_else(|| ClientError::Protocol("the server sent no certificate".into()))?;
    let tubid = base32::encode(
        ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, cert.as_ref()).as_ref(),
    );
    let furl = format!(
        "pb://{tubid}@tcp:{}:{}/{}",
        nurl.host,
        nurl.port,
        nurl.swissnum.expose()
    );
    let mut ann = Mapping::new();
    ann.insert("nickname".into(), "".into());
    ann.insert("anonymous-storage-FURL".into(), furl.into());
    ann.insert(
        "anonymous-storage-NURLs".into(),
        Value::Sequence(vec![nurl.to_string().into()]),
    );
    ann.insert("permutation-seed-base32".into(), tubid.clone().into());
    let mut entry = Mapping::new();
    entry.insert("ann".into(), Value::Mapping(ann));
    Ok((format!("tubid-{tubid}"), Value::Mapping(entry)))
}

/// Adds (or replaces) servers in `dir/private/servers.yaml`.
///
/// # Errors
/// [`NodeDirError`] when the file cannot be read, parsed or written.
pub fn add_servers(dir: &Path, servers: BTreeMap<String, Value>) -> Result<(), NodeDirError> {
    let path = dir.join("private").join("servers.yaml");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "storage: {}\n".into(),
        Err(e) => return Err(write_error(&path, e)),
    };
    let mut doc: Value = serde_yaml::from_str(&text).map_err(|e| NodeDirError::Invalid {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    if !matches!(doc.get("storage"), Some(Value::Mapping(_))) {
        doc = Value::Mapping(Mapping::from_iter([(
            "storage".into(),
            Value::Mapping(Mapping::new()),
        )]));
    }
    if let Some(Value::Mapping(storage)) = doc.get_mut("storage") {
        for (id, entry) in servers {
            storage.insert(id.into(), entry);
        }
    }
    let out = serde_yaml::to_string(&doc).map_err(|e| NodeDirError::Invalid {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    std::fs::write(&path, out).map_err(|e| write_error(&path, e))
}
