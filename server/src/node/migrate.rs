//! Keeping a node directory one that Tahoe-LAFS itself can run, so an operator can roll
//! back to Tahoe or use Tahoe's own tools (`tahoe admin add-grid-manager-cert`) on it.
//!
//! Tahoe 1.20 refuses two things older Swamp node directories had or lacked:
//! - its config validator stops at any section it does not know, and it knew no
//!   `[swamp]`. It accepts every section named `storageserver.plugins.*` (with any keys
//!   in it) and loads such a section only when `[storage] plugins` names the plugin,
//!   which nobody sets to `swamp`; so Swamp's own settings live in
//!   `[storageserver.plugins.swamp]` (`SWAMP_SECTION`), in the same `tahoe.cfg` as
//!   Tahoe's, one file for an operator to read and for Tahoe's tools to rewrite (they
//!   keep every section they do not understand);
//! - `tahoe run` recognises a node by a file ending in `.tac` whose name says
//!   `client` (or `introducer`). It never runs it; `tahoe create-node` writes a stub.
//!
//! [`migrate_node_dir`] brings an older directory up to date at start: it renames
//! `[swamp]` to the new section (text otherwise unchanged: comments and order kept),
//! writes the new `tahoe.cfg` atomically with its old permissions, and adds the `.tac`
//! file when none exists. Running it again changes nothing. [`migrated_config_text`]
//! is the same rename in memory, for the commands that must not write (`nurl`,
//! `announcement`) and for reading a directory not yet migrated.

use std::path::{Path, PathBuf};

use swamp_proto::ini::Ini;

/// The `tahoe.cfg` section holding Swamp's own settings.
pub const SWAMP_SECTION: &str = "storageserver.plugins.swamp";

/// Where those settings were before: Tahoe's validator rejects this section.
pub const OLD_SWAMP_SECTION: &str = "swamp";

/// The file `tahoe run` identifies a client or storage node directory by.
pub const TAC_FILE: &str = "tahoe-client.tac";

/// What the `.tac` file holds. Tahoe 1.11 and later only look at its name; the
/// releases before it would run it, and it tells them they are too old.
const TAC_CONTENT: &str = "\
# Tahoe-LAFS recognises a client or storage node directory by this file's name.
# Tahoe-LAFS 1.11 and later never run it; older releases would, and stop here.
# Written by swamp-server, which serves this directory as Tahoe's storage node does.
import sys
print(\"This node directory needs Tahoe-LAFS 1.11 or later, or swamp-server.\")
sys.exit(1)
";

/// Why a node directory could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// A file could not be read or written.
    #[error("cannot {op} {path}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Both sections set one key to different values: which one the operator meant
    /// is not for the node to guess.
    #[error(
        "{path}: [{OLD_SWAMP_SECTION}] and [{SWAMP_SECTION}] both set {key} ({old:?} and {new:?}); keep one of them"
    )]
    Conflict {
        /// `tahoe.cfg`.
        path: PathBuf,
        /// The key set twice.
        key: String,
        /// Its value in `[swamp]`.
        old: String,
        /// Its value in the new section.
        new: String,
    },
}

/// What [`migrate_node_dir`] changed, for the log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Migration {
    /// `[swamp]` was renamed to [`SWAMP_SECTION`] in `tahoe.cfg`.
    pub renamed_section: bool,
    /// [`TAC_FILE`] was written.
    pub wrote_tac: bool,
}

/// `text` with every `[swamp]` header renamed to [`SWAMP_SECTION`], or `None` when it
/// has none. Only header lines change.
///
/// # Errors
/// [`MigrateError::Conflict`] (with `path` for the message) when the new section
/// already exists and sets a key of the old one to another value.
pub fn migrated_config_text(text: &str, path: &Path) -> Result<Option<String>, MigrateError> {
    let headers = old_section_headers(text);
    if headers.is_empty() {
        return Ok(None);
    }
    // Keys both sections set must agree; an unparsable file is left for the config
    // reader to report with its line number.
    if let Ok(ini) = Ini::parse(text) {
        for key in ini.keys(OLD_SWAMP_SECTION) {
            if let (Some(old), Some(new)) =
                (ini.get(OLD_SWAMP_SECTION, key), ini.get(SWAMP_SECTION, key))
                && old != new
            {
                return Err(MigrateError::Conflict {
                    path: path.to_path_buf(),
                    key: key.to_string(),
                    old: old.to_string(),
                    new: new.to_string(),
                });
            }
        }
    }
    let mut out = String::with_capacity(text.len() + 32 * headers.len());
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if headers.contains(&i) {
            let ending = &line[line.trim_end_matches(['\r', '\n']).len()..];
            out.push('[');
            out.push_str(SWAMP_SECTION);
            out.push(']');
            out.push_str(ending);
        } else {
            out.push_str(line);
        }
    }
    Ok(Some(out))
}

