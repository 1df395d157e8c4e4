//! A [`WatchEvent`] as one JSON object, with full detail (caps included): what
//! `tahoe watch --json` prints, one per line, and what a client node's `t=watch`
//! sends over SSE or WebSocket. One shape for both, so a program written against
//! either reads the other.
//!
//! Every object has `event`: `exists`, `added`, `removed`, `modified`, `version`,
//! `ready` or `notice` (a notice with `"resync": true` means changes may have been
//! missed and everything is being read again).

use serde_json::{Value, json};
use swamp_formats::dirdiff::{ChildChange, ChildInfo};
use swamp_formats::dirnode::Entry;

use super::WatchEvent;

fn entry_json(entry: &Entry) -> Value {
    let info = ChildInfo::of(entry);
    json!({
        "name": entry.name,
        "kind": info.kind.as_str(),
        "size": info.size,
        "cap_type": info.cap_type,
        "mutable": info.mutable,
        "ro_uri": entry.ro_uri,
        "rw_uri": entry.rw_uri,
        "metadata": entry.metadata,
    })
}

impl WatchEvent {
    /// The event as one JSON object (full detail, caps included).
    #[must_use]
    pub fn to_json(&self) -> Value {
        match self {
            Self::Existing { path, entry } => {
                let mut v = entry_json(entry);
                v["event"] = json!("exists");
                v["path"] = json!(path);
                v
            }
            Self::Changed {
                path,
                change,
                dir_seqnum,
            } => {
                let mut v = entry_json(change.entry());
                v["event"] = json!(change.verb());
                v["path"] = json!(path);
                v["dir_seqnum"] = json!(dir_seqnum);
                if let ChildChange::Modified { old, .. } = change {
                    v["old"] = entry_json(old);
                }
                v
            }
            Self::Version {
                seqnum,
                root_hash,
                data,
            } => json!({
                "event": "version",
                "seqnum": seqnum,
                "root_hash": swamp_proto::base32::encode(root_hash),
                "size": data.len(),
            }),
            Self::Ready => json!({"event": "ready"}),
            Self::Notice(text) => json!({"event": "notice", "message": text}),
            Self::Resync(text) => json!({"event": "notice", "message": text, "resync": true}),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_carry_path_verb_size_and_directory_seqnum() {
        let entry = Entry {
            name: "a\nb".into(),
            ro_uri: Some("URI:LIT:mfrgg".into()),
            rw_uri: None,
            metadata: json!({}),
        };
        let event = WatchEvent::Changed {
            path: "dir/a\nb".into(),
            change: ChildChange::Added(entry),
            dir_seqnum: 3,
        };
        let json = event.to_json();
        assert_eq!(json["event"], "added");
        assert_eq!(json["path"], "dir/a\nb");
        assert_eq!(json["name"], "a\nb");
        assert_eq!(json["kind"], "file");
        assert_eq!(json["size"], 3);
        assert_eq!(json["dir_seqnum"], 3);
        assert_eq!(WatchEvent::Ready.to_json(), json!({"event": "ready"}));
        assert_eq!(
            WatchEvent::Resync("x".into()).to_json()["resync"],
            json!(true)
        );
    }
}
