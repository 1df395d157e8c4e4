#![allow(clippy::unwrap_used)]
//! Writes the fuzzers' seed corpora (`fuzz/corpus/<target>/`) from real bytes: Tahoe
//! 1.20's own shares and caps (`formats/tests/fixtures/`) and Swamp's encoders, so each
//! fuzz target starts from inputs that reach deep into its decoder. Ignored: run it by
//! hand after a format changes, and commit what it writes:
//!
//! `cargo test -p swamp-tests --test fuzz_seeds -- --ignored`

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use data_encoding::BASE64URL_NOPAD;
use swamp_formats::cap::{Cap, MutableFormat};
use swamp_formats::mutable::{self, MutableShare};
use swamp_formats::mutable_encode::{self, MutableParams};
use swamp_formats::mutable_key::MutableKey;
use swamp_formats::{chk, dirnode};
use swamp_proto::feed::{Cursor, FeedBatch, FeedCommand, FeedEvent, ResetReason, RootHash};
use swamp_proto::range::ByteRange;
use swamp_proto::secrets::{
    LeaseCancelSecret, LeaseRenewSecret, SecretKind, Swissnum, WriteEnabler, format_secret_header,
};
use swamp_proto::v1::{self, *};
use swamp_proto::{Nurl, ShareNumber, SpkiHash, StorageIndex};
use swamp_server::testing::Change;
use swamp_server::testing::ShareRedo;
use swamp_server::testing::immutable;
use swamp_server::testing::lease::{LeaseGrant, SecretStorage};
use swamp_server::testing::mutable::Container;
use swamp_server::testing::{encode, token};
use swamp_server::testing::{records, records::Entry};

/// The write key the `dirnode` target decrypts write caps with.
const FUZZ_WRITEKEY: [u8; 16] = [0x5a; 16];

struct Corpus(PathBuf);

impl Corpus {
    /// Empties `fuzz/corpus/<target>/`, so the corpus is exactly what this test writes.
    fn new(target: &str) -> Self {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/corpus")
            .join(target);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn put(&self, name: &str, bytes: impl AsRef<[u8]>) {
        fs::write(self.0.join(name), bytes).unwrap();
    }
}

fn fixture(path: &str) -> Vec<u8> {
    fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../formats/tests/fixtures")
            .join(path),
    )
    .unwrap()
}

fn fixture_text(path: &str) -> String {
    String::from_utf8(fixture(path)).unwrap().trim().to_string()
}

fn set(numbers: &[u8]) -> ShareSet {
    numbers.iter().copied().map(ShareNumber::new).collect()
}

fn si(n: u8) -> StorageIndex {
    StorageIndex::from_bytes([n; 16])
}

fn events() -> Vec<FeedEvent> {
    let cursor = Cursor {
        epoch: 0x1234_5678_9abc_def0,
        seq: 42,
    };
    let (si, shnum) = (si(3), ShareNumber::new(1));
    vec![
        FeedEvent::SlotChanged {
            cursor,
            si,
            shnum,
            seqnum: Some(7),
            root_hash: Some(RootHash([9; 32])),
            format: Some(1),
            length: 4096,
        },
        FeedEvent::SlotChanged {
            cursor,
            si,
            shnum,
            seqnum: None,
            root_hash: None,
            format: None,
            length: 0,
        },
        FeedEvent::SlotDeleted { cursor, si, shnum },
        FeedEvent::ShareAdded {
            cursor,
            si,
            shnum,
            size: 1 << 20,
        },
        FeedEvent::CorruptionAdvised {
            cursor,
            si,
            shnum,
            kind: "mutable".into(),
        },
        FeedEvent::Snapshot {
            si,
            shnum,
            seqnum: Some(1),
            root_hash: Some(RootHash([1; 32])),
            format: Some(0),
            length: 10,
            kind: "mutable".into(),
        },
        FeedEvent::Synced { cursor },
        FeedEvent::Progress { cursor },
        FeedEvent::Reset {
            cursor,
            reason: ResetReason::EpochChanged,
        },
        FeedEvent::Error {
            message: "bad command".into(),
        },
        FeedEvent::Close {
            reason: "token_expired".into(),
        },
    ]
}

