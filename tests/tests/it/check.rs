//! Check, verify and repair through the client library, on three real servers
//! (2-of-3): shares are deleted or damaged in the servers' own files (while the
//! server is stopped), then checked, verified and repaired, and the file read back
//! from the repaired shares.

use std::path::Path;

use swamp_client::check::{CheckOptions, CheckResults};
use swamp_client::grid::Grid;
use swamp_formats::cap::{Cap, MutableFormat};
use swamp_formats::chk;
use swamp_proto::StorageIndex;
use swamp_tests::{TestServer, grid_of, random_bytes, share_file};

const CHECK: CheckOptions = CheckOptions {
    verify: false,
    add_lease: false,
};
const VERIFY: CheckOptions = CheckOptions {
    verify: true,
    add_lease: false,
};

/// The id Tahoe names a test server by.
fn id(server: &TestServer) -> String {
    format!("v0-{}", server.identity.permutation_seed)
}

/// Which server holds share `shnum` of `si` (immutable or mutable).
async fn holder(servers: &[TestServer], si: &StorageIndex, shnum: u8, mutable: bool) -> usize {
    for (i, s) in servers.iter().enumerate() {
        let listed = if mutable {
            s.client.mutable().list_shares(si).await.unwrap()
        } else {
            s.client.immutable().list_shares(si).await.unwrap()
        };
        if listed.iter().any(|n| n.get() == shnum) {
            return i;
        }
    }
    panic!("nobody holds share {shnum}")
}

/// Stops server `i`, lets `tamper` change its share file `shnum` of `si`, and starts
/// it again (on a new port: grids must be made again).
async fn tamper(
    servers: &mut Vec<TestServer>,
    i: usize,
    si: &StorageIndex,
    shnum: u8,
    tamper: impl FnOnce(&Path),
) {
    let server = servers.remove(i);
    let si = *si;
    let server = server
        .restart(move |storage| tamper(&share_file(&storage.join("shares"), &si, shnum)))
        .await;
    servers.insert(i, server);
}

fn delete(path: &Path) {
    std::fs::remove_file(path).unwrap();
}

/// Flips a byte of the first block of an immutable share file.
fn corrupt_chk_block(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let container = 12;
    let offsets = chk::parse_offsets(&bytes[container..container + chk::HEADER_LEN as usize])
        .expect("a share header");
    bytes[container + offsets.data as usize + 5] ^= 0x40;
    std::fs::write(path, bytes).unwrap();
}

/// Flips a byte of the first block of a mutable share file (SDMF or MDMF).
fn corrupt_mutable_block(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let share = 468;
    let be = |at: usize, len: usize| {
        bytes[share + at..share + at + len]
            .iter()
            .fold(0usize, |acc, b| acc << 8 | usize::from(*b))
    };
    // The blocks' offset; an MDMF block starts with its 16-byte salt.
    let data = match bytes[share] {
        0 => be(87, 4) + 1,
        _ => be(99, 8) + 20,
    };
    bytes[share + data] ^= 0x40;
    std::fs::write(path, bytes).unwrap();
}

fn counts(results: &CheckResults) -> &swamp_client::check::ShareCounts {
    results.results.shares.as_ref().expect("not a LIT file")
}

#[tokio::test]
async fn a_healthy_immutable_file_checks_as_tahoe_reports_it() {
    let servers = TestServer::three().await;
    let grid = grid_of(&servers);
    let cap = grid.upload(&random_bytes(1_500_000)).await.unwrap();
    let si = cap.storage_index().unwrap();
    let mut holders = Vec::new();
    for shnum in 0..3 {
        holders.push(id(&servers[holder(&servers, &si, shnum, false).await]));
    }
    let mut responding: Vec<String> = servers.iter().map(id).collect();
    responding.sort();
    let expected = serde_json::json!({
        "storage-index": si.to_base32(),
        "summary": "Healthy",
        "results": {
            "count-happiness": 3,
            "count-shares-good": 3,
            "count-shares-needed": 2,
            "count-shares-expected": 3,
            "count-good-share-hosts": 3,
            "count-corrupt-shares": 0,
            "list-corrupt-shares": [],
            "servers-responding": responding,
            "sharemap": {"0": [holders[0]], "1": [holders[1]], "2": [holders[2]]},
            "count-wrong-shares": 0,
            "count-recoverable-versions": 1,
            "count-unrecoverable-versions": 0,
            "healthy": true,
            "recoverable": true,
        }
    });
    for options in [CHECK, VERIFY] {
        let results = grid.check(&cap, options).await.unwrap();
        assert_eq!(results.to_json(), expected, "{options:?}");
        // Tahoe's key order, too.
        let text = serde_json::to_string(&results).unwrap();
        let order: Vec<usize> = [
            "count-happiness",
            "count-shares-good",
            "sharemap",
            "healthy",
        ]
        .iter()
        .map(|k| text.find(k).unwrap())
        .collect();
        assert!(order.is_sorted(), "{text}");
    }
    // Nothing to repair.
    let repaired = grid.check_and_repair(&cap, CHECK).await.unwrap();
    assert!(!repaired.repair_attempted);
    assert_eq!(
        repaired.post_repair_results, repaired.pre_repair_results,
        "after is before"
    );
    // A LIT file is Tahoe's special case.
    let lit = Cap::Lit(b"small".to_vec());
    assert_eq!(
        grid.check(&lit, VERIFY).await.unwrap().to_json(),
        serde_json::json!({"storage-index": "", "results": {"healthy": true}})
    );
    assert_eq!(
        grid.check_and_repair(&lit, VERIFY).await.unwrap().to_json(),
        serde_json::json!({"storage-index": "", "repair-attempted": false})
    );
}

