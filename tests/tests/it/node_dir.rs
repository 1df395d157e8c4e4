//! A node directory stays Tahoe's: what `create-node` writes, the migration of older
//! Swamp directories at start, grid-manager certificates checked at start (with
//! certificates made by Tahoe 1.20's own `grid-manager`) and their states on the
//! operator listener (`/status`, `/metrics`), and logs without colour codes when they
//! do not go to a terminal. Tahoe itself running such a directory is
//! `tests/interop/test_node_dir.py`.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use swamp_server::node::migrate::{SWAMP_SECTION, TAC_FILE};
use swamp_tests::child::{NodeProcess, server_binary};
use swamp_tests::{TestClock, TestServer};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/grid-manager");
/// The grid manager that signed the fixtures (`fixtures/grid-manager/README.md`).
pub(crate) const GM_KEY: &str = "pub-v0-ev4fhyzgezoo4hqbf4mqgdko27rxecokadnhgjzvnsiaxcfhtzga";
/// The node key the fixtures certify.
const CERTIFIED_SERVER_ID: &str = "v0-2q23o4dykbtloiyjdjstl3zcpzchsb6r247aqjhrfkpgxafhvtjq";
/// 2026-12-06T20:21:09Z, when the fixtures were made.
pub(crate) const MADE: u64 = 1_796_588_469;
/// When `storage0-5y.cert` expires (2031-12-05T20:21:09.059275+00:00), Unix seconds.
const FIVE_YEARS_EXPIRES: u64 = 1_954_268_469;
/// When `storage0-1d.cert` expires, a day after `MADE` (the fraction dropped).
const ONE_DAY_EXPIRES: u64 = MADE + 86_400;

pub(crate) fn new_node() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let node = dir.path().join("node");
    swamp_server::node::create::create_node(&node, &Default::default()).unwrap();
    (dir, node)
}

/// Gives the node the key the fixture certificates are for.
pub(crate) fn use_certified_key(node: &Path) {
    std::fs::copy(
        Path::new(FIXTURES).join("node.privkey"),
        node.join("private/node.privkey"),
    )
    .unwrap();
    std::fs::remove_file(node.join("node.pubkey")).unwrap();
}

pub(crate) fn append(node: &Path, text: &str) {
    let cfg = node.join("tahoe.cfg");
    let mut all = std::fs::read_to_string(&cfg).unwrap();
    all.push_str(text);
    std::fs::write(cfg, all).unwrap();
}

pub(crate) fn install_certificate(node: &Path, name: &str, fixture: &str) {
    std::fs::copy(
        Path::new(FIXTURES).join(fixture),
        node.join(format!("{name}.cert")),
    )
    .unwrap();
}

/// A node directory with the certified key and two certificates signed by a trusted
/// grid manager: `main` (five years) and `soon` (one day), with `extra` appended to
/// `tahoe.cfg`'s `[storage]` section.
pub(crate) fn certified_node(extra: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let (dir, node) = new_node();
    use_certified_key(&node);
    install_certificate(&node, "main", "storage0-5y.cert");
    install_certificate(&node, "soon", "storage0-1d.cert");
    append(
        &node,
        &format!(
            "\n[storage]\ngrid_management = True\n{extra}[grid_manager_certificates]\nmain = main.cert\nsoon = soon.cert\n[grid_managers]\ngm = {GM_KEY}\n"
        ),
    );
    (dir, node)
}

/// Loads the node directory `node` (in `dir`) at `clock`'s time and serves it.
pub(crate) async fn serve_node(
    dir: tempfile::TempDir,
    node: &Path,
    clock: TestClock,
) -> TestServer {
    let loaded = swamp_server::start::load_node(node, |_| None, clock.as_clock()).unwrap();
    TestServer::from_node(loaded, clock, Some(dir)).await
}

fn start_at(node: &Path, now: u64) -> Result<swamp_server::start::Node, String> {
    let clock = TestClock::new(now).as_clock();
    swamp_server::start::load_node(node, |_| None, clock).map_err(|e| e.to_string())
}

#[test]
fn create_node_writes_what_tahoe_recognises_and_accepts() {
    let (_dir, node) = new_node();
    let cfg = std::fs::read_to_string(node.join("tahoe.cfg")).unwrap();
    assert!(cfg.contains(&format!("[{SWAMP_SECTION}]")), "{cfg}");
    assert!(!cfg.contains("[swamp]"), "{cfg}");
    assert!(node.join(TAC_FILE).is_file());
}

