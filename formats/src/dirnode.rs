//! Directory contents (`allmydata/dirnode.py`): the plaintext of a directory's backing
//! file is, for each child sorted by name, a netstring of four netstrings: the name
//! (UTF-8, NFC), the read-only cap in the clear, the write cap encrypted under a key
//! derived from the directory's write key (empty for read-only holders to decrypt),
//! and the metadata as Python's `json.dumps` writes it.
//!
//! Packing is deterministic (the write cap's salt is derived from the cap), so packing
//! what was parsed gives Tahoe's bytes back, and a diff at the entry level is cheap.

use serde_json::Value;
use swamp_proto::DecodeError;

use crate::aes;
use crate::hashutil::{self, netstring};

/// One child.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The child's name.
    pub name: String,
    /// Read-only cap text (or the only cap of an immutable child); `None` if empty.
    pub ro_uri: Option<String>,
    /// Write cap text, when the directory's write key was given and there is one.
    pub rw_uri: Option<String>,
    /// Metadata (Tahoe keeps `{"tahoe": {"linkcrtime", "linkmotime"}}`).
    pub metadata: Value,
}

impl Entry {
    /// The child's strongest cap as text: the write cap when there is one, else the
    /// read cap ("" for neither).
    pub fn cap_text(&self) -> &str {
        self.rw_uri
            .as_deref()
            .or(self.ro_uri.as_deref())
            .unwrap_or("")
    }

    /// The child's strongest cap, parsed (unknown kinds of caps are kept verbatim).
    ///
    /// # Errors
    /// [`DecodeError`] for a malformed cap of a known kind.
    pub fn cap(&self) -> Result<crate::cap::Cap, DecodeError> {
        crate::cap::Cap::parse_lenient(self.cap_text())
    }
}

fn bad(why: impl Into<String>) -> DecodeError {
    DecodeError::Invalid(format!("directory contents: {}", why.into()))
}

/// Splits one netstring off the front of `data`.
fn take_netstring(data: &[u8]) -> Result<(&[u8], &[u8]), DecodeError> {
    let colon = data
        .iter()
        .take(20)
        .position(|&b| b == b':')
        .ok_or_else(|| bad("netstring without a length"))?;
    let len: usize = std::str::from_utf8(&data[..colon])
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad netstring length"))?;
    // The length is the data's word: checked, so a huge one is an error, not an
    // overflow.
    let end = (colon + 1)
        .checked_add(len)
        .filter(|&end| end < data.len())
        .ok_or_else(|| bad("truncated netstring"))?;
    let body = &data[colon + 1..end];
    if data[end] != b',' {
        return Err(bad("netstring not closed by ','"));
    }
    Ok((body, &data[end + 1..]))
}

fn strip_spaces(b: &[u8]) -> Option<String> {
    let s = String::from_utf8_lossy(b).trim_matches(' ').to_string();
    (!s.is_empty()).then_some(s)
}

/// Parses directory contents; with `writekey`, also decrypts the children's write caps.
///
/// # Errors
/// [`DecodeError::Invalid`] for malformed contents.
pub fn parse(plaintext: &[u8], writekey: Option<&[u8; 16]>) -> Result<Vec<Entry>, DecodeError> {
    let mut entries = Vec::new();
    let mut rest = plaintext;
    while !rest.is_empty() {
        let (entry, after) = take_netstring(rest)?;
        rest = after;
        let (name, e) = take_netstring(entry)?;
        let (ro, e) = take_netstring(e)?;
        let (rwcapdata, e) = take_netstring(e)?;
        let (metadata, _) = take_netstring(e)?;
        let name = String::from_utf8(name.to_vec()).map_err(|_| bad("a name is not UTF-8"))?;
        let rw_uri = match writekey {
            Some(wk) if rwcapdata.len() >= 48 => {
                let salt = &rwcapdata[..16];
                let mut cap = rwcapdata[16..rwcapdata.len() - 32].to_vec();
                aes::aes128_ctr(&hashutil::mutable_rwcap_key_hash(salt, wk), 0, &mut cap);
                strip_spaces(&cap)
            }
            _ => None,
        };
        let metadata: Value = serde_json::from_slice(metadata)
            .map_err(|e| bad(format!("metadata of {name:?}: {e}")))?;
        entries.push(Entry {
            name,
            ro_uri: strip_spaces(ro),
            rw_uri,
            metadata,
        });
    }
    Ok(entries)
}

/// Packs entries as Tahoe does (sorted by name; write caps encrypted under `writekey`).
pub fn pack(entries: &[Entry], writekey: &[u8; 16]) -> Vec<u8> {
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut out = Vec::new();
    for e in sorted {
        let rw = e.rw_uri.as_deref().unwrap_or("").as_bytes();
        let salt = hashutil::mutable_rwcap_salt_hash(rw);
        let key = hashutil::mutable_rwcap_key_hash(&salt, writekey);
        let mut crypttext = rw.to_vec();
        aes::aes128_ctr(&key, 0, &mut crypttext);
        let mut salted = salt.to_vec();
        salted.extend_from_slice(&crypttext);
        let mac = hashutil::hmac(&key, &salted);
        salted.extend_from_slice(&mac);
        let ro = strip_ro_prefix(e.ro_uri.as_deref().unwrap_or(""));
        let mut entry = netstring(e.name.as_bytes());
        entry.extend_from_slice(&netstring(ro.as_bytes()));
        entry.extend_from_slice(&netstring(&salted));
        entry.extend_from_slice(&netstring(python_json(&e.metadata).as_bytes()));
        out.extend_from_slice(&netstring(&entry));
    }
    out
}

