//! How `tahoe watch` prints a [`WatchEvent`]: one aligned line for people (verb, kind,
//! size, cap type, path, with control characters escaped), or one JSON object with
//! full detail, caps included, for programs.

use serde_json::{Value, json};
use swamp_client::watch::WatchEvent;
use swamp_formats::dirdiff::{ChildChange, ChildInfo};
use swamp_formats::dirnode::Entry;

/// Makes a name printable on one line (control characters escaped).
fn printable(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

fn describe(entry: &Entry) -> String {
    let info = ChildInfo::of(entry);
    let size = info.size.map_or_else(|| "-".to_string(), |s| s.to_string());
    format!(
        "{:<4} {:>10} {:<12}",
        info.kind.as_str(),
        size,
        info.cap_type
    )
}

/// One line of human output for `event`: verb, kind, size, cap type, path.
pub fn format_line(event: &WatchEvent) -> String {
    match event {
        WatchEvent::Existing { path, entry } => {
            format!("{:<8} {} {}", "exists", describe(entry), printable(path))
        }
        WatchEvent::Changed { path, change, .. } => {
            format!(
                "{:<8} {} {}",
                change.verb(),
                describe(change.entry()),
                printable(path)
            )
        }
        WatchEvent::Version {
            seqnum,
            data,
            root_hash,
        } => format!(
            "{:<8} seqnum {seqnum}, {} bytes, root hash {}",
            "version",
            data.len(),
            swamp_proto::base32::encode(root_hash)
        ),
        WatchEvent::Ready => "ready".to_string(),
        WatchEvent::Notice(text) | WatchEvent::Resync(text) => format!("notice: {text}"),
    }
}

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

/// One JSON line for `event` (full detail, caps included).
pub fn json_line(event: &WatchEvent) -> Value {
    match event {
        WatchEvent::Existing { path, entry } => {
            let mut v = entry_json(entry);
            v["event"] = json!("exists");
            v["path"] = json!(path);
            v
        }
        WatchEvent::Changed {
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
        WatchEvent::Version {
            seqnum,
            root_hash,
            data,
        } => json!({
            "event": "version",
            "seqnum": seqnum,
            "root_hash": swamp_proto::base32::encode(root_hash),
            "size": data.len(),
        }),
        WatchEvent::Ready => json!({"event": "ready"}),
        WatchEvent::Notice(text) => json!({"event": "notice", "message": text}),
        WatchEvent::Resync(text) => json!({"event": "notice", "message": text, "resync": true}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_name_verb_kind_size_type_and_path() {
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
        assert_eq!(
            format_line(&event),
            "added    file          3 LIT          dir/a\\nb"
        );
        let json = json_line(&event);
        assert_eq!(json["event"], "added");
        assert_eq!(json["path"], "dir/a\nb");
        assert_eq!(json["size"], 3);
        assert_eq!(json["dir_seqnum"], 3);
    }
}
