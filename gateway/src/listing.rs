//! `t=json` of files and directories, in Tahoe's shapes (`_file_json_metadata`,
//! `_directory_json_metadata` in `web/filenode.py` and `web/directory.py`):
//! `["filenode", {...}]`, `["dirnode", {"children": {...}, ...}]`,
//! `["unknown", {...}]`, keys in Tahoe's order, `ro_uri`/`rw_uri`/`verify_uri`
//! present only when there is such a cap, and each child's metadata exactly as
//! stored (magic-folder keeps signatures there).
//!
//! Tahoe prints with `json.dumps(..., indent=1)`; so do we, byte for byte
//! (`swamp_formats::pyjson`).

use std::collections::HashMap;

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::{Map, Value, json};
use swamp_formats::cap::{Cap, ChkVerifierCap, MutableAccess, MutableFormat};
use swamp_formats::dirnode::Entry;

/// The verify cap of `cap`, when it has one (LIT files and directories have none).
pub(crate) fn verify_cap(cap: &Cap) -> Option<Cap> {
    match cap {
        Cap::Chk(c) => Some(Cap::ChkVerifier(ChkVerifierCap {
            storage_index: c.storage_index(),
            ueb_hash: c.ueb_hash,
            needed: c.needed,
            total: c.total,
            size: c.size,
        })),
        Cap::ChkVerifier(_) => Some(cap.clone()),
        Cap::Mutable(m) => {
            let mut v = *m;
            v.access = MutableAccess::Verify(m.storage_index());
            Some(Cap::Mutable(v))
        }
        Cap::Dir(inner) => verify_cap(inner).map(|v| Cap::Dir(Box::new(v))),
        Cap::Lit(_) | Cap::Unknown(_) => None,
    }
}

/// A file's format name as Tahoe reports it.
fn format_name(cap: &Cap) -> &'static str {
    match cap {
        Cap::Mutable(m) if m.format == MutableFormat::Mdmf => "MDMF",
        Cap::Mutable(_) => "SDMF",
        _ => "CHK",
    }
}

/// The size a cap itself tells (immutable files); mutable sizes need a read.
pub(crate) fn cap_size(cap: &Cap) -> Option<u64> {
    match cap {
        Cap::Chk(c) => Some(c.size),
        Cap::ChkVerifier(c) => Some(c.size),
        Cap::Lit(data) => Some(data.len() as u64),
        _ => None,
    }
}

/// Appends `rw_uri`, `ro_uri` and `verify_uri` as Tahoe does (each only if there is
/// one).
fn add_caps(map: &mut Map<String, Value>, cap: &Cap, ro_text: Option<&str>) {
    if cap.is_writable() {
        map.insert("rw_uri".into(), Value::from(cap.to_string()));
    }
    let ro = ro_text.map_or_else(|| cap.read_only().to_string(), str::to_string);
    if !ro.is_empty() {
        map.insert("ro_uri".into(), Value::from(ro));
    }
    if let Some(v) = verify_cap(cap) {
        map.insert("verify_uri".into(), Value::from(v.to_string()));
    }
}

/// `["filenode", {...}]` for a file; `size` when known; `metadata` when the file was
/// reached through a directory.
pub(crate) fn file_json(cap: &Cap, size: Option<u64>, metadata: Option<&Value>) -> Value {
    let mut map = Map::new();
    map.insert("mutable".into(), Value::from(cap.is_mutable()));
    map.insert("format".into(), Value::from(format_name(cap)));
    if let Some(size) = size.or_else(|| cap_size(cap)) {
        map.insert("size".into(), Value::from(size));
    }
    add_caps(&mut map, cap, None);
    if let Some(md) = metadata {
        map.insert("metadata".into(), md.clone());
    }
    json!(["filenode", map])
}

/// `["unknown", {...}]` for a cap this node does not understand.
pub(crate) fn unknown_json(
    entry_ro: Option<&str>,
    entry_rw: Option<&str>,
    metadata: Option<&Value>,
) -> Value {
    let mut map = Map::new();
    if let Some(ro) = entry_ro {
        map.insert("ro_uri".into(), Value::from(ro));
    }
    if let Some(rw) = entry_rw {
        map.insert("rw_uri".into(), Value::from(rw));
        map.insert("mutable".into(), Value::from(true));
    }
    if let Some(md) = metadata {
        map.insert("metadata".into(), md.clone());
    }
    json!(["unknown", map])
}

/// `["dirnode", {"children": ..., "ro_uri", "rw_uri", "verify_uri", "mutable"}]` of
/// a directory, written straight from its entries: a large directory's listing is
/// not first built as a tree of JSON values (half the work of a `t=json` of 1,000
/// children was that).
pub(crate) struct DirListing<'a> {
    pub(crate) cap: &'a Cap,
    pub(crate) entries: &'a [Entry],
}