fn grant(n: u8) -> LeaseGrant {
    LeaseGrant {
        owner: 0,
        renew: LeaseRenewSecret::from_bytes([n; 32]),
        cancel: LeaseCancelSecret::from_bytes([n + 1; 32]),
        expiry: 1_800_000_000,
        nodeid: [n; 20],
    }
}

/// A new slot container: `data`, then `leases` leases.
fn slot(data: &[u8], leases: u8) -> Container {
    let mut c = Container::new([4; 20], &WriteEnabler::from_bytes([5; 32]));
    c.write(0, data);
    for n in 0..leases {
        c.add_or_renew_lease(&grant(n * 2 + 1));
    }
    c
}

/// A new slot container's file bytes: `data`, then `leases` leases.
fn container(data: &[u8], leases: u8) -> Vec<u8> {
    let c = slot(data, leases);
    let redo = swamp_server::testing::ShareRedo::write(
        swamp_proto::StorageIndex::from_bytes([1; 16]),
        swamp_proto::ShareNumber::new(0),
        &c,
    );
    let file = tempfile::tempfile().unwrap();
    redo.apply_to(&file, &swamp_server::testing::faults::Faults::default())
        .unwrap();
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut &file, &mut bytes).unwrap();
    bytes
}

#[test]
#[ignore = "writes fuzz/corpus; run by hand after a format changes"]
fn write_fuzz_seed_corpora() {
    cbor_bodies();
    secrets();
    ranges();
    nurls();
    feed_queries();
    feed_messages();
    ids_cursors();
    feed_tokens();
    share_containers();
    journal();
    chk_shares();
    mutable_shares();
    dirnodes();
    caps();
    sse();
    version();
}

fn cbor_bodies() {
    let c = Corpus::new("cbor_bodies");
    c.put(
        "allocate",
        v1::encode(&AllocateRequest {
            share_numbers: set(&[0, 1, 2]),
            allocated_size: 1024,
        }),
    );
    c.put(
        "allocate-empty",
        v1::encode(&AllocateRequest {
            share_numbers: set(&[]),
            allocated_size: 0,
        }),
    );
    c.put(
        "advise",
        v1::encode(&AdviseCorruptRequest {
            reason: "block hash mismatch".into(),
        }),
    );
    let mut tw = BTreeMap::new();
    tw.insert(
        0,
        TestWriteVectors {
            test: vec![TestVector {
                offset: 0,
                size: 57,
                specimen: vec![1; 57],
            }],
            write: vec![
                WriteVector {
                    offset: 0,
                    data: b"hello".to_vec(),
                },
                WriteVector {
                    offset: 1000,
                    data: b"x".to_vec(),
                },
            ],
            new_length: None,
        },
    );
    tw.insert(
        3,
        TestWriteVectors {
            test: vec![],
            write: vec![],
            new_length: Some(0),
        },
    );
    c.put(
        "read-test-write",
        v1::encode(&ReadTestWriteRequest {
            test_write_vectors: tw,
            read_vector: vec![ReadVector {
                offset: 0,
                size: 100,
            }],
        }),
    );
    c.put(
        "read-only",
        v1::encode(&ReadTestWriteRequest {
            test_write_vectors: BTreeMap::new(),
            read_vector: vec![ReadVector { offset: 0, size: 1 }; 3],
        }),
    );
    c.put("share-set", v1::encode(&set(&[1, 2])));
    c.put(
        "allocate-response",
        v1::encode(&AllocateResponse {
            already_have: set(&[0]),
            allocated: set(&[1, 2]),
        }),
    );
    c.put(
        "upload-progress",
        v1::encode(&UploadProgress {
            required: vec![
                RequiredRange { begin: 0, end: 10 },
                RequiredRange { begin: 20, end: 30 },
            ],
        }),
    );
    c.put("upload-done", v1::encode(&UploadProgress::default()));
    let mut data = BTreeMap::new();
    data.insert(0, vec![serde_bytes::ByteBuf::from(b"abc".to_vec())]);
    c.put(
        "rtw-response",
        v1::encode(&ReadTestWriteResponse {
            success: true,
            data,
        }),
    );
}

