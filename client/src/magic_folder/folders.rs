//! Which folders to start and stop following when the daemon's folder list changes.
//! A folder is identified by its name together with its collective cap and our
//! author name: a folder left and re-joined under the same name is a new one.

use std::collections::BTreeMap;

use super::api::FolderInfo;

/// What to do after a new folder list.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Folders no longer listed (or changed): stop following.
    pub stop: Vec<String>,
    /// Folders newly listed (or changed): start following.
    pub start: Vec<FolderInfo>,
}

/// Compares the followed folders with the daemon's new list.
pub fn plan(followed: &BTreeMap<String, FolderInfo>, listed: &[FolderInfo]) -> Plan {
    let mut out = Plan::default();
    let listed_by_name: BTreeMap<&str, &FolderInfo> =
        listed.iter().map(|f| (f.name.as_str(), f)).collect();
    for (name, current) in followed {
        if listed_by_name.get(name.as_str()) != Some(&current) {
            out.stop.push(name.clone());
        }
    }
    for folder in listed {
        if followed.get(&folder.name) != Some(folder) {
            out.start.push(folder.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(name: &str, cap: &str) -> FolderInfo {
        FolderInfo {
            name: name.into(),
            author: "bob".into(),
            collective_dircap: cap.into(),
        }
    }

    #[test]
    fn added_removed_and_rejoined_folders() {
        let followed: BTreeMap<String, FolderInfo> = [folder("a", "URI:1"), folder("b", "URI:2")]
            .into_iter()
            .map(|f| (f.name.clone(), f))
            .collect();
        let same = plan(&followed, &[folder("a", "URI:1"), folder("b", "URI:2")]);
        assert_eq!(same, Plan::default());
        let changed = plan(&followed, &[folder("b", "URI:3"), folder("c", "URI:4")]);
        assert_eq!(changed.stop, ["a", "b"]);
        assert_eq!(changed.start, [folder("b", "URI:3"), folder("c", "URI:4")]);
    }
}
