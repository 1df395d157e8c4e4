//! The node's configuration: `tahoe.cfg` as Tahoe defines it, Swamp's own settings in
//! its `[storageserver.plugins.swamp]` section, and environment variables over both (for
//! containers).
//!
//! Swamp's section has that name because Tahoe's config validator accepts any section
//! named `storageserver.plugins.*`, so Tahoe and its tools keep working on a Swamp node
//! directory (`migrate.rs`; older Swamp directories used `[swamp]`, which is renamed at
//! start and still read before that). In this file the section is called `swamp` for
//! short, as in the environment names.
//!
//! Precedence: built-in defaults < `tahoe.cfg` < environment. Every key has an
//! environment name: `SWAMP_<SECTION>_<KEY>` in upper case with dots as underscores
//! (`SWAMP_STORAGE_RESERVED_SPACE`, `SWAMP_NODE_TUB_PORT`), and `SWAMP_<KEY>` for our
//! own section (`SWAMP_MAX_CONNECTIONS`). `SWAMP_..._FILE` instead names a file that
//! holds the value (a secret the container runtime mounts, say): setting both is an
//! error. Keys of other Tahoe sections (`[client]`,
//! `[helper]`...) are ignored, since a storage node does not use them; an unknown key
//! in Swamp's section is an error, since it can only be a typo. Grid-manager
//! certificates (`[grid_manager_certificates]`, `[grid_managers]`) are read as Tahoe
//! reads them (`grid_manager.rs`).

use std::collections::HashMap;
use std::io::Read as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::grid_manager::{GridManagerConfig, parse_public_key};
use super::migrate::{MigrateError, SWAMP_SECTION, migrated_config_text};
use super::settings::{
    LocationHint, parse_bool, parse_date, parse_duration, parse_location, parse_port, parse_size,
};
use crate::backend::expiry::{ExpiryMode, ExpiryPolicy};
use swamp_proto::ini::Ini;