#[test]
fn an_old_node_directory_is_migrated_at_start_and_keeps_its_settings() {
    let (_dir, node) = new_node();
    let cfg_path = node.join("tahoe.cfg");
    // As Swamp wrote it before: `[swamp]`, and no .tac file.
    let old = std::fs::read_to_string(&cfg_path)
        .unwrap()
        .replace(&format!("[{SWAMP_SECTION}]"), "[swamp]")
        + "max_connections = 77\n";
    std::fs::write(&cfg_path, &old).unwrap();
    std::fs::remove_file(node.join(TAC_FILE)).unwrap();

    // `nurl` and `announcement` read it as it is and write nothing.
    let (config, _) = swamp_server::start::describe_node(&node, |_| None).unwrap();
    assert_eq!(config.limits.max_connections, 77);
    assert_eq!(std::fs::read_to_string(&cfg_path).unwrap(), old);

    let started = start_at(&node, MADE).unwrap();
    assert_eq!(started.config.limits.max_connections, 77);
    drop(started);
    let new = std::fs::read_to_string(&cfg_path).unwrap();
    assert_eq!(
        new,
        old.replace("[swamp]", &format!("[{SWAMP_SECTION}]")),
        "only the section header changed"
    );
    assert!(node.join(TAC_FILE).is_file());
    let again = start_at(&node, MADE).unwrap();
    assert_eq!(again.config.limits.max_connections, 77);
    assert_eq!(std::fs::read_to_string(&cfg_path).unwrap(), new);
}

#[test]
fn a_certificate_made_by_tahoes_grid_manager_is_checked_and_announced() {
    let (_dir, node) = certified_node("");
    let started = start_at(&node, MADE).unwrap();
    assert_eq!(started.identity.server_id, CERTIFIED_SERVER_ID);
    let states: Vec<(String, &str)> = started
        .server
        .app
        .certificates
        .get()
        .statuses(MADE)
        .into_iter()
        .map(|s| (s.name, s.state.as_str()))
        .collect();
    assert_eq!(
        states,
        [
            ("main".to_string(), "valid"),
            ("soon".to_string(), "expiring")
        ]
    );
    drop(started);
    // Expired certificates are reported, not fatal (grid_manager.rs says why).
    let later = start_at(&node, MADE + 6 * 365 * 86_400).unwrap();
    assert!(
        later
            .server
            .app
            .certificates
            .get()
            .statuses(MADE + 6 * 365 * 86_400)
            .iter()
            .all(|s| s.state.as_str() == "expired")
    );
    drop(later);

    let yaml = swamp_server::start::announcement(&node, |_| None).unwrap();
    let fixture: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(node.join("main.cert")).unwrap()).unwrap();
    assert!(yaml.contains("    grid-manager-certificates:\n"), "{yaml}");
    assert!(
        yaml.contains(&format!(
            "        signature: \"{}\"\n",
            fixture["signature"].as_str().unwrap()
        )),
        "{yaml}"
    );
}

#[tokio::test]
async fn certificate_states_show_in_status_and_metrics_as_they_are_when_asked() {
    use crate::operator::{operator_status, scrape, scrape_until, value};
    let (dir, node) = certified_node("");
    let clock = TestClock::new(MADE);
    let server = serve_node(dir, &node, clock.clone()).await;

    let status = operator_status(&server).await;
    assert_eq!(status["grid_management"], true);
    let entry = |name: &str, state: &str, expires: u64, now: u64| {
        json!({
            "name": name,
            "state": state,
            "expires": expires,
            "seconds_left": expires as i64 - now as i64,
            "signature_checked": true,
            "signed_by": "gm",
            "grid_manager_key": GM_KEY,
        })
    };
    assert_eq!(
        status["certificates"],
        json!([
            entry("main", "valid", FIVE_YEARS_EXPIRES, MADE),
            entry("soon", "expiring", ONE_DAY_EXPIRES, MADE),
        ])
    );
    let expiry = |name: &str| {
        format!("swamp_grid_manager_certificate_expiry_timestamp_seconds{{name=\"{name}\"}}")
    };
    let valid = |name: &str| format!("swamp_grid_manager_certificate_valid{{name=\"{name}\"}}");
    let count = |state: &str| format!("swamp_grid_manager_certificates{{state=\"{state}\"}}");
    let got = scrape(&server).await;
    assert_eq!(value(&got, &expiry("main")), FIVE_YEARS_EXPIRES as f64);
    assert_eq!(value(&got, &expiry("soon")), ONE_DAY_EXPIRES as f64);
    assert_eq!(value(&got, &valid("main")), 1.0);
    assert_eq!(value(&got, &valid("soon")), 1.0, "expiring still counts");
    assert_eq!(value(&got, &count("valid")), 1.0);
    assert_eq!(value(&got, &count("expiring")), 1.0);
    assert_eq!(value(&got, &count("expired")), 0.0);

    // Two days on, `soon` has expired: states are worked out when asked.
    clock.advance(2 * 86_400);
    let later = MADE + 2 * 86_400;
    let got = scrape(&server).await;
    assert_eq!(value(&got, &valid("main")), 1.0);
    assert_eq!(value(&got, &valid("soon")), 0.0);
    assert_eq!(value(&got, &count("expiring")), 0.0);
    assert_eq!(value(&got, &count("expired")), 1.0);
    assert_eq!(
        operator_status(&server).await["certificates"][1],
        entry("soon", "expired", ONE_DAY_EXPIRES, later)
    );

    // A certificate file that is not one: the reload is refused, both stay.
    let cfg = node.join("tahoe.cfg");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(node.join("broken.cert"), "{not json").unwrap();
    std::fs::write(
        &cfg,
        text.replace("soon = soon.cert\n", "soon = broken.cert\n"),
    )
    .unwrap();
    let refused = server.reload().await.unwrap_err();
    assert!(
        refused.contains("soon") && refused.contains("broken.cert"),
        "{refused}"
    );
    assert_eq!(server.certificates.get().certificates.len(), 2);

    // A reload that drops `soon` (`[grid_manager_certificates]` edited): `/status`
    // follows at once, and `soon`'s series leave `/metrics`.
    std::fs::write(&cfg, text.replace("soon = soon.cert\n", "")).unwrap();
    let report = server.reload().await.unwrap();
    let change = report
        .applied
        .iter()
        .find(|c| c.setting == "grid-manager certificates")
        .expect("the certificates are reported");
    assert_eq!(change.from.as_deref(), Some("main valid, soon expired"));
    assert_eq!(change.to.as_deref(), Some("main valid"));
    assert!(
        report
            .applied
            .iter()
            .any(|c| c.setting == "[grid_manager_certificates] soon" && c.to.is_none()),
        "{report:?}"
    );
    assert_eq!(
        operator_status(&server).await["certificates"],
        json!([entry("main", "valid", FIVE_YEARS_EXPIRES, later)])
    );
    let got = scrape_until(
        &server,
        "no series for the removed certificate",
        |samples| !samples.keys().any(|k| k.contains("name=\"soon\"")),
    )
    .await;
    assert_eq!(value(&got, &valid("main")), 1.0);
    assert_eq!(value(&got, &count("expired")), 0.0);
}

