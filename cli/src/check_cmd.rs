//! `tahoe check` and `tahoe deep-check`: the client library's check, verify and
//! repair (`swamp_client::check`), printed as Tahoe's `scripts/tahoe_check.py`
//! prints what Tahoe's web API answers. The lines are made from the results' JSON
//! in Tahoe's shapes (`t=check&output=JSON`, one `t=stream-deep-check` line per
//! object), read as Tahoe's CLI reads it, so both print the same for the same
//! results; `--raw` prints that JSON itself.
//!
//! `deep-check` walks the tree in Tahoe's order ([`Grid::walk_tree`]) and prints each
//! object as it is checked. As with Tahoe's, a directory that cannot be read (or an
//! object that cannot be checked) ends the walk with an `ERROR:` line on stderr,
//! no totals, and exit code 1; `--raw` prints the stream's lines, the deep-stats
//! line last.

use std::ops::ControlFlow;

use serde_json::{Value, json};
use swamp_client::check::CheckOptions;
use swamp_client::grid::{Grid, GridError};
use swamp_client::tree::{TreeNode, Walker};
use swamp_formats::cap::Cap;
use swamp_formats::pyjson;

use crate::aliases::Aliases;
use crate::fail::Failure;
use crate::manifest::error_line;
use crate::paths;
use crate::quote::{quote, quote_path};

/// `check` and `deep-check` flags.
#[derive(clap::Args)]
pub struct CheckArgs {
    /// Display raw JSON data instead of parsed.
    #[arg(long)]
    pub raw: bool,
    /// Verify all hashes, instead of merely querying share presence.
    #[arg(long)]
    pub verify: bool,
    /// Automatically repair any problems found.
    #[arg(long)]
    pub repair: bool,
    /// Add/renew lease on all shares.
    #[arg(long = "add-lease")]
    pub add_lease: bool,
    /// The files or directories (default `tahoe:`).
    pub locations: Vec<String>,
}

/// `deep-check` adds `-v`.
#[derive(clap::Args)]
pub struct DeepCheckArgs {
    #[command(flatten)]
    pub check: CheckArgs,
    /// Be noisy about what is happening.
    #[arg(short = 'v', long)]
    pub verbose: bool,
}

impl CheckArgs {
    fn options(&self) -> CheckOptions {
        CheckOptions {
            verify: self.verify,
            add_lease: self.add_lease,
        }
    }

    /// The locations, `tahoe:` when none.
    fn locations(&self) -> Vec<&str> {
        if self.locations.is_empty() {
            vec![""]
        } else {
            self.locations.iter().map(String::as_str).collect()
        }
    }
}

fn field<'a>(value: &'a Value, pointer: &str) -> &'a Value {
    value.pointer(pointer).unwrap_or(&Value::Null)
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `server X, SI Y, shnum N` for each corrupt share listed at `pointer`.
fn corrupt_shares(results: &Value, pointer: &str) -> Vec<String> {
    field(results, pointer)
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_array)
        .map(|share| {
            format!(
                "server {}, SI {}, shnum {}",
                quote(&text(&share[0]), false),
                quote(&text(&share[1]), false),
                share.get(2).map(text).unwrap_or_default()
            )
        })
        .collect()
}

/// The summary of a `t=check&output=JSON` answer, as `tahoe check` prints it.
fn check_lines(data: &Value, repair: bool) -> String {
    let mut out = String::new();
    let counts = |out: &mut String, cr: &Value| {
        out.push_str(&format!(
            " good-shares: {} (encoding is {}-of-{})\n wrong-shares: {}\n",
            text(&cr["count-shares-good"]),
            text(&cr["count-shares-needed"]),
            text(&cr["count-shares-expected"]),
            text(&cr["count-wrong-shares"]),
        ));
    };
    let si = quote(&text(&data["storage-index"]), false);
    if repair {
        let cr = field(data, "/pre-repair-results/results");
        // A LIT file has no pre-repair results: nothing to say but healthy.
        let healthy = cr["healthy"].as_bool().unwrap_or(true);
        out.push_str(&format!(
            "Summary: {}\n storage index: {si}\n",
            if healthy { "healthy" } else { "not healthy" }
        ));
        if !cr.is_null() {
            counts(&mut out, cr);
        }
        push_corrupt(&mut out, cr);
        if data["repair-attempted"].as_bool() == Some(true) {
            if data["repair-successful"].as_bool() == Some(true) {
                out.push_str(" repair successful\n");
            } else {
                out.push_str(" repair failed\n");
            }
        }
        return out;
    }
    let summary = data
        .get("summary")
        .map_or_else(|| "Healthy (LIT)".to_string(), text);
    out.push_str(&format!(
        "Summary: {}\n storage index: {si}\n",
        quote(&summary, false)
    ));
    let cr = &data["results"];
    let has_counts = [
        "count-shares-good",
        "count-shares-needed",
        "count-shares-expected",
        "count-wrong-shares",
    ]
    .iter()
    .all(|k| cr.get(k).is_some());
    if has_counts {
        counts(&mut out, cr);
    }
    push_corrupt(&mut out, cr);
    out
}

