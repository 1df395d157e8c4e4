//! `swamp-server status DIR`: asks a running node's operator listener for its state
//! (`GET /status`, `status`) and prints it for a person.
//!
//! The listener's address is `<DIR>/operator.url` (written at start); the secret is
//! `<DIR>/private/operator.secret`; the NURL comes from the node directory, as
//! `swamp-server nurl` prints it (the listener never hands out the swissnum). A node
//! that does not answer is reported as not running, which `main` turns into exit
//! status 3 (as `systemctl status` does), so scripts can tell it from other failures.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;

use super::status::Status;
use crate::node::OperatorSecret;

/// How long connecting, and then the whole exchange, may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The largest answer read.
const MAX_ANSWER: usize = 1 << 20;

/// Why the status could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// The node directory's configuration or identity cannot be read.
    #[error("cannot read the node directory {dir}")]
    Node {
        /// The node directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: Box<crate::start::StartError>,
    },
    /// `[swamp] operator_port = disabled`.
    #[error("the node's operator listener is disabled (operator_port = disabled); status asks it")]
    Disabled,
    /// No `operator.url`: the node never ran (with its operator listener).
    #[error("the node in {dir} is not running ({path} is missing: it has not started)")]
    NoUrl {
        /// The node directory.
        dir: PathBuf,
        /// The missing file.
        path: PathBuf,
    },
    /// `operator.url` holds something else.
    #[error("{path} does not hold an http://ADDRESS:PORT/ URL")]
    BadUrl {
        /// The file.
        path: PathBuf,
    },
    /// Nothing accepts connections at the URL.
    #[error("the node in {dir} is not running: nothing answers at {url}")]
    NotRunning {
        /// The node directory.
        dir: PathBuf,
        /// Where it was asked.
        url: String,
        /// The connection error.
        #[source]
        source: std::io::Error,
    },
    /// Connected, but no answer in time.
    #[error("{url} did not answer within {} s", TIMEOUT.as_secs())]
    Timeout {
        /// Where it was asked.
        url: String,
    },
    /// The listener refused the directory's secret.
    #[error(
        "{url} refused the operator secret in {dir}/private/operator.secret (is it this node's listener? was the secret changed since the node started?)"
    )]
    WrongSecret {
        /// The node directory.
        dir: PathBuf,
        /// Where it was asked.
        url: String,
    },
    /// Another HTTP failure.
    #[error("{url}status answered {status}: {body}")]
    Http {
        /// Where it was asked.
        url: String,
        /// The status code.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// The HTTP exchange failed.
    #[error("talking to {url} failed")]
    Transport {
        /// Where it was asked.
        url: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The node refused the configuration and runs on with the one it had.
    #[error("the node did not reload; it runs on with the configuration it had: {reason}")]
    ReloadRefused {
        /// What is wrong with the configuration.
        reason: String,
    },
    /// The answer is not a status document.
    #[error("{url}status answered something that is not a status document")]
    BadAnswer {
        /// Where it was asked.
        url: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

impl StatusError {
    /// Whether the node is simply not running.
    pub fn not_running(&self) -> bool {
        matches!(self, Self::NoUrl { .. } | Self::NotRunning { .. })
    }
}

/// What `status` learnt.
#[derive(Debug)]
pub struct Report {
    /// The node directory.
    pub dir: PathBuf,
    /// The node's NURLs (from the directory).
    pub nurls: Vec<String>,
    /// The operator listener's URL.
    pub url: String,
    /// The node's answer.
    pub status: Status,
}

/// Reads `dir`'s operator URL and secret and asks the node.
///
/// # Errors
/// [`StatusError`]; [`StatusError::not_running`] tells a stopped node apart.
pub async fn ask(dir: &Path, env: impl Fn(&str) -> Option<String>) -> Result<Report, StatusError> {
    let (config, identity, url, addr) = locate(dir, &env)?;
    let body = call(dir, &url, addr, &identity.operator_secret, Call::Status).await?;
    let status = serde_json::from_slice(&body).map_err(|source| StatusError::BadAnswer {
        url: url.clone(),
        source,
    })?;
    Ok(Report {
        dir: dir.to_path_buf(),
        nurls: identity
            .nurls(&config.location)
            .iter()
            .map(ToString::to_string)
            .collect(),
        url,
        status,
    })
}

/// The node directory's configuration and identity, and its operator listener's URL
/// and address.
fn locate(
    dir: &Path,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<
    (
        crate::node::Config,
        crate::node::NodeIdentity,
        String,
        SocketAddr,
    ),
    StatusError,
> {
    let (config, identity) =
        crate::start::describe_node(dir, env).map_err(|source| StatusError::Node {
            dir: dir.to_path_buf(),
            source: Box::new(source),
        })?;
    if config.operator.is_none() {
        return Err(StatusError::Disabled);
    }
    let (url, addr) = operator_url(dir)?;
    Ok((config, identity, url, addr))
}

/// The operator listener's URL and address, from `<dir>/operator.url` (written at
/// start).
fn operator_url(dir: &Path) -> Result<(String, SocketAddr), StatusError> {
    let path = dir.join("operator.url");
    let url = match std::fs::read_to_string(&path) {
        Ok(text) => text.trim().to_string(),
        Err(_) => {
            return Err(StatusError::NoUrl {
                dir: dir.to_path_buf(),
                path,
            });
        }
    };
    let addr: SocketAddr = url
        .strip_prefix("http://")
        .and_then(|rest| rest.trim_end_matches('/').parse().ok())
        .ok_or_else(|| StatusError::BadUrl { path: path.clone() })?;
    Ok((url, addr))
}

/// Asks the node of `dir` to reload its configuration (`POST /reload`), with the
/// operator secret as the directory holds it now. The configuration is not read here:
/// the node reads it, and says what is wrong with it.
///
/// # Errors
/// [`StatusError`]; [`StatusError::ReloadRefused`] when the configuration is wrong.
pub async fn reload(
    dir: &Path,
    env: impl Fn(&str) -> Option<String>,
) -> Result<crate::reload::ReloadReport, StatusError> {
    let (url, addr) = operator_url(dir)?;
    let secret_file = env(crate::node::identity::OPERATOR_SECRET_FILE_VAR).map_or_else(
        || dir.join("private").join("operator.secret"),
        PathBuf::from,
    );
    let secret = OperatorSecret::from_file(&secret_file).map_err(|e| StatusError::Node {
        dir: dir.to_path_buf(),
        source: Box::new(e.into()),
    })?;
    let body = call(dir, &url, addr, &secret, Call::Reload).await?;
    serde_json::from_slice(&body).map_err(|source| StatusError::BadAnswer { url, source })
}

/// What to ask the operator listener.
#[derive(Clone, Copy)]
enum Call {
    /// `GET /status`.
    Status,
    /// `POST /reload`.
    Reload,
}

async fn call(
    dir: &Path,
    url: &str,
    addr: SocketAddr,
    secret: &OperatorSecret,
    call: Call,
) -> Result<Bytes, StatusError> {
    let transport = |source: Box<dyn std::error::Error + Send + Sync>| StatusError::Transport {
        url: url.to_string(),
        source,
    };
    let timeout = || StatusError::Timeout {
        url: url.to_string(),
    };
    let tcp = tokio::time::timeout(TIMEOUT, tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| timeout())?
        .map_err(|source| StatusError::NotRunning {
            dir: dir.to_path_buf(),
            url: url.to_string(),
            source,
        })?;
    let exchange = async {
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(tcp))
                .await
                .map_err(|e| transport(e.into()))?;
        tokio::spawn(connection);
        let request = match call {
            Call::Status => http::Request::get(super::STATUS),
            Call::Reload => http::Request::post(super::RELOAD),
        };
        let request = request
            .header(http::header::HOST, addr.to_string())
            .header(
                http::header::AUTHORIZATION,
                format!("Swamp-Operator {}", secret.expose()),
            )
            .body(Empty::new())
            .map_err(|e| transport(e.into()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| transport(e.into()))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(transport)?
            .to_bytes();
        Ok::<_, StatusError>((status, body))
    };
    let (status, body) = tokio::time::timeout(TIMEOUT, exchange)
        .await
        .map_err(|_| timeout())??;
    match status.as_u16() {
        200 => Ok(body),
        401 => Err(StatusError::WrongSecret {
            dir: dir.to_path_buf(),
            url: url.to_string(),
        }),
        422 if matches!(call, Call::Reload) => {
            let refused: super::reload::Refused =
                serde_json::from_slice(&body).map_err(|source| StatusError::BadAnswer {
                    url: url.to_string(),
                    source,
                })?;
            Err(StatusError::ReloadRefused {
                reason: refused.error,
            })
        }
        code => Err(StatusError::Http {
            url: url.to_string(),
            status: code,
            body: String::from_utf8_lossy(&body[..body.len().min(200)])
                .trim()
                .to_string(),
        }),
    }
}

/// The report for a person, one line per subject.
pub fn render(report: &Report) -> String {
    let s = &report.status;
    let mut out = String::new();
    let mut line = |label: &str, text: &str| {
        let _ = writeln!(out, "{:<14}{text}", format!("{label}:"));
    };
    line(
        "node",
        &format!(
            "{} (running, swamp-server {})",
            report.dir.display(),
            s.version
        ),
    );
    for nurl in &report.nurls {
        line("NURL", nurl);
    }
    line("operator", &report.url);
    line("uptime", &duration(s.uptime_seconds));
    match &s.disk {
        Some(d) => line(
            "disk",
            &format!(
                "{} used of {}; {} free; {} available for shares ({} reserved)",
                bytes(d.used),
                bytes(d.total),
                bytes(d.free),
                bytes(d.avail),
                bytes(s.reserved_space)
            ),
        ),
        None => line(
            "disk",
            &format!(
                "unknown (statvfs failed); {} reserved",
                bytes(s.reserved_space)
            ),
        ),
    }
    line(
        "accepting",
        if s.accepting_immutable_shares {
            "immutable shares: yes"
        } else {
            "immutable shares: no (read-only, or no room above the reserve)"
        },
    );
    let sh = &s.shares;
    let bound = if sh.complete {
        ""
    } else {
        " (at least: the count stopped at its bound)"
    };
    line(
        "shares",
        &format!(
            "{} in {}{bound}; {} in progress",
            plural(sh.shares, "share"),
            plural(sh.storage_indexes, "storage index"),
            plural(sh.uploads_in_progress as u64, "upload"),
        ),
    );
    let f = &s.feeds;
    let open: usize = f.connections.values().sum();
    let by_transport = f
        .connections
        .iter()
        .map(|(t, n)| format!("{t} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    line(
        "feeds",
        &format!(
            "{} ({by_transport}), {}; {}, {} coalesced, {}; {} queued",
            plural(open as u64, "connection"),
            plural(f.subscriptions as u64, "subscription"),
            plural(f.deliveries, "delivery"),
            f.coalesced,
            plural(f.slow_closes, "slow close"),
            bytes(f.queued_bytes as u64)
        ),
    );
    line(
        "requests",
        &format!(
            "{} since start (4xx: {}, 5xx: {})",
            s.requests.total, s.requests.client_errors, s.requests.server_errors
        ),
    );
    for text in certificate_lines(s) {
        line("certificates", &text);
    }
    line("lease expiry", &lease_expiry(&s.lease_expiry));
    out
}

/// One line per certificate (name, state, expiry date, time left), or one saying why
/// there are none.
fn certificate_lines(s: &Status) -> Vec<String> {
    if s.certificates.is_empty() {
        return vec![match (s.grid_management, s.certificates_ignored) {
            (true, _) => "none configured, but grid management is on: clients that use a grid manager will not upload here".to_string(),
            (false, 0) => "none configured".to_string(),
            (false, n) => format!(
                "grid management is off ([storage] grid_management): {} in [grid_manager_certificates] not announced",
                plural(n as u64, "certificate")
            ),
        }];
    }
    s.certificates
        .iter()
        .map(|c| {
            let state = if c.state == "valid" {
                c.state.clone()
            } else {
                c.state.to_uppercase()
            };
            let signer = match &c.signed_by {
                Some(gm) => format!("signed by {gm}"),
                None => "signature not checked (no [grid_managers])".to_string(),
            };
            format!(
                "{}: {state}, expires {} ({}); {signer}",
                c.name,
                utc(c.expires),
                time_left(c.seconds_left)
            )
        })
        .collect()
}

fn lease_expiry(e: &super::status::LeaseExpiryStatus) -> String {
    let totals = format!(
        "{} examined, {} deleted since start",
        plural(e.shares_examined, "share"),
        e.shares_deleted
    );
    let last = match e.last_pass_end {
        Some(t) => format!(
            "last pass ended {}",
            utc(i64::try_from(t).unwrap_or(i64::MAX))
        ),
        None => "no pass completed yet".to_string(),
    };
    if !e.enabled {
        return format!("off ([storage] expire.enabled); {last}; {totals}");
    }
    if e.running {
        let percent = e.prefixes_done * 100 / e.prefixes_total.max(1);
        format!(
            "on; pass under way: {} of {} prefixes ({percent}%); {last}; {totals}",
            e.prefixes_done, e.prefixes_total
        )
    } else {
        format!("on; {} done, {last}; {totals}", plural(e.passes, "pass"))
    }
}

/// Time left before an expiry, or since it, for a person.
fn time_left(seconds: i64) -> String {
    let (span, future) = (seconds.unsigned_abs(), seconds > 0);
    let amount = if span >= 86_400 {
        plural(span / 86_400, "day")
    } else if span >= 3_600 {
        plural(span / 3_600, "hour")
    } else {
        "less than an hour".to_string()
    };
    if future {
        format!("{amount} left")
    } else {
        format!("expired {amount} ago")
    }
}

/// Unix seconds as a UTC date and time, `2031-12-05 20:21 UTC`.
fn utc(seconds: i64) -> String {
    let (days, rest) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rest / 3_600,
        rest / 60 % 60
    )
}

fn plural(n: u64, what: &str) -> String {
    let many = match what {
        "storage index" => "storage indexes".to_string(),
        "pass" => "passes".to_string(),
        "delivery" => "deliveries".to_string(),
        w => format!("{w}s"),
    };
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {many}")
    }
}

/// Bytes in binary units, three significant figures.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn duration(seconds: f64) -> String {
    let total = seconds.max(0.0) as u64;
    let (d, h, m, s) = (
        total / 86_400,
        total / 3600 % 24,
        total / 60 % 60,
        total % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m {s}s"),
        _ => format!("{d}d {h}h {m}m {s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::super::status::{
        CertificateStatus, FeedStatus, LeaseExpiryStatus, RequestCounts, ShareCount,
    };
    use super::*;

    fn report(certificates: Vec<CertificateStatus>, lease_expiry: LeaseExpiryStatus) -> Report {
        Report {
            dir: PathBuf::from("/srv/node"),
            nurls: Vec::new(),
            url: "http://127.0.0.1:1/".into(),
            status: Status {
                version: "0.1.0".into(),
                uptime_seconds: 1.0,
                disk: None,
                reserved_space: 0,
                accepting_immutable_shares: true,
                shares: ShareCount::default(),
                feeds: FeedStatus {
                    connections: Default::default(),
                    subscriptions: 0,
                    deliveries: 0,
                    coalesced: 0,
                    slow_closes: 0,
                    queued_bytes: 0,
                },
                requests: RequestCounts {
                    total: 0,
                    client_errors: 0,
                    server_errors: 0,
                },
                grid_management: !certificates.is_empty(),
                certificates,
                certificates_ignored: 0,
                lease_expiry,
            },
        }
    }

    fn lines<'a>(out: &'a str, label: &str) -> Vec<&'a str> {
        out.lines()
            .filter_map(|l| l.strip_prefix(&format!("{label}:")))
            .map(str::trim)
            .collect()
    }

    #[test]
    fn certificates_and_lease_expiry_read_for_a_person() {
        let certificate =
            |name: &str, state: &str, left: i64, signed_by: Option<&str>| CertificateStatus {
                name: name.into(),
                state: state.into(),
                expires: 1_954_268_469,
                seconds_left: left,
                signature_checked: signed_by.is_some(),
                signed_by: signed_by.map(Into::into),
                grid_manager_key: None,
            };
        let out = render(&report(
            vec![
                certificate("main", "valid", 157_680_000, Some("gm")),
                certificate("old", "expired", -2 * 86_400, None),
            ],
            LeaseExpiryStatus {
                enabled: true,
                running: true,
                prefixes_done: 256,
                prefixes_total: 1024,
                passes: 3,
                last_pass_end: Some(0),
                shares_examined: 10,
                shares_deleted: 1,
            },
        ));
        assert_eq!(
            lines(&out, "certificates"),
            [
                "main: valid, expires 2031-12-05 20:21 UTC (1825 days left); signed by gm",
                "old: EXPIRED, expires 2031-12-05 20:21 UTC (expired 2 days ago); signature not checked (no [grid_managers])",
            ]
        );
        assert_eq!(
            lines(&out, "lease expiry"),
            [
                "on; pass under way: 256 of 1024 prefixes (25%); last pass ended 1970-01-01 00:00 UTC; 10 shares examined, 1 deleted since start"
            ]
        );
        let out = render(&report(Vec::new(), LeaseExpiryStatus::default()));
        assert_eq!(lines(&out, "certificates"), ["none configured"]);
        assert_eq!(
            lines(&out, "lease expiry"),
            [
                "off ([storage] expire.enabled); no pass completed yet; 0 shares examined, 0 deleted since start"
            ]
        );
    }

    #[test]
    fn figures_read_for_a_person() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(10 << 30), "10.0 GiB");
        assert_eq!(duration(59.9), "59s");
        assert_eq!(duration(3725.0), "1h 2m 5s");
        assert_eq!(duration(90_061.0), "1d 1h 1m 1s");
        assert_eq!(plural(1, "storage index"), "1 storage index");
        assert_eq!(plural(2, "delivery"), "2 deliveries");
        assert_eq!(plural(0, "share"), "0 shares");
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        // The grid-manager fixtures' expiry (2031-12-05T20:21:09.059275+00:00).
        assert_eq!(utc(1_954_268_469), "2031-12-05 20:21 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc(-1), "1969-12-31 23:59 UTC");
        assert_eq!(time_left(157_680_000), "1825 days left");
        assert_eq!(time_left(86_400), "1 day left");
        assert_eq!(time_left(7_200), "2 hours left");
        assert_eq!(time_left(59), "less than an hour left");
        assert_eq!(time_left(0), "expired less than an hour ago");
        assert_eq!(time_left(-3 * 86_400 - 5), "expired 3 days ago");
    }
}
