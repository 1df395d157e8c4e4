//! The feed journal and checkpoint files. An input whose first byte is even is a
//! journal file as found on disk; odd, the rest is one record body that the target
//! frames with its true length and checksum (as a buggy or older writer could have),
//! so the CBOR inside gets fuzzed past the checksum. Whatever parses re-encodes to
//! records that parse to the same entries.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swamp_formats::sha256::Sha256;
use swamp_server::testing::records;

fn reencode(read: &records::Read) -> Vec<u8> {
    let mut out = Vec::new();
    for (entry, redo) in &read.records {
        records::encode(entry, redo.as_ref(), &mut out);
    }
    out
}

fn same(a: &records::Read, b: &records::Read) -> bool {
    a.records.len() == b.records.len()
        && a.records
            .iter()
            .zip(&b.records)
            .all(|((ea, ra), (eb, rb))| {
                ea.seq == eb.seq && ea.time == eb.time && ea.change == eb.change && ra == rb
            })
}

fuzz_target!(|data: &[u8]| {
    let _ = records::parse_checkpoint(data);
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let file = if mode % 2 == 0 {
        rest.to_vec()
    } else {
        let digest = Sha256::digest(rest);
        let mut framed = (rest.len() as u32).to_be_bytes().to_vec();
        framed.extend_from_slice(&digest[..4]);
        framed.extend_from_slice(rest);
        framed
    };
    let read = records::parse(&file);
    assert!(read.good_len <= file.len() as u64);
    let again = reencode(&read);
    let reread = records::parse(&again);
    assert_eq!(
        reread.good_len,
        again.len() as u64,
        "re-encoded records parse whole"
    );
    assert!(
        same(&read, &reread),
        "re-encoded records parse to the same entries"
    );
    assert_eq!(reencode(&reread), again, "encoding is deterministic");
});