/// A configuration problem, naming the key and the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `tahoe.cfg` could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A setting is malformed.
    #[error("{origin}: [{section}] {key}: {reason}")]
    Invalid {
        /// `tahoe.cfg` path or the environment variable's name.
        origin: String,
        /// Section.
        section: String,
        /// Key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A grid-manager certificate is unusable (`grid_manager.rs`).
    #[error("grid-manager certificate {name} ({path}): {reason}")]
    Certificate {
        /// Its name in `[grid_manager_certificates]`.
        name: String,
        /// Its file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Keys this node reads, by section; each also comes from the environment.
const KNOWN_KEYS: &[(&str, &str)] = &[
    ("node", "nickname"),
    ("node", "tub.port"),
    ("node", "tub.location"),
    ("storage", "enabled"),
    ("storage", "readonly"),
    ("storage", "reserved_space"),
    ("storage", "expire.enabled"),
    ("storage", "expire.mode"),
    ("storage", "expire.override_lease_duration"),
    ("storage", "expire.cutoff_date"),
    ("storage", "expire.immutable"),
    ("storage", "expire.mutable"),
    ("storage", "grid_management"),
    ("swamp", "max_connections"),
    ("swamp", "max_patch_size"),
    ("swamp", "max_read_test_write_size"),
    ("swamp", "upload_idle_timeout"),
    ("swamp", "shutdown_grace"),
    ("swamp", "handshake_timeout"),
    ("swamp", "header_read_timeout"),
    ("swamp", "idle_timeout"),
    ("swamp", "body_read_timeout"),
    ("swamp", "write_timeout"),
    ("swamp", "ping_interval"),
    ("swamp", "ping_timeout"),
    ("swamp", "max_uploads_in_progress"),
    ("swamp", "max_read_answer_size"),
    ("swamp", "max_bodies_in_flight"),
    ("swamp", "body_budget_wait"),
    ("swamp", "max_mutable_share_size"),
    ("swamp", "log_format"),
    ("swamp", "log_filter"),
    ("swamp", "metrics"),
    ("swamp", "direct_upload_writes"),
    ("swamp", "operator_port"),
    ("swamp", "feed_history_events"),
    ("swamp", "feed_history_seconds"),
    ("swamp", "feed_index_entries"),
    ("swamp", "feed_index_seconds"),
    ("swamp", "feed_queue_bytes"),
    ("swamp", "feed_max_subscriptions_per_connection"),
    ("swamp", "feed_max_subscriptions"),
    ("swamp", "feed_max_connections"),
    ("swamp", "feed_max_connections_per_token"),
    ("swamp", "feed_progress_seconds"),
];

/// Keys a running node cannot change (`reload`): the listeners are bound, the NURLs
/// announced, and uploads in progress opened their files one way. Every other key
/// takes effect at a reload.
const RESTART_KEYS: &[(&str, &str)] = &[
    ("node", "tub.port"),
    ("node", "tub.location"),
    ("storage", "enabled"),
    ("swamp", "operator_port"),
    ("swamp", "direct_upload_writes"),
    ("swamp", "metrics"),
];

/// Whether a reload applies the setting `[section] key` (as [`Config::values`] names
/// it) to the running node; the rest need a restart.
pub fn applies_at_reload(setting: &str) -> bool {
    !RESTART_KEYS
        .iter()
        .any(|(section, key)| setting == setting_name(section, key))
}

/// How a setting is named to people: `[storage] reserved_space`,
/// `[storageserver.plugins.swamp] max_connections`.
fn setting_name(section: &str, key: &str) -> String {
    format!("[{}] {key}", file_section(section))
}

/// The log filter a node uses when none is set.
pub const DEFAULT_LOG_FILTER: &str = "swamp_server=info,opentelemetry=warn";

/// The environment variable older Swamp versions took the log filter from; still read
/// when `SWAMP_LOG_FILTER` is not set.
const LEGACY_LOG_FILTER_VAR: &str = "SWAMP_LOG";

/// The `tahoe.cfg` section a section of [`KNOWN_KEYS`] is read from: `swamp` is short
/// for [`SWAMP_SECTION`].
fn file_section(section: &str) -> &str {
    if section == "swamp" {
        SWAMP_SECTION
    } else {
        section
    }
}

/// The environment variable that overrides a key.
pub fn env_name(section: &str, key: &str) -> String {
    let key = key.replace(['.', '-'], "_").to_ascii_uppercase();
    if section == "swamp" {
        format!("SWAMP_{key}")
    } else {
        format!("SWAMP_{}_{key}", section.to_ascii_uppercase())
    }
}

/// Request and connection limits.
///
/// The time bounds together decide how long a client that stops talking keeps its
/// connection (and so one of `max_connections`): a silent socket is released within
/// `handshake_timeout` before TLS, and within `header_read_timeout` after it (also a
/// kept-alive one, once the node is full). None of them counts time in which the
/// server is the one working or waiting (a long-poll wait, a slow disk).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// Largest PATCH body (one write of an immutable upload).
    pub max_patch_size: usize,
    /// Largest read-test-write body (a whole mutable share may come in one).
    pub max_read_test_write_size: usize,
    /// Uploads with no write for this long are aborted.
    pub upload_idle_timeout: Duration,
    /// How long shutdown waits for requests in flight.
    pub shutdown_grace: Duration,
    /// How long a client may take to finish the TLS handshake.
    pub handshake_timeout: Duration,
    /// A new connection must complete its first request's head within this after the
    /// handshake; and while all `max_connections` are in use, every connection with no
    /// request in flight is closed once idle this long (`connection/in_flight.rs`).
    pub header_read_timeout: Duration,
    /// A kept-alive connection (HTTP/1.1 or HTTP/2) with no request in flight is closed
    /// after this, while the node has room. Longer than Tahoe's client pool timeout.
    pub idle_timeout: Duration,
    /// A request body that sends no byte for this long, while the server waits for
    /// it, fails (400) and its connection closes.
    pub body_read_timeout: Duration,
    /// A socket write that makes no progress for this long ends the connection: a
    /// client that stops reading answers (or feed events) lets go of it.
    pub write_timeout: Duration,
    /// HTTP/2 and WebSocket connections get a ping this often...
    pub ping_interval: Duration,
    /// ...and are closed when it is not answered within this.
    pub ping_timeout: Duration,
    /// Immutable uploads in progress at once, over all clients; an allocate that finds
    /// no room is answered 503.
    pub max_uploads_in_progress: usize,
    /// Bytes one read-test-write may answer with (its read vectors over all shares);
    /// more is a 413.
    pub max_read_answer_size: u64,
    /// Request bodies held in memory at once, over all connections and streams; a
    /// request waits (up to `body_budget_wait`) for its share, then gets a 503.
    pub max_bodies_in_flight: usize,
    /// How long a request waits for room in `max_bodies_in_flight` before the node
    /// answers 503.
    pub body_budget_wait: Duration,
    /// The largest mutable share this node keeps (and announces in its version).
    pub max_mutable_share_size: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 20_000,
            max_patch_size: 64 << 20,
            max_read_test_write_size: 256 << 20,
            upload_idle_timeout: Duration::from_secs(30 * 60),
            shutdown_grace: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(15),
            header_read_timeout: Duration::from_secs(30),
            // Twisted's HTTPConnectionPool drops idle connections after 240 s: a bound
            // above it lets Tahoe's client close first, so it never sends a POST into
            // a connection the node is closing.
            idle_timeout: Duration::from_secs(300),
            body_read_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(60),
            ping_interval: Duration::from_secs(30),
            ping_timeout: Duration::from_secs(20),
            max_uploads_in_progress: 10_000,
            max_read_answer_size: 64 << 20,
            max_bodies_in_flight: 1 << 30,
            body_budget_wait: Duration::from_secs(30),
            // Tahoe announces 69,105 TB and keeps containers as sparse files; the
            // largest file ext4 holds is 16 TiB. 64 GiB is far above any mutable file
            // Tahoe's clients write (directories, SDMF and MDMF files of a few GiB) and
            // keeps a hostile write offset from making files the disk cannot hold.
            max_mutable_share_size: 64 << 30,
        }
    }
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The resolved configuration of a storage node.
#[derive(Clone, Debug)]
pub struct Config {
    /// The node directory.
    pub node_dir: PathBuf,
    /// `[node] nickname`.
    pub nickname: String,
    /// Where to listen (`[node] tub.port`).
    pub listen: SocketAddr,
    /// Where clients reach us (`[node] tub.location`, TCP hints); defaults to the
    /// listening address, with 127.0.0.1 for an unspecified interface.
    pub location: Vec<LocationHint>,
    /// `[storage] reserved_space`.
    pub reserved_space: u64,
    /// `[storage] readonly`.
    pub readonly: bool,
    /// Lease expiry, when `[storage] expire.enabled` is true.
    pub expiry: Option<ExpiryPolicy>,
    /// Limits (Swamp's section, `[storageserver.plugins.swamp]`).
    pub limits: Limits,
    /// `log_format` (Swamp's section).
    pub log_format: LogFormat,
    /// `log_filter` (Swamp's section; `SWAMP_LOG_FILTER`, or `SWAMP_LOG` as before):
    /// which log lines are written, in `tracing`'s `EnvFilter` syntax
    /// (`swamp_server=debug`, `info`). Checked when read.
    pub log_filter: String,
    /// `direct_upload_writes` (Swamp's section): uploads written around the page cache
    /// where the file system allows it (default true).
    pub direct_upload_writes: bool,
    /// Change feed settings (Swamp's section, `feed_*`).
    pub feeds: crate::feeds::FeedSettings,
    /// Where the operator listener listens (`operator_port` in Swamp's section, a Tahoe-style
    /// endpoint like `tcp:9464:interface=127.0.0.1`, or `disabled`); by default a free
    /// loopback port chosen at start and written to `<node>/operator.url`.
    pub operator: Option<SocketAddr>,
    /// Grid-manager certificates to announce and the grid managers trusted to sign
    /// them (checked by `grid_manager::load_certificates`).
    pub grid_manager: GridManagerConfig,
    /// `metrics` (Swamp's section, default true): record requests, write-ahead-log
    /// commits and feed deliveries for `/metrics`. Off only to measure what recording
    /// costs; the figures read at scrape time stay.
    pub metrics: bool,
    /// Every setting given a value, from `tahoe.cfg` or the environment, by its name
    /// for people (`[storage] reserved_space`), as written: what a reload compares.
    pub values: std::collections::BTreeMap<String, String>,
}

