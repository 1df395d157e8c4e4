//! OpenTelemetry traces end to end, against a real OTLP/HTTP receiver that decodes
//! with the official protobuf definitions: `tests/otlp/otlp_receiver.py`, with
//! `opentelemetry-proto` from PyPI (`scripts/otel-venv.sh` makes its venv; the test
//! takes `$SWAMP_OTEL_PYTHON`, else `<repo>/.venv-otel/bin/python`).
//!
//! The real `swamp-server` binary exports to it (`OTEL_EXPORTER_OTLP_ENDPOINT`), with a
//! batch delay of ten minutes, so its spans arrive only because a graceful stop
//! (SIGTERM) flushes them. The Rust client in this process exports too, with secrets
//! the test chose, and so does the `tahoe` command line (also only through its flush
//! at exit). Then, in what the receiver decoded:
//! - every server span names its endpoint, storage index and share number, and its
//!   parent is the client span that made the request (same trace id, parent span id =
//!   the client span's id);
//! - the command line's request spans sit under its command span, and the server's
//!   spans under them;
//! - no secret (swissnum, lease secrets, upload secret, write enabler, the client
//!   node's secret files) appears in any span, in any encoding, and every attribute
//!   is one the test expects, with a value of the expected form.
//!
//! Without the venv the test is skipped with a notice, and fails when `CI` is set.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use data_encoding::{BASE32_NOPAD, BASE64, BASE64_NOPAD, BASE64URL, BASE64URL_NOPAD, HEXLOWER};
use serde_json::Value;
use swamp_client::StorageClient;
use swamp_proto::ShareNumber;
use swamp_proto::v1::endpoint;
use swamp_telemetry::{Settings, Traces};
use swamp_tests::child::{NodeProcess, tahoe_binary};
use swamp_tests::{Secrets, random_bytes, random_si, slot_write};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tracing_subscriber::prelude::*;

/// How long the receiver may take to say its port.
const PATIENCE: Duration = Duration::from_secs(30);
/// The server's service name (set with `OTEL_SERVICE_NAME`).
const SERVER_SERVICE: &str = "swamp-node-under-test";
/// The service name of the spans this process exports.
const TEST_SERVICE: &str = "swamp-tests-client";