fn secrets() {
    let c = Corpus::new("secrets");
    let line = |kind, bytes: &[u8]| format_secret_header(kind, bytes);
    let lines = |flags: u8, lines: &[String]| {
        let mut out = vec![flags];
        out.extend_from_slice(lines.join("\n").as_bytes());
        out
    };
    c.put(
        "lease",
        lines(
            0b0011,
            &[
                line(SecretKind::LeaseRenew, &[1; 32]),
                line(SecretKind::LeaseCancel, &[2; 32]),
            ],
        ),
    );
    c.put(
        "upload",
        lines(0b0100, &[line(SecretKind::Upload, &[3; 20])]),
    );
    c.put(
        "write-enabler",
        lines(0b1000, &[line(SecretKind::WriteEnabler, &[4; 32])]),
    );
    c.put(
        "allocate",
        lines(
            0b0111,
            &[
                line(SecretKind::LeaseRenew, &[1; 32]),
                line(SecretKind::LeaseCancel, &[2; 32]),
                line(SecretKind::Upload, &[3; 32]),
            ],
        ),
    );
    c.put(
        "authorization",
        lines(
            0,
            &[Swissnum::new("fuzz-swissnum")
                .unwrap()
                .authorization_header()],
        ),
    );
}

fn ranges() {
    let c = Corpus::new("range");
    let r = ByteRange {
        first: 10,
        last: 19,
    };
    c.put("range", r.to_range_header());
    c.put("content-range", r.to_content_range());
    c.put("content-range-total", "bytes 0-1023/1024");
    c.put("range-zero", "bytes=0-0");
    c.put("range-widest", "bytes=1-18446744073709551615");
}

fn nurls() {
    let c = Corpus::new("nurl");
    let spki = SpkiHash::of_spki_der(b"a server's key");
    let swissnum = Swissnum::new("abcdefghijklmnopqrstuvwxyz234567").unwrap();
    for (name, host) in [
        ("ipv4", "127.0.0.1"),
        ("ipv6", "::1"),
        ("dns", "storage.example"),
    ] {
        let nurl = Nurl {
            spki_hash: spki,
            host: host.into(),
            port: 3457,
            swissnum: swissnum.clone(),
        };
        c.put(name, nurl.to_string());
    }
}

fn feed_queries() {
    let c = Corpus::new("feed_query");
    let cursor = Cursor { epoch: 7, seq: 9 };
    c.put(
        "follow",
        format!("si={}&since={cursor}&snapshot=true", si(1)),
    );
    c.put("two-sis", format!("si={},{}&wait=30", si(1), si(2)));
    c.put(
        "token",
        "token=eyJhIjoxfQ.c2ln&last_event_id=0000000000000007-9",
    );
    c.put("ttl", format!("ttl=3600&si={}", si(3)));
    c.put("percent", "si=%61%61aaaaaaaaaaaaaaaaaaaaaaaa&snapshot=0");
}

fn feed_messages() {
    let c = Corpus::new("feed_messages");
    let commands = [
        FeedCommand::Subscribe {
            si: vec![si(1), si(2)],
            since: Some(Cursor { epoch: 1, seq: 2 }),
            snapshot: true,
        },
        FeedCommand::Unsubscribe { si: vec![si(1)] },
        FeedCommand::Progress,
    ];
    for (i, command) in commands.iter().enumerate() {
        c.put(
            &format!("command-{i}.json"),
            serde_json::to_vec(command).unwrap(),
        );
        c.put(&format!("command-{i}.cbor"), v1::encode(command));
    }
    for (i, event) in events().iter().enumerate() {
        c.put(
            &format!("event-{i}.json"),
            serde_json::to_vec(event).unwrap(),
        );
        c.put(&format!("event-{i}.cbor"), v1::encode(event));
    }
    let batch = FeedBatch {
        events: events()[..3].to_vec(),
        cursor: Cursor { epoch: 1, seq: 44 },
    };
    c.put("batch.json", serde_json::to_vec(&batch).unwrap());
    c.put("batch.cbor", v1::encode(&batch));
}

fn ids_cursors() {
    let c = Corpus::new("ids_cursors");
    c.put(
        "cursor",
        Cursor {
            epoch: 0xdead_beef,
            seq: 42,
        }
        .to_string(),
    );
    c.put("storage-index", si(7).to_string());
    c.put("share-number", "7");
    c.put("root-hash", RootHash([3; 32]).to_string());
    c.put("slot-prefix", &fixture("mutable/mdmf/0.share")[..41]);
}

