//! Reload without restart: on `SIGHUP`, on `swamp-server reload DIR`, and on
//! `POST /reload` at the operator listener (which the command calls, to print what
//! changed), the node reads `tahoe.cfg`, the environment's `SWAMP_..._FILE` files, its
//! operator secret and its grid-manager certificates again, and applies what a running
//! node can change.
//!
//! All or nothing: everything is read and checked first, and a configuration with any
//! error changes nothing; the error says what is wrong, and the node runs on as it was.
//! Then each part changed is handed to the cell its users read (`crate::live`): work in
//! progress keeps the values it started with, new work gets the new ones.
//!
//! The process's own environment cannot change while it runs, so variables keep their
//! values (and still win over `tahoe.cfg`); the files `SWAMP_..._FILE` variables name
//! are read again. Settings that bind sockets or shape what clients were told (the
//! ports, the location) need a restart (`node::config::applies_at_reload`); the report
//! names them until the node restarts.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use serde::{Deserialize, Serialize};

use crate::backend::{Clock, Storage, StorageLimits};
use crate::feeds::Feeds;
use crate::http::AppState;
use crate::http::budget::BodyBudget;
use crate::live::Live;
use crate::logging::Logs;
use crate::node::config::applies_at_reload;
use crate::node::grid_manager::{GridCertificates, load_certificates};
use crate::node::identity::OPERATOR_SECRET_FILE_VAR;
use crate::node::{Config, OperatorSecret};

/// Where the node reads its environment (the process's, or a test's).
pub type Env = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// What a reload did.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReloadReport {
    /// Settings now in force with their new values.
    pub applied: Vec<SettingChange>,
    /// Settings changed in the configuration that only a restart applies (the node
    /// runs on with the values it started with).
    pub needs_restart: Vec<SettingChange>,
}

/// One setting's change.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SettingChange {
    /// Its name for people: `[storage] reserved_space`, `operator secret`.
    pub setting: String,
    /// The value before (`None`: not set, so its default).
    pub from: Option<String>,
    /// The value now.
    pub to: Option<String>,
}

/// What stands for a secret's value in a report.
const HIDDEN: &str = "(hidden)";

/// Reloads one node.
pub struct Reloader {
    node_dir: PathBuf,
    env: Env,
    clock: Clock,
    server_id: String,
    /// The configuration the node started with (what restart-only settings still are).
    started: Config,
    /// The configuration in force; held while a reload runs, so reloads take turns.
    current: Mutex<Config>,
    logs: OnceLock<Logs>,
    storage: Arc<Storage>,
    feeds: Arc<Feeds>,
    budget: Arc<BodyBudget>,
    limits: Live<crate::node::Limits>,
    expiry: Live<Option<crate::backend::expiry::ExpiryPolicy>>,
    certificates: Live<GridCertificates>,
    operator_secret: Live<OperatorSecret>,
}

impl Reloader {
    /// A reloader for the node of `node_dir`, started with `config`, serving `app`.
    pub fn new(app: &AppState, config: Config, server_id: &str, env: Env, clock: Clock) -> Self {
        Self {
            node_dir: config.node_dir.clone(),
            env,
            clock,
            server_id: server_id.to_string(),
            started: config.clone(),
            current: Mutex::new(config),
            logs: OnceLock::new(),
            storage: Arc::clone(&app.storage),
            feeds: Arc::clone(&app.feeds),
            budget: Arc::clone(&app.budget),
            limits: app.limits.clone(),
            expiry: app.expiry.clone(),
            certificates: app.certificates.clone(),
            operator_secret: app.operator_secret.clone(),
        }
    }

    /// Lets reloads change the log output too (the process installs it once, before
    /// the node starts; nodes in tests have none).
    pub fn control_logs(&self, logs: Logs) {
        let _ = self.logs.set(logs);
    }