#[tokio::test]
async fn a_deleted_immutable_share_is_found_and_repaired() {
    let mut servers: Vec<TestServer> = TestServer::three().await.into();
    let data = random_bytes(1_500_000);
    let cap = grid_of(&servers).upload(&data).await.unwrap();
    let Cap::Chk(chk) = &cap else { panic!("CHK") };
    let si = chk.storage_index();
    let lost = holder(&servers, &si, 0, false).await;
    tamper(&mut servers, lost, &si, 0, delete).await;
    let grid = grid_of(&servers);

    let results = grid.check(&cap, CHECK).await.unwrap();
    assert!(!results.is_healthy());
    assert!(results.is_recoverable());
    assert_eq!(
        results.summary.as_deref(),
        Some("Not Healthy: 2 shares (enc 2-of-3)")
    );
    let c = counts(&results);
    assert_eq!(
        (
            c.count_shares_good,
            c.count_good_share_hosts,
            c.count_happiness
        ),
        (2, 2, 2)
    );
    assert_eq!(c.servers_responding.len(), 3);
    assert!(!c.sharemap.contains_key("0"));

    let repaired = grid.check_and_repair(&cap, CHECK).await.unwrap();
    assert!(repaired.repair_attempted);
    assert_eq!(repaired.repair_successful, Some(true));
    let post = repaired.post_repair_results.as_ref().unwrap();
    assert!(post.is_healthy());
    assert_eq!(
        post.summary.as_deref(),
        Some("healthy"),
        "Tahoe's repairer's words"
    );
    assert_eq!(
        counts(post).count_happiness,
        3,
        "share 0 went to the empty server"
    );
    assert_eq!(holder(&servers, &si, 0, false).await, lost);
    let again = grid.check(&cap, VERIFY).await.unwrap();
    assert!(again.is_healthy(), "{again:?}");
    assert_eq!(counts(&again).count_happiness, 3);

    // The repaired share is good: with another original gone, it is needed to read.
    let other = holder(&servers, &si, 1, false).await;
    tamper(&mut servers, other, &si, 1, delete).await;
    let grid = grid_of(&servers);
    assert!(grid.download(chk).await.unwrap() == data);
}

#[tokio::test]
async fn a_corrupt_immutable_block_passes_a_check_fails_a_verify_and_is_repaired() {
    let mut servers: Vec<TestServer> = TestServer::three().await.into();
    let data = random_bytes(1_500_000);
    let cap = grid_of(&servers).upload(&data).await.unwrap();
    let Cap::Chk(chk) = &cap else { panic!("CHK") };
    let si = chk.storage_index();
    let bad = holder(&servers, &si, 1, false).await;
    tamper(&mut servers, bad, &si, 1, corrupt_chk_block).await;
    let grid = grid_of(&servers);

    let checked = grid.check(&cap, CHECK).await.unwrap();
    assert!(checked.is_healthy(), "a check reads no blocks");
    let verified = grid.check(&cap, VERIFY).await.unwrap();
    assert!(!verified.is_healthy());
    let c = counts(&verified);
    assert_eq!(c.count_shares_good, 2);
    assert_eq!(c.count_corrupt_shares, 1);
    assert_eq!(
        c.list_corrupt_shares,
        [(id(&servers[bad]), si.to_base32(), 1)]
    );

    let repaired = grid.check_and_repair(&cap, VERIFY).await.unwrap();
    assert_eq!(repaired.repair_successful, Some(true), "{repaired:?}");
    let post = repaired.post_repair_results.as_ref().unwrap();
    assert!(post.is_healthy());
    assert_eq!(counts(post).count_shares_good, 3);
    // The corrupt copy is still where it was (immutable shares cannot be replaced),
    // but a good share 1 now lives on another server.
    let after = grid.check(&cap, VERIFY).await.unwrap();
    assert!(after.is_healthy());
    assert_eq!(counts(&after).count_corrupt_shares, 1);
    let good_holders = &counts(&after).sharemap["1"];
    assert_eq!(good_holders.len(), 1);
    assert_ne!(good_holders[0], id(&servers[bad]));

    // Share 0 gone: the file is read from the repaired share 1 and share 2.
    let zero = holder(&servers, &si, 0, false).await;
    tamper(&mut servers, zero, &si, 0, delete).await;
    let grid = grid_of(&servers);
    assert!(grid.download(chk).await.unwrap() == data);
}