impl Config {
    /// The storage directory, `<node>/storage`.
    pub fn storage_dir(&self) -> PathBuf {
        self.node_dir.join("storage")
    }

    /// Reads `<node_dir>/tahoe.cfg` and the environment.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file or variable, the key, and the problem.
    pub fn load(
        node_dir: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let path = node_dir.join("tahoe.cfg");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        let file_origin = path.display().to_string();
        // A directory not yet migrated (`migrate.rs`) reads as if it were.
        let text = match migrated_config_text(&text, &path) {
            Ok(migrated) => migrated.unwrap_or(text),
            Err(MigrateError::Conflict { key, old, new, .. }) => {
                return Err(ConfigError::Invalid {
                    origin: file_origin,
                    section: SWAMP_SECTION.into(),
                    key,
                    reason: format!(
                        "set to {new:?} here and to {old:?} in the old [swamp] section; keep one"
                    ),
                });
            }
            Err(MigrateError::Io { path, source, .. }) => {
                return Err(ConfigError::Read { path, source });
            }
        };
        let ini = Ini::parse(&text).map_err(|reason| ConfigError::Invalid {
            origin: file_origin.clone(),
            section: String::new(),
            key: String::new(),
            reason,
        })?;
        if let Some(key) = ini
            .keys(SWAMP_SECTION)
            .into_iter()
            .find(|k| !KNOWN_KEYS.contains(&("swamp", k)))
        {
            return Err(ConfigError::Invalid {
                origin: file_origin,
                section: SWAMP_SECTION.into(),
                key: key.into(),
                reason: "unknown setting".into(),
            });
        }
        let from_files = values_from_files(&env)?;
        let env = |name: &str| env(name).or_else(|| from_files.get(name).cloned());
        let lookup = Lookup {
            ini: &ini,
            env: &env,
            file_origin,
        };
        lookup.resolve(node_dir)
    }
}

