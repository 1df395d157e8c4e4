//! `swamp-server create-node`: a new node directory in Tahoe's layout, which Tahoe's
//! own `tahoe run` also accepts (`migrate.rs` says what that takes).

use std::fmt::Write as _;
use std::fs;
use std::net::TcpListener;
use std::path::Path;

use super::identity::{IdentityError, NodeIdentity};

/// Options of `create-node`, named as Tahoe's `tahoe create-node` names them.
#[derive(Clone, Debug, Default)]
pub struct CreateOptions {
    /// `--port`: a Twisted endpoint like `tcp:3457:interface=127.0.0.1`; by default a
    /// free loopback port is chosen now and recorded.
    pub port: Option<String>,
    /// `--location`: like `tcp:example.org:3457`; by default derived from the port and
    /// `--hostname`.
    pub location: Option<String>,
    /// `--hostname`: the host clients use (default 127.0.0.1).
    pub hostname: Option<String>,
    /// `--nickname`.
    pub nickname: Option<String>,
}

/// Why a node directory could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// The directory already has a `tahoe.cfg`.
    #[error("{0} already contains a node (tahoe.cfg exists)")]
    Exists(String),
    /// A file could not be written or no port could be found.
    #[error("cannot create the node directory")]
    Io(#[source] std::io::Error),
    /// The identity files could not be created.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The file Tahoe recognises a node directory by could not be written.
    #[error(transparent)]
    Tac(#[from] super::migrate::MigrateError),
}

/// Creates a node directory with `tahoe.cfg`, identity files and `storage/`.
///
/// # Errors
/// [`CreateError`] if it already exists or cannot be written.
pub fn create_node(dir: &Path, opts: &CreateOptions) -> Result<NodeIdentity, CreateError> {
    if dir.join("tahoe.cfg").exists() {
        return Err(CreateError::Exists(dir.display().to_string()));
    }
    fs::create_dir_all(dir.join("storage")).map_err(CreateError::Io)?;
    let hostname = opts.hostname.clone().unwrap_or_else(|| "127.0.0.1".into());
    let port = match &opts.port {
        Some(p) => p.clone(),
        None => {
            // Tahoe does the same: find a free port now and keep it.
            let listener = TcpListener::bind(("127.0.0.1", 0)).map_err(CreateError::Io)?;
            let port = listener.local_addr().map_err(CreateError::Io)?.port();
            format!("tcp:{port}:interface=127.0.0.1")
        }
    };
    let location = match &opts.location {
        Some(l) => l.clone(),
        None => {
            let port_number = port
                .split(':')
                .find_map(|f| {
                    f.strip_prefix("port=")
                        .or(Some(f))
                        .and_then(|v| v.parse::<u16>().ok())
                })
                .unwrap_or(3457);
            format!("tcp:{hostname}:{port_number}")
        }
    };
    let mut cfg = String::new();
    let _ = writeln!(cfg, "# A Tahoe-LAFS storage node, served by Swamp.\n[node]");
    let _ = writeln!(
        cfg,
        "nickname = {}",
        opts.nickname.clone().unwrap_or_default()
    );
    let _ = writeln!(cfg, "tub.port = {port}\ntub.location = {location}\n");
    let _ = writeln!(
        cfg,
        "[client]\n# A storage node is not a client.\nintroducer.furl =\n"
    );
    let _ = writeln!(cfg, "[storage]\nenabled = true\nreserved_space = 1G\n");
    let _ = writeln!(
        cfg,
        "[{}]\n# Swamp's own settings; see docs/configuration.md. Tahoe accepts and ignores\n# this section.",
        super::migrate::SWAMP_SECTION
    );
    fs::write(dir.join("tahoe.cfg"), cfg).map_err(CreateError::Io)?;
    super::migrate::write_tac_file(dir)?;
    let hints = super::settings::parse_location(&location)
        .map_err(|e| CreateError::Io(std::io::Error::other(e)))?;
    Ok(NodeIdentity::load_or_create(dir, false, &hints)?)
}
