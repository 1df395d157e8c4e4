//! `swamp-server status DIR` against the real binary serving a node directory: what it
//! prints for a running node, and its errors for a node that never ran, one that
//! stopped, and a secret that is not the running node's.

use std::path::Path;
use std::process::Output;

use swamp_tests::child::{NodeProcess, server_binary};
use swamp_tests::{Secrets, mdmf_share, random_si, upload_share, write_slot};

async fn status(dir: &Path, args: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(server_binary());
    command
        .arg("status")
        .arg(dir)
        .args(args)
        .env("NO_COLOR", "1");
    tokio::time::timeout(std::time::Duration::from_secs(30), command.output())
        .await
        .expect("status answers within 30 s")
        .expect("running swamp-server status")
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The value after `label:` on its line.
fn field<'a>(out: &'a str, label: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{label}:")))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {label}: line in\n{out}"))
}

#[tokio::test]
async fn status_reports_a_running_node_and_says_when_it_is_not() {
    let mut node = NodeProcess::create();
    let dir = node.node_dir();

    // Never started: no operator.url.
    let never = status(&dir, &[]).await;
    let (_, err) = text(&never);
    assert_eq!(never.status.code(), Some(3), "{err}");
    assert!(err.contains("is not running"), "{err}");

    let nurl = node.start().await;
    let client = swamp_client::StorageClient::new(&nurl).unwrap();
    // Two storage indexes: a slot with two shares, a bucket with one.
    let (slot, s) = (random_si(), Secrets::random());
    write_slot(&client, &slot, &s, 0, &mdmf_share(1, [1; 32], b"a")).await;
    write_slot(&client, &slot, &s, 1, &mdmf_share(1, [1; 32], b"b")).await;
    upload_share(&client, &random_si(), &Secrets::random(), 4, &[9; 500]).await;

    let running = status(&dir, &[]).await;
    let (out, err) = text(&running);
    assert!(
        running.status.success(),
        "{out}\n{err}\n{}",
        node.log_tail(20)
    );
    assert_eq!(field(&out, "NURL"), nurl.to_string());
    assert!(
        field(&out, "node").contains("(running, swamp-server "),
        "{out}"
    );
    let operator_url = std::fs::read_to_string(dir.join("operator.url")).unwrap();
    assert_eq!(field(&out, "operator"), operator_url.trim());
    assert!(field(&out, "uptime").ends_with('s'), "{out}");
    let disk = field(&out, "disk");
    assert!(
        disk.contains(" used of ") && disk.contains(" available for shares "),
        "{out}"
    );
    assert_eq!(field(&out, "accepting"), "immutable shares: yes");
    assert_eq!(
        field(&out, "shares"),
        "3 shares in 2 storage indexes; 0 uploads in progress"
    );
    assert!(
        field(&out, "feeds").starts_with("0 connections (long-poll 0, sse 0, websocket 0)"),
        "{out}"
    );
    // At least the read-test-writes, allocate and write made above.
    let requests: u64 = field(&out, "requests")
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(requests >= 4, "{out}");
    assert_eq!(field(&out, "certificates"), "none configured");
    assert!(
        !out.contains(node_secret(&dir).trim()),
        "the operator secret is never printed"
    );

    // The JSON answer, for scripts.
    let json = status(&dir, &["--json"]).await;
    let answer: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(answer["shares"]["shares"], 3);
    assert_eq!(answer["shares"]["complete"], true);
    assert_eq!(answer["certificates"], serde_json::json!([]));
    assert!(
        !String::from_utf8_lossy(&json.stdout).contains(nurl.swissnum.expose()),
        "the operator listener never hands out the swissnum"
    );

    // A secret that is not the running node's (changed on disk after it started).
    let secret_path = dir.join("private").join("operator.secret");
    let secret = node_secret(&dir);
    std::fs::write(&secret_path, "a-different-operator-secret\n").unwrap();
    let refused = status(&dir, &[]).await;
    let (_, err) = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{err}");
    assert!(err.contains("refused the operator secret"), "{err}");
    std::fs::write(&secret_path, secret).unwrap();

    // Stopped: nothing answers at operator.url.
    node.kill().await;
    let stopped = status(&dir, &[]).await;
    let (_, err) = text(&stopped);
    assert_eq!(stopped.status.code(), Some(3), "{err}");
    assert!(
        err.contains("is not running: nothing answers at http://127.0.0.1:"),
        "{err}"
    );
}

fn node_secret(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("private").join("operator.secret")).unwrap()
}