/// The largest file a `SWAMP_..._FILE` variable may name: a setting is a line.
const MAX_SETTING_FILE: u64 = 64 * 1024;

/// The values that `SWAMP_<KEY>_FILE` variables point to, by the name of the variable
/// they stand for (`SWAMP_<KEY>`); the file's trailing line ending is not part of it.
fn values_from_files(
    env: &impl Fn(&str) -> Option<String>,
) -> Result<HashMap<String, String>, ConfigError> {
    let mut values = HashMap::new();
    for (section, key) in KNOWN_KEYS {
        let name = env_name(section, key);
        let file_var = format!("{name}_FILE");
        let Some(path) = env(&file_var) else {
            continue;
        };
        let invalid = |reason: String| ConfigError::Invalid {
            origin: format!("environment variable {file_var}"),
            section: (*section).into(),
            key: (*key).into(),
            reason,
        };
        if env(&name).is_some() {
            return Err(invalid(format!("{name} is set too; set one of them")));
        }
        let path = PathBuf::from(path);
        let read_error = |source| ConfigError::Read {
            path: path.clone(),
            source,
        };
        let mut text = String::new();
        std::fs::File::open(&path)
            .map_err(read_error)?
            .take(MAX_SETTING_FILE + 1)
            .read_to_string(&mut text)
            .map_err(read_error)?;
        if text.len() as u64 > MAX_SETTING_FILE {
            return Err(invalid(format!(
                "{} is larger than {MAX_SETTING_FILE} bytes",
                path.display()
            )));
        }
        let value = text.strip_suffix('\n').unwrap_or(&text);
        let value = value.strip_suffix('\r').unwrap_or(value);
        values.insert(name, value.to_string());
    }
    Ok(values)
}

struct Lookup<'a, E: Fn(&str) -> Option<String>> {
    ini: &'a Ini,
    env: &'a E,
    file_origin: String,
}