#[tokio::test]
async fn request_spans_reach_an_otlp_receiver_parented_and_without_secrets() {
    let Some(python) = otel_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let spans_file = dir.path().join("spans.jsonl");
    let (_receiver, endpoint) = start_receiver(&python, &spans_file).await;

    let mut node = NodeProcess::create();
    node.set_env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint);
    node.set_env("OTEL_SERVICE_NAME", SERVER_SERVICE);
    node.set_env("OTEL_BSP_SCHEDULE_DELAY", "600000");
    let nurl = node.start().await;

    // The library in this process, with secrets the test knows.
    let secrets = Secrets::random();
    let (immutable_si, mutable_si) = (random_si(), random_si());
    let share = ShareNumber::new(1);
    let traces =
        Traces::start(&Settings::otlp_http(&endpoint).unwrap(), TEST_SERVICE, "0").unwrap();
    let subscriber = tracing_subscriber::registry().with(traces.layer(&["swamp_client"]));
    {
        // Only this test's thread (a current-thread runtime) exports.
        let _exporting = tracing::subscriber::set_default(subscriber);
        let client = StorageClient::new(&nurl).unwrap();
        let data = random_bytes(1000);
        secrets
            .allocate(&client, &immutable_si, [share], 1000)
            .await;
        let written = client
            .immutable()
            .write_share_chunk(&immutable_si, share, &secrets.upload, 0, data.clone())
            .await
            .unwrap();
        assert!(written.complete);
        let listed = client.immutable().list_shares(&immutable_si).await.unwrap();
        assert_eq!(listed, BTreeSet::from([share]));
        let read = client
            .immutable()
            .read_share_chunk(&immutable_si, share, 0, 1000)
            .await
            .unwrap();
        assert_eq!(&read[..], &data[..]);
        client
            .general()
            .add_or_renew_lease(&immutable_si, &secrets.renew, &secrets.cancel)
            .await
            .unwrap();
        let answer = client
            .mutable()
            .read_test_write(
                &mutable_si,
                &secrets.we,
                &secrets.renew,
                &secrets.cancel,
                &slot_write(2, 0, b"slot data"),
            )
            .await
            .unwrap();
        assert!(answer.success);
    }
    tokio::task::spawn_blocking(move || traces.shutdown())
        .await
        .unwrap()
        .expect("this process's spans were sent");

    // The command line, exporting only through its flush at exit.
    let client_dir = dir.path().join("client");
    let tahoe_env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "600000"),
    ];
    let nurl_text = nurl.to_string();
    tahoe(
        &client_dir,
        &[],
        &[
            "create-client",
            "--nurl",
            &nurl_text,
            "--shares-needed",
            "1",
            "--shares-happy",
            "1",
            "--shares-total",
            "1",
        ],
    )
    .await;
    let file = dir.path().join("file");
    std::fs::write(&file, random_bytes(5000)).unwrap();
    let cap = tahoe(&client_dir, &tahoe_env, &["put", file.to_str().unwrap()]).await;
    let cap = String::from_utf8(cap).unwrap();
    let back = tahoe(&client_dir, &tahoe_env, &["get", cap.trim()]).await;
    assert_eq!(back.len(), 5000, "tahoe get returned the file");
    tahoe(
        &client_dir,
        &tahoe_env,
        &["put", "--mutable", file.to_str().unwrap()],
    )
    .await;

    // A graceful stop flushes the server's spans.
    node.stop().await;
    let spans = read_spans(&spans_file);

    // Server spans: named by the endpoint, ids as attributes, each the child of the
    // client span that made its request.
    let by_id: HashMap<&str, &Value> = spans.iter().map(|s| (str_of(s, "span_id"), s)).collect();
    let service = |s: &Value| str_of(s, "service").to_string();
    let server: Vec<&Value> = spans
        .iter()
        .filter(|s| service(s) == SERVER_SERVICE)
        .collect();
    let ours: Vec<&Value> = spans
        .iter()
        .filter(|s| service(s) == TEST_SERVICE)
        .collect();
    let expected = [
        ("allocate", None),
        ("write_immutable", Some("1")),
        ("list_immutable", None),
        ("read_immutable", Some("1")),
        ("lease", None),
        ("read_test_write", None),
    ];
    for (route, shnum) in expected {
        let client_span = ours
            .iter()
            .find(|s| attr(s, "route") == Some(route))
            .unwrap_or_else(|| panic!("no client span for {route}: {spans:#?}"));
        assert_eq!(str_of(client_span, "kind"), "SPAN_KIND_CLIENT");
        assert_eq!(str_of(client_span, "name"), route);
        let child = server
            .iter()
            .find(|s| str_of(s, "parent_span_id") == str_of(client_span, "span_id"))
            .unwrap_or_else(|| panic!("no server span under the {route} client span"));
        assert_eq!(str_of(child, "trace_id"), str_of(client_span, "trace_id"));
        assert_eq!(str_of(child, "name"), route);
        assert_eq!(str_of(child, "kind"), "SPAN_KIND_SERVER");
        assert_eq!(attr(child, "route"), Some(route));
        let si = if route == "read_test_write" {
            mutable_si
        } else {
            immutable_si
        };
        assert_eq!(attr(child, "si"), Some(si.to_string().as_str()), "{child}");
        assert_eq!(attr(child, "shnum"), shnum, "{child}");
        let status = child["attributes"]["status"]
            .as_i64()
            .unwrap_or_else(|| panic!("{child}"));
        assert!((200..300).contains(&status), "{child}");
        assert_eq!(attr(client_span, "si"), attr(child, "si"));
    }

    // The command line: its request spans under a command span, the server's under
    // those; an upload, a download and a mutable upload each made requests.
    let commands: Vec<&Value> = spans
        .iter()
        .filter(|s| service(s) == "tahoe" && str_of(s, "name").starts_with("tahoe "))
        .collect();
    let names: BTreeSet<&str> = commands.iter().map(|s| str_of(s, "name")).collect();
    assert_eq!(
        names,
        BTreeSet::from(["tahoe get", "tahoe put"]),
        "{commands:#?}"
    );
    assert_eq!(commands.len(), 3);
    let mut cli_routes = BTreeSet::new();
    for request in spans
        .iter()
        .filter(|s| service(s) == "tahoe" && str_of(s, "kind") == "SPAN_KIND_CLIENT")
    {
        let parent = by_id
            .get(str_of(request, "parent_span_id"))
            .unwrap_or_else(|| panic!("a tahoe request span without its parent: {request}"));
        assert!(commands.iter().any(|c| c["span_id"] == parent["span_id"]));
        assert_eq!(request["trace_id"], parent["trace_id"]);
        let child = server
            .iter()
            .find(|s| s["parent_span_id"] == request["span_id"])
            .unwrap_or_else(|| panic!("no server span under {request}"));
        assert_eq!(child["trace_id"], request["trace_id"]);
        cli_routes.insert(attr(request, "route").unwrap().to_string());
    }
    for route in [
        "allocate",
        "write_immutable",
        "read_immutable",
        "read_test_write",
    ] {
        assert!(cli_routes.contains(route), "{route} not in {cli_routes:?}");
    }

    // No secret anywhere, and nothing but the expected attributes.
    let mut secrets_text = vec![
        nurl.swissnum.expose().to_string(),
        nurl.swissnum.authorization_header(),
        "Tahoe-LAFS".to_string(),
    ];
    for bytes in [
        secrets.renew.expose(),
        secrets.cancel.expose(),
        secrets.upload.expose(),
        secrets.we.expose(),
    ] {
        secrets_text.extend(encodings(bytes));
    }
    for entry in std::fs::read_dir(client_dir.join("private")).unwrap() {
        let path = entry.unwrap().path();
        if let Ok(text) = std::fs::read_to_string(&path) {
            // The client's secrets (lease secret, convergence secret) and servers.yaml
            // (which holds the NURL, so the swissnum): every line of any length.
            secrets_text.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| l.len() >= 16)
                    .map(str::to_string),
            );
        }
    }
    let everything = std::fs::read_to_string(&spans_file).unwrap();
    for secret in &secrets_text {
        assert!(
            !everything.contains(secret.as_str()),
            "a secret ({} characters) is in the exported spans",
            secret.len()
        );
    }
    for span in &spans {
        check_attributes(span, &format!("{}:{}", nurl.host, nurl.port));
    }
}

