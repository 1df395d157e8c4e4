//! The `GET /storage/v1/version` answer as a client decodes it (byte-string keys,
//! closed maps): whatever decodes encodes to an answer that decodes to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swamp_proto::v1::VersionResponse;

fuzz_target!(|data: &[u8]| {
    if let Ok(version) = VersionResponse::from_cbor(data) {
        let encoded = version.to_cbor();
        let again = VersionResponse::from_cbor(&encoded).expect("own encoding decodes");
        assert_eq!(again, version);
        assert_eq!(again.to_cbor(), encoded);
    }
});
