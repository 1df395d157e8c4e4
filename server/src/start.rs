//! From a node directory (or nothing, in tests) to a ready [`Server`].

use std::path::Path;
use std::sync::Arc;

use crate::backend::{Clock, Storage, StorageLimits, StorageSettings, layout};
use crate::http::{App, AppState};
use crate::live::Live;
use crate::node::grid_manager::load_certificates;
use crate::node::migrate::{MigrateError, migrate_node_dir};
use crate::node::{Config, Limits, NodeIdentity};
use crate::serve::Server;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] crate::node::ConfigError),
    /// Bad or unwritable identity files.
    #[error(transparent)]
    Identity(#[from] crate::node::IdentityError),
    /// The storage directory or its write-ahead log cannot be used.
    #[error(transparent)]
    Storage(#[from] crate::backend::StorageError),
    /// The certificate or key is unusable for TLS.
    #[error("the node's certificate or key cannot be used for TLS")]
    Tls(#[source] rustls::Error),
    /// The node directory could not be brought up to date (`node::migrate`).
    #[error(transparent)]
    Migrate(#[from] MigrateError),
}

/// A node's server, identity and configuration, ready for `serve`.
pub struct Node {
    /// What to pass to `serve`.
    pub server: Server,
    /// The identity (for NURLs and announcements).
    pub identity: Arc<NodeIdentity>,
    /// The resolved configuration.
    pub config: Config,
    /// What reloads it (SIGHUP, `POST /reload`).
    pub reloader: Arc<crate::reload::Reloader>,
}

/// Loads a node directory: brings an older Swamp directory up to date
/// (`node::migrate`), then configuration, identity (created if missing; the operator
/// secret from the file `SWAMP_OPERATOR_SECRET_FILE` names, if it is set), grid-manager
/// certificates (checked, states logged), storage.
///
/// # Errors
/// [`StartError`] saying which part failed.
pub fn load_node(
    node_dir: &Path,
    env: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    clock: Clock,
) -> Result<Node, StartError> {
    let env: crate::reload::Env = Arc::new(env);
    let migration = migrate_node_dir(node_dir)?;
    if migration.renamed_section {
        tracing::info!(
            path = %node_dir.join("tahoe.cfg").display(),
            "moved Swamp's settings from [swamp], which Tahoe rejects, to [storageserver.plugins.swamp]"
        );
    }
    if migration.wrote_tac {
        tracing::info!(
            path = %node_dir.join(crate::node::migrate::TAC_FILE).display(),
            "wrote the file Tahoe's `tahoe run` recognises a node directory by"
        );
    }
    let config = Config::load(node_dir, &*env)?;
    let has_shares = has_any_share(&config.storage_dir());
    let mut identity = NodeIdentity::load_or_create(node_dir, has_shares, &config.location)?;
    if let Some(path) = env(crate::node::identity::OPERATOR_SECRET_FILE_VAR) {
        identity.operator_secret = crate::node::OperatorSecret::from_file(Path::new(&path))?;
    }
    let identity = Arc::new(identity);
    let certificates = load_certificates(&config, &identity.server_id)?;
    certificates.log_states(clock());
    let server = assemble(
        &config.storage_dir(),
        StorageSettings {
            nodeid: identity.tubid,
            limits: StorageLimits::of(&config),
            direct_upload_writes: config.direct_upload_writes,
            clock: clock.clone(),
            faults: crate::backend::faults::Faults::default(),
            // Set by `assemble`, which makes the node's metrics.
            group_metrics: crate::wal::GroupMetrics::default(),
        },
        &identity,
        config.limits.clone(),
        config.expiry.clone(),
        config.feeds.clone(),
        config.metrics,
    )?;
    server.app.certificates.set(certificates);
    let reloader =
        crate::reload::Reloader::new(&server.app, config.clone(), &identity.server_id, env, clock);
    let reloader = Arc::new(reloader);
    let _ = server
        .app
        .reload
        .set(Arc::clone(&reloader) as Arc<dyn crate::http::Reload>);
    Ok(Node {
        server,
        identity,
        config,
        reloader,
    })
}

/// The `servers.yaml` stanza a Tahoe client needs for this node (`swamp-server
/// announcement`): its announcement with its grid-manager certificates, checked as at
/// start. Changes nothing.
///
/// # Errors
/// [`StartError`] if the configuration or a certificate is bad, or the identity files
/// are missing.
pub fn announcement(
    node_dir: &Path,
    env: impl Fn(&str) -> Option<String>,
) -> Result<String, StartError> {
    let (config, identity) = describe_node(node_dir, env)?;
    let certificates = load_certificates(&config, &identity.server_id)?;
    Ok(identity.announcement_yaml(&config.nickname, &config.location, &certificates))
}

/// A node's configuration and identity, read without changing anything (for `nurl`
/// and `announcement`, which may run beside a serving node).
///
/// # Errors
/// [`StartError`] if the configuration is bad or the identity files are missing.
pub fn describe_node(
    node_dir: &Path,
    env: impl Fn(&str) -> Option<String>,
) -> Result<(Config, NodeIdentity), StartError> {
    let config = Config::load(node_dir, env)?;
    let has_shares = has_any_share(&config.storage_dir());
    let identity = NodeIdentity::load(
        node_dir,
        has_shares,
        &config.location,
        crate::node::Access::ReadOnly,
    )?;
    Ok((config, identity))
}

/// A server over the storage directory `storage_dir` with `identity`'s TLS and
/// swissnum. The feeds' hub is made first and the storage opened with it as its
/// publisher (the storage replays its write-ahead log then); the feeds hold both.
///
/// # Errors
/// [`StartError::Tls`], [`StartError::Storage`].
pub fn assemble(
    storage_dir: &Path,
    mut storage_settings: StorageSettings,
    identity: &NodeIdentity,
    limits: Limits,
    expiry: Option<crate::backend::expiry::ExpiryPolicy>,
    feed_settings: crate::feeds::FeedSettings,
    record_metrics: bool,
) -> Result<Server, StartError> {
    let tls = crate::tls::server_config(identity).map_err(StartError::Tls)?;
    let metrics = Arc::new(crate::operator::metrics::Metrics::new(record_metrics));
    storage_settings.group_metrics = metrics.group.clone();
    let hub = crate::feeds::Hub::new(
        feed_settings,
        storage_settings.clock.clone(),
        metrics.feed_lag.clone(),
    );
    let storage = Arc::new(Storage::open(
        storage_dir,
        storage_settings,
        Arc::clone(&hub) as _,
    )?);
    let feeds = crate::feeds::Feeds::new(Arc::clone(&storage), hub);
    Ok(Server {
        app: App::new(AppState {
            storage,
            swissnum: identity.swissnum.clone(),
            feeds,
            activity: Arc::default(),
            operator_secret: Live::new(identity.operator_secret.clone()),
            expiry: Live::new(expiry),
            certificates: Live::default(),
            buffers: Arc::default(),
            reads: Arc::default(),
            budget: Arc::new(crate::http::budget::BodyBudget::new(
                limits.max_bodies_in_flight,
                limits.max_patch_size.max(limits.max_read_test_write_size),
            )),
            limits: Live::new(limits),
            metrics,
            reload: std::sync::OnceLock::new(),
            accepting: Arc::default(),
        }),
        tls,
    })
}

/// The open-file limit after [`raise_open_file_limit`]: `None` is unlimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenFileLimit {
    /// The soft limit, which the node now runs under.
    pub soft: Option<u64>,
    /// The hard limit.
    pub hard: Option<u64>,
}

/// Raises the soft limit on open files to the hard limit. Every connection, upload in
/// progress and journal file holds a descriptor, and the soft limit many systems start
/// services with (1,024) is reached by a few hundred clients; the hard limit is what
/// the administrator allows.
///
/// # Errors
/// If the kernel refuses the new limit.
pub fn raise_open_file_limit() -> std::io::Result<OpenFileLimit> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            },
        )?;
    }
    let now = getrlimit(Resource::Nofile);
    Ok(OpenFileLimit {
        soft: now.current,
        hard: now.maximum,
    })
}

fn has_any_share(storage_dir: &Path) -> bool {
    let shares = storage_dir.join("shares");
    let Ok(prefixes) = std::fs::read_dir(&shares) else {
        return false;
    };
    prefixes.flatten().any(|p| {
        p.file_name() != "incoming"
            && std::fs::read_dir(p.path())
                .map(|buckets| {
                    buckets
                        .flatten()
                        .any(|b| layout::list_share_numbers(&b.path()).is_ok_and(|s| !s.is_empty()))
                })
                .unwrap_or(false)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_open_file_limit_is_raised_to_the_hard_one() {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let before = getrlimit(Resource::Nofile);
        // Start below the hard limit (lowering needs no privilege), as a service would.
        if let Some(hard) = before.maximum
            && hard > 512
        {
            setrlimit(
                Resource::Nofile,
                Rlimit {
                    current: Some(512),
                    maximum: before.maximum,
                },
            )
            .unwrap();
        }
        let raised = raise_open_file_limit().unwrap();
        assert_eq!(raised.soft, raised.hard);
        assert_eq!(raised.hard, before.maximum);
        assert_eq!(getrlimit(Resource::Nofile).current, before.maximum);
    }
}