/// The attributes a span may have, and the form of each value: anything else (a new
/// field, a header, a secret) fails.
fn check_attributes(span: &Value, server_address: &str) {
    let routes: BTreeSet<&str> = endpoint::ALL.iter().map(|e| e.name).collect();
    let attributes = span["attributes"].as_object().unwrap();
    for (key, value) in attributes {
        let text = value.as_str().unwrap_or_default();
        let ok = match key.as_str() {
            "method" => ["GET", "POST", "PUT", "PATCH"].contains(&text),
            "route" => routes.contains(text) || text == "other",
            "si" => text.len() == 26 && BASE32_NOPAD.decode(text.to_uppercase().as_bytes()).is_ok(),
            "shnum" => text.parse::<u8>().is_ok(),
            "status" => value.as_i64().is_some_and(|s| (100..600).contains(&s)),
            "http" => text.starts_with("HTTP/"),
            "server" => text == server_address,
            "command" => ["put", "get"].contains(&text),
            "busy_ns" | "idle_ns" => value.as_i64().is_some(),
            _ => false,
        };
        assert!(ok, "unexpected attribute {key}={value} in {span}");
    }
    assert!(
        span["events"].as_array().unwrap().is_empty(),
        "no events expected: {span}"
    );
}

/// The ways a secret's bytes could be written out.
fn encodings(bytes: &[u8]) -> Vec<String> {
    let mut out = vec![
        HEXLOWER.encode(bytes),
        BASE64.encode(bytes),
        BASE64_NOPAD.encode(bytes),
        BASE64URL.encode(bytes),
        BASE64URL_NOPAD.encode(bytes),
        BASE32_NOPAD.encode(bytes),
        BASE32_NOPAD.encode(bytes).to_lowercase(),
    ];
    out.push(format!("{bytes:?}"));
    out
}

fn str_of<'a>(span: &'a Value, key: &str) -> &'a str {
    span[key].as_str().unwrap_or_default()
}

fn attr<'a>(span: &'a Value, key: &str) -> Option<&'a str> {
    span["attributes"][key].as_str()
}

fn read_spans(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// Runs `tahoe -d DIR ARGS` with `env`, and returns its stdout.
async fn tahoe(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Vec<u8> {
    let out = Command::new(tahoe_binary())
        .arg("-d")
        .arg(dir)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tahoe {args:?}: {stderr}");
    assert!(!stderr.contains("warning"), "tahoe {args:?}: {stderr}");
    out.stdout
}

/// Starts the receiver writing to `spans`; returns it (killed on drop) and its base
/// endpoint URL.
async fn start_receiver(python: &Path, spans: &Path) -> (Child, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("otlp/otlp_receiver.py");
    let mut child = Command::new(python)
        .arg(script)
        .arg(spans)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("starting the OTLP receiver");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(PATIENCE, lines.next_line())
        .await
        .expect("the receiver says its port")
        .unwrap()
        .expect("the receiver exited before saying its port");
    let port: u16 = line
        .strip_prefix("PORT ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    (child, format!("http://127.0.0.1:{port}"))
}

/// The receiver's Python, or `None` (after saying so) when there is none outside CI.
fn otel_python() -> Option<PathBuf> {
    let python = std::env::var_os("SWAMP_OTEL_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv-otel/bin/python"));
    if python.exists() {
        return Some(python);
    }
    let why = format!(
        "{} is missing: the tracing test needs the OTLP receiver's venv (scripts/otel-venv.sh; \
         scripts/test.sh makes it)",
        python.display()
    );
    assert!(std::env::var_os("CI").is_none(), "{why}");
    eprintln!("SKIPPED: {why}; CI would fail here");
    None
}
