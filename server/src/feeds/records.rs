//! The journal file's record format, and the checkpoint file.
//!
//! A record is `u32 length | 4-byte SHA-256 prefix | CBOR map {seq, time, change, redo?}`.
//! `redo` (present only for slot changes logged ahead of their in-place write, see
//! `backend/redo.rs`) is skipped when absent, so records without it are byte-identical
//! to those of earlier versions, and earlier versions reading a newer journal ignore it.
//!
//! `checkpoint` holds the sequence number up to which every logged redo is known
//! durable in the share files; only later records are replayed at start.

use std::fs;
use std::io;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::journal::Entry;
use crate::backend::change::Change;
use crate::backend::redo::ShareRedo;

#[derive(Serialize)]
struct RecordOut<'a> {
    seq: u64,
    time: u64,
    change: &'a Change,
    #[serde(skip_serializing_if = "Option::is_none")]
    redo: Option<&'a ShareRedo>,
}

#[derive(Deserialize)]
struct RecordIn {
    seq: u64,
    time: u64,
    change: Change,
    #[serde(default)]
    redo: Option<ShareRedo>,
}

/// Appends one record to `out`.
pub fn encode(entry: &Entry, redo: Option<&ShareRedo>, out: &mut Vec<u8>) {
    let body = swamp_proto::v1::encode(&RecordOut {
        seq: entry.seq,
        time: entry.time,
        change: &entry.change,
        redo,
    });
    let digest = ring::digest::digest(&ring::digest::SHA256, &body);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&digest.as_ref()[..4]);
    out.extend_from_slice(&body);
}

/// Records read from a journal file, the length of its good prefix, and whether the
/// rest is only zeros (space allocated ahead, see `appender.rs`) rather than a torn
/// record.
pub type Read = (Vec<(Entry, Option<ShareRedo>)>, u64, bool);

/// Reads records until the end or the first damaged one.
pub fn read(path: &Path) -> io::Result<Read> {
    match fs::read(path) {
        Ok(bytes) => Ok(parse(&bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok((Vec::new(), 0, true)),
        Err(e) => Err(e),
    }
}

/// Parses a journal file's bytes, up to the end or the first damaged record (a pure
/// function of the bytes, so the fuzzer can call it).
pub fn parse(bytes: &[u8]) -> Read {
    let mut records = Vec::new();
    let mut at = 0usize;
    while at + 8 <= bytes.len() {
        let len =
            u32::from_be_bytes(bytes[at..at + 4].try_into().expect("invariant: 4 bytes")) as usize;
        let Some(body) = bytes.get(at + 8..at + 8 + len) else {
            break;
        };
        let digest = ring::digest::digest(&ring::digest::SHA256, body);
        if digest.as_ref()[..4] != bytes[at + 4..at + 8] {
            break;
        }
        let Ok(record) = swamp_proto::v1::decode::<RecordIn>(body) else {
            break;
        };
        let entry = Entry {
            seq: record.seq,
            time: record.time,
            change: Arc::new(record.change),
        };
        records.push((entry, record.redo));
        at += 8 + len;
    }
    let clean_tail = bytes[at..].iter().all(|&b| b == 0);
    (records, at as u64, clean_tail)
}

/// The checkpoint's sequence number; 0 (replay everything) if missing or unreadable.
pub fn read_checkpoint(dir: &Path) -> u64 {
    fs::read(dir.join("checkpoint")).map_or(0, |bytes| parse_checkpoint(&bytes))
}

/// Parses a checkpoint file's bytes; 0 (replay everything) if they are not a number.
pub fn parse_checkpoint(bytes: &[u8]) -> u64 {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}

/// Records the checkpoint durably.
///
/// # Errors
/// I/O errors.
pub fn write_checkpoint(dir: &Path, seq: u64) -> io::Result<()> {
    super::journal::write_durably(&dir.join("checkpoint"), format!("{seq}\n").as_bytes())
}
