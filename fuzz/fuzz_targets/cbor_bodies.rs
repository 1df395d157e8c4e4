//! The CBOR bodies of `/storage/v1`, both ways: requests the server decodes (allocate,
//! corruption advisory, read-test-write) and answers the client decodes (allocate,
//! upload progress, read-test-write). Whatever decodes must encode, decode to the same
//! value and encode to the same bytes again; bounds checks must hold.
#![no_main]

use std::fmt::Debug;

use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;
use swamp_proto::v1::{self, *};

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(data: &[u8]) -> Option<T> {
    let value: T = v1::decode(data).ok()?;
    let encoded = v1::encode(&value);
    let again: T = v1::decode(&encoded).expect("our own encoding decodes");
    assert_eq!(again, value);
    assert_eq!(v1::encode(&again), encoded, "encoding is deterministic");
    Some(value)
}

fuzz_target!(|data: &[u8]| {
    round_trip::<AllocateRequest>(data);
    if let Some(advice) = round_trip::<AdviseCorruptRequest>(data)
        && advice.validate().is_ok()
    {
        assert!((1..=MAX_CORRUPTION_REASON).contains(&advice.reason.chars().count()));
    }
    if let Some(rtw) = round_trip::<ReadTestWriteRequest>(data)
        && let Ok(valid) = rtw.validated()
    {
        assert!(valid.read_vector.len() <= MAX_TEST_OR_READ_VECTORS);
        assert!(valid.shares.len() <= MAX_SHARES_PER_REQUEST);
        assert!(
            valid
                .shares
                .values()
                .all(|v| v.test.len() <= MAX_TEST_OR_READ_VECTORS)
        );
    }
    if let Some(set) = round_trip::<ShareSet>(data) {
        assert!(set.0.len() <= MAX_SHARES_PER_REQUEST);
    }
    round_trip::<AllocateResponse>(data);
    round_trip::<UploadProgress>(data);
    round_trip::<ReadTestWriteResponse>(data);
});
