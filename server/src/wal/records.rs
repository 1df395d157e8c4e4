//! The journal file's record format, and the checkpoint file.
//!
//! A record is `length | 4-byte SHA-256 prefix | CBOR map {seq, time, change, redo?}`.
//! `length` is a big-endian `u32`; a body of `u32::MAX` bytes or more has the escape
//! value `u32::MAX` there, followed by its length as a big-endian `u64` (so every record
//! below 4 GiB is byte-identical to those of earlier versions, and any size round-trips).
//! `redo` (present only for slot changes logged ahead of their in-place write, see
//! `redo.rs`) is skipped when absent, so records without it are byte-identical
//! to those of earlier versions, and earlier versions reading a newer journal ignore it.
//!
//! Reading stops quietly at a torn tail (zeros, or a partial last record: a crash
//! mid-append). A damaged record with valid records after it is different: that is
//! damage in the middle of the journal, and [`read`] reports it (byte range, and the
//! sequence numbers around it) so that the journal can recover loudly (`journal.rs`,
//! `docs/durability.md`).
//!
//! `checkpoint` holds the sequence number up to which every logged redo is known
//! durable in the share files; only later records are replayed at start.

use std::fs::{self, File};
use std::io::{self, Read as _};
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::change::Change;
use super::durable::Syncer;
use super::redo::ShareRedo;

/// One journal entry.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Entry {
    /// Sequence number (the cursor's `seq` after this change).
    pub seq: u64,
    /// Unix seconds when recorded.
    pub time: u64,
    /// The change.
    pub change: Arc<Change>,
}

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

/// The `u32` length value that says "a `u64` length follows".
const EXTENDED: u32 = u32::MAX;

/// Bytes of checksum after the length.
const CHECKSUM_LEN: usize = 4;

/// Writes a body length: a `u32`, or the escape value and a `u64` when it does not fit
/// below the escape value.
pub fn encode_len(len: u64, out: &mut Vec<u8>) {
    match u32::try_from(len) {
        Ok(short) if short != EXTENDED => out.extend_from_slice(&short.to_be_bytes()),
        _ => {
            out.extend_from_slice(&EXTENDED.to_be_bytes());
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
}

/// Reads a body length at the start of `bytes`: the length and how many bytes it took,
/// or `None` if `bytes` is too short to hold it.
pub fn decode_len(bytes: &[u8]) -> Option<(u64, usize)> {
    let short = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?);
    if short != EXTENDED {
        return Some((u64::from(short), 4));
    }
    let long = u64::from_be_bytes(bytes.get(4..12)?.try_into().ok()?);
    Some((long, 12))
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
    encode_len(body.len() as u64, out);
    out.extend_from_slice(&digest.as_ref()[..CHECKSUM_LEN]);
    out.extend_from_slice(&body);
}

/// A stretch of the journal that holds no valid record, with valid records after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// First byte of the damaged stretch.
    pub start: u64,
    /// First byte of the next valid record.
    pub end: u64,
    /// The sequence number of the last valid record before it (0: none).
    pub seq_before: u64,
    /// The sequence number of the first valid record after it.
    pub seq_after: u64,
}

/// What [`read`] found in a journal file.
#[derive(Debug, Default)]
pub struct Read {
    /// Every valid record, in file order (sequence numbers strictly increase).
    pub records: Vec<(Entry, Option<ShareRedo>)>,
    /// Where the last valid record ends: appends continue here.
    pub good_len: u64,
    /// Whether everything after `good_len` is zeros (space allocated ahead, see
    /// `appender.rs`) rather than a torn record.
    pub clean_tail: bool,
    /// Damaged stretches with valid records after them (empty for a healthy journal,
    /// or one with only a torn tail).
    pub damage: Vec<Damage>,
}

/// The valid record at `at` (with a sequence number above `after`), and where it ends.
fn record_at(bytes: &[u8], at: usize, after: u64) -> Option<(RecordIn, usize)> {
    let rest = bytes.get(at..)?;
    let (len, len_size) = decode_len(rest)?;
    let body_at = len_size.checked_add(CHECKSUM_LEN)?;
    let end = usize::try_from(len).ok()?.checked_add(body_at)?;
    let body = rest.get(body_at..end)?;
    let digest = ring::digest::digest(&ring::digest::SHA256, body);
    if digest.as_ref()[..CHECKSUM_LEN] != rest[len_size..body_at] {
        return None;
    }
    let record = swamp_proto::v1::decode::<RecordIn>(body).ok()?;
    (record.seq > after).then_some((record, at + end))
}