    /// Reads everything again and applies what changed.
    ///
    /// # Errors
    /// [`ReloadError`] naming the file, setting or certificate that is wrong; nothing
    /// has changed then.
    pub fn reload(&self) -> Result<ReloadReport, ReloadError> {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        let config = Config::load(&self.node_dir, &*self.env)?;
        let certificates = load_certificates(&config, &self.server_id)?;
        let secret = self.operator_secret_on_disk()?;

        let mut report = ReloadReport::default();
        let names: BTreeSet<&String> = self
            .started
            .values
            .keys()
            .chain(current.values.keys())
            .chain(config.values.keys())
            .collect();
        for name in names {
            let to = config.values.get(name);
            let (list, from) = if applies_at_reload(name) {
                (&mut report.applied, current.values.get(name))
            } else {
                (&mut report.needs_restart, self.started.values.get(name))
            };
            if from != to {
                list.push(SettingChange {
                    setting: name.clone(),
                    from: from.cloned(),
                    to: to.cloned(),
                });
            }
        }
        let now = (self.clock)();
        let running_certificates = self.certificates.get();
        let certificates_changed = *running_certificates != certificates;
        if certificates_changed {
            report.applied.push(SettingChange {
                setting: "grid-manager certificates".into(),
                from: Some(describe(&running_certificates, now)),
                to: Some(describe(&certificates, now)),
            });
        }
        let secret_changed = secret
            .as_ref()
            .is_some_and(|s| !self.operator_secret.get().matches(s.expose()));
        if secret_changed {
            report.applied.push(SettingChange {
                setting: "operator secret".into(),
                from: Some(HIDDEN.into()),
                to: Some(HIDDEN.into()),
            });
        }

        // Everything is read and checked: apply. A cell is set only when its value
        // changed, since its watchers act on every change (a new lease expiry pass, a
        // new certificate watch).
        let storage_limits = StorageLimits::of(&config);
        if *self.storage.limits() != storage_limits {
            self.storage.set_limits(storage_limits);
        }
        if *self.limits.get() != config.limits {
            let l = &config.limits;
            self.budget.resize(
                l.max_bodies_in_flight,
                l.max_patch_size.max(l.max_read_test_write_size),
            );
            self.limits.set(config.limits.clone());
        }
        if *self.feeds.settings() != config.feeds {
            self.feeds.set_settings(config.feeds.clone());
        }
        if *self.expiry.get() != config.expiry {
            self.expiry.set(config.expiry.clone());
        }
        if certificates_changed {
            certificates.log_states(now);
            self.certificates.set(certificates);
        }
        if let (true, Some(secret)) = (secret_changed, secret) {
            self.operator_secret.set(secret);
        }
        if let Some(logs) = self.logs.get()
            && (current.log_format, &current.log_filter) != (config.log_format, &config.log_filter)
            && let Err(e) = logs.apply(config.log_format, &config.log_filter)
        {
            // The configuration checked the filter; this cannot happen, but is no
            // reason to undo the rest.
            tracing::error!(error = %e, "the log settings could not be changed");
        }
        *current = config;
        report.log();
        Ok(report)
    }

    /// Whether `presented` is the operator secret as the node directory holds it now:
    /// the operator may have just changed it there, and reloading is how the node
    /// learns it.
    pub fn is_secret_on_disk(&self, presented: &str) -> bool {
        matches!(self.operator_secret_on_disk(), Ok(Some(s)) if s.matches(presented))
    }

    /// The operator secret where the node reads it at start: the file
    /// `SWAMP_OPERATOR_SECRET_FILE` names, or `private/operator.secret`. `None` when
    /// the latter is missing (a new one is made at the next start; until then the
    /// one in use stays).
    fn operator_secret_on_disk(&self) -> Result<Option<OperatorSecret>, ReloadError> {
        if let Some(path) = (self.env)(OPERATOR_SECRET_FILE_VAR) {
            return Ok(Some(OperatorSecret::from_file(Path::new(&path))?));
        }
        let path = self.node_dir.join("private").join("operator.secret");
        if !path.exists() {
            return Ok(None);
        }
        Ok(Some(OperatorSecret::from_file(&path)?))
    }
}

/// Why a reload was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// A setting or a certificate is wrong.
    #[error(transparent)]
    Config(#[from] crate::node::ConfigError),
    /// The operator secret cannot be read or is too short.
    #[error(transparent)]
    Identity(#[from] crate::node::IdentityError),
}

impl crate::http::Reload for Reloader {
    fn reload_now(&self) -> Result<serde_json::Value, String> {
        let report = self.reload().map_err(|e| swamp_proto::error::chain(&e))?;
        serde_json::to_value(report).map_err(|e| e.to_string())
    }

    fn is_secret_on_disk(&self, presented: &str) -> bool {
        Reloader::is_secret_on_disk(self, presented)
    }
}

/// Certificates in a line: `main valid until 2031-12-05, old expired`.
fn describe(certificates: &GridCertificates, now: u64) -> String {
    if !certificates.enabled {
        return "grid management off".into();
    }
    let statuses = certificates.statuses(now);
    if statuses.is_empty() {
        return "none".into();
    }
    statuses
        .iter()
        .map(|s| format!("{} {}", s.name, s.state.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

impl ReloadReport {
    /// Logs what changed.
    pub fn log(&self) {
        if self.applied.is_empty() && self.needs_restart.is_empty() {
            tracing::info!("reloaded: nothing changed");
        }
        for c in &self.applied {
            tracing::info!(setting = %c.setting, from = c.from.as_deref().unwrap_or("(default)"), to = c.to.as_deref().unwrap_or("(default)"), "reloaded: applied");
        }
        for c in &self.needs_restart {
            tracing::warn!(setting = %c.setting, from = c.from.as_deref().unwrap_or("(default)"), to = c.to.as_deref().unwrap_or("(default)"), "reloaded: this setting changes only at a restart");
        }
    }
}
