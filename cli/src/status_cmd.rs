//! `tahoe status`: what a running client node (`tahoe run`, or a Python node) has
//! done, read from its web API as Tahoe's `scripts/tahoe_status.py` reads it
//! (`node.url`, `private/api_auth_token`, `POST /status?t=json` and
//! `/statistics?t=json`) and printed in Tahoe's tables.
//!
//! The node is on loopback (`node.url`), spoken to with one HTTP/1.1 request per
//! connection, no TLS. Limits: each request has [`TIMEOUT`], each answer at most
//! [`MAX_ANSWER`] bytes. As in Tahoe, failing to get either answer prints
//! `failed to retrieve data: ...` and exits 2.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::fail::Failure;

/// How long one request to the node may take.
const TIMEOUT: Duration = Duration::from_secs(60);
/// The largest answer read.
const MAX_ANSWER: u64 = 16 << 20;

/// `status` flags.
#[derive(clap::Args)]
pub struct StatusArgs {
    /// Include publish, retrieve, mapupdate in ops.
    #[arg(short = 'v', long)]
    pub verbose: bool,
}

/// `host:port` and the path prefix of an `http://` node URL.
fn split_url(url: &str) -> Result<(&str, &str), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("node.url {url:?} is not an http:// URL"))?;
    Ok(match rest.find('/') {
        Some(slash) => (&rest[..slash], rest[slash..].trim_end_matches('/')),
        None => (rest, ""),
    })
}

/// Decodes a `Transfer-Encoding: chunked` body.
fn unchunk(mut body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("a chunk size line without its end")?;
        let size_text = std::str::from_utf8(&body[..line_end]).map_err(|e| e.to_string())?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|e| format!("chunk size: {e}"))?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = body.get(..size).ok_or("a chunk shorter than its size")?;
        out.extend_from_slice(chunk);
        body = body.get(size + 2..).ok_or("a chunk without its end")?;
    }
}

/// `POST {url}{fragment}` with a form body; the parsed JSON answer.
async fn post_json(url: &str, fragment: &str, token: &str) -> Result<Value, String> {
    let (host, prefix) = split_url(url)?;
    let body = format!("t=json&token={token}");
    let request = format!(
        "POST {prefix}/{fragment} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(host)
            .await
            .map_err(|e| e.to_string())?;
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut answer = Vec::new();
        stream
            .take(MAX_ANSWER)
            .read_to_end(&mut answer)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(answer)
    };
    let answer = tokio::time::timeout(TIMEOUT, exchange)
        .await
        .map_err(|_| format!("no answer from {url} in {} s", TIMEOUT.as_secs()))??;
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("an answer without headers")?;
    let head = String::from_utf8_lossy(&answer[..split]).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    let mut body = answer[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        body = unchunk(&body)?;
    }
    if status != "200" {
        return Err(format!(
            "HTTP {status} from {fragment}: {}",
            String::from_utf8_lossy(&body).trim()
        ));
    }
    serde_json::from_slice(&body).map_err(|e| e.to_string())
}

/// Tahoe's `abbreviate_time(seconds)`.
fn abbreviate_time(s: f64) -> String {
    const HOUR: f64 = 3600.0;
    const DAY: f64 = 24.0 * HOUR;
    const MONTH: f64 = 30.0 * DAY;
    const YEAR: f64 = 365.0 * DAY;
    let plural = |count: f64, unit: &str| {
        #[allow(clippy::cast_possible_truncation)]
        let count = count as i64;
        if count == 1 {
            format!("{count} {unit}")
        } else {
            format!("{count} {unit}s")
        }
    };
    if s < 120.0 {
        plural(s, "second")
    } else if s < 3.0 * HOUR {
        plural(s / 60.0, "minute")
    } else if s < 2.0 * DAY {
        plural(s / HOUR, "hour")
    } else if s < 2.0 * MONTH {
        plural(s / DAY, "day")
    } else if s < 4.0 * YEAR {
        plural(s / MONTH, "month")
    } else {
        plural(s / YEAR, "year")
    }
}