fn feed_tokens() {
    let c = Corpus::new("feed_token");
    let swissnum = Swissnum::new("fuzz-swissnum").unwrap();
    let now = 1_700_000_000u64.to_be_bytes();
    for (name, sis) in [("all", None), ("two", Some(vec![si(1), si(2)]))] {
        let issued = token::issue(
            &swissnum,
            &token::Grant {
                expires: 1_700_003_600,
                storage_indexes: sis,
            },
        );
        let mut text = now.to_vec();
        text.extend_from_slice(issued.as_bytes());
        c.put(&format!("token-{name}"), text);
        let (payload, _) = issued.split_once('.').unwrap();
        let mut body = now.to_vec();
        body.extend_from_slice(&BASE64URL_NOPAD.decode(payload.as_bytes()).unwrap());
        c.put(&format!("payload-{name}"), body);
    }
}

fn share_containers() {
    let c = Corpus::new("share_container");
    let lease = grant(1).to_lease(SecretStorage::Hashed);
    let mut file = immutable::new_header(64, 1).to_vec();
    file.extend_from_slice(&[0xab; 64]);
    file.extend_from_slice(&lease.to_immutable());
    c.put("immutable-v2", file);
    let mut v1 = 1u32.to_be_bytes().to_vec();
    v1.extend_from_slice(&[0, 0, 0, 16, 0, 0, 0, 0]);
    v1.extend_from_slice(&[0xcd; 16]);
    c.put("immutable-v1-no-lease", v1);
    c.put(
        "mutable-one-lease",
        container(&fixture("mutable/sdmf-empty/0.share")[..300], 1),
    );
    c.put("mutable-extra-leases", container(b"tiny", 6));
    c.put(
        "mutable-mutable-lease-record",
        grant(3).to_lease(SecretStorage::Plain).to_mutable(),
    );
}

fn journal() {
    let c = Corpus::new("journal");
    let changes = [
        Change::SlotChanged {
            si: si(1),
            shnum: ShareNumber::new(0),
            version: swamp_proto::feed::SlotVersion::from_share_prefix(
                &fixture("mutable/sdmf/0.share")[..41],
            ),
            length: 2475,
        },
        Change::SlotDeleted {
            si: si(1),
            shnum: ShareNumber::new(1),
        },
        Change::ShareAdded {
            si: si(2),
            shnum: ShareNumber::new(3),
            size: 1 << 20,
        },
        Change::CorruptionAdvised {
            si: si(2),
            shnum: ShareNumber::new(3),
            kind: "immutable".into(),
        },
    ];
    let written = slot(b"slot data", 1);
    let redo = [
        Some(ShareRedo::write(si(1), ShareNumber::new(0), &written)),
        Some(ShareRedo::delete(si(1), ShareNumber::new(1))),
        None,
        None,
    ];
    let mut file = vec![0u8];
    for (i, (change, redo)) in changes.into_iter().zip(redo).enumerate() {
        let entry = Entry {
            seq: i as u64 + 1,
            time: 1_700_000_000 + i as u64,
            change: Arc::new(change),
        };
        let mut record = Vec::new();
        records::encode(&entry, redo.as_ref(), &mut record);
        let mut body = vec![1u8];
        body.extend_from_slice(&record[8..]);
        c.put(&format!("record-{i}"), body);
        file.extend_from_slice(&record);
    }
    c.put("journal", &file);
    file.extend_from_slice(&[0; 64]);
    c.put("journal-allocated-ahead", &file);
    c.put("checkpoint", "12\n");
}

fn chk_shares() {
    let c = Corpus::new("chk_share");
    for (name, size, needed, total, segment) in [
        ("1-of-2", 100, 1, 2, 128 * 1024),
        ("2-of-3", 1000, 2, 3, 128 * 1024),
        ("2-of-3-segments", 1000, 2, 3, 128),
    ] {
        let plaintext: Vec<u8> = (0..size).map(|i| (i * 13 + 1) as u8).collect();
        let params = chk::Params {
            needed,
            total,
            max_segment_size: segment,
        };
        let encoded = chk::encode(&plaintext, [6; 16], &params).unwrap();
        c.put(name, &encoded.shares[0]);
        if name == "2-of-3" {
            c.put("ueb", &encoded.ueb);
        }
    }
}

