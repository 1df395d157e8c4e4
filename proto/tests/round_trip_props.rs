#![allow(clippy::unwrap_used)]
//! Property tests: any value the encoders can make decodes back to itself, for NURLs,
//! feed cursors and the CBOR bodies of `/storage/v1` (caps are swamp-formats'
//! `tests/cap_round_trip_props.rs`). The fuzz targets (`fuzz/`) check the other
//! direction, from arbitrary bytes to values.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use proptest::collection::{btree_map, btree_set, vec};
use proptest::prelude::*;
use serde_bytes::ByteBuf;
use swamp_proto::feed::Cursor;
use swamp_proto::secrets::Swissnum;
use swamp_proto::v1::{self, *};
use swamp_proto::{Nurl, ShareNumber, SpkiHash};

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9][a-z0-9.-]{0,40}",
        any::<[u8; 4]>().prop_map(|b| Ipv4Addr::from(b).to_string()),
        any::<[u8; 16]>().prop_map(|b| Ipv6Addr::from(b).to_string()),
    ]
}

fn share_set() -> impl Strategy<Value = ShareSet> {
    btree_set(any::<u8>(), 0..=256).prop_map(|s| s.into_iter().map(ShareNumber::new).collect())
}

fn test_write_vectors() -> impl Strategy<Value = TestWriteVectors> {
    (
        vec(
            (any::<u64>(), any::<u64>(), vec(any::<u8>(), 0..40)).prop_map(
                |(offset, size, specimen)| TestVector {
                    offset,
                    size,
                    specimen,
                },
            ),
            0..=30,
        ),
        vec(
            (any::<u64>(), vec(any::<u8>(), 0..40))
                .prop_map(|(offset, data)| WriteVector { offset, data }),
            0..5,
        ),
        any::<Option<u64>>(),
    )
        .prop_map(|(test, write, new_length)| TestWriteVectors {
            test,
            write,
            new_length,
        })
}

fn read_test_write() -> impl Strategy<Value = ReadTestWriteRequest> {
    (
        btree_map(0..256u64, test_write_vectors(), 0..6),
        vec(
            (any::<u64>(), any::<u64>()).prop_map(|(offset, size)| ReadVector { offset, size }),
            0..=30,
        ),
    )
        .prop_map(|(test_write_vectors, read_vector)| ReadTestWriteRequest {
            test_write_vectors,
            read_vector,
        })
}

/// Encodes, decodes, and checks the value and a second encoding are the same.
fn cbor_round_trip<T>(value: &T) -> Result<(), TestCaseError>
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let bytes = v1::encode(value);
    let back: T = v1::decode(&bytes).unwrap();
    prop_assert_eq!(&back, value);
    prop_assert_eq!(v1::encode(&back), bytes);
    Ok(())
}

proptest! {
    #[test]
    fn nurls_round_trip(
        hash in any::<[u8; 32]>(),
        host in host(),
        port in any::<u16>(),
        swissnum in "[A-Za-z0-9_-]{1,40}",
    ) {
        let nurl = Nurl {
            spki_hash: SpkiHash::from_bytes(hash),
            host,
            port,
            swissnum: Swissnum::new(swissnum).unwrap(),
        };
        let back: Nurl = nurl.to_string().parse().unwrap();
        prop_assert!(back == nurl, "{nurl:?} came back as {back:?}");
    }

    #[test]
    fn cursors_round_trip(epoch in any::<u64>(), seq in any::<u64>()) {
        let cursor = Cursor { epoch, seq };
        prop_assert_eq!(cursor.to_string().parse::<Cursor>().unwrap(), cursor);
        let json = serde_json::to_string(&cursor).unwrap();
        prop_assert_eq!(serde_json::from_str::<Cursor>(&json).unwrap(), cursor);
        cbor_round_trip(&cursor)?;
    }

    #[test]
    fn allocate_bodies_round_trip(
        share_numbers in share_set(),
        allocated_size in any::<u64>(),
        already_have in share_set(),
        allocated in share_set(),
    ) {
        cbor_round_trip(&AllocateRequest { share_numbers, allocated_size })?;
        cbor_round_trip(&AllocateResponse { already_have, allocated })?;
    }

    #[test]
    fn upload_progress_and_advice_round_trip(
        required in vec((any::<u64>(), any::<u64>()), 0..10),
        reason in "\\PC{1,200}",
    ) {
        let required = required
            .into_iter()
            .map(|(begin, end)| RequiredRange { begin, end })
            .collect();
        cbor_round_trip(&UploadProgress { required })?;
        let advice = AdviseCorruptRequest { reason };
        cbor_round_trip(&advice)?;
        prop_assert!(advice.validate().is_ok());
    }

    #[test]
    fn read_test_write_bodies_round_trip(
        request in read_test_write(),
        success in any::<bool>(),
        data in btree_map(any::<u64>(), vec(vec(any::<u8>(), 0..40), 0..4), 0..5),
    ) {
        cbor_round_trip(&request)?;
        let valid = request.clone().validated().unwrap();
        prop_assert_eq!(valid.shares.len(), request.test_write_vectors.len());
        let data: BTreeMap<u64, Vec<ByteBuf>> = data
            .into_iter()
            .map(|(n, reads)| (n, reads.into_iter().map(ByteBuf::from).collect()))
            .collect();
        cbor_round_trip(&ReadTestWriteResponse { success, data })?;
    }

    #[test]
    fn version_answers_round_trip(
        sizes in any::<(u64, u64, u64)>(),
        application_version in vec(any::<u8>(), 0..40),
    ) {
        let answer = VersionResponse {
            storage: StorageVersion {
                maximum_immutable_share_size: sizes.0,
                maximum_mutable_share_size: sizes.1,
                available_space: sizes.2,
            },
            application_version,
        };
        prop_assert_eq!(VersionResponse::from_cbor(&answer.to_cbor()).unwrap(), answer);
    }
}
