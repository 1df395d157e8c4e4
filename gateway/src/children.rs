//! The children JSON of `t=mkdir-with-children`, `t=mkdir-immutable` and
//! `t=set_children` (`convert_children_json` in `web/common.py`):
//! `{name: [type, {"ro_uri", "rw_uri", "metadata"}], ...}`, the same shape `t=json`
//! lists children in.
//!
//! The metadata given is stored as given: keys in their order, numbers as written,
//! no `tahoe` times added (Tahoe adds none when a directory is created with its
//! children). magic-folder signs what it puts there, so a byte that moved would break
//! the signature.

use serde_json::Value;
use swamp_formats::cap::Cap;
use swamp_formats::dirnode::{Entry, normalize_name};

use crate::error::WebError;

/// Children in one request at most.
pub(crate) const MAX_CHILDREN: usize = 100_000;

/// A children body's object of `name: [type, {...}]`, within [`MAX_CHILDREN`].
fn children_object(body: &[u8]) -> Result<serde_json::Map<String, Value>, WebError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| WebError::bad(format!("children JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(WebError::bad(
            "children JSON must be an object of name: [type, {...}]",
        ));
    };
    if map.len() > MAX_CHILDREN {
        return Err(WebError::bad(format!(
            "more than {MAX_CHILDREN} children in one request"
        )));
    }
    Ok(map)
}

/// Parses a children body; `immutable` refuses children that could change (what an
/// immutable directory may not hold).
pub(crate) fn parse(body: &[u8], immutable: bool) -> Result<Vec<Entry>, WebError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let map = children_object(body)?;
    map.into_iter()
        .map(|(name, child)| {
            entry(&name, child, immutable).map(|(mut entry, metadata)| {
                entry.metadata = metadata.unwrap_or_else(|| Value::Object(serde_json::Map::new()));
                entry
            })
        })
        .collect()
}

/// Parses a `t=set_children` body: each child with the metadata given, if any
/// (none keeps what the old link had).
pub(crate) fn parse_with_metadata(body: &[u8]) -> Result<Vec<(Entry, Option<Value>)>, WebError> {
    let map = children_object(body)?;
    map.into_iter()
        .map(|(name, child)| entry(&name, child, false))
        .collect()
}

fn entry(name: &str, child: Value, immutable: bool) -> Result<(Entry, Option<Value>), WebError> {
    let bad = |why: &str| WebError::bad(format!("child {name:?}: {why}"));
    let props = match child {
        Value::Array(mut pair) if pair.len() == 2 => pair.pop().unwrap_or(Value::Null),
        _ => return Err(bad("must be [type, {properties}]")),
    };
    let Value::Object(props) = props else {
        return Err(bad("properties must be an object"));
    };
    let text = |key: &str| -> Result<Option<String>, WebError> {
        match props.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(bad(&format!("{key} must be a string"))),
        }
    };
    let (rw, ro) = (text("rw_uri")?, text("ro_uri")?);
    let metadata = match props.get("metadata") {
        None | Some(Value::Null) => None,
        Some(md @ Value::Object(_)) => Some(md.clone()),
        Some(_) => return Err(bad("metadata must be an object")),
    };
    // The strongest cap given decides the child; a read cap in the write slot works,
    // as in Tahoe. No cap at all is a child Tahoe keeps as an unknown node with
    // empty caps: magic-folder records a deletion that way (`"ro_uri": null`).
    let Some(strongest) = rw.as_deref().or(ro.as_deref()) else {
        let entry = Entry {
            name: normalize_name(name),
            ro_uri: None,
            rw_uri: None,
            metadata: Value::Null,
        };
        return Ok((entry, metadata));
    };
    let cap = Cap::parse_lenient(strongest).map_err(|e| bad(&e.to_string()))?;
    let (ro_uri, rw_uri) = match &cap {
        Cap::Unknown(_) => {
            if immutable && rw.is_some() {
                return Err(WebError::bad(format!(
                    "MustBeDeepImmutableError: a cap passed to this operation for the child \
                     named {name:?}, needed to be immutable but was not."
                )));
            }
            (ro.clone(), rw.clone())
        }
        known => {
            if immutable && (known.is_mutable() || known.is_writable()) {
                return Err(WebError::bad(format!(
                    "MustBeDeepImmutableError: a cap passed to this operation for the child \
                     named {name:?}, needed to be immutable but was not. Either the cap is \
                     being added to an immutable directory, or it was originally retrieved \
                     from an immutable directory as an unknown cap."
                )));
            }
            (
                Some(known.read_only().to_string()),
                known.is_writable().then(|| known.to_string()),
            )
        }
    };
    let entry = Entry {
        name: normalize_name(name),
        ro_uri,
        rw_uri,
        metadata: Value::Null,
    };
    Ok((entry, metadata))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_is_kept_as_given_and_mutable_children_refused_when_immutable() {
        let body = br#"{"b": ["filenode", {"ro_uri": "URI:LIT:mfrgg", "metadata": {"z": 1, "a": {"sig": "x"}, "f": 0.1}}],
                       "d": ["dirnode", {"rw_uri": "URI:DIR2:aaaaaaaaaaaaaaaaaaaaaaaaaa:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}]}"#;
        let entries = parse(body, false).expect("parses");
        assert_eq!(entries[0].name, "b");
        assert_eq!(
            swamp_formats::dirnode::python_json(&entries[0].metadata),
            r#"{"z": 1, "a": {"sig": "x"}, "f": 0.1}"#
        );
        assert!(entries[1].rw_uri.is_some());
        assert!(
            entries[1]
                .ro_uri
                .as_deref()
                .is_some_and(|r| r.starts_with("URI:DIR2-RO:"))
        );
        assert!(parse(body, true).is_err());
        assert!(parse(b"[1]", false).is_err());
        // magic-folder's deletion: a child without a cap, kept with its metadata.
        let deleted = parse(
            br#"{"content": ["filenode", {"ro_uri": null, "metadata": {"m": 1}}]}"#,
            true,
        )
        .expect("parses");
        assert_eq!(deleted[0].ro_uri, None);
        assert_eq!(deleted[0].rw_uri, None);
        assert_eq!(deleted[0].metadata["m"], 1);
        assert!(parse(b"", false).expect("empty").is_empty());
    }
}