fn counter(statistics: &Value, name: &str) -> u64 {
    statistics["counters"][name].as_u64().unwrap_or(0)
}

/// Tahoe's short operation names.
fn op_type(kind: &str) -> &'static str {
    match kind {
        "upload" => " put ",
        "download" => " get ",
        "retrieve" => "retr ",
        "publish" => " pub ",
        "mapupdate" => "mapup",
        _ => " ??? ",
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}

/// A table border: `left`, the four column widths, with `mid` between.
fn border(left: char, mid: char, widths: [usize; 4]) -> String {
    let bars: Vec<String> = widths.iter().map(|w| "\u{2500}".repeat(*w)).collect();
    format!(
        "{left}\u{2500}{}\u{2500}{mid}\u{2500}{}\u{2500}{mid}\u{2500}{}\u{2500}{mid}\u{2500}{}",
        bars[0], bars[1], bars[2], bars[3]
    )
}

/// Tahoe's `pretty_progress(percent, size=15)` (the Unicode bar).
fn pretty_progress(percent: f64, size: usize) -> String {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let curr = (percent / 100.0 * size as f64) as usize;
    let part = percent / (100.0 / size as f64) - curr as f64;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let part = char::from_u32(0x258f - (part * 8.0) as u32).unwrap_or(' ');
    let part = if percent >= 100.0 {
        String::new()
    } else {
        part.to_string()
    };
    format!(
        "{}{part}{}",
        "\u{2588}".repeat(curr),
        " ".repeat(size.saturating_sub(curr + 1))
    )
}

/// What `tahoe status` prints for the two answers.
fn render(status: &Value, statistics: &Value, verbose: bool) -> String {
    let mut out = String::new();
    let uptime = statistics["stats"]["node.uptime"].as_f64().unwrap_or(0.0);
    out.push_str(&format!(
        "Statistics (for last {}):\n",
        abbreviate_time(uptime)
    ));
    let space = |n: u64| crate::manifest::abbreviate_space(n, true);
    out.push_str(&format!(
        "    uploaded {} in {} files\n",
        space(counter(statistics, "uploader.bytes_uploaded")),
        counter(statistics, "uploader.files_uploaded")
    ));
    out.push_str(&format!(
        "  downloaded {} in {} files\n\n",
        space(counter(statistics, "downloader.bytes_downloaded")),
        counter(statistics, "downloader.files_downloaded")
    ));

    let active = status["active"].as_array().cloned().unwrap_or_default();
    if active.is_empty() {
        out.push_str("No active operations.\n");
    } else {
        out.push_str("Active operations:\n");
        out.push_str(&format!(
            "\u{2553} {:<5} \u{2565} {:<26} \u{2565} {:<22} \u{2565} {}\n",
            "type", "storage index", "progress", "status message"
        ));
        out.push_str(&border('\u{255f}', '\u{256b}', [5, 26, 22, 20]));
        out.push('\n');
        for op in &active {
            let kind = op["type"].as_str().unwrap_or("unknown");
            let (bar, total) = match kind {
                "upload" => {
                    let total = [
                        "progress-hash",
                        "progress-ciphertext",
                        "progress-encode-push",
                    ]
                    .iter()
                    .map(|k| op[*k].as_f64().unwrap_or(0.0))
                    .sum::<f64>()
                        / 3.0
                        * 100.0;
                    (pretty_progress(total, 15), format!("{total:3.0}"))
                }
                "download" => {
                    let p = op["progress"].as_f64().unwrap_or(0.0);
                    (pretty_progress(p * 100.0, 15), text(&op["progress"]))
                }
                _ => (String::new(), "???".to_string()),
            };
            out.push_str(&format!(
                "\u{2551} {} \u{2551} {} \u{2551} {bar:15} ({total}%) \u{2551} {}\n",
                op_type(kind),
                text(&op["storage-index-string"]),
                text(&op["status"])
            ));
        }
        out.push_str(&border('\u{2559}', '\u{2568}', [5, 26, 22, 20]));
        out.push('\n');
    }

    let recent_all = status["recent"].as_array().cloned().unwrap_or_default();
    if recent_all.is_empty() {
        out.push_str("No recent operations.\n");
    }
    let transfers: Vec<&Value> = recent_all
        .iter()
        .filter(|op| matches!(op["type"].as_str(), Some("upload" | "download")))
        .collect();
    out.push_str("\nRecent operations:\n");
    let table = !transfers.is_empty() || verbose;
    if table {
        out.push_str(&format!(
            "\u{2553} {:<5} \u{2565} {:<26} \u{2565} {:<10} \u{2565} {}\n",
            "type", "storage index", "size", "status message"
        ));
    }
    let shown: Vec<&Value> = if verbose {
        recent_all.iter().collect()
    } else {
        transfers
    };
    for op in &shown {
        let kind = op["type"].as_str().unwrap_or("unknown");
        let size = if kind == "mapupdate" {
            text(&op["mode"])
        } else {
            op["total-size"]
                .as_u64()
                .map_or_else(|| "unknown".into(), space)
        };
        out.push_str(&format!(
            "\u{2551} {} \u{2551} {} \u{2551} {size:<10} \u{2551} {}\n",
            op_type(kind),
            text(&op["storage-index-string"]),
            text(&op["status"])
        ));
    }
    if table {
        out.push_str(&border('\u{2559}', '\u{2568}', [5, 26, 10, 20]));
        out.push('\n');
    }
    let skipped = recent_all.len() - shown.len();
    if !verbose && skipped > 0 {
        out.push_str(&format!(
            "   Skipped {skipped} non-upload/download operations; use --verbose to see\n"
        ));
    }
    out
}