impl Serialize for DirListing<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut pair = serializer.serialize_seq(Some(2))?;
        pair.serialize_element("dirnode")?;
        pair.serialize_element(&DirFields(self))?;
        pair.end()
    }
}

struct DirFields<'a>(&'a DirListing<'a>);

impl Serialize for DirFields<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let cap = self.0.cap;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("children", &Children(self.0.entries))?;
        map.serialize_entry("ro_uri", &cap.read_only().to_string())?;
        if cap.is_writable() {
            map.serialize_entry("rw_uri", &cap.to_string())?;
        }
        if let Some(v) = verify_cap(cap) {
            map.serialize_entry("verify_uri", &v.to_string())?;
        }
        map.serialize_entry("mutable", &cap.is_mutable())?;
        map.end()
    }
}

/// The children by name. A name stored twice (only a hostile directory does that)
/// is listed once, where it first appears, with its last entry: what Python's dict
/// makes of it.
struct Children<'a>(&'a [Entry]);

impl Serialize for Children<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut last: HashMap<&str, usize> = HashMap::with_capacity(self.0.len());
        for (i, e) in self.0.iter().enumerate() {
            last.insert(e.name.as_str(), i);
        }
        let mut map = serializer.serialize_map(Some(last.len()))?;
        for entry in self.0 {
            if let Some(i) = last.remove(entry.name.as_str()) {
                map.serialize_entry(&entry.name, &Child(&self.0[i]))?;
            }
        }
        map.end()
    }
}

/// One child: `[type, {..., "metadata": ...}]`, keys in Tahoe's order.
struct Child<'a>(&'a Entry);

impl Serialize for Child<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let entry = self.0;
        let cap = entry
            .cap()
            .unwrap_or_else(|_| Cap::Unknown(entry.cap_text().to_string()));
        let kind = match &cap {
            Cap::Unknown(_) => "unknown",
            Cap::Dir(_) => "dirnode",
            _ => "filenode",
        };
        let mut pair = serializer.serialize_seq(Some(2))?;
        pair.serialize_element(kind)?;
        pair.serialize_element(&ChildFields { entry, cap: &cap })?;
        pair.end()
    }
}

struct ChildFields<'a> {
    entry: &'a Entry,
    cap: &'a Cap,
}

impl Serialize for ChildFields<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (entry, cap) = (self.entry, self.cap);
        let mut map = serializer.serialize_map(None)?;
        match cap {
            Cap::Unknown(_) => {}
            Cap::Dir(_) => map.serialize_entry("mutable", &cap.is_mutable())?,
            _ => {
                map.serialize_entry("mutable", &cap.is_mutable())?;
                map.serialize_entry("format", format_name(cap))?;
                if let Some(size) = cap_size(cap) {
                    map.serialize_entry("size", &size)?;
                }
            }
        }
        map.serialize_entry("metadata", &entry.metadata)?;
        match cap {
            Cap::Unknown(_) => {
                if let Some(rw) = &entry.rw_uri {
                    map.serialize_entry("rw_uri", rw)?;
                }
                if let Some(ro) = &entry.ro_uri {
                    map.serialize_entry("ro_uri", ro)?;
                }
            }
            known => {
                if known.is_writable() {
                    map.serialize_entry("rw_uri", &known.to_string())?;
                }
                map.serialize_entry("ro_uri", &known.read_only().to_string())?;
                if let Some(v) = verify_cap(known) {
                    map.serialize_entry("verify_uri", &v.to_string())?;
                }
            }
        }
        map.end()
    }
}

/// `json.dumps(value, indent=1) + "\n"`.
pub(crate) fn to_text(value: &impl Serialize) -> String {
    let mut text = swamp_formats::pyjson::dumps_indented(value, 1);
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_printed_with_tahoes_indent() {
        let text = to_text(&json!(["dirnode", {"children": {}, "mutable": true}]));
        assert_eq!(
            text,
            "[\n \"dirnode\",\n {\n  \"children\": {},\n  \"mutable\": true\n }\n]\n"
        );
    }

    #[test]
    fn child_metadata_and_caps_come_back_as_stored() {
        let metadata = json!({"magic_folder": {"author": {"sig": "AAAA"}}, "x": 1.5});
        let entry = Entry {
            name: "snap".into(),
            ro_uri: Some("URI:LIT:nbswy3dp".into()),
            rw_uri: None,
            metadata: metadata.clone(),
        };
        let text = to_text(&DirListing {
            cap: &Cap::Lit(Vec::new()),
            entries: std::slice::from_ref(&entry),
        });
        let listing: Value = serde_json::from_str(&text).unwrap();
        let child = &listing[1]["children"]["snap"];
        assert_eq!(child[0], "filenode");
        assert_eq!(child[1]["metadata"], metadata);
        assert_eq!(child[1]["ro_uri"], "URI:LIT:nbswy3dp");
        assert_eq!(child[1]["size"], 5);
        assert!(child[1].get("rw_uri").is_none());
    }
}