/// Whether a record could start at `at`: its body begins like every body [`encode`]
/// writes (a CBOR map of 3 or 4 entries whose first key is `seq`). A cheap filter, so
/// that looking for the next record after damage hashes almost nothing but records.
fn looks_like_record(bytes: &[u8], at: usize) -> bool {
    let Some((_, len_size)) = bytes.get(at..).and_then(decode_len) else {
        return false;
    };
    let body_at = at + len_size + CHECKSUM_LEN;
    matches!(
        bytes.get(body_at..body_at + 5),
        Some([0xa3 | 0xa4, 0x63, b's', b'e', b'q'])
    )
}

/// Parses a whole journal image.
pub fn parse(bytes: &[u8]) -> Read {
    let mut read = Read::default();
    let mut last_seq = 0;
    let mut at = 0usize;
    loop {
        if let Some((record, next)) = record_at(bytes, at, last_seq) {
            last_seq = record.seq;
            read.records.push((
                Entry {
                    seq: record.seq,
                    time: record.time,
                    change: Arc::new(record.change),
                },
                record.redo,
            ));
            at = next;
            continue;
        }
        if bytes[at..].iter().all(|&b| b == 0) {
            break;
        }
        // Damaged or torn: valid records further on make it damage.
        let found = (at + 1..bytes.len())
            .find(|&p| looks_like_record(bytes, p) && record_at(bytes, p, last_seq).is_some());
        let Some(next) = found else { break };
        let seq_after = record_at(bytes, next, last_seq).map_or(0, |(r, _)| r.seq);
        read.damage.push(Damage {
            start: at as u64,
            end: next as u64,
            seq_before: last_seq,
            seq_after,
        });
        at = next;
    }
    read.good_len = at as u64;
    read.clean_tail = bytes[at..].iter().all(|&b| b == 0);
    read
}

/// Reads and parses the journal file (none yet: empty).
///
/// # Errors
/// I/O errors.
pub fn read(path: &Path) -> io::Result<Read> {
    let mut bytes = Vec::new();
    match File::open(path) {
        Ok(mut f) => {
            f.read_to_end(&mut bytes)?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(Read {
                clean_tail: true,
                ..Read::default()
            });
        }
        Err(e) => return Err(e),
    }
    Ok(parse(&bytes))
}

/// The checkpoint's sequence number; 0 (replay everything) if missing or unreadable.
pub fn read_checkpoint(dir: &Path) -> u64 {
    fs::read(dir.join("checkpoint")).map_or(0, |bytes| parse_checkpoint(&bytes))
}

