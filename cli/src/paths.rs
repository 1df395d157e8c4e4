//! Path arguments as Tahoe's CLI reads them: `CAP[/a/b]`, `ALIAS:[a/b]`, or a bare
//! `a/b` under the default `tahoe:` alias (aliases live in `private/aliases`).

use std::collections::BTreeMap;

use swamp_client::dirs::split_path;
use swamp_client::grid::{Grid, GridError};
use swamp_formats::cap::Cap;

use crate::fail::Failure;
use crate::quote::quote;

/// The default alias, as in Tahoe.
const DEFAULT_ALIAS: &str = "tahoe";

/// A parsed path argument: its root cap and the names under it.
pub struct Path<'a> {
    /// The argument as typed (for messages).
    pub arg: &'a str,
    /// The cap the path starts from.
    pub root: Cap,
    /// The names to follow.
    pub names: Vec<&'a str>,
}

/// Parses `arg` against `aliases`.
pub fn parse<'a>(aliases: &BTreeMap<String, String>, arg: &'a str) -> Result<Path<'a>, Failure> {
    let (root, names) = split_path(arg);
    let text = if root.starts_with("URI:") {
        root.to_string()
    } else {
        let alias = root.trim_end_matches(':');
        let found = aliases.get(if alias.is_empty() {
            DEFAULT_ALIAS
        } else {
            alias
        });
        found.cloned().ok_or_else(|| {
            Failure::new(if alias.is_empty() {
                format!(
                    "No alias specified, and the default {} alias doesn't exist. To create it, use 'tahoe create-alias {DEFAULT_ALIAS}'.",
                    quote(DEFAULT_ALIAS, true)
                )
            } else {
                format!(
                    "Unknown alias {}, please create it with 'tahoe add-alias' or 'tahoe create-alias'.",
                    quote(alias, true)
                )
            })
        })?
    };
    let root = text
        .parse()
        .map_err(|e| Failure::new(format!("{arg}: {e}")))?;
    Ok(Path { arg, root, names })
}

/// Whether a grid error means "no such path" (Tahoe's exit code 2 in `ls`).
pub fn is_missing(error: &GridError) -> bool {
    matches!(error, GridError::NoSuchChild { .. })
}

/// Follows `path` to the cap it names (exit code 1 on failure, as most commands).
pub async fn resolve(grid: &Grid, path: &Path<'_>) -> Result<Cap, Failure> {
    grid.walk(&path.root, &path.names)
        .await
        .map_err(|e| Failure::grid(path.arg, &e))
}