/// Line numbers (from 0) of the `[swamp]` headers, read as [`Ini::parse`] reads them:
/// an indented line after a key is that key's continuation, not a header.
fn old_section_headers(text: &str) -> Vec<usize> {
    let mut found = Vec::new();
    let mut after_key = false;
    for (i, raw) in text.split_inclusive('\n').enumerate() {
        let line = raw.trim_end_matches(['\r', '\n']);
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if after_key && line.starts_with([' ', '\t']) {
            continue;
        }
        if let Some(name) = trimmed.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            if name.trim() == OLD_SWAMP_SECTION {
                found.push(i);
            }
            after_key = false;
        } else {
            after_key = true;
        }
    }
    found
}

/// Brings an existing node directory (one with a `tahoe.cfg`) up to date: `[swamp]`
/// becomes [`SWAMP_SECTION`] (the file replaced atomically, with its permissions kept)
/// and [`TAC_FILE`] is written if the directory has no `.tac` file. Idempotent.
///
/// # Errors
/// [`MigrateError`] naming the file, or the key both sections set differently.
pub fn migrate_node_dir(node_dir: &Path) -> Result<Migration, MigrateError> {
    let mut done = Migration::default();
    let cfg = node_dir.join("tahoe.cfg");
    match std::fs::read_to_string(&cfg) {
        Ok(text) => {
            if let Some(new_text) = migrated_config_text(&text, &cfg)? {
                let mode = std::os::unix::fs::PermissionsExt::mode(
                    &std::fs::metadata(&cfg)
                        .map_err(|source| io_error("read", &cfg, source))?
                        .permissions(),
                ) & 0o7777;
                replace_file(&cfg, &new_text, mode)?;
                done.renamed_section = true;
            }
        }
        // Not a node directory (yet): nothing to bring up to date.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(done),
        Err(source) => return Err(io_error("read", &cfg, source)),
    }
    done.wrote_tac = write_tac_file(node_dir)?;
    Ok(done)
}

/// Writes [`TAC_FILE`] unless the directory already has a `.tac` file (Tahoe looks
/// at the first one it lists). Returns whether it wrote one.
///
/// # Errors
/// [`MigrateError::Io`] if the directory cannot be listed or the file written.
pub fn write_tac_file(node_dir: &Path) -> Result<bool, MigrateError> {
    let entries =
        std::fs::read_dir(node_dir).map_err(|source| io_error("list", node_dir, source))?;
    for entry in entries {
        let entry = entry.map_err(|source| io_error("list", node_dir, source))?;
        if entry.file_name().to_string_lossy().ends_with(".tac") {
            return Ok(false);
        }
    }
    replace_file(&node_dir.join(TAC_FILE), TAC_CONTENT, 0o644)?;
    Ok(true)
}

/// Replaces `path` with `contents`: a temporary file beside it, synced, renamed over
/// it, and the directory synced, so a crash leaves the old file or the new one.
fn replace_file(path: &Path, contents: &str, mode: u32) -> Result<(), MigrateError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".swamp-tmp");
    let tmp = path.with_file_name(tmp_name);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|source| io_error("write", &tmp, source))?;
    // The umask applied to `mode` at creation; the old file's permissions are wanted.
    f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))
        .and_then(|()| f.write_all(contents.as_bytes()))
        .and_then(|()| f.sync_all())
        .map_err(|source| io_error("write", &tmp, source))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|source| io_error("replace", path, source))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| io_error("sync", dir, source))
}