/// `tahoe check [LOCATION...]`.
pub async fn check(grid: &Grid, aliases: &Aliases, args: &CheckArgs) -> Result<(), Failure> {
    for location in args.locations() {
        let path = paths::parse(aliases, location.trim_end_matches('/'))?;
        let cap = paths::resolve(grid, &path).await?;
        let fail = |e: &swamp_client::grid::GridError| {
            Failure::new(format!("ERROR: {location}: {}", crate::chain(e))).with_bare()
        };
        let data = if args.repair {
            grid.check_and_repair(&cap, args.options())
                .await
                .map_err(|e| fail(&e))?
                .to_json()
        } else {
            grid.check(&cap, args.options())
                .await
                .map_err(|e| fail(&e))?
                .to_json()
        };
        if args.raw {
            // Tahoe's answer ends with a newline, and its CLI adds one.
            println!("{}\n", swamp_formats::pyjson::dumps_indented(&data, 1));
        } else {
            print!("{}", check_lines(&data, args.repair));
        }
    }
    Ok(())
}

/// Tahoe's `DeepCheckOutput` / `DeepCheckAndRepairOutput`: reads stream lines,
/// prints per-object lines, then the totals.
#[derive(Default)]
struct DeepOutput {
    verbose: bool,
    repair: bool,
    objects: usize,
    healthy: usize,
    unhealthy: usize,
    post_healthy: usize,
    post_unhealthy: usize,
    attempted: usize,
    successful: usize,
    text: String,
}

impl DeepOutput {
    /// Reads one stream line; returns what to print for it.
    fn line(&mut self, d: &Value) -> String {
        self.read(d);
        std::mem::take(&mut self.text)
    }

    fn read(&mut self, d: &Value) {
        if !matches!(d["type"].as_str(), Some("file" | "directory")) {
            return;
        }
        self.objects += 1;
        if self.objects.is_multiple_of(100) {
            self.text
                .push_str(&format!("{} objects checked..\n", self.objects));
        }
        let path: Vec<String> = match d["path"].as_array() {
            Some(names) if !names.is_empty() => names.iter().map(text).collect(),
            _ => vec!["<root>".to_string()],
        };
        if !self.repair {
            let cr = &d["check-results"];
            if cr["results"]["healthy"].as_bool() == Some(true) {
                self.healthy += 1;
            } else {
                self.unhealthy += 1;
            }
            if self.verbose {
                let summary = cr
                    .get("summary")
                    .map_or_else(|| "Healthy (LIT)".to_string(), text);
                self.text.push_str(&format!(
                    "{}: {}\n",
                    quote_path(&path, true),
                    quote(&summary, false)
                ));
            }
            for share in corrupt_shares(cr, "/results/list-corrupt-shares") {
                self.text.push_str(&format!(" corrupt: {share}\n"));
            }
            return;
        }
        let crr = &d["check-and-repair-results"];
        let was_healthy = if text(&d["storage-index"]).is_empty() {
            self.healthy += 1;
            self.post_healthy += 1;
            true
        } else {
            let pre = field(crr, "/pre-repair-results/results/healthy").as_bool() == Some(true);
            let post = field(crr, "/post-repair-results/results/healthy").as_bool() == Some(true);
            if pre {
                self.healthy += 1;
            } else {
                self.unhealthy += 1;
            }
            if post {
                self.post_healthy += 1;
            } else {
                self.post_unhealthy += 1;
            }
            pre
        };
        let attempted = crr["repair-attempted"].as_bool() == Some(true);
        let successful = crr["repair-successful"].as_bool() == Some(true);
        if attempted {
            self.attempted += 1;
            if successful {
                self.successful += 1;
            }
        }
        if self.verbose {
            self.text.push_str(&format!(
                "{}: {}\n",
                quote_path(&path, true),
                if was_healthy {
                    "healthy"
                } else {
                    "not healthy"
                }
            ));
        }
        for share in corrupt_shares(crr, "/pre-repair-results/results/list-corrupt-shares") {
            self.text.push_str(&format!(" corrupt: {share}\n"));
        }
        if attempted {
            self.text.push_str(if successful {
                " repair successful\n"
            } else {
                " repair failed\n"
            });
        }
    }

