//! CHK encoding details checked against Tahoe itself.

use swamp_formats::chk::share_hash_order;

/// The share hash chain is written in CPython set order (`fixtures/share_hash_order.json`,
/// from `make_share_hash_order.py`).
#[test]
fn share_hash_chains_are_in_tahoes_order() {
    let fixture: std::collections::BTreeMap<String, Vec<Vec<usize>>> =
        serde_json::from_str(include_str!("fixtures/share_hash_order.json")).unwrap();
    for (n, orders) in fixture {
        let n: usize = n.parse().unwrap();
        let nodes = 2 * n.next_power_of_two() - 1;
        for (shnum, expected) in orders.iter().enumerate() {
            assert_eq!(
                &share_hash_order(nodes, shnum),
                expected,
                "N={n} share {shnum}"
            );
        }
    }
}

/// Files uploaded by real Tahoe 1.20 (`fixtures/chk.txt`, from
/// `tests/interop/make_chk_fixtures.py`): our encoder makes the same cap, the same
/// storage index and byte-identical shares.
#[test]
fn encoding_is_byte_identical_to_tahoe() {
    use sha2::{Digest, Sha256};
    use swamp_formats::cap::Cap;
    use swamp_formats::chk::{DEFAULT_MAX_SEGMENT_SIZE, Params, convergent_key, encode};

    let fixture = include_str!("fixtures/chk.txt");
    let secret_line = fixture
        .lines()
        .find_map(|l| l.strip_prefix("# convergence secret: "))
        .unwrap();
    let secret = swamp_proto::base32::decode(secret_line.trim()).unwrap();
    let params = Params {
        needed: 2,
        total: 3,
        max_segment_size: DEFAULT_MAX_SEGMENT_SIZE,
    };
    let mut checked = 0;
    for line in fixture.lines().filter(|l| !l.starts_with('#')) {
        let fields: Vec<&str> = line.split(' ').collect();
        let size: usize = fields[0].parse().unwrap();
        let plaintext: Vec<u8> = (0..size).map(|j| ((j * 131 + size) % 256) as u8).collect();
        let key = convergent_key(&plaintext, &params, &secret);
        let encoded = encode(&plaintext, key, &params).unwrap();
        assert_eq!(
            Cap::Chk(encoded.cap).to_string(),
            fields[1],
            "cap for {size} bytes"
        );
        assert_eq!(encoded.storage_index.to_string(), fields[2]);
        for share in &fields[3..] {
            let (shnum, digest) = share.split_once(':').unwrap();
            let shnum: usize = shnum.parse().unwrap();
            let ours: String = Sha256::digest(&encoded.shares[shnum])
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(ours, digest, "share {shnum} of {size} bytes");
        }
        checked += 1;
    }
    assert_eq!(checked, 5);
}
