//! `tahoe manifest` and `tahoe stats`: a whole tree walked in Tahoe's order
//! ([`Grid::walk_tree`]), printed as Tahoe's `scripts/tahoe_manifest.py` prints what
//! Tahoe's web API streams (`t=stream-manifest`) or answers (`t=start-deep-stats`).
//!
//! The manifest is printed as the walk goes, a line per object; a directory that
//! cannot be read ends it with an `ERROR:` line on stderr and exit code 1, as
//! Tahoe's stream does. `stats` prints once the walk is over.

use std::ops::ControlFlow;

use serde_json::{Value, json};
use swamp_client::grid::{Grid, GridError};
use swamp_client::tree::{DeepStats, TreeNode, Walker};
use swamp_formats::pyjson;

use crate::aliases::Aliases;
use crate::fail::Failure;
use crate::paths;
use crate::quote::{quote, quote_path};

/// `manifest` flags.
#[derive(clap::Args)]
pub struct ManifestArgs {
    /// Only print storage index strings, not pathname+cap.
    #[arg(short = 's', long = "storage-index")]
    pub storage_index: bool,
    /// Only print verifycap, not pathname+cap.
    #[arg(long = "verify-cap")]
    pub verify_cap: bool,
    /// Only print repaircap, not pathname+cap.
    #[arg(long = "repair-cap")]
    pub repair_cap: bool,
    /// Display raw JSON data instead of parsed.
    #[arg(short = 'r', long)]
    pub raw: bool,
    /// The starting point (default `tahoe:`).
    #[arg(default_value = "")]
    pub path: String,
}

/// `stats` flags.
#[derive(clap::Args)]
pub struct StatsArgs {
    /// Display raw JSON data instead of parsed.
    #[arg(short = 'r', long)]
    pub raw: bool,
    /// The starting point (default `tahoe:`).
    #[arg(default_value = "")]
    pub path: String,
}

/// What `manifest` prints for one stream line (`None`: nothing).
fn manifest_line(args: &ManifestArgs, d: &Value) -> Option<String> {
    if !matches!(d["type"].as_str(), Some("file" | "directory")) {
        return None;
    }
    let only = |key: &str| {
        d[key]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(|s| quote(s, false))
    };
    if args.storage_index {
        return only("storage-index");
    }
    if args.verify_cap {
        return only("verifycap");
    }
    if args.repair_cap {
        return only("repaircap");
    }
    let path: Vec<String> = d["path"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| n.as_str().unwrap_or_default().to_string())
        .collect();
    Some(format!(
        "{} {}",
        quote(d["cap"].as_str().unwrap_or_default(), false),
        quote_path(&path, false)
    ))
}

/// The `ERROR:` line for an object or directory at `path` that ended a walk.
pub(crate) fn error_line(path: &[String], error: &GridError) -> String {
    let path = if path.is_empty() {
        "<root>".to_string()
    } else {
        quote_path(path, false)
    };
    format!("ERROR: {path}: {}", crate::chain(error))
}

/// A walk that prints manifest lines (or nothing, for `stats`).
struct Printer<'a> {
    args: Option<&'a ManifestArgs>,
    failure: Option<String>,
}

impl Walker for Printer<'_> {
    async fn visit(&mut self, node: TreeNode) -> ControlFlow<()> {
        if let Some(args) = self.args {
            let line = node.to_manifest_json();
            if args.raw {
                println!("{}", pyjson::dumps(&line));
            } else if let Some(text) = manifest_line(args, &line) {
                println!("{text}");
            }
        }
        ControlFlow::Continue(())
    }

    fn unreadable(&mut self, path: &[String], error: &GridError) -> ControlFlow<()> {
        self.failure = Some(error_line(path, error));
        ControlFlow::Break(())
    }
}

/// Walks the tree at `where_`, printing as `printer` does; returns its stats.
async fn walk(
    grid: &Grid,
    aliases: &Aliases,
    where_: &str,
    args: Option<&ManifestArgs>,
) -> Result<DeepStats, Failure> {
    let path = paths::parse(aliases, where_.trim_end_matches('/'))?;
    let cap = paths::resolve(grid, &path).await?;
    let mut printer = Printer {
        args,
        failure: None,
    };
    let end = grid
        .walk_tree(&cap, &mut printer)
        .await
        .map_err(|e| Failure::said(error_line(&[], &e)))?;
    match printer.failure {
        Some(failure) => Err(Failure::said(failure)),
        None => Ok(end.stats),
    }
}

/// `tahoe manifest [PATH]`.
pub async fn manifest(grid: &Grid, aliases: &Aliases, args: &ManifestArgs) -> Result<(), Failure> {
    let stats = walk(grid, aliases, &args.path, Some(args)).await?;
    if args.raw {
        let line = json!({"type": "stats", "stats": stats.to_json()});
        println!("{}", pyjson::dumps(&line));
    }
    Ok(())
}

