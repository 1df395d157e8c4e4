//! `tahoe ls`: Tahoe's listing, column for column (`-l` mode letters, size, link
//! creation time, name; `--uri`, `--readonly-uri`, `-F`, `--json`). Times are shown in
//! UTC (Tahoe uses the local zone; this binary carries no time-zone database).

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use swamp_client::grid::Grid;
use swamp_formats::cap::Cap;
use swamp_formats::dirdiff::{ChildInfo, ChildKind};
use swamp_formats::dirnode::Entry;

use crate::fail::Failure;
use crate::paths::{self, Path};

/// `ls` flags.
#[derive(clap::Args)]
pub struct LsArgs {
    /// Long format: mode, size and link creation time.
    #[arg(short = 'l', long)]
    pub long: bool,
    /// Show each child's cap.
    #[arg(long)]
    pub uri: bool,
    /// Show each child's read-only cap.
    #[arg(long = "readonly-uri")]
    pub readonly_uri: bool,
    /// Append '/' to directories and '*' to mutable files.
    #[arg(short = 'F', long)]
    pub classify: bool,
    /// Print the listing as JSON.
    #[arg(long)]
    pub json: bool,
    /// The directory or file (default `tahoe:`).
    #[arg(default_value = "")]
    pub path: String,
}

/// Runs `ls`.
pub async fn run(
    grid: &Grid,
    aliases: &std::collections::BTreeMap<String, String>,
    args: &LsArgs,
) -> Result<String, Failure> {
    let where_ = args.path.trim_end_matches('/');
    let path: Path<'_> = paths::parse(aliases, where_)?;
    let (cap, entries) = listing(grid, &path).await?;
    if args.json {
        return Ok(format!("{}\n", listing_json(&cap, &entries)));
    }
    Ok(format_rows(&rows(&entries, args)))
}

/// What `ls PATH` shows: a directory's children, or one file with the metadata of
/// its link in the parent directory (a bare file cap has no link, so no metadata).
async fn listing(grid: &Grid, path: &Path<'_>) -> Result<(Cap, Vec<Entry>), Failure> {
    let fail = |e: &swamp_client::grid::GridError| {
        let code = if paths::is_missing(e) { 2 } else { 1 };
        Failure::grid(path.arg, e).with_code(code)
    };
    let (cap, link) = match path.names.split_last() {
        None => (path.root.clone(), None),
        Some((last, parents)) => {
            let parent = grid.walk(&path.root, parents).await.map_err(|e| fail(&e))?;
            let siblings = grid.read_dir(&parent).await.map_err(|e| fail(&e))?;
            let entry = siblings
                .entries
                .into_iter()
                .find(|e| e.name == *last)
                .ok_or_else(|| {
                    fail(&swamp_client::grid::GridError::NoSuchChild {
                        path: path.names.join("/"),
                    })
                })?;
            let cap = entry
                .cap()
                .map_err(|e| Failure::new(format!("{}: {e}", path.arg)))?;
            (cap, Some(entry))
        }
    };
    if cap.is_dir() {
        let entries = grid.read_dir(&cap).await.map_err(|e| fail(&e))?.entries;
        return Ok((cap, entries));
    }
    let entry = link.unwrap_or_else(|| Entry {
        name: String::new(),
        ro_uri: Some(cap.read_only().to_string()),
        rw_uri: cap.is_writable().then(|| cap.to_string()),
        metadata: json!({}),
    });
    Ok((cap, vec![entry]))
}

fn rows(entries: &[Entry], args: &LsArgs) -> Vec<Vec<String>> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    sorted
        .into_iter()
        .map(|e| {
            let info = ChildInfo::of(e);
            let (t0, size, classify) = match info.kind {
                ChildKind::Dir => ("d", "-".to_string(), "/"),
                ChildKind::File => (
                    "-",
                    info.size.map_or_else(|| "?".to_string(), |s| s.to_string()),
                    if e.rw_uri.is_some() { "*" } else { "" },
                ),
                ChildKind::Unknown => ("?", "?".to_string(), "?"),
            };
            let mut row = Vec::new();
            if args.long {
                let mode = format!(
                    "{t0}{}{}{}",
                    if e.ro_uri.is_some() { "r" } else { "-" },
                    if e.rw_uri.is_some() { "w" } else { "-" },
                    if info.kind == ChildKind::Dir {
                        "x"
                    } else {
                        "-"
                    },
                );
                row.push(mode);
                row.push(size);
                row.push(link_time(&e.metadata).map_or_else(|| "-".into(), |t| ls_time(t, now)));
            }
            let classify = if args.classify { classify } else { "" };
            row.push(format!("{}{classify}", e.name));
            if args.uri {
                row.push(e.cap_text().to_string());
            }
            if args.readonly_uri {
                row.push(e.ro_uri.clone().unwrap_or_else(|| "-".into()));
            }
            row
        })
        .collect()
}

