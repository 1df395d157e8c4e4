//! Directory changes the web API makes beyond the client library's `link` and
//! `unlink`: new directories with their children, links with given metadata
//! (`t=set_children`, `t=relink`), each a read-modify-write of the directory.
//!
//! Metadata follows Tahoe's `update_metadata` (`dirnode.py`): given metadata
//! replaces the old except for its `tahoe` key, which keeps the old link-creation
//! time; `linkmotime` becomes now.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};
use swamp_client::dir_edit::Replace;
use swamp_client::grid::GridError;
use swamp_formats::cap::{Cap, MutableFormat};
use swamp_formats::dirnode::{Entry, normalize_name, pack_immutable};
use swamp_formats::mutable_key::MutableKey;

use crate::Gateway;
use crate::error::WebError;
use crate::transfer;

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Tahoe's `update_metadata(old, new, now)`.
pub(crate) fn update_metadata(old: Option<&Value>, new: Option<&Value>, now: f64) -> Value {
    let mut metadata = match old {
        Some(Value::Object(map)) => map.clone(),
        _ => Map::new(),
    };
    let old_ctime = metadata.get("ctime").cloned();
    if let Some(Value::Object(new)) = new {
        let old_tahoe = metadata.get("tahoe").cloned();
        // Rebuilt rather than removed from, so the other keys keep their order.
        metadata = new
            .iter()
            .filter(|(k, _)| *k != "tahoe")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let Some(tahoe) = old_tahoe {
            metadata.insert("tahoe".into(), tahoe);
        }
    }
    let mut tahoe = match metadata.get("tahoe") {
        Some(Value::Object(map)) => map.clone(),
        _ => Map::new(),
    };
    if !tahoe.contains_key("linkcrtime") {
        tahoe.insert(
            "linkcrtime".into(),
            old_ctime.unwrap_or_else(|| Value::from(now)),
        );
    }
    tahoe.insert("linkmotime".into(), Value::from(now));
    metadata.insert("tahoe".into(), Value::Object(tahoe));
    Value::Object(metadata)
}

/// Creates a directory holding `children` (metadata as given): a mutable one of
/// `format` (signed with `key` when given), or, with `immutable`, an immutable one
/// (`URI:DIR2-CHK:` or `URI:DIR2-LIT:`).
pub(crate) async fn create_dir(
    gateway: &Arc<Gateway>,
    children: Vec<Entry>,
    immutable: bool,
    format: MutableFormat,
    key: Option<MutableKey>,
) -> Result<Cap, WebError> {
    if immutable {
        let file = transfer::upload_bytes(gateway, pack_immutable(&children)).await?;
        return Ok(Cap::Dir(Box::new(file)));
    }
    let dir = match key {
        Some(key) => gateway.grid.create_dir_with_key(format, key).await?,
        None => gateway.grid.create_dir(format).await?,
    };
    if !children.is_empty() {
        gateway
            .grid
            .modify_dir(&dir, |entries| {
                entries.clone_from(&children);
                Ok(true)
            })
            .await?;
    }
    Ok(dir)
}

/// Links each child (cap texts and optional metadata) into `dir`, as
/// `t=set_children` does.
pub(crate) async fn set_children(
    gateway: &Arc<Gateway>,
    dir: &Cap,
    children: Vec<(Entry, Option<Value>)>,
    replace: Replace,
) -> Result<(), WebError> {
    let now = now();
    gateway
        .grid
        .modify_dir(dir, |entries| {
            for (child, metadata) in &children {
                let at = entries.iter().position(|e| e.name == child.name);
                if let Some(i) = at {
                    refuse_replacing(&entries[i], replace)?;
                }
                let old = at.map(|i| entries[i].metadata.clone());
                let entry = Entry {
                    metadata: update_metadata(old.as_ref(), metadata.as_ref(), now),
                    ..child.clone()
                };
                match at {
                    Some(i) => entries[i] = entry,
                    None => entries.push(entry),
                }
            }
            Ok(true)
        })
        .await?;
    Ok(())
}

fn refuse_replacing(old: &Entry, replace: Replace) -> Result<(), GridError> {
    let is_dir = old.cap().is_ok_and(|c| c.is_dir());
    let refuse = match replace {
        Replace::Always => false,
        Replace::OnlyFiles => is_dir,
        Replace::Never => true,
    };
    if refuse {
        return Err(GridError::ChildExists {
            path: old.name.clone(),
            is_dir,
        });
    }
    Ok(())
}

/// Moves the link `from_name` of `from` to `to_name` in `to` (Tahoe's
/// `move_child_to`): linked there with its metadata, then unlinked here.
pub(crate) async fn relink(
    gateway: &Arc<Gateway>,
    from: &Cap,
    from_name: &str,
    to: &Cap,
    to_name: &str,
    replace: Replace,
) -> Result<(), WebError> {
    let (from_name, to_name) = (normalize_name(from_name), normalize_name(to_name));
    if from == to && from_name == to_name {
        return Ok(());
    }
    if !from.is_writable() || !to.is_writable() {
        return Err(WebError::bad(
            "NotWriteableError: both directories must be writable",
        ));
    }
    let listing = gateway.grid.read_dir(from).await?;
    let entry = listing
        .entries
        .into_iter()
        .find(|e| e.name == from_name)
        .ok_or_else(|| WebError::NotFound(format!("No such child: {from_name}")))?;
    let moved = Entry {
        name: to_name.clone(),
        ..entry.clone()
    };
    set_children(gateway, to, vec![(moved, Some(entry.metadata))], replace).await?;
    gateway.grid.unlink(from, &from_name).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn metadata_is_updated_as_tahoe_updates_it() {
        let old = json!({"tahoe": {"linkcrtime": 1.0, "linkmotime": 2.0}, "a": 1});
        let new = json!({"b": 2, "tahoe": {"linkcrtime": 99.0}});
        assert_eq!(
            update_metadata(Some(&old), Some(&new), 5.0),
            json!({"b": 2, "tahoe": {"linkcrtime": 1.0, "linkmotime": 5.0}})
        );
        assert_eq!(
            update_metadata(None, None, 5.0),
            json!({"tahoe": {"linkcrtime": 5.0, "linkmotime": 5.0}})
        );
        assert_eq!(
            update_metadata(Some(&json!({"ctime": 3.0})), None, 5.0),
            json!({"ctime": 3.0, "tahoe": {"linkcrtime": 3.0, "linkmotime": 5.0}})
        );
    }
}