#[tokio::test]
async fn mutable_files_are_checked_verified_and_repaired() {
    for format in [MutableFormat::Sdmf, MutableFormat::Mdmf] {
        let mut servers: Vec<TestServer> = TestServer::three().await.into();
        let data = random_bytes(200_000);
        let cap = grid_of(&servers)
            .create_mutable(&data, format)
            .await
            .unwrap();
        let si = cap.storage_index();
        let file = Cap::Mutable(cap);
        let grid = grid_of(&servers);
        let healthy = grid.check(&file, VERIFY).await.unwrap();
        assert!(healthy.is_healthy(), "{format:?}: {healthy:?}");
        let c = counts(&healthy);
        assert_eq!(
            (
                c.count_shares_good,
                c.count_happiness,
                c.count_recoverable_versions,
                c.count_unrecoverable_versions,
                c.count_wrong_shares
            ),
            (3, 3, 1, 0, 0)
        );
        let version = grid.read_mutable(&cap).await.unwrap();
        let name = format!(
            "seq1-{}",
            &swamp_proto::base32::encode(&version.root_hash)[..4]
        );
        assert!(c.sharemap.contains_key(&format!("{name}-sh0")), "{c:?}");

        // A share deleted: unhealthy; repair publishes the version again.
        let lost = holder(&servers, &si, 2, true).await;
        tamper(&mut servers, lost, &si, 2, delete).await;
        let grid = grid_of(&servers);
        let results = grid.check(&file, CHECK).await.unwrap();
        assert!(!results.is_healthy());
        assert_eq!(
            results.summary.as_deref(),
            Some("Unhealthy: 2 shares (enc 2-of-3)")
        );
        let repaired = grid.check_and_repair(&file, CHECK).await.unwrap();
        assert_eq!(repaired.repair_successful, Some(true), "{repaired:?}");
        assert!(repaired.post_repair_results.as_ref().unwrap().is_healthy());
        let read = grid.read_mutable(&cap).await.unwrap();
        assert!(read.data == data);
        assert_eq!(read.seqnum, 2, "Tahoe's repairer publishes the next seqnum");

        // A block damaged: a check trusts the signature, a verify does not.
        let bad = holder(&servers, &si, 0, true).await;
        tamper(&mut servers, bad, &si, 0, corrupt_mutable_block).await;
        let grid = grid_of(&servers);
        assert!(
            grid.check(&file, CHECK).await.unwrap().is_healthy(),
            "{format:?}"
        );
        let verified = grid.check(&file, VERIFY).await.unwrap();
        assert!(!verified.is_healthy(), "{format:?}");
        assert_eq!(
            counts(&verified).list_corrupt_shares,
            [(id(&servers[bad]), si.to_base32(), 0)]
        );
        let repaired = grid.check_and_repair(&file, VERIFY).await.unwrap();
        assert_eq!(repaired.repair_successful, Some(true), "{repaired:?}");
        let post = repaired.post_repair_results.as_ref().unwrap();
        assert!(post.is_healthy(), "{post:?}");
        assert_eq!(counts(post).count_corrupt_shares, 0, "overwritten");

        // Read from the repaired share 0 and share 1 alone.
        let two = holder(&servers, &si, 2, true).await;
        tamper(&mut servers, two, &si, 2, delete).await;
        let grid = grid_of(&servers);
        assert!(grid.read_mutable(&cap).await.unwrap().data == data);

        // A read-only cap can check but not repair.
        let results = grid
            .check_and_repair(&Cap::Mutable(cap.read_only()), CHECK)
            .await
            .unwrap();
        assert!(!results.repair_attempted);
    }
}

