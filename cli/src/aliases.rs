//! Aliases: `tahoe list-aliases`, `tahoe create-alias`, `tahoe add-alias`, and the
//! aliases every other command reads.
//!
//! The file is Tahoe's `private/aliases`: one `name: cap` a line, `#` comments. An
//! alias is added by writing the whole file again with the new line at the end
//! (`aliases.tmp`, then a rename), never by editing it in place, so that a crash
//! leaves the old file or the new one. As in Tahoe, `private/root_dir.cap` (an
//! older way to set the default) gives the `tahoe` alias unless the file names it.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use swamp_client::grid::Grid;
use swamp_client::nodedir::load_aliases;
use swamp_formats::cap::{Cap, MutableFormat};

use crate::fail::Failure;
use crate::quote::quote;

/// The aliases of a node directory, name to cap text.
pub type Aliases = BTreeMap<String, String>;

/// `list-aliases` flags.
#[derive(clap::Args)]
pub struct ListArgs {
    /// Show read-only dircaps instead of read-write ones.
    #[arg(long = "readonly-uri")]
    pub readonly_uri: bool,
    /// Show JSON output.
    #[arg(long)]
    pub json: bool,
}

/// `create-alias` and `add-alias` arguments.
#[derive(clap::Args)]
pub struct AliasArgs {
    /// The alias (a trailing `:` is ignored).
    pub alias: String,
}

/// Reads the aliases of `dir` as Tahoe does (`root_dir.cap`, then `aliases`).
pub fn load(dir: &Path) -> Result<Aliases, Failure> {
    let mut aliases = Aliases::new();
    if let Ok(text) = std::fs::read_to_string(dir.join("private/root_dir.cap"))
        && !text.trim().is_empty()
    {
        aliases.insert("tahoe".into(), text.trim().to_string());
    }
    let listed = load_aliases(dir).map_err(|e| Failure::new(crate::chain(&e)))?;
    aliases.extend(listed);
    Ok(aliases)
}

/// The alias as typed, without one trailing colon, if Tahoe accepts the name.
fn checked_name<'a>(dir: &Path, alias: &'a str) -> Result<&'a str, Failure> {
    let alias = alias.strip_suffix(':').unwrap_or(alias);
    if alias.contains(':') {
        return Err(Failure::said("Alias names cannot contain colons."));
    }
    if alias.contains(' ') {
        return Err(Failure::said("Alias names cannot contain spaces."));
    }
    if load(dir)?.contains_key(alias) {
        return Err(Failure::said(format!(
            "Alias {} already exists!",
            quote(alias, true)
        )));
    }
    Ok(alias)
}

/// Appends `alias: cap` to `private/aliases`, writing the whole file anew.
fn append(dir: &Path, alias: &str, cap: &str) -> Result<(), Failure> {
    let path = dir.join("private/aliases");
    let fail = |e: std::io::Error| Failure::new(format!("cannot write {}: {e}", path.display()));
    let mut text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(fail(e)),
    };
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&format!("{alias}: {cap}\n"));
    let tmp = dir.join("private/aliases.tmp");
    let mut file = std::fs::File::create(&tmp).map_err(fail)?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(fail)?;
    std::fs::rename(&tmp, &path).map_err(fail)
}

/// `tahoe add-alias ALIAS DIRCAP`.
pub fn add(dir: &Path, args: &AliasArgs, cap: &str) -> Result<(), Failure> {
    let alias = checked_name(dir, &args.alias)?;
    let parsed: Cap = cap
        .trim()
        .parse()
        .map_err(|e| Failure::new(format!("{cap}: {e}")))?;
    if !parsed.is_dir() {
        return Err(Failure::new(format!("{cap}: not a directory cap")));
    }
    append(dir, alias, &parsed.to_string())?;
    println!("Alias {} added", quote(alias, true));
    Ok(())
}

/// `tahoe create-alias ALIAS`: a new (SDMF) directory, added as ALIAS.
pub async fn create(grid: &Grid, dir: &Path, args: &AliasArgs) -> Result<(), Failure> {
    let alias = checked_name(dir, &args.alias)?;
    let cap = grid
        .create_dir(MutableFormat::Sdmf)
        .await
        .map_err(|e| Failure::new(format!("Error during HTTP request: {}", crate::chain(&e))))?;
    append(dir, alias, &cap.to_string())?;
    println!("Alias {} created", quote(alias, true));
    Ok(())
}

/// `tahoe list-aliases`: the output, as Tahoe prints it.
pub fn list(aliases: &Aliases, args: &ListArgs) -> Result<String, Failure> {
    let mut caps = Vec::new();
    for (name, text) in aliases {
        let cap: Cap = text
            .parse()
            .map_err(|e| Failure::new(format!("alias {name}: {e}")))?;
        caps.push((name, cap.to_string(), cap.read_only().to_string()));
    }
    if args.json {
        let object: serde_json::Map<String, serde_json::Value> = caps
            .into_iter()
            .map(|(name, rw, ro)| {
                (
                    name.clone(),
                    serde_json::json!({"readwrite": rw, "readonly": ro}),
                )
            })
            .collect();
        return Ok(format!(
            "{}\n",
            swamp_formats::pyjson::dumps_indented(&serde_json::Value::from(object), 4)
        ));
    }
    // Tahoe pads to the widest name *with* its quote marks, and prints it without.
    let width = caps
        .iter()
        .map(|(name, _, _)| quote(name, true).chars().count())
        .max()
        .unwrap_or(0);
    Ok(caps
        .iter()
        .map(|(name, rw, ro)| {
            let cap = if args.readonly_uri { ro } else { rw };
            format!("{name:>width$}: {cap}\n")
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_pads_names_as_tahoe_does() {
        let cap = format!("URI:DIR2:{}:{}", "a".repeat(26), "a".repeat(52));
        let parsed: Cap = cap.parse().expect("a directory cap");
        let mut aliases = Aliases::new();
        aliases.insert("tahoe".into(), parsed.to_string());
        aliases.insert("w".into(), parsed.to_string());
        let text = list(
            &aliases,
            &ListArgs {
                readonly_uri: false,
                json: false,
            },
        )
        .unwrap_or_default();
        // The widest quoted name is `'tahoe'`: seven columns.
        assert_eq!(text, format!("  tahoe: {parsed}\n      w: {parsed}\n"));
    }
}
