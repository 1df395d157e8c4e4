#![allow(clippy::unwrap_used)]
//! Property tests: any cap the encoder can make parses back to itself, strictly and
//! leniently, and so does its read-only form. The fuzz targets (`fuzz/`) check the other
//! direction, from arbitrary text to caps. (The wire types' round trips are in
//! swamp-proto's `tests/round_trip_props.rs`.)

use proptest::collection::vec;
use proptest::prelude::*;
use swamp_formats::cap::{Cap, ChkCap, ChkVerifierCap, MutableAccess, MutableCap, MutableFormat};
use swamp_proto::StorageIndex;

fn file_cap() -> impl Strategy<Value = Cap> {
    let chk = (
        any::<[u8; 16]>(),
        any::<[u8; 32]>(),
        any::<u16>(),
        any::<u16>(),
        any::<u64>(),
    );
    prop_oneof![
        vec(any::<u8>(), 0..80).prop_map(Cap::Lit),
        chk.prop_map(|(key, ueb_hash, needed, total, size)| Cap::Chk(ChkCap {
            key,
            ueb_hash,
            needed,
            total,
            size,
        })),
        chk.prop_map(|(si, ueb_hash, needed, total, size)| {
            Cap::ChkVerifier(ChkVerifierCap {
                storage_index: StorageIndex::from_bytes(si),
                ueb_hash,
                needed,
                total,
                size,
            })
        }),
        (
            prop_oneof![Just(MutableFormat::Sdmf), Just(MutableFormat::Mdmf)],
            0..3u8,
            any::<[u8; 16]>(),
            any::<[u8; 32]>(),
        )
            .prop_map(|(format, access, key, fingerprint)| {
                let access = match access {
                    0 => MutableAccess::Write(key),
                    1 => MutableAccess::Read(key),
                    _ => MutableAccess::Verify(StorageIndex::from_bytes(key)),
                };
                Cap::Mutable(MutableCap {
                    format,
                    access,
                    fingerprint,
                })
            }),
    ]
}

fn cap() -> impl Strategy<Value = Cap> {
    prop_oneof![
        file_cap(),
        file_cap().prop_map(|inner| Cap::Dir(Box::new(inner)))
    ]
}

proptest! {
    #[test]
    fn caps_round_trip(cap in cap()) {
        let text = cap.to_string();
        prop_assert_eq!(Cap::parse_strict(&text).unwrap(), cap.clone());
        prop_assert_eq!(Cap::parse_lenient(&text).unwrap(), cap.clone());
        let ro = cap.read_only();
        prop_assert_eq!(Cap::parse_strict(&ro.to_string()).unwrap(), ro);
    }
}