#[tokio::test]
async fn add_lease_renews_this_clients_lease_on_every_share() {
    let servers = TestServer::three().await;
    let cap = grid_of(&servers).upload(&random_bytes(5000)).await.unwrap();
    let si = cap.storage_index().unwrap();
    // Leases on each server's share (each holds one), from its container header.
    let leases = |server: &TestServer| -> u32 {
        (0..3)
            .filter_map(|shnum| std::fs::read(share_file(&server.shares_dir(), &si, shnum)).ok())
            .map(|b| u32::from_be_bytes(b[8..12].try_into().unwrap()))
            .sum()
    };
    let before: Vec<u32> = servers.iter().map(leases).collect();
    assert_eq!(before, [1, 1, 1], "the uploader's lease");
    // Another client (another lease secret) checks with add-lease.
    let other = Grid::new(
        grid_of(&servers).servers().to_vec(),
        vec![8; 32],
        vec![9; 32],
        chk::Params {
            needed: 2,
            total: 3,
            max_segment_size: chk::DEFAULT_MAX_SEGMENT_SIZE,
        },
        3,
    );
    let options = CheckOptions {
        verify: false,
        add_lease: true,
    };
    assert!(other.check(&cap, options).await.unwrap().is_healthy());
    let after: Vec<u32> = servers.iter().map(leases).collect();
    assert_eq!(after, [2, 2, 2], "and now the checker's");
    // Checking again renews the same leases: no more are added.
    other.check(&cap, options).await.unwrap();
    assert_eq!(servers.iter().map(leases).collect::<Vec<_>>(), [2, 2, 2]);
}

