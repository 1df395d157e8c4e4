//! Feed messages, JSON and CBOR: commands the server decodes from WebSocket clients,
//! and events and long-poll batches the client decodes from servers. Whatever decodes
//! must encode and decode to the same value in both encodings.
#![no_main]

use std::fmt::Debug;

use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;
use swamp_proto::feed::{FeedBatch, FeedCommand, FeedEvent};
use swamp_proto::v1;

fn both<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T) {
    let json = serde_json::to_string(value).expect("serializes to JSON");
    assert_eq!(
        &serde_json::from_str::<T>(&json).expect("own JSON decodes"),
        value
    );
    let cbor = v1::encode(value);
    assert_eq!(&v1::decode::<T>(&cbor).expect("own CBOR decodes"), value);
}

fn check<T: Serialize + DeserializeOwned + PartialEq + Debug>(data: &[u8]) {
    if let Ok(value) = serde_json::from_slice::<T>(data) {
        both(&value);
    }
    if let Ok(value) = v1::decode::<T>(data) {
        both(&value);
    }
}

fuzz_target!(|data: &[u8]| {
    check::<FeedCommand>(data);
    check::<FeedEvent>(data);
    check::<FeedBatch>(data);
});