    fn done(mut self) -> String {
        if self.repair {
            self.text.push_str(&format!(
                "done: {} objects checked\n pre-repair: {} healthy, {} unhealthy\n {} repairs attempted, {} successful, {} failed\n post-repair: {} healthy, {} unhealthy\n",
                self.objects,
                self.healthy,
                self.unhealthy,
                self.attempted,
                self.successful,
                self.attempted - self.successful,
                self.post_healthy,
                self.post_unhealthy
            ));
        } else {
            self.text.push_str(&format!(
                "done: {} objects checked, {} healthy, {} unhealthy\n",
                self.objects, self.healthy, self.unhealthy
            ));
        }
        self.text
    }
}

/// A walk that checks each object and prints it.
struct DeepWalker<'g> {
    grid: &'g Grid,
    options: CheckOptions,
    repair: bool,
    raw: bool,
    output: DeepOutput,
    /// What ended the walk.
    failure: Option<String>,
}

impl Walker for DeepWalker<'_> {
    async fn visit(&mut self, node: TreeNode) -> ControlFlow<()> {
        if matches!(node.cap, Cap::Unknown(_)) {
            // Tahoe's stream lists unknown nodes without results; its CLI skips them.
            if self.raw {
                println!("{}", pyjson::dumps(&node.to_manifest_json()));
            }
            return ControlFlow::Continue(());
        }
        let path = node.path.clone();
        match self.grid.check_node(node, self.options, self.repair).await {
            Ok(checked) => {
                let line = checked.to_stream_json();
                if self.raw {
                    println!("{}", pyjson::dumps(&line));
                } else {
                    print!("{}", self.output.line(&line));
                }
                ControlFlow::Continue(())
            }
            Err(e) => {
                self.failure = Some(error_line(&path, &e));
                ControlFlow::Break(())
            }
        }
    }

    fn unreadable(&mut self, path: &[String], error: &GridError) -> ControlFlow<()> {
        self.failure = Some(error_line(path, error));
        ControlFlow::Break(())
    }
}

/// `tahoe deep-check [LOCATION...]`.
pub async fn deep_check(
    grid: &Grid,
    aliases: &Aliases,
    args: &DeepCheckArgs,
) -> Result<(), Failure> {
    let check = &args.check;
    for location in check.locations() {
        let path = paths::parse(aliases, location.trim_end_matches('/'))?;
        let cap = paths::resolve(grid, &path).await?;
        let mut walker = DeepWalker {
            grid,
            options: check.options(),
            repair: check.repair,
            raw: check.raw,
            output: DeepOutput {
                verbose: args.verbose,
                repair: check.repair,
                ..DeepOutput::default()
            },
            failure: None,
        };
        let end = grid
            .walk_tree(&cap, &mut walker)
            .await
            .map_err(|e| Failure::said(error_line(&[], &e)))?;
        if let Some(failure) = walker.failure {
            return Err(Failure::said(failure));
        }
        if check.raw {
            let stats = json!({"type": "stats", "stats": end.stats.to_json()});
            println!("{}", pyjson::dumps(&stats));
        } else {
            print!("{}", walker.output.done());
        }
    }
    Ok(())
}

/// The " corrupt shares:" lines of check results, when there are any.
fn push_corrupt(out: &mut String, results: &Value) {
    let corrupt = corrupt_shares(results, "/list-corrupt-shares");
    if !corrupt.is_empty() {
        out.push_str(" corrupt shares:\n");
        for line in corrupt {
            out.push_str(&format!("  {line}\n"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lit_file_is_healthy_without_counts() {
        let data = json!({"storage-index": "", "results": {"healthy": true}});
        assert_eq!(
            check_lines(&data, false),
            "Summary: Healthy (LIT)\n storage index: \n"
        );
    }

    #[test]
    fn deep_check_counts_and_names_as_tahoe() {
        let mut out = DeepOutput {
            verbose: true,
            ..DeepOutput::default()
        };
        let mut printed = out.line(
            &json!({"type": "directory", "path": [], "storage-index": "aa",
            "check-results": {"summary": "Healthy", "results": {"healthy": true}}}),
        );
        printed += &out.line(
            &json!({"type": "file", "path": ["sub", "f"], "storage-index": "bb",
            "check-results": {"summary": "Not Healthy: 1 shares (enc 2-of-3)",
                "results": {"healthy": false,
                    "list-corrupt-shares": [["v0-abc", "bb", 2]]}}}),
        );
        printed += &out.done();
        assert_eq!(
            printed,
            "'<root>': Healthy\n'sub/f': Not Healthy: 1 shares (enc 2-of-3)\n corrupt: server v0-abc, SI bb, shnum 2\ndone: 2 objects checked, 1 healthy, 1 unhealthy\n"
        );
    }
}
