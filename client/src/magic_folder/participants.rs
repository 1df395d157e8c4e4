//! What a change seen while following a collective means for magic-folder.
//!
//! The bridge watches each folder's collective directory with depth 1: its entries
//! are the participants, each pointing at that participant's personal directory,
//! which the watch follows as entries come and go. So a change at `NAME` is a
//! participant added, removed or re-pointed, and a change at `NAME/PATH` is a new
//! snapshot (or deletion) in NAME's personal directory. Our own participant's
//! changes are magic-folder's own uploads and need no poll (its directory is not
//! even followed; this filter is the second guard).

use swamp_formats::dirdiff::ChildChange;

use crate::watch::WatchEvent;

/// Why a folder needs a poll.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cause {
    /// Another participant's personal directory changed.
    Participant(String),
    /// The collective changed: a participant was added, removed or re-pointed.
    Membership {
        /// The participant's name.
        name: String,
        /// `added`, `removed` or `modified`.
        verb: &'static str,
    },
    /// Changes may have been missed (start, feed back after an outage, reset).
    Gap(String),
}

impl Cause {
    /// The short label used in logs and JSON (`causes`).
    pub fn label(&self) -> String {
        match self {
            Self::Participant(name) => name.clone(),
            Self::Membership { name, verb } => format!("{name} ({verb})"),
            Self::Gap(_) => "resync".into(),
        }
    }
}

fn verb(change: &ChildChange) -> &'static str {
    match change {
        ChildChange::Added(_) => "added",
        ChildChange::Removed(_) => "removed",
        ChildChange::Modified { .. } => "modified",
    }
}

/// The cause `event` gives for polling, if any; `me` is our own participant name.
pub fn classify(event: &WatchEvent, me: &str) -> Option<Cause> {
    match event {
        WatchEvent::Changed { path, change, .. } => match path.split_once('/') {
            Some((who, _)) if who == me => None,
            Some((who, _)) => Some(Cause::Participant(who.to_string())),
            None if path == me => None,
            None => Some(Cause::Membership {
                name: path.clone(),
                verb: verb(change),
            }),
        },
        WatchEvent::Ready => Some(Cause::Gap("started following".into())),
        WatchEvent::Resync(why) => Some(Cause::Gap(why.clone())),
        WatchEvent::Existing { .. } | WatchEvent::Version { .. } | WatchEvent::Notice(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use swamp_formats::dirnode::Entry;

    use super::*;

    fn entry(name: &str) -> Entry {
        Entry {
            name: name.into(),
            ro_uri: Some("URI:DIR2-RO:aaaa:bbbb".into()),
            rw_uri: None,
            metadata: json!({}),
        }
    }

    fn changed(path: &str, change: ChildChange) -> WatchEvent {
        WatchEvent::Changed {
            path: path.into(),
            change,
            dir_seqnum: 2,
        }
    }

    #[test]
    fn personal_directory_changes_name_their_participant_but_ours_are_ignored() {
        let snapshot = ChildChange::Added(entry("file@_txt"));
        assert_eq!(
            classify(&changed("alice/file@_txt", snapshot.clone()), "bob"),
            Some(Cause::Participant("alice".into()))
        );
        assert_eq!(classify(&changed("bob/file@_txt", snapshot), "bob"), None);
    }

    #[test]
    fn collective_changes_are_participants_joining_and_leaving() {
        let joined = classify(&changed("carol", ChildChange::Added(entry("carol"))), "bob");
        assert_eq!(
            joined,
            Some(Cause::Membership {
                name: "carol".into(),
                verb: "added"
            })
        );
        let left = classify(
            &changed("alice", ChildChange::Removed(entry("alice"))),
            "bob",
        );
        assert_eq!(left.map(|c| c.label()), Some("alice (removed)".into()));
        assert_eq!(
            classify(&changed("bob", ChildChange::Added(entry("bob"))), "bob"),
            None
        );
    }

    #[test]
    fn gaps_ask_for_a_poll_and_listings_do_not() {
        assert!(matches!(
            classify(&WatchEvent::Resync("feed back".into()), "bob"),
            Some(Cause::Gap(_))
        ));
        assert!(matches!(
            classify(&WatchEvent::Ready, "bob"),
            Some(Cause::Gap(_))
        ));
        let existing = WatchEvent::Existing {
            path: "alice/x".into(),
            entry: entry("x"),
        };
        assert_eq!(classify(&existing, "bob"), None);
        assert_eq!(classify(&WatchEvent::Notice("n".into()), "bob"), None);
    }
}