/// `tahoe stats [PATH]`.
pub async fn stats(grid: &Grid, aliases: &Aliases, args: &StatsArgs) -> Result<(), Failure> {
    let stats = walk(grid, aliases, &args.path, None).await?;
    let mut data = stats.to_json();
    if args.raw {
        // The operation's status, as Tahoe's web API gives it, and a newline.
        data["finished"] = json!(true);
        println!("{}", swamp_formats::pyjson::dumps_indented(&data, 1));
    } else {
        print!("{}", stats_text(&data));
    }
    Ok(())
}

/// Tahoe's `abbreviate_space(s, SI)`.
pub(crate) fn abbreviate_space(size: u64, si: bool) -> String {
    let (unit, suffix) = if si { (1000.0, "B") } else { (1024.0, "iB") };
    if size < 1024 {
        return format!("{size} B");
    }
    #[allow(clippy::cast_precision_loss)]
    let mut value = size as f64 / unit;
    for prefix in ["k", "M", "G", "T", "P"] {
        if value < unit {
            return format!("{value:.2} {prefix}{suffix}");
        }
        value /= unit;
    }
    format!("{value:.2} E{suffix}")
}

/// Tahoe's `abbreviate_space_both`: `(SI, binary)`.
fn abbreviate_both(size: u64) -> String {
    format!(
        "({}, {})",
        abbreviate_space(size, true),
        abbreviate_space(size, false)
    )
}

/// What `tahoe stats` prints for deep-stats `data` (`StatsGrabber.write_results`).
fn stats_text(data: &Value) -> String {
    const KEYS: [&str; 11] = [
        "count-immutable-files",
        "count-mutable-files",
        "count-literal-files",
        "count-files",
        "count-directories",
        "size-immutable-files",
        "size-mutable-files",
        "size-literal-files",
        "size-directories",
        "largest-directory",
        "largest-immutable-file",
    ];
    let width = KEYS.iter().map(|k| k.len()).max().unwrap_or(0);
    let mut out = String::from("Counts and Total Sizes:\n");
    for key in KEYS {
        let Some(value) = data.get(key).and_then(Value::as_u64) else {
            continue;
        };
        if !key.starts_with("count-") && value > 1000 {
            out.push_str(&format!(
                "{key:>width$}: {value}    {}\n",
                abbreviate_both(value)
            ));
        } else {
            out.push_str(&format!("{key:>width$}: {value}\n"));
        }
    }
    let histogram: Vec<(u64, u64, u64)> = data["size-files-histogram"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|row| {
            Some((
                row.get(0)?.as_u64()?,
                row.get(1)?.as_u64()?,
                row.get(2)?.as_u64()?,
            ))
        })
        .collect();
    if histogram.is_empty() {
        return out;
    }
    out.push_str("Size Histogram:\n");
    let maxlen = histogram
        .iter()
        .map(|(_, max, _)| max.to_string().len())
        .max()
        .unwrap_or(1);
    let countlen = histogram
        .iter()
        .map(|(_, _, count)| count.to_string().len())
        .max()
        .unwrap_or(1);
    let mut previous: Option<u64> = None;
    for (min, max, count) in histogram {
        if previous.is_some_and(|p| min != p + 1) {
            out.push_str(&format!("{}...\n", " ".repeat(maxlen - 1)));
        }
        previous = Some(max);
        out.push_str(&format!(
            "{min:>maxlen$}-{max:<maxlen$} : {count:<countlen$}    {}\n",
            abbreviate_both(max)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_abbreviated_as_tahoe_does() {
        assert_eq!(abbreviate_space(1000, true), "1000 B");
        assert_eq!(abbreviate_space(1024, true), "1.02 kB");
        assert_eq!(abbreviate_space(1024, false), "1.00 kiB");
        assert_eq!(abbreviate_space(3_162_277, true), "3.16 MB");
        assert_eq!(abbreviate_both(316_227), "(316.23 kB, 308.82 kiB)");
    }

    #[test]
    fn manifest_lines_are_tahoes() {
        let line = json!({"type": "directory", "path": [], "cap": "URI:DIR2:a:b",
            "verifycap": "URI:DIR2-Verifier:a:b", "repaircap": "URI:DIR2:a:b",
            "storage-index": "si"});
        let args = |f: fn(&mut ManifestArgs)| {
            let mut a = ManifestArgs {
                storage_index: false,
                verify_cap: false,
                repair_cap: false,
                raw: false,
                path: String::new(),
            };
            f(&mut a);
            a
        };
        assert_eq!(
            manifest_line(&args(|_| {}), &line).as_deref(),
            Some("URI:DIR2:a:b ")
        );
        assert_eq!(
            manifest_line(&args(|a| a.storage_index = true), &line).as_deref(),
            Some("si")
        );
        let lit = json!({"type": "file", "path": ["x y"], "cap": "URI:LIT:aa",
            "verifycap": "", "repaircap": "", "storage-index": ""});
        assert_eq!(manifest_line(&args(|a| a.storage_index = true), &lit), None);
        assert_eq!(
            manifest_line(&args(|_| {}), &lit).as_deref(),
            Some("URI:LIT:aa x y")
        );
    }
}