/// Packs the entries of an immutable directory as Tahoe does (`deep_immutable`):
/// sorted by name, no write caps (each an empty netstring, with no key to encrypt
/// under), read caps without their `ro.` or `imm.` prefix (an immutable directory
/// implies both).
pub fn pack_immutable(entries: &[Entry]) -> Vec<u8> {
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut out = Vec::new();
    for e in sorted {
        let ro = e.ro_uri.as_deref().unwrap_or("");
        let ro = ro
            .strip_prefix("imm.")
            .unwrap_or_else(|| strip_ro_prefix(ro));
        let mut entry = netstring(e.name.as_bytes());
        entry.extend_from_slice(&netstring(ro.as_bytes()));
        entry.extend_from_slice(&netstring(b""));
        entry.extend_from_slice(&netstring(python_json(&e.metadata).as_bytes()));
        out.extend_from_slice(&netstring(&entry));
    }
    out
}

/// Tahoe stores read-only caps without an `ro.` prefix (an `imm.` prefix stays).
fn strip_ro_prefix(cap: &str) -> &str {
    cap.strip_prefix("ro.").unwrap_or(cap)
}

/// `json.dumps(value)` as Python writes it: `", "` and `": "` separators, non-ASCII
/// escaped, floats as `repr`.
pub fn python_json(value: &Value) -> String {
    let mut out = String::new();
    write_json(value, &mut out);
    out
}

fn write_json(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => out.push_str(&i.to_string()),
            (_, Some(u), _) => out.push_str(&u.to_string()),
            (_, _, Some(f)) => out.push_str(&python_float(f)),
            _ => out.push_str(&n.to_string()),
        },
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_json(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_string(k, out);
                out.push_str(": ");
                write_json(v, out);
            }
            out.push('}');
        }
    }
}

fn python_float(f: f64) -> String {
    if !f.is_finite() {
        return if f.is_nan() {
            "NaN".into()
        } else if f > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    let exp = if f == 0.0 {
        0
    } else {
        f.abs().log10().floor() as i32
    };
    if !(-4..16).contains(&exp) {
        // repr switches to exponent notation: 1e+16, 1.5e-05.
        let s = format!("{f:e}");
        let (mantissa, e) = s.split_once('e').unwrap_or((&s, "0"));
        let e: i32 = e.parse().unwrap_or(0);
        return format!("{mantissa}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs());
    }
    let s = format!("{f}");
    if s.contains('.') { s } else { format!("{s}.0") }
}

fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_like_python() {
        let v: Value = serde_json::from_str(
            r#"{"tahoe": {"linkcrtime": 1795756897.2338917, "b": 1.0, "c": [1, "é☕"]}}"#,
        )
        .unwrap();
        assert_eq!(
            python_json(&v),
            r#"{"tahoe": {"linkcrtime": 1795756897.2338917, "b": 1.0, "c": [1, "\u00e9\u2615"]}}"#
        );
        assert_eq!(python_float(1e16), "1e+16");
        assert_eq!(python_float(0.00001), "1e-05");
    }

    #[test]
    fn netstring_lengths_past_the_end_are_errors_not_overflows() {
        for contents in [
            &b"18446744073709551615:x,"[..],
            b"18446744073709551614:x,",
            b"5:abc,",
            b"3:abc",
        ] {
            assert!(
                parse(contents, None).is_err(),
                "{:?}",
                String::from_utf8_lossy(contents)
            );
        }
    }
}

/// A child's name as Tahoe stores it: Unicode NFC, so that the same name typed on
/// different systems is one name.
pub fn normalize_name(name: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    name.nfc().collect()
}

/// The metadata of a link made or re-made at `now` (seconds since the epoch), as
/// Tahoe's `update_metadata` computes it when no new metadata is given: the old keys
/// stay, `tahoe.linkcrtime` keeps the first link's time (or a pre-1.4 `ctime`), and
/// `tahoe.linkmotime` becomes `now`.
pub fn link_metadata(old: Option<&Value>, now: f64) -> Value {
    let mut metadata = match old {
        Some(Value::Object(map)) => map.clone(),
        _ => serde_json::Map::new(),
    };
    let old_ctime = metadata.get("ctime").cloned();
    // Keys keep their places (Python dicts do), so the JSON stays byte-identical to
    // what Tahoe would write.
    let tahoe = metadata
        .entry("tahoe")
        .or_insert_with(|| Value::Object(serde_json::Map::new()));
    if !tahoe.is_object() {
        *tahoe = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(tahoe) = tahoe {
        if !tahoe.contains_key("linkcrtime") {
            tahoe.insert(
                "linkcrtime".into(),
                old_ctime.unwrap_or_else(|| Value::from(now)),
            );
        }
        tahoe.insert("linkmotime".into(), Value::from(now));
    }
    Value::Object(metadata)
}

#[cfg(test)]
mod link_tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn names_are_stored_in_nfc() {
        assert_eq!(normalize_name("cafe\u{301}"), "caf\u{e9}");
        assert_eq!(normalize_name("plain"), "plain");
    }

    #[test]
    fn relinking_keeps_the_creation_time_and_other_keys() {
        let first = link_metadata(None, 10.5);
        assert_eq!(
            first,
            json!({"tahoe": {"linkcrtime": 10.5, "linkmotime": 10.5}})
        );
        let old = json!({"tahoe": {"linkmotime": 1.0, "linkcrtime": 10.5}, "mine": 1});
        let again = link_metadata(Some(&old), 20.0);
        assert_eq!(
            python_json(&again),
            r#"{"tahoe": {"linkmotime": 20.0, "linkcrtime": 10.5}, "mine": 1}"#,
            "keys keep their places"
        );
        let legacy = link_metadata(Some(&json!({"ctime": 3.0})), 4.0);
        assert_eq!(legacy["tahoe"]["linkcrtime"], json!(3.0));
    }
}