/// `tahoe status`.
pub async fn run(node_dir: &Path, args: &StatusArgs) -> Result<(), Failure> {
    let read = |name: &str| {
        std::fs::read_to_string(node_dir.join(name))
            .map(|t| t.trim().to_string())
            .map_err(|e| {
                Failure::new(format!(
                    "cannot read {}: {e}",
                    node_dir.join(name).display()
                ))
            })
    };
    let token = read("private/api_auth_token")?;
    let url = read("node.url")?;
    let answers = async {
        let status = post_json(&url, "status?t=json", &token).await?;
        let statistics = post_json(&url, "statistics?t=json", &token).await?;
        Ok::<_, String>((status, statistics))
    };
    let (status, statistics) = answers
        .await
        .map_err(|e| Failure::said(format!("failed to retrieve data: {e}")).with_code(2))?;
    print!("{}", render(&status, &statistics, args.verbose));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn times_urls_and_chunks() {
        assert_eq!(abbreviate_time(1.5), "1 second");
        assert_eq!(abbreviate_time(59.0), "59 seconds");
        assert_eq!(abbreviate_time(7200.0), "120 minutes");
        assert_eq!(abbreviate_time(4.0 * 3600.0), "4 hours");
        assert_eq!(
            split_url("http://127.0.0.1:3456/"),
            Ok(("127.0.0.1:3456", ""))
        );
        assert_eq!(
            unchunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"),
            Ok(b"abcde".to_vec())
        );
    }

    #[test]
    fn an_idle_node_prints_as_tahoe_prints_it() {
        let statistics = json!({"counters": {}, "stats": {"node.uptime": 3.2}});
        let status = json!({"active": [], "recent": []});
        assert_eq!(
            render(&status, &statistics, false),
            "Statistics (for last 3 seconds):\n    uploaded 0 B in 0 files\n  downloaded 0 B in 0 files\n\nNo active operations.\nNo recent operations.\n\nRecent operations:\n"
        );
    }
}