fn io_error(op: &'static str, path: &Path, source: std::io::Error) -> MigrateError {
    MigrateError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const OLD: &str = "# my node\n[node]\nnickname = n\n\n[swamp]\n# limits\nmax_connections = 7\nidle_timeout = 5\n\n[storage]\nenabled = true\n";

    #[test]
    fn renames_only_the_header_and_keeps_everything_else() {
        let new = migrated_config_text(OLD, Path::new("tahoe.cfg"))
            .unwrap()
            .unwrap();
        assert_eq!(new, OLD.replace("[swamp]", "[storageserver.plugins.swamp]"));
        let ini = Ini::parse(&new).unwrap();
        assert_eq!(ini.get(SWAMP_SECTION, "max_connections"), Some("7"));
        assert!(ini.keys(OLD_SWAMP_SECTION).is_empty());
        assert_eq!(
            migrated_config_text(&new, Path::new("tahoe.cfg")).unwrap(),
            None,
            "a migrated file needs nothing more"
        );
    }

    #[test]
    fn line_endings_spacing_and_repeated_sections_are_handled() {
        let text = "[node]\r\nnickname = n\r\n[ swamp ]  \r\nmax_connections = 7\r\n[swamp]\nidle_timeout = 5";
        let new = migrated_config_text(text, Path::new("tahoe.cfg"))
            .unwrap()
            .unwrap();
        assert_eq!(
            new,
            "[node]\r\nnickname = n\r\n[storageserver.plugins.swamp]\r\nmax_connections = 7\r\n[storageserver.plugins.swamp]\nidle_timeout = 5"
        );
    }

    #[test]
    fn a_continuation_line_or_a_comment_is_not_a_header() {
        let text = "[node]\nnickname = a\n  [swamp]\n# [swamp]\n[storage]\nenabled = true\n";
        assert_eq!(
            migrated_config_text(text, Path::new("tahoe.cfg")).unwrap(),
            None
        );
        assert_eq!(
            Ini::parse(text).unwrap().get("node", "nickname"),
            Some("a\n[swamp]"),
            "the config reader agrees"
        );
        // A section named like ours but longer is someone else's.
        let other = "[swampy]\nx = 1\n[storageserver.plugins.swamp]\ny = 2\n";
        assert_eq!(
            migrated_config_text(other, Path::new("tahoe.cfg")).unwrap(),
            None
        );
    }

    #[test]
    fn both_sections_merge_unless_they_disagree() {
        let agree = "[storageserver.plugins.swamp]\nmax_connections = 7\n[swamp]\nmax_connections = 7\nidle_timeout = 5\n";
        let new = migrated_config_text(agree, Path::new("tahoe.cfg"))
            .unwrap()
            .unwrap();
        let ini = Ini::parse(&new).unwrap();
        assert_eq!(ini.get(SWAMP_SECTION, "idle_timeout"), Some("5"));
        assert_eq!(ini.get(SWAMP_SECTION, "max_connections"), Some("7"));
        let disagree = agree.replacen("max_connections = 7", "max_connections = 8", 1);
        let e = migrated_config_text(&disagree, Path::new("/n/tahoe.cfg"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("max_connections") && e.contains("\"8\"") && e.contains("/n/tahoe.cfg"),
            "{e}"
        );
    }

    #[test]
    fn a_node_dir_is_migrated_once_atomically_and_keeps_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("tahoe.cfg");
        std::fs::write(&cfg, OLD).unwrap();
        std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o640)).unwrap();
        let done = migrate_node_dir(dir.path()).unwrap();
        assert_eq!(
            done,
            Migration {
                renamed_section: true,
                wrote_tac: true
            }
        );
        let text = std::fs::read_to_string(&cfg).unwrap();
        assert!(
            text.contains("[storageserver.plugins.swamp]\n# limits\nmax_connections = 7\n"),
            "{text}"
        );
        assert!(!text.contains("[swamp]"), "{text}");
        let mode = std::fs::metadata(&cfg).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        let tac = std::fs::read_to_string(dir.path().join(TAC_FILE)).unwrap();
        assert!(tac.contains("sys.exit(1)"), "{tac}");
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            !names.iter().any(|n| n.contains("tmp")),
            "no temporary file is left: {names:?}"
        );

        let before = std::fs::metadata(&cfg).unwrap().modified().unwrap();
        assert_eq!(migrate_node_dir(dir.path()).unwrap(), Migration::default());
        assert_eq!(std::fs::read_to_string(&cfg).unwrap(), text);
        assert_eq!(std::fs::metadata(&cfg).unwrap().modified().unwrap(), before);
    }

    #[test]
    fn an_existing_tac_file_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tahoe-client.tac"), "mine").unwrap();
        assert!(!write_tac_file(dir.path()).unwrap());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("tahoe-client.tac")).unwrap(),
            "mine"
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tahoe-introducer.tac"), "").unwrap();
        assert!(!write_tac_file(dir.path()).unwrap());
        assert!(!dir.path().join(TAC_FILE).exists());
    }

    #[test]
    fn a_directory_without_tahoe_cfg_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(migrate_node_dir(dir.path()).unwrap(), Migration::default());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let missing = dir.path().join("missing");
        assert_eq!(migrate_node_dir(&missing).unwrap(), Migration::default());
        assert!(!missing.exists());
    }
}
