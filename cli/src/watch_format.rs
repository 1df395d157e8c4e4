//! How `tahoe watch` prints a [`WatchEvent`] for people: one aligned line (verb, kind,
//! size, cap type, path, with control characters escaped). For programs, `--json`
//! prints [`WatchEvent::to_json`], the client library's one JSON shape (shared with a
//! client node's `t=watch`).

use swamp_client::watch::WatchEvent;
use swamp_formats::dirdiff::ChildInfo;
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use swamp_formats::dirdiff::ChildChange;

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
    }
}