#[tokio::test]
async fn deep_check_walks_a_tree_and_repairs_what_it_finds() {
    let mut servers: Vec<TestServer> = TestServer::three().await.into();
    let grid = grid_of(&servers);
    let root = grid.create_dir(MutableFormat::Sdmf).await.unwrap();
    let sub = grid
        .make_dirs(&root, &["sub"], MutableFormat::Mdmf)
        .await
        .unwrap();
    use swamp_client::dir_edit::Replace;
    let top_file = grid.upload(&random_bytes(3000)).await.unwrap();
    let deep_file = grid.upload(&random_bytes(4000)).await.unwrap();
    grid.link(&root, "top", &top_file, Replace::Always)
        .await
        .unwrap();
    grid.link(&sub, "deep", &deep_file, Replace::Always)
        .await
        .unwrap();
    grid.link(&sub, "tiny", &Cap::Lit(b"t".to_vec()), Replace::Always)
        .await
        .unwrap();
    // The tree links to itself: visited once.
    grid.link(&sub, "loop", &root, Replace::Always)
        .await
        .unwrap();

    let results = grid.deep_check(&root, CHECK, false).await.unwrap();
    let json = results.to_json();
    assert_eq!(json["count-objects-checked"], 4, "{json}");
    assert_eq!(json["count-objects-healthy"], 4);
    assert_eq!(
        json["root-storage-index"],
        root.storage_index().unwrap().to_base32()
    );
    assert_eq!(
        results.nodes.len(),
        5,
        "the LIT file is walked, not counted"
    );
    // Tahoe's stream-deep-check lines.
    let lines: Vec<serde_json::Value> = results.nodes.iter().map(|n| n.to_stream_json()).collect();
    assert_eq!(lines[0]["type"], "directory");
    assert_eq!(lines[0]["path"], serde_json::json!([]));
    assert_eq!(lines[0]["repaircap"], root.to_string());
    let tiny = lines
        .iter()
        .find(|l| l["path"] == serde_json::json!(["sub", "tiny"]))
        .unwrap();
    assert_eq!(tiny["verifycap"], "");
    assert_eq!(
        tiny["check-results"],
        serde_json::json!({"storage-index": "", "results": {"healthy": true}})
    );
    let top = lines
        .iter()
        .find(|l| l["path"] == serde_json::json!(["top"]))
        .unwrap();
    assert!(
        top["verifycap"]
            .as_str()
            .unwrap()
            .starts_with("URI:CHK-Verifier:")
    );
    assert_eq!(top["repaircap"], top["verifycap"]);

    // Damage the deep file and the subdirectory.
    let deep_si = deep_file.storage_index().unwrap();
    let sub_si = sub.storage_index().unwrap();
    let i = holder(&servers, &deep_si, 0, false).await;
    tamper(&mut servers, i, &deep_si, 0, delete).await;
    let i = holder(&servers, &sub_si, 1, true).await;
    tamper(&mut servers, i, &sub_si, 1, delete).await;
    let grid = grid_of(&servers);

    let results = grid.deep_check(&root, VERIFY, false).await.unwrap();
    let json = results.to_json();
    assert_eq!(json["count-objects-checked"], 4);
    assert_eq!(json["count-objects-unhealthy"], 2);
    let unhealthy: Vec<&serde_json::Value> = json["list-unhealthy-files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| &pair[0])
        .collect();
    assert_eq!(
        unhealthy,
        [
            &serde_json::json!(["sub"]),
            &serde_json::json!(["sub", "deep"])
        ]
    );

    let repaired = grid.deep_check(&root, CHECK, true).await.unwrap();
    let json = repaired.to_json();
    assert_eq!(json["count-repairs-attempted"], 2, "{json}");
    assert_eq!(json["count-repairs-successful"], 2);
    assert_eq!(json["count-objects-unhealthy-pre-repair"], 2);
    assert_eq!(json["count-objects-healthy-post-repair"], 4);
    let again = grid.deep_check(&root, VERIFY, false).await.unwrap();
    assert_eq!(again.to_json()["count-objects-healthy"], 4);
}

#[tokio::test]
async fn garbage_and_truncated_shares_are_corrupt_not_a_panic() {
    let mut servers: Vec<TestServer> = TestServer::three().await.into();
    let data = random_bytes(300_000);
    let grid = grid_of(&servers);
    let chk = grid.upload(&data).await.unwrap();
    let mutable = grid
        .create_mutable(&data, MutableFormat::Mdmf)
        .await
        .unwrap();
    let chk_si = chk.storage_index().unwrap();
    let mut_si = mutable.storage_index();
    // Immutable share 0 cut short inside its blocks; share 1 overwritten with noise
    // (its container header kept); a mutable share's offsets and all after them noise.
    let a = holder(&servers, &chk_si, 0, false).await;
    tamper(&mut servers, a, &chk_si, 0, |p| {
        let bytes = std::fs::read(p).unwrap();
        std::fs::write(p, &bytes[..bytes.len() / 3]).unwrap();
    })
    .await;
    let b = holder(&servers, &chk_si, 1, false).await;
    tamper(&mut servers, b, &chk_si, 1, |p| {
        let mut bytes = std::fs::read(p).unwrap();
        let noise = random_bytes(bytes.len() - 12);
        bytes[12..].copy_from_slice(&noise);
        std::fs::write(p, bytes).unwrap();
    })
    .await;
    let c = holder(&servers, &mut_si, 2, true).await;
    tamper(&mut servers, c, &mut_si, 2, |p| {
        let mut bytes = std::fs::read(p).unwrap();
        // The container's own fields (its data length, the leases after the data)
        // stay as they were: the server must still be able to replace the share.
        let len = u64::from_be_bytes(bytes[84..92].try_into().unwrap()) as usize;
        let (from, to) = (468 + 60, 468 + len);
        let noise = random_bytes(to - from);
        bytes[from..to].copy_from_slice(&noise);
        std::fs::write(p, bytes).unwrap();
    })
    .await;
    let grid = grid_of(&servers);

    let verified = grid.check(&chk, VERIFY).await.unwrap();
    assert!(!verified.is_recoverable(), "{verified:?}");
    assert_eq!(counts(&verified).count_corrupt_shares, 2);
    assert_eq!(
        counts(&verified).count_unrecoverable_versions,
        1,
        "Tahoe counts an unrecoverable file as one unrecoverable version"
    );
    let repaired = grid.check_and_repair(&chk, VERIFY).await.unwrap();
    assert_eq!(
        repaired.repair_successful,
        Some(false),
        "one good share of two"
    );

    let file = Cap::Mutable(mutable);
    let checked = grid.check(&file, CHECK).await.unwrap();
    assert!(!checked.is_healthy());
    assert_eq!(counts(&checked).count_shares_good, 2);
    let verified = grid.check(&file, VERIFY).await.unwrap();
    assert_eq!(counts(&verified).count_corrupt_shares, 1);
    let repaired = grid.check_and_repair(&file, VERIFY).await.unwrap();
    assert_eq!(repaired.repair_successful, Some(true), "{repaired:?}");
    let post = repaired.post_repair_results.unwrap();
    assert!(post.is_healthy(), "{post:#?}");
    assert!(grid.read_mutable(&mutable).await.unwrap().data == data);
}