fn mutable_shares() {
    let c = Corpus::new("mutable_share");
    for name in ["sdmf", "sdmf-empty", "mdmf-empty"] {
        c.put(name, fixture(&format!("mutable/{name}/0.share")));
    }
    c.put("dirnode", fixture("dirnode/0.share"));
    let key = MutableKey::generate(&mut rand::rng()).unwrap();
    let data: Vec<u8> = (0..300).map(|i| (i * 7 + 3) as u8).collect();
    let params = MutableParams::new(MutableFormat::Mdmf, 1, 2).unwrap();
    let version = mutable_encode::encode(&key, params, 5, &data, &mut rand::rng()).unwrap();
    c.put("mdmf-1-of-2", &version.shares[0]);
}

fn dirnode_plaintext() -> (Vec<u8>, [u8; 16]) {
    let Cap::Dir(inner) = fixture_text("dirnode/cap.txt").parse::<Cap>().unwrap() else {
        panic!("not a dircap")
    };
    let Cap::Mutable(file) = *inner else {
        panic!("not a mutable directory")
    };
    let shares = [fixture("dirnode/0.share"), fixture("dirnode/1.share")];
    let parsed: Vec<MutableShare> = shares
        .iter()
        .map(|b| MutableShare::parse(b).unwrap())
        .collect();
    let plaintext = mutable::decode(
        &file.readkey().unwrap(),
        &[(0, &parsed[0]), (1, &parsed[1])],
    )
    .unwrap();
    (plaintext, file.writekey().unwrap())
}

fn dirnodes() {
    let c = Corpus::new("dirnode");
    let (plaintext, writekey) = dirnode_plaintext();
    let entries = dirnode::parse(&plaintext, Some(&writekey)).unwrap();
    c.put("tahoe", dirnode::pack(&entries, &FUZZ_WRITEKEY));
    c.put("tahoe-one", dirnode::pack(&entries[..1], &FUZZ_WRITEKEY));
    c.put("empty", b"");
}

fn caps() {
    let c = Corpus::new("cap");
    let mut texts = vec![fixture_text("dirnode/cap.txt")];
    for name in ["sdmf", "mdmf", "sdmf-empty", "mdmf-empty"] {
        texts.push(fixture_text(&format!("mutable/{name}/cap.txt")));
    }
    let chk = String::from_utf8(fixture("chk.txt")).unwrap();
    texts.extend(
        chk.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split(' ').nth(1))
            .take(2)
            .map(str::to_string),
    );
    let (plaintext, writekey) = dirnode_plaintext();
    for entry in dirnode::parse(&plaintext, Some(&writekey)).unwrap() {
        texts.extend(entry.rw_uri);
        texts.extend(entry.ro_uri);
    }
    texts.push("URI:LIT:mzxw6".into());
    texts.push("URI:NEWKIND:xyz".into());
    let mut seen = std::collections::BTreeSet::new();
    for text in texts {
        let cap: Cap = Cap::parse_lenient(&text).unwrap();
        for variant in [text.clone(), cap.read_only().to_string()] {
            if seen.insert(variant.clone()) {
                c.put(&format!("cap-{}", seen.len()), variant);
            }
        }
    }
}

fn sse() {
    let c = Corpus::new("sse");
    let mut stream = b": keep-alive\n\n".to_vec();
    for event in events() {
        stream.extend_from_slice(encode::sse_frame(&encode::shared(event)).as_bytes());
    }
    for cut in [1u8, 7, 200] {
        let mut input = vec![cut];
        input.extend_from_slice(&stream);
        c.put(&format!("stream-cut-{cut}"), input);
    }
}

fn version() {
    let c = Corpus::new("version");
    for (name, available) in [("swamp", 1u64 << 40), ("full", 0)] {
        let answer = VersionResponse {
            storage: StorageVersion {
                maximum_immutable_share_size: available,
                maximum_mutable_share_size: MAX_MUTABLE_SHARE_SIZE,
                available_space: available,
            },
            application_version: b"swamp/0.1.0".to_vec(),
        };
        c.put(name, answer.to_cbor());
    }
}