#[test]
fn bad_certificates_stop_the_node_at_start_with_a_clear_error() {
    let (_dir, node) = new_node();
    install_certificate(&node, "main", "storage0-5y.cert");
    let base = std::fs::read_to_string(node.join("tahoe.cfg")).unwrap();
    let configure = |extra: &str| {
        std::fs::write(
            node.join("tahoe.cfg"),
            format!(
                "{base}\n[storage]\ngrid_management = true\n[grid_manager_certificates]\nmain = main.cert\n{extra}"
            ),
        )
        .unwrap();
    };

    // This node has its own fresh key: the certificate is for another node.
    configure("");
    let e = start_at(&node, MADE).err().expect("started");
    assert!(
        e.contains("grid-manager certificate main")
            && e.contains("main.cert")
            && e.contains(CERTIFIED_SERVER_ID)
            && e.contains("not this node's key"),
        "{e}"
    );

    use_certified_key(&node);
    start_at(&node, MADE).expect("the right key, no grid manager to check against");

    // Signed by a grid manager this node does not trust.
    configure(&format!(
        "[grid_managers]\nother = pub-{CERTIFIED_SERVER_ID}\n"
    ));
    let e = start_at(&node, MADE).err().expect("started");
    assert!(
        e.contains("not signed by any grid manager") && e.contains("other"),
        "{e}"
    );
    configure(&format!("[grid_managers]\ngm = {GM_KEY}\n"));
    start_at(&node, MADE).expect("signed by the trusted grid manager");

    // Malformed and missing files.
    std::fs::write(node.join("main.cert"), "{\"certificate\": \"{}\"}").unwrap();
    let e = start_at(&node, MADE).err().expect("started");
    assert!(
        e.contains("main.cert") && e.contains("exactly two strings"),
        "{e}"
    );
    std::fs::remove_file(node.join("main.cert")).unwrap();
    let e = start_at(&node, MADE).err().expect("started");
    assert!(e.contains("main.cert") && e.contains("cannot read"), "{e}");

    // With grid management off, the files are not read (as in Tahoe).
    std::fs::write(
        node.join("tahoe.cfg"),
        format!("{base}\n[grid_manager_certificates]\nmain = main.cert\n"),
    )
    .unwrap();
    let started = start_at(&node, MADE).unwrap();
    let certificates = started.server.app.certificates.get();
    assert!(!certificates.enabled);
    assert_eq!(certificates.ignored, 1);
}

#[tokio::test]
async fn logs_to_a_pipe_carry_no_colour_codes() {
    let node = NodeProcess::create();
    let mut child = tokio::process::Command::new(server_binary())
        .arg("run")
        .arg(node.node_dir())
        .env("SWAMP_LOG", "swamp_server=info")
        // tracing-subscriber leaves colours out when NO_COLOR is set: make sure the
        // node decides by itself.
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stderr = child.stderr.take().unwrap();
    let first = tokio::time::timeout(Duration::from_secs(60), stdout.next_line())
        .await
        .expect("the node printed its NURL within a minute")
        .unwrap();
    assert!(first.is_some_and(|l| l.starts_with("pb://")));
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let mut log = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stderr.read_to_end(&mut log))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&log);
    assert!(text.contains("open file limit"), "{text}");
    assert!(!log.contains(&0x1b), "an escape byte in the log: {text:?}");
}
