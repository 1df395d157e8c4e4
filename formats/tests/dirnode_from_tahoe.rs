#![allow(clippy::unwrap_used)]
//! A directory made by real Tahoe 1.20 (`fixtures/dirnode/`, from
//! `tests/interop/make_dirnode_fixtures.py`): decoding its backing SDMF file and
//! parsing it gives Tahoe's own listing; packing it again gives Tahoe's bytes.

use swamp_formats::cap::Cap;
use swamp_formats::dirnode::{pack, parse};
use swamp_formats::mutable::{MutableShare, decode};

#[test]
fn directory_written_by_tahoe_parses_and_repacks_byte_for_byte() {
    let Cap::Dir(inner) = include_str!("fixtures/dirnode/cap.txt")
        .trim()
        .parse::<Cap>()
        .unwrap()
    else {
        panic!("not a dircap")
    };
    let Cap::Mutable(file) = *inner else {
        panic!("not a mutable directory")
    };
    let shares = [
        include_bytes!("fixtures/dirnode/0.share").as_slice(),
        include_bytes!("fixtures/dirnode/1.share").as_slice(),
    ];
    let parsed: Vec<MutableShare> = shares
        .iter()
        .map(|b| MutableShare::parse(b).unwrap())
        .collect();
    for (n, share) in parsed.iter().enumerate() {
        share.verify(n, &file.fingerprint).unwrap();
    }
    let plaintext = decode(
        &file.readkey().unwrap(),
        &[(0, &parsed[0]), (1, &parsed[1])],
    )
    .unwrap();
    let writekey = file.writekey().unwrap();
    let entries = parse(&plaintext, Some(&writekey)).unwrap();

    let listing: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/dirnode/listing.json")).unwrap();
    let children = listing[1]["children"].as_object().unwrap();
    assert_eq!(entries.len(), children.len());
    for entry in &entries {
        let child = &children[&entry.name][1];
        assert_eq!(
            entry.ro_uri.as_deref(),
            child["ro_uri"].as_str(),
            "{}",
            entry.name
        );
        assert_eq!(
            entry.rw_uri.as_deref(),
            child["rw_uri"].as_str(),
            "{}",
            entry.name
        );
        assert_eq!(entry.metadata, child["metadata"], "{}", entry.name);
    }
    assert!(
        entries.iter().any(|e| e.name == "café ☕.txt"),
        "non-ASCII names"
    );
    assert_eq!(
        pack(&entries, &writekey),
        plaintext,
        "packing gives Tahoe's bytes back"
    );

    // A read-only holder sees the same children, without write caps.
    let read_only = parse(&plaintext, None).unwrap();
    assert!(read_only.iter().all(|e| e.rw_uri.is_none()));
    assert_eq!(
        read_only.iter().map(|e| &e.name).collect::<Vec<_>>(),
        entries.iter().map(|e| &e.name).collect::<Vec<_>>()
    );
}