/// A checkpoint file's sequence number from its bytes; 0 if they are not one (a pure
/// function of the bytes, so the fuzzer can call it).
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
pub fn write_checkpoint(dir: &Path, seq: u64, syncer: &Syncer) -> io::Result<()> {
    super::durable::write_durably(
        &dir.join("checkpoint"),
        format!("{seq}\n").as_bytes(),
        syncer,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use swamp_proto::{ShareNumber, StorageIndex};

    fn entry(seq: u64) -> Entry {
        Entry {
            seq,
            time: 7,
            change: Arc::new(Change::SlotDeleted {
                si: StorageIndex::from_bytes([seq as u8; 16]),
                shnum: ShareNumber::new(0),
            }),
        }
    }

    /// A journal image of records `seqs`, and where each record starts.
    fn image(seqs: impl IntoIterator<Item = u64>) -> (Vec<u8>, Vec<usize>) {
        let mut bytes = Vec::new();
        let mut starts = Vec::new();
        for seq in seqs {
            starts.push(bytes.len());
            encode(&entry(seq), None, &mut bytes);
        }
        (bytes, starts)
    }

    fn seqs(read: &Read) -> Vec<u64> {
        read.records.iter().map(|(e, _)| e.seq).collect()
    }

    #[test]
    fn lengths_below_the_escape_keep_the_old_four_bytes() {
        for len in [0u64, 1, 300, u64::from(u32::MAX) - 1] {
            let mut out = Vec::new();
            encode_len(len, &mut out);
            assert_eq!(out, (len as u32).to_be_bytes());
            assert_eq!(decode_len(&out), Some((len, 4)));
        }
        // A record as earlier versions wrote it: u32 length, checksum, body.
        let mut out = Vec::new();
        encode(&entry(5), None, &mut out);
        let body = &out[8..];
        assert_eq!(out[..4], (body.len() as u32).to_be_bytes());
        let digest = ring::digest::digest(&ring::digest::SHA256, body);
        assert_eq!(out[4..8], digest.as_ref()[..4]);
    }

    #[test]
    fn lengths_from_the_escape_up_take_a_u64() {
        for len in [u64::from(u32::MAX), 1 << 32, (1 << 32) + 1, u64::MAX] {
            let mut out = Vec::new();
            encode_len(len, &mut out);
            assert_eq!(out.len(), 12);
            assert_eq!(out[..4], [0xff; 4]);
            assert_eq!(decode_len(&out), Some((len, 12)), "{len}");
        }
        assert_eq!(decode_len(&[0xff; 4]), None, "the escape without its u64");
        assert_eq!(decode_len(&[0xff; 11]), None);
        assert_eq!(decode_len(&[0, 0, 1]), None);
    }

    #[test]
    fn a_record_with_an_extended_length_reads_back_and_so_do_the_records_after_it() {
        let (mut bytes, _) = image([1]);
        let mut second = Vec::new();
        encode(&entry(2), None, &mut second);
        // The same record with its length in the extended form, as a body of 4 GiB
        // or more would have it.
        bytes.extend_from_slice(&[0xff; 4]);
        bytes.extend_from_slice(&((second.len() - 8) as u64).to_be_bytes());
        bytes.extend_from_slice(&second[4..]);
        encode(&entry(3), None, &mut bytes);
        let read = parse(&bytes);
        assert_eq!(seqs(&read), vec![1, 2, 3]);
        assert!(read.damage.is_empty());
        assert_eq!(read.good_len, bytes.len() as u64);
    }

    #[test]
    fn a_torn_tail_is_quiet() {
        let (bytes, starts) = image(1..=3);
        for cut in [starts[2] + 4, starts[2] + 9, bytes.len() - 2] {
            let read = parse(&bytes[..cut]);
            assert_eq!(seqs(&read), vec![1, 2]);
            assert!(read.damage.is_empty());
            assert!(!read.clean_tail);
            assert_eq!(read.good_len, starts[2] as u64);
            // The same inside space allocated ahead (zeros after the torn record).
            let mut padded = bytes[..cut].to_vec();
            padded.resize(cut + 4096, 0);
            let read = parse(&padded);
            assert_eq!(seqs(&read), vec![1, 2]);
            assert!(read.damage.is_empty());
        }
        let mut padded = bytes.clone();
        padded.resize(bytes.len() + 4096, 0);
        let read = parse(&padded);
        assert_eq!(seqs(&read), vec![1, 2, 3]);
        assert!(read.clean_tail);
        assert_eq!(read.good_len, bytes.len() as u64);
    }

    #[test]
    fn damage_in_the_middle_is_reported_with_the_records_after_it() {
        let (bytes, starts) = image(1..=5);
        // A flipped bit in the body of record 3, then in its length, then zeros over it.
        let mut flipped = bytes.clone();
        flipped[starts[2] + 12] ^= 0x10;
        let mut bad_len = bytes.clone();
        bad_len[starts[2] + 3] ^= 0x01;
        let mut zeroed = bytes.clone();
        zeroed[starts[2]..starts[3]].fill(0);
        for damaged in [flipped, bad_len, zeroed] {
            let read = parse(&damaged);
            assert_eq!(seqs(&read), vec![1, 2, 4, 5]);
            assert_eq!(
                read.damage,
                vec![Damage {
                    start: starts[2] as u64,
                    end: starts[3] as u64,
                    seq_before: 2,
                    seq_after: 4,
                }]
            );
            assert_eq!(read.good_len, bytes.len() as u64);
        }
        // A valid record that does not continue the sequence is damage too.
        let (mut stale, starts) = image([1, 2, 9, 3, 4]);
        stale.truncate(starts[4]);
        let read = parse(&stale);
        assert_eq!(seqs(&read), vec![1, 2, 9]);
        assert!(
            !read.clean_tail,
            "3 after 9 is a torn tail, not the sequence"
        );
    }

    #[test]
    fn records_written_by_earlier_versions_encode_to_the_same_bytes() {
        // Written by the fuzz seed writer before the log moved out of the feeds and
        // its types were renamed: one record of each kind of change, two with redo.
        let file = include_bytes!("../../../fuzz/corpus/journal/journal");
        let read = parse(&file[1..]);
        assert_eq!(read.records.len(), 4);
        assert!(read.damage.is_empty());
        let mut again = Vec::new();
        for (entry, redo) in &read.records {
            encode(entry, redo.as_ref(), &mut again);
        }
        assert_eq!(again, file[1..]);
    }

    #[test]
    fn the_filter_matches_what_encode_writes() {
        let redo = ShareRedo::delete(StorageIndex::from_bytes([1; 16]), ShareNumber::new(2));
        for redo in [None, Some(&redo)] {
            let mut out = Vec::new();
            encode(&entry(1), redo, &mut out);
            assert!(looks_like_record(&out, 0));
        }
        assert!(!looks_like_record(&[0; 64], 0));
    }
}
