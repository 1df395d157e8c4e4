//! What the browser tests share: a headless Chromium (killed when dropped), a tiny
//! plain-HTTP page server on 127.0.0.1 whose pages report what they see by
//! `fetch()`ing JSON to its `/report` (handed to the test through a channel), and the
//! script every page starts with.
//!
//! Chromium comes from Debian's `chromium` package (`.ci/run` installs it). Without it
//! the browser tests fail when `CI` is set, and are skipped with a notice otherwise.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use swamp_proto::SpkiHash;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

pub(crate) const CHROMIUM: &str = "/usr/bin/chromium";

/// Whether Chromium is here; without it, panics when `CI` is set and says the test is
/// skipped otherwise.
pub(crate) fn chromium_present() -> bool {
    if Path::new(CHROMIUM).exists() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "{CHROMIUM} is missing: the browser tests need Debian's chromium package \
             (apt-get install chromium; .ci/run installs it)"
        );
    }
    eprintln!("SKIPPED: {CHROMIUM} is missing (apt-get install chromium); CI would fail here");
    false
}

/// Shared by every page: `report(object)` POSTs JSON to `/report`; script errors and
/// the page load are reported too.
pub(crate) const REPORT_JS: &str = r#"
const report = (o) => fetch("/report", { method: "POST", body: JSON.stringify(o) });
window.addEventListener("error", (e) => report({ kind: "script_error", message: String(e.message) }));
report({ kind: "loaded", page: location.pathname });
"#;

/// The page server: `GET` one of `pages`, `POST /report` (forwarded to `reports`);
/// one request per connection.
pub(crate) async fn serve_pages(
    listener: TcpListener,
    pages: Arc<HashMap<&'static str, String>>,
    reports: mpsc::UnboundedSender<Value>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let (pages, reports) = (Arc::clone(&pages), reports.clone());
        tokio::spawn(async move {
            // A browser may open a connection and never use it: that is not an error.
            let _ = serve_one(stream, &pages, &reports).await;
        });
    }
}

async fn serve_one(
    stream: TcpStream,
    pages: &HashMap<&'static str, String>,
    reports: &mpsc::UnboundedSender<Value>,
) -> std::io::Result<()> {
    let mut stream = BufReader::new(stream);
    let mut request_line = String::new();
    stream.read_line(&mut request_line).await?;
    let mut content_length = 0usize;
    loop {
        let mut line = String::new();
        if stream.read_line(&mut line).await? == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            content_length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; content_length.min(1 << 20)];
    stream.read_exact(&mut body).await?;
    let mut words = request_line.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let (status, content_type, content) = match (method, path) {
        ("GET", path) if pages.contains_key(path) => {
            ("200 OK", "text/html; charset=utf-8", pages[path].as_str())
        }
        ("POST", "/report") => match serde_json::from_slice(&body) {
            Ok(report) => {
                let _ = reports.send(report);
                ("204 No Content", "text/plain", "")
            }
            Err(_) => ("400 Bad Request", "text/plain", "not JSON"),
        },
        _ => ("404 Not Found", "text/plain", "not here"),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\
         cache-control: no-store\r\nconnection: close\r\n\r\n{content}",
        content.len()
    );
    let stream = stream.get_mut();
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// A headless Chromium, killed (by its PID) when dropped, failure or not.
pub(crate) struct Browser {
    child: Child,
    log: std::path::PathBuf,
    // Dropped after `drop` has killed the browser.
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Opens `url`; with `spki_hash`, trusting the server whose key has that hash.
    pub(crate) fn launch(spki_hash: Option<&SpkiHash>, url: &str) -> Self {
        let profile = tempfile::tempdir().unwrap();
        let log = profile.path().join("chromium.log");
        let log_file = File::create(&log).unwrap();
        let child = Command::new(CHROMIUM)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ])
            .arg(format!(
                "--user-data-dir={}",
                profile.path().join("profile").display()
            ))
            .args(spki_hash.map(|hash| {
                format!(
                    "--ignore-certificate-errors-spki-list={}",
                    standard_base64(hash)
                )
            }))
            .arg(url)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {CHROMIUM}: {e}"));
        Self {
            child,
            log,
            _profile: profile,
        }
    }

    /// The first report matching `wanted`, before `deadline`; panics (with everything
    /// the page reported and Chromium's log) on timeout, if the browser exits, or if the
    /// page's feed is closed for good.
    pub(crate) async fn wait_for(
        &mut self,
        reports: &mut mpsc::UnboundedReceiver<Value>,
        seen: &mut Vec<Value>,
        deadline: Instant,
        wanted: impl Fn(&Value) -> bool,
    ) -> Value {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.fail("timed out", seen);
            }
            // Wake at least every second to notice a browser that died.
            match tokio::time::timeout(left.min(Duration::from_secs(1)), reports.recv()).await {
                Ok(Some(report)) => {
                    seen.push(report.clone());
                    if wanted(&report) {
                        return report;
                    }
                    // Closed for good: a WebSocket close, or an EventSource that gave up
                    // (readyState 2; 0 means it is reconnecting).
                    if report["kind"] == "closed"
                        || (report["kind"] == "transport_error" && report["readyState"] == 2)
                    {
                        self.fail("the page's feed was closed", seen);
                    }
                }
                Ok(None) => unreachable!("the page server holds a sender"),
                Err(_) => {
                    if let Ok(Some(status)) = self.child.try_wait() {
                        self.fail(&format!("chromium exited ({status})"), seen);
                    }
                }
            }
        }
    }

    fn fail(&self, what: &str, seen: &[Value]) -> ! {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        // Without a system bus (containers, CI) Chromium logs dozens of D-Bus errors;
        // they are harmless and would hide the lines that matter (e.g. `net_error -202`,
        // an untrusted certificate).
        let tail: Vec<&str> = log
            .lines()
            .filter(|line| !line.contains("dbus"))
            .rev()
            .take(40)
            .collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        panic!(
            "{what}; the page reported:\n{}\nchromium's log (last lines, D-Bus noise left out):\n{}",
            seen.iter()
                .map(Value::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
            tail.join("\n")
        );
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // /usr/bin/chromium execs the browser, so this PID is the browser itself; its
        // helper processes exit when it does.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Chromium wants standard padded base64; the NURL pin prints as unpadded base64url.
fn standard_base64(hash: &SpkiHash) -> String {
    let url_safe = hash.to_string();
    let mut out: String = url_safe
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    while !out.len().is_multiple_of(4) {
        out.push('=');
    }
    out
}