/// Lays rows out as Tahoe does: each column as wide as its widest cell, right
/// aligned, except columns holding caps (and a lone name column), left aligned.
fn format_rows(rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = Vec::new();
    let mut left: Vec<bool> = Vec::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if widths.len() <= i {
                widths.push(0);
                left.push(false);
            }
            widths[i] = widths[i].max(cell.chars().count());
            left[i] |= cell.starts_with("URI");
        }
    }
    if left.len() == 1 {
        left[0] = true;
    }
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, cell)| {
                let pad = " ".repeat(widths[i] - cell.chars().count());
                if left[i] {
                    format!("{cell}{pad}")
                } else {
                    format!("{pad}{cell}")
                }
            })
            .collect();
        out.push_str(cells.join(" ").trim_end());
        out.push('\n');
    }
    out
}

/// `linkcrtime` (or the pre-1.4 `ctime`).
fn link_time(metadata: &Value) -> Option<f64> {
    metadata
        .get("tahoe")
        .and_then(|t| t.get("linkcrtime"))
        .or_else(|| metadata.get("ctime"))
        .and_then(Value::as_f64)
        .filter(|t| *t != 0.0)
}

/// GNU `ls` style: `Nov 27 06:50`, or `Nov 27  2025` for times over six months old.
fn ls_time(t: f64, now: f64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = t.floor() as i64;
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let of_day = secs.rem_euclid(86_400);
    let month = MONTHS[(month - 1) as usize];
    if now - t > 6.0 * 30.0 * 24.0 * 3600.0 {
        format!("{month} {day:02}  {year}")
    } else {
        format!(
            "{month} {day:02} {:02}:{:02}",
            of_day / 3600,
            of_day % 3600 / 60
        )
    }
}

/// Days since 1970-01-01 to (year, month 1-12, day 1-31), proleptic Gregorian.
pub(crate) fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn node_json(entry: &Entry) -> Value {
    let info = ChildInfo::of(entry);
    let kind = match info.kind {
        ChildKind::Dir => "dirnode",
        ChildKind::File => "filenode",
        ChildKind::Unknown => "unknown",
    };
    let mut attrs = json!({
        "ro_uri": entry.ro_uri,
        "mutable": info.mutable,
        "metadata": entry.metadata,
        "format": format_name(info.cap.as_ref()),
    });
    if let Some(rw) = &entry.rw_uri {
        attrs["rw_uri"] = json!(rw);
    }
    if let Some(size) = info.size {
        attrs["size"] = json!(size);
    }
    json!([kind, attrs])
}

/// The `format` the web API reports (CHK, LIT, SDMF, MDMF).
fn format_name(cap: Option<&Cap>) -> Option<&'static str> {
    use swamp_formats::cap::MutableFormat;
    match cap? {
        Cap::Lit(_) => Some("LIT"),
        Cap::Chk(_) | Cap::ChkVerifier(_) => Some("CHK"),
        Cap::Mutable(m) => Some(match m.format {
            MutableFormat::Sdmf => "SDMF",
            MutableFormat::Mdmf => "MDMF",
        }),
        Cap::Dir(inner) => format_name(Some(inner)),
        Cap::Unknown(_) => None,
    }
}

/// The web API's `?t=json` shape: `["dirnode", {..., "children": {...}}]`.
fn listing_json(cap: &Cap, entries: &[Entry]) -> Value {
    if !cap.is_dir() {
        return entries.first().map_or(Value::Null, node_json);
    }
    let children: serde_json::Map<String, Value> = entries
        .iter()
        .map(|e| (e.name.clone(), node_json(e)))
        .collect();
    let mut attrs = json!({
        "ro_uri": cap.read_only().to_string(),
        "mutable": cap.is_mutable(),
        "format": format_name(Some(cap)),
        "children": children,
    });
    if cap.is_writable() {
        attrs["rw_uri"] = json!(cap.to_string());
    }
    json!(["dirnode", attrs])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ls_time_matches_gnu_ls_formats() {
        // 2026-11-27 06:50:00 UTC
        let t = 1_795_762_200.0;
        assert_eq!(ls_time(t, t + 60.0), "Nov 27 06:50");
        assert_eq!(ls_time(t, t + 365.0 * 86_400.0), "Nov 27  2026");
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }

    #[test]
    fn columns_align_like_tahoe() {
        let rows = vec![
            vec!["-r--".into(), "5".into(), "a".into(), "URI:LIT:x".into()],
            vec![
                "dr-x".into(),
                "-".into(),
                "bbb".into(),
                "URI:DIR2-RO:yy".into(),
            ],
        ];
        assert_eq!(
            format_rows(&rows),
            "-r-- 5   a URI:LIT:x\ndr-x - bbb URI:DIR2-RO:yy\n"
        );
    }
}
