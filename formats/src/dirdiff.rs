//! What changed between two versions of a directory, child by child.
//!
//! Only a holder of the directory's cap can say this: the server sees one encrypted
//! slot. `tahoe watch` reads each new version, parses it with [`crate::dirnode`], and
//! prints what [`diff`] returns. A child counts as modified when its caps or its
//! metadata differ (Tahoe rewrites `linkmotime` when a name is re-linked), and it
//! keeps its place in name order, so two watchers print the same lines.

use std::collections::BTreeMap;

use crate::cap::{Cap, MutableAccess};
use crate::dirnode::Entry;

/// What kind of thing a child is, as `tahoe ls -l` shows it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ChildKind {
    /// A file (immutable or mutable).
    File,
    /// A directory.
    Dir,
    /// A cap this client does not understand.
    Unknown,
}

impl ChildKind {
    /// The word used in listings and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Dir => "dir",
            Self::Unknown => "unknown",
        }
    }
}

/// What a child's cap says about it without fetching anything.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ChildInfo {
    /// File, directory or unknown.
    pub kind: ChildKind,
    /// Size in bytes when the cap carries it (CHK and LIT files).
    pub size: Option<u64>,
    /// The cap's type as Tahoe spells it after `URI:` (`CHK`, `SSK-RO`, `DIR2-MDMF`...).
    pub cap_type: String,
    /// Whether the child is a mutable file or directory.
    pub mutable: bool,
    /// The parsed cap (write cap when the entry has one, else the read cap).
    pub cap: Option<Cap>,
}

impl ChildInfo {
    /// Describes an entry from its strongest cap.
    pub fn of(entry: &Entry) -> Self {
        let text = entry.cap_text();
        let cap = entry.cap().ok();
        let cap_type = text
            .strip_prefix("URI:")
            .and_then(|rest| rest.split(':').next())
            .unwrap_or("unknown")
            .to_string();
        let (kind, size) = match &cap {
            Some(Cap::Dir(_)) => (ChildKind::Dir, None),
            Some(Cap::Lit(data)) => (ChildKind::File, Some(data.len() as u64)),
            Some(Cap::Chk(c)) => (ChildKind::File, Some(c.size)),
            Some(Cap::Mutable(_)) => (ChildKind::File, None),
            Some(Cap::ChkVerifier(_) | Cap::Unknown(_)) | None => (ChildKind::Unknown, None),
        };
        Self {
            kind,
            size,
            mutable: cap.as_ref().is_some_and(Cap::is_mutable),
            cap_type,
            cap,
        }
    }

    /// Whether the child is a directory this client could follow (a mutable one).
    pub fn followable_dir(&self) -> bool {
        self.kind == ChildKind::Dir && self.mutable
    }
}

/// One child's change.
#[derive(Clone, PartialEq, Debug)]
pub enum ChildChange {
    /// A name appeared.
    Added(Entry),
    /// A name disappeared.
    Removed(Entry),
    /// A name now points elsewhere, or its metadata changed.
    Modified {
        /// Before.
        old: Entry,
        /// After.
        new: Entry,
    },
}

impl ChildChange {
    /// The child's name.
    pub fn name(&self) -> &str {
        match self {
            Self::Added(e) | Self::Removed(e) | Self::Modified { new: e, .. } => &e.name,
        }
    }

    /// The verb used in listings and JSON.
    pub fn verb(&self) -> &'static str {
        match self {
            Self::Added(_) => "added",
            Self::Removed(_) => "removed",
            Self::Modified { .. } => "modified",
        }
    }

    /// The entry as it is now (or was, for a removal).
    pub fn entry(&self) -> &Entry {
        match self {
            Self::Added(e) | Self::Removed(e) | Self::Modified { new: e, .. } => e,
        }
    }
}

/// The changes from `old` to `new`, in name order.
pub fn diff(old: &[Entry], new: &[Entry]) -> Vec<ChildChange> {
    let before: BTreeMap<&str, &Entry> = old.iter().map(|e| (e.name.as_str(), e)).collect();
    let after: BTreeMap<&str, &Entry> = new.iter().map(|e| (e.name.as_str(), e)).collect();
    let mut names: Vec<&str> = before.keys().chain(after.keys()).copied().collect();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .filter_map(|name| match (before.get(name), after.get(name)) {
            (None, Some(n)) => Some(ChildChange::Added((*n).clone())),
            (Some(o), None) => Some(ChildChange::Removed((*o).clone())),
            (Some(o), Some(n)) if o != n => Some(ChildChange::Modified {
                old: (*o).clone(),
                new: (*n).clone(),
            }),
            _ => None,
        })
        .collect()
}

/// Whether `cap` is a directory whose backing file can change (and so can be watched),
/// read-write or read-only.
pub fn is_mutable_dir(cap: &Cap) -> bool {
    matches!(cap, Cap::Dir(inner) if matches!(inner.as_ref(), Cap::Mutable(m) if !matches!(m.access, MutableAccess::Verify(_))))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn entry(name: &str, ro: &str) -> Entry {
        Entry {
            name: name.into(),
            ro_uri: Some(ro.into()),
            rw_uri: None,
            metadata: json!({"tahoe": {"linkcrtime": 1.0, "linkmotime": 1.0}}),
        }
    }

    #[test]
    fn diff_reports_added_removed_and_modified_in_name_order() {
        let old = vec![entry("b", "URI:LIT:mfrgg"), entry("c", "URI:LIT:mfrgg")];
        let mut touched = entry("c", "URI:LIT:mfrgg");
        touched.metadata = json!({"tahoe": {"linkcrtime": 1.0, "linkmotime": 2.0}});
        let new = vec![touched.clone(), entry("a", "URI:LIT:nbswy")];
        let changes = diff(&old, &new);
        let summary: Vec<(&str, &str)> = changes.iter().map(|c| (c.verb(), c.name())).collect();
        assert_eq!(
            summary,
            [("added", "a"), ("removed", "b"), ("modified", "c")]
        );
        assert_eq!(changes[2].entry(), &touched);
        assert!(diff(&new, &new).is_empty());
    }

    #[test]
    fn child_info_reads_kind_size_and_type_from_the_cap() {
        let lit = ChildInfo::of(&entry("x", "URI:LIT:mfrgg"));
        assert_eq!(
            (lit.kind, lit.size, lit.cap_type.as_str()),
            (ChildKind::File, Some(3), "LIT")
        );
        let unknown = ChildInfo::of(&entry("y", "URI:NEWTHING:abc"));
        assert_eq!(unknown.kind, ChildKind::Unknown);
        assert_eq!(unknown.cap_type, "NEWTHING");
        let mut none = entry("z", "");
        none.ro_uri = None;
        assert_eq!(ChildInfo::of(&none).cap_type, "unknown");
    }
}