impl<E: Fn(&str) -> Option<String>> Lookup<'_, E> {
    /// The value and where it came from.
    fn get(&self, section: &str, key: &str) -> Option<(String, String)> {
        debug_assert!(
            KNOWN_KEYS.contains(&(section, key)),
            "unlisted key {section}.{key}"
        );
        let var = env_name(section, key);
        if let Some(v) = (self.env)(&var) {
            return Some((v, format!("environment variable {var}")));
        }
        if (section, key) == ("swamp", "log_filter")
            && let Some(v) = (self.env)(LEGACY_LOG_FILTER_VAR)
        {
            return Some((v, format!("environment variable {LEGACY_LOG_FILTER_VAR}")));
        }
        self.ini
            .get(file_section(section), key)
            .map(|v| (v.to_string(), self.file_origin.clone()))
    }

    fn parse<T>(
        &self,
        section: &str,
        key: &str,
        default: T,
        f: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        match self.get(section, key) {
            None => Ok(default),
            Some((value, _)) if value.trim().is_empty() => Ok(default),
            Some((value, origin)) => f(&value).map_err(|reason| ConfigError::Invalid {
                origin,
                section: file_section(section).into(),
                key: key.into(),
                reason,
            }),
        }
    }

    fn feed_settings(&self) -> Result<crate::feeds::FeedSettings, ConfigError> {
        let d = crate::feeds::FeedSettings::default();
        let count = |s: &str| {
            s.trim()
                .parse::<usize>()
                .map_err(|_| format!("{s:?} is not a whole number"))
        };
        let secs = |s: &str| {
            s.trim()
                .parse::<u64>()
                .map(Duration::from_secs)
                .map_err(|_| format!("{s:?} is not a number of seconds"))
        };
        let size = |s: &str| {
            parse_size(s).and_then(|n| usize::try_from(n).map_err(|_| "too large".to_string()))
        };
        Ok(crate::feeds::FeedSettings {
            retention: crate::feeds::Retention {
                min_events: self.parse(
                    "swamp",
                    "feed_history_events",
                    d.retention.min_events,
                    count,
                )?,
                min_age: self.parse("swamp", "feed_history_seconds", d.retention.min_age, secs)?,
                index: crate::feeds::index::IndexBound {
                    max_entries: self.parse(
                        "swamp",
                        "feed_index_entries",
                        d.retention.index.max_entries,
                        count,
                    )?,
                    horizon: self.parse(
                        "swamp",
                        "feed_index_seconds",
                        d.retention.index.horizon,
                        secs,
                    )?,
                },
            },
            queue_budget: self.parse("swamp", "feed_queue_bytes", d.queue_budget, size)?,
            max_subscriptions_per_connection: self.parse(
                "swamp",
                "feed_max_subscriptions_per_connection",
                d.max_subscriptions_per_connection,
                count,
            )?,
            max_subscriptions: self.parse(
                "swamp",
                "feed_max_subscriptions",
                d.max_subscriptions,
                count,
            )?,
            max_connections: self.parse(
                "swamp",
                "feed_max_connections",
                d.max_connections,
                count,
            )?,
            max_connections_per_token: self.parse(
                "swamp",
                "feed_max_connections_per_token",
                d.max_connections_per_token,
                count,
            )?,
            progress_interval: self.parse(
                "swamp",
                "feed_progress_seconds",
                d.progress_interval,
                secs,
            )?,
        })
    }

    fn resolve(&self, node_dir: &Path) -> Result<Config, ConfigError> {
        let nickname = self
            .get("node", "nickname")
            .map(|(v, _)| v)
            .unwrap_or_default();
        let listen = self.parse("node", "tub.port", None, |s| {
            parse_port(s)?.map(Some).ok_or_else(|| {
                "a storage node needs a port; 'disabled' is not supported".to_string()
            })
        })?;
        let listen = listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 3457)));
        let location = self.parse("node", "tub.location", Vec::new(), |s| {
            if s.trim() == "AUTO" {
                Ok(Vec::new())
            } else {
                parse_location(s)
            }
        })?;
        let location = if location.is_empty() {
            let host = if listen.ip().is_unspecified() {
                "127.0.0.1".to_string()
            } else {
                listen.ip().to_string()
            };
            vec![LocationHint {
                host,
                port: listen.port(),
            }]
        } else {
            location
        };
        let enabled = self.parse("storage", "enabled", true, parse_bool)?;
        if !enabled {
            return Err(ConfigError::Invalid {
                origin: self.file_origin.clone(),
                section: "storage".into(),
                key: "enabled".into(),
                reason: "this node has storage disabled; swamp-server only runs storage nodes"
                    .into(),
            });
        }
        let expiry_enabled = self.parse("storage", "expire.enabled", false, parse_bool)?;
        let expiry = if expiry_enabled {
            let mode = self.parse("storage", "expire.mode", "age".to_string(), |s| {
                match s.trim() {
                    "age" | "cutoff-date" => Ok(s.trim().to_string()),
                    other => Err(format!("{other:?} is not 'age' or 'cutoff-date'")),
                }
            })?;
            let mode = if mode == "age" {
                match self.parse("storage", "expire.override_lease_duration", None, |s| {
                    parse_duration(s).map(Some)
                })? {
                    Some(d) => ExpiryMode::AgeOverride(d),
                    None => ExpiryMode::Age,
                }
            } else {
                let cutoff = self.parse("storage", "expire.cutoff_date", None, |s| {
                    parse_date(s).map(Some)
                })?;
                ExpiryMode::CutoffDate(cutoff.ok_or_else(|| ConfigError::Invalid {
                    origin: self.file_origin.clone(),
                    section: "storage".into(),
                    key: "expire.cutoff_date".into(),
                    reason:
                        "expire.mode = cutoff-date needs expire.cutoff_date = YYYY-MM-DD".into(),
                })?)
            };
            Some(ExpiryPolicy {
                mode,
                immutable: self.parse("storage", "expire.immutable", true, parse_bool)?,
                mutable: self.parse("storage", "expire.mutable", true, parse_bool)?,
            })
        } else {
            None
        };
        let d = Limits::default();
        let count = |s: &str| {
            s.trim()
                .parse::<usize>()
                .map_err(|_| format!("{s:?} is not a whole number"))
        };
        let size = |s: &str| {
            parse_size(s).and_then(|n| usize::try_from(n).map_err(|_| "too large".to_string()))
        };
        let secs = |s: &str| {
            s.trim()
                .trim_end_matches('s')
                .parse::<u64>()
                .map(Duration::from_secs)
                .map_err(|_| format!("{s:?} is not a number of seconds"))
        };
        // A zero timeout would close every connection at once: refuse it.
        let positive = |s: &str| match secs(s)? {
            d if d.is_zero() => Err("must be at least 1 second".to_string()),
            d => Ok(d),
        };
        let limits = Limits {
            max_connections: self.parse("swamp", "max_connections", d.max_connections, count)?,
            max_patch_size: self.parse("swamp", "max_patch_size", d.max_patch_size, size)?,
            max_read_test_write_size: self.parse(
                "swamp",
                "max_read_test_write_size",
                d.max_read_test_write_size,
                size,
            )?,
            upload_idle_timeout: self.parse(
                "swamp",
                "upload_idle_timeout",
                d.upload_idle_timeout,
                secs,
            )?,
            shutdown_grace: self.parse("swamp", "shutdown_grace", d.shutdown_grace, secs)?,
            handshake_timeout: self.parse(
                "swamp",
                "handshake_timeout",
                d.handshake_timeout,
                positive,
            )?,
            header_read_timeout: self.parse(
                "swamp",
                "header_read_timeout",
                d.header_read_timeout,
                positive,
            )?,
            idle_timeout: self.parse("swamp", "idle_timeout", d.idle_timeout, positive)?,
            body_read_timeout: self.parse(
                "swamp",
                "body_read_timeout",
                d.body_read_timeout,
                positive,
            )?,
            write_timeout: self.parse("swamp", "write_timeout", d.write_timeout, positive)?,
            ping_interval: self.parse("swamp", "ping_interval", d.ping_interval, positive)?,
            ping_timeout: self.parse("swamp", "ping_timeout", d.ping_timeout, positive)?,
            max_uploads_in_progress: self.parse(
                "swamp",
                "max_uploads_in_progress",
                d.max_uploads_in_progress,
                count,
            )?,
            max_read_answer_size: self.parse(
                "swamp",
                "max_read_answer_size",
                d.max_read_answer_size,
                parse_size,
            )?,
            max_bodies_in_flight: self.parse(
                "swamp",
                "max_bodies_in_flight",
                d.max_bodies_in_flight,
                size,
            )?,
            body_budget_wait: self.parse("swamp", "body_budget_wait", d.body_budget_wait, secs)?,
            max_mutable_share_size: self.parse(
                "swamp",
                "max_mutable_share_size",
                d.max_mutable_share_size,
                parse_size,
            )?,
        };
        let largest_body = limits.max_patch_size.max(limits.max_read_test_write_size);
        if limits.max_bodies_in_flight < largest_body {
            return Err(ConfigError::Invalid {
                origin: "tahoe.cfg or the environment".into(),
                section: SWAMP_SECTION.into(),
                key: "max_bodies_in_flight".into(),
                reason: format!(
                    "must be at least the largest request body allowed ({largest_body} bytes)"
                ),
            });
        }
        let log_format =
            self.parse("swamp", "log_format", LogFormat::Text, |s| match s.trim() {
                "text" => Ok(LogFormat::Text),
                "json" => Ok(LogFormat::Json),
                other => Err(format!("{other:?} is not 'text' or 'json'")),
            })?;
        let log_filter =
            self.parse("swamp", "log_filter", DEFAULT_LOG_FILTER.to_string(), |s| {
                tracing_subscriber::EnvFilter::try_new(s.trim())
                    .map(|_| s.trim().to_string())
                    .map_err(|e| format!("{s:?} is not a log filter like swamp_server=debug: {e}"))
            })?;
        Ok(Config {
            node_dir: node_dir.to_path_buf(),
            nickname,
            listen,
            location,
            reserved_space: self.parse("storage", "reserved_space", 0, parse_size)?,
            readonly: self.parse("storage", "readonly", false, parse_bool)?,
            expiry,
            limits,
            log_format,
            log_filter,
            metrics: self.parse("swamp", "metrics", true, parse_bool)?,
            direct_upload_writes: self.parse("swamp", "direct_upload_writes", true, parse_bool)?,
            operator: self.parse(
                "swamp",
                "operator_port",
                Some(SocketAddr::from(([127, 0, 0, 1], 0))),
                parse_port,
            )?,
            feeds: self.feed_settings()?,
            grid_manager: self.grid_manager(node_dir)?,
            values: self.values(),
        })
    }

    /// [`Config::values`]: the known keys that have a value, and the grid-manager
    /// sections' entries (their certificates' contents are compared apart).
    fn values(&self) -> std::collections::BTreeMap<String, String> {
        let known = KNOWN_KEYS.iter().filter_map(|(section, key)| {
            self.get(section, key)
                .map(|(value, _)| (setting_name(section, key), value.trim().to_string()))
        });
        let grid = ["grid_manager_certificates", "grid_managers"]
            .into_iter()
            .flat_map(|section| {
                self.ini.keys(section).into_iter().map(move |name| {
                    let value = self.ini.get(section, name).unwrap_or_default();
                    (format!("[{section}] {name}"), value.trim().to_string())
                })
            });
        known.chain(grid).collect()
    }

    /// `[storage] grid_management`, `[grid_manager_certificates]` (`NAME = FILE`,
    /// relative to the node directory, as Tahoe resolves them) and `[grid_managers]`
    /// (`NAME = pub-v0-...`). Names and keys come from `tahoe.cfg` only: they are
    /// open-ended, so they have no environment names.
    fn grid_manager(&self, node_dir: &Path) -> Result<GridManagerConfig, ConfigError> {
        let certificates = self
            .ini
            .keys("grid_manager_certificates")
            .into_iter()
            .filter_map(|name| {
                let file = self.ini.get("grid_manager_certificates", name)?.trim();
                Some((name.to_string(), node_dir.join(file)))
            })
            .collect();
        let trusted = self
            .ini
            .keys("grid_managers")
            .into_iter()
            .map(|name| {
                let key = self.ini.get("grid_managers", name).unwrap_or_default();
                parse_public_key(key)
                    .map(|k| (name.to_string(), k))
                    .map_err(|reason| ConfigError::Invalid {
                        origin: self.file_origin.clone(),
                        section: "grid_managers".into(),
                        key: name.into(),
                        reason,
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(GridManagerConfig {
            enabled: self.parse("storage", "grid_management", false, parse_bool)?,
            certificates,
            trusted,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(cfg: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tahoe.cfg"), cfg).unwrap();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::load(dir.path(), |k| {
            env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn reads_tahoe_keys_and_env_overrides() {
        let cfg = "[node]\nnickname = n1\ntub.port = tcp:4000:interface=127.0.0.1\ntub.location = tcp:example.org:4000\n[storage]\nenabled = true\nreserved_space = 1G\nexpire.enabled = true\nexpire.mode = age\nexpire.override_lease_duration = 60 days\n[client]\nshares.needed = 3\n";
        let c = load(
            cfg,
            &[
                ("SWAMP_STORAGE_RESERVED_SPACE", "2G"),
                ("SWAMP_MAX_CONNECTIONS", "7"),
            ],
        )
        .unwrap();
        assert_eq!(c.nickname, "n1");
        assert_eq!(c.listen, "127.0.0.1:4000".parse().unwrap());
        assert_eq!(c.location[0].host, "example.org");
        assert_eq!(c.reserved_space, 2_000_000_000);
        assert_eq!(c.limits.max_connections, 7);
        assert_eq!(c.expiry.unwrap().mode, ExpiryMode::AgeOverride(60 * 86_400));
    }

    #[test]
    fn errors_name_key_and_origin() {
        let e = load("[storage]\nreserved_space = lots\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("reserved_space") && e.contains("tahoe.cfg"),
            "{e}"
        );
        let e = load("", &[("SWAMP_NODE_TUB_PORT", "bogus")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("SWAMP_NODE_TUB_PORT"), "{e}");
        let e = load("[storageserver.plugins.swamp]\nmax_conections = 3\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[storageserver.plugins.swamp] max_conections") && e.contains("unknown"),
            "{e}"
        );
    }

    #[test]
    fn time_bounds_are_whole_positive_seconds() {
        let c = load(
            "[storageserver.plugins.swamp]\nidle_timeout = 5\nwrite_timeout = 7s\nfeed_max_connections_per_token = 3\n",
            &[("SWAMP_HEADER_READ_TIMEOUT", "9")],
        )
        .unwrap();
        assert_eq!(c.limits.idle_timeout, Duration::from_secs(5));
        assert_eq!(c.limits.write_timeout, Duration::from_secs(7));
        assert_eq!(c.limits.header_read_timeout, Duration::from_secs(9));
        assert_eq!(c.feeds.max_connections_per_token, 3);
        assert_eq!(c.limits.ping_interval, Limits::default().ping_interval);
        let e = load("[storageserver.plugins.swamp]\nping_timeout = 0\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("ping_timeout") && e.contains("at least 1"),
            "{e}"
        );
    }

    #[test]
    fn a_setting_can_come_from_a_file_named_in_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("reserved");
        std::fs::write(&file, "3G\n").unwrap();
        let path = file.to_str().unwrap();
        let c = load(
            "[storage]\nreserved_space = 1G\n",
            &[("SWAMP_STORAGE_RESERVED_SPACE_FILE", path)],
        )
        .unwrap();
        assert_eq!(c.reserved_space, 3_000_000_000);
        let e = load(
            "",
            &[
                ("SWAMP_STORAGE_RESERVED_SPACE_FILE", path),
                ("SWAMP_STORAGE_RESERVED_SPACE", "2G"),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("SWAMP_STORAGE_RESERVED_SPACE_FILE") && e.contains("set one of them"),
            "{e}"
        );
        let missing = dir.path().join("absent");
        let e = load(
            "",
            &[("SWAMP_MAX_CONNECTIONS_FILE", missing.to_str().unwrap())],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("absent"), "{e}");
        std::fs::write(&file, vec![b'1'; 70_000]).unwrap();
        let e = load("", &[("SWAMP_MAX_CONNECTIONS_FILE", path)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("larger than"), "{e}");
    }

    #[test]
    fn empty_config_has_defaults() {
        let c = load("", &[]).unwrap();
        assert!(c.expiry.is_none());
        assert_eq!(c.reserved_space, 0);
        assert_eq!(c.location[0].host, "127.0.0.1");
    }

    #[test]
    fn an_old_swamp_section_is_read_as_the_new_one() {
        let c = load(
            "[swamp]\nmax_connections = 9\n[storageserver.plugins.swamp]\nidle_timeout = 6\n",
            &[],
        )
        .unwrap();
        assert_eq!(c.limits.max_connections, 9);
        assert_eq!(c.limits.idle_timeout, Duration::from_secs(6));
        let e = load("[swamp]\nmax_conections = 3\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[storageserver.plugins.swamp] max_conections"),
            "{e}"
        );
        let e = load(
            "[swamp]\nmax_connections = 9\n[storageserver.plugins.swamp]\nmax_connections = 8\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("max_connections") && e.contains("keep one"),
            "{e}"
        );
        // Errors name the section the value is in now.
        let e = load("[swamp]\nmax_connections = many\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[storageserver.plugins.swamp] max_connections"),
            "{e}"
        );
    }

    #[test]
    fn grid_manager_settings_are_read_as_tahoe_reads_them() {
        let key = "pub-v0-ev4fhyzgezoo4hqbf4mqgdko27rxecokadnhgjzvnsiaxcfhtzga";
        let c = load(
            &format!(
                "[storage]\ngrid_management = True\n[grid_manager_certificates]\nB = b.cert\na = /abs/a.cert\n[grid_managers]\nmain = {key}\n"
            ),
            &[],
        )
        .unwrap();
        let gm = c.grid_manager;
        assert!(gm.enabled);
        assert_eq!(
            gm.certificates,
            vec![
                ("a".to_string(), PathBuf::from("/abs/a.cert")),
                ("b".to_string(), c.node_dir.join("b.cert")),
            ]
        );
        assert_eq!(gm.trusted.len(), 1);
        assert_eq!(gm.trusted[0].0, "main");
        assert!(!load("", &[]).unwrap().grid_manager.enabled);
        let on = load("", &[("SWAMP_STORAGE_GRID_MANAGEMENT", "true")]).unwrap();
        assert!(on.grid_manager.enabled);
        let e = load("[grid_managers]\nmain = pub-v0-nope\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("[grid_managers] main"), "{e}");
    }
}
