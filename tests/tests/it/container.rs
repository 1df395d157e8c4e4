//! What a container runtime does to a node, tried on the real `swamp-server` binary
//! (the image in `deploy/Dockerfile` runs exactly this): a first start on an empty
//! directory with every setting from the environment, a secret from a file, no NURL on
//! stdout (it would land in the log), the `healthcheck` command, and SIGTERM ending
//! the process promptly and cleanly while a connection is open.
//! `tests/docker/` runs the image itself.

use std::process::{ExitStatus, Output, Stdio};
use std::time::Duration;

use http::StatusCode;
use swamp_proto::Nurl;
use swamp_tests::child::server_binary;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStderr, Command};

/// A start (creating the node directory) takes well under this.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// SIGTERM must end the node within this, well inside its 10 s shutdown grace: with
/// nothing in flight it has nothing to wait for.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs `swamp-server ARGS` to completion.
async fn swamp(args: &[&str], envs: &[(&str, String)]) -> Output {
    tokio::time::timeout(
        Duration::from_secs(60),
        Command::new(server_binary())
            .args(args)
            .envs(envs.iter().map(|(k, v)| (k, v)))
            .output(),
    )
    .await
    .expect("swamp-server answers within a minute")
    .expect("running swamp-server")
}

/// Reads the node's log until a line containing `needle`, and returns the lines read.
async fn log_until(log: &mut tokio::io::Lines<BufReader<ChildStderr>>, needle: &str) -> String {
    let mut seen = String::new();
    let found = tokio::time::timeout(START_TIMEOUT, async {
        while let Some(line) = log.next_line().await.expect("reading the log") {
            seen.push_str(&line);
            seen.push('\n');
            if line.contains(needle) {
                return true;
            }
        }
        false
    })
    .await;
    assert!(
        found == Ok(true),
        "no log line with {needle:?}; the log so far:\n{seen}"
    );
    seen
}

async fn wait_exit(child: &mut Child, within: Duration) -> ExitStatus {
    tokio::time::timeout(within, child.wait())
        .await
        .unwrap_or_else(|_| panic!("the node did not exit within {within:?}"))
        .expect("waiting for the node")
}

#[tokio::test]
async fn a_container_style_node_starts_from_the_environment_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let node_dir = dir.path().join("volume");
    // The port is chosen here and handed over in the environment (a container's
    // port is fixed by its image); create-node does the same.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let secret_file = dir.path().join("operator-secret");
    std::fs::write(&secret_file, "a-mounted-secret-0123456789\n").unwrap();
    let envs = [
        ("SWAMP_NODE_DIR", node_dir.display().to_string()),
        (
            "SWAMP_NODE_TUB_PORT",
            format!("tcp:{port}:interface=127.0.0.1"),
        ),
        ("SWAMP_NODE_TUB_LOCATION", format!("tcp:localhost:{port}")),
        ("SWAMP_NODE_NICKNAME", "box1".into()),
        ("SWAMP_QUIET", "1".into()),
        (
            "SWAMP_OPERATOR_SECRET_FILE",
            secret_file.display().to_string(),
        ),
        ("SWAMP_LOG", "swamp_server=info".into()),
        ("NO_COLOR", "1".into()),
    ];

    let unhealthy = swamp(&["healthcheck"], &envs).await;
    assert!(
        !unhealthy.status.success(),
        "no node yet, so not healthy: {unhealthy:?}"
    );

    let mut node = Command::new(server_binary())
        .arg("run")
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawning swamp-server run");
    let mut log = BufReader::new(node.stderr.take().unwrap()).lines();
    log_until(&mut log, "storage node serving").await;

    // The environment was recorded in the new tahoe.cfg.
    let cfg = std::fs::read_to_string(node_dir.join("tahoe.cfg")).unwrap();
    for line in [
        format!("tub.port = tcp:{port}:interface=127.0.0.1"),
        format!("tub.location = tcp:localhost:{port}"),
        "nickname = box1".to_string(),
    ] {
        assert!(cfg.contains(&line), "{line:?} not in tahoe.cfg:\n{cfg}");
    }

    let healthy = swamp(&["healthcheck"], &envs).await;
    assert!(healthy.status.success(), "healthcheck: {healthy:?}");
    assert!(
        String::from_utf8_lossy(&healthy.stdout).contains(&format!("127.0.0.1:{port}")),
        "{healthy:?}"
    );

    let nurl_out = swamp(&["nurl"], &envs).await;
    let nurl: Nurl = String::from_utf8_lossy(&nurl_out.stdout)
        .trim()
        .parse()
        .expect("`nurl` prints the NURL");
    assert_eq!((nurl.host.as_str(), nurl.port), ("localhost", port));

    // The secret in force is the mounted one, not private/operator.secret.
    let tls = swamp_client::tls::pinned_config(nurl.spki_hash, &[b"http/1.1"]);
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .build()
        .unwrap();
    let activity = format!("{}/storage/v1/activity", nurl.base_url());
    let status = |key: String| {
        let request = http.get(format!("{activity}?key={key}"));
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(
        status("a-mounted-secret-0123456789".into()).await,
        StatusCode::OK
    );
    let generated = std::fs::read_to_string(node_dir.join("private/operator.secret")).unwrap();
    assert_eq!(
        status(generated.trim().to_string()).await,
        StatusCode::UNAUTHORIZED
    );
    let version = http
        .get(format!("{}/storage/v1/version", nurl.base_url()))
        .header("authorization", nurl.swissnum.authorization_header())
        .header("accept", "application/cbor")
        .send()
        .await
        .unwrap();
    assert_eq!(version.status(), StatusCode::OK);

    // SIGTERM with a client connected and silent: the node still stops at once.
    let _idle = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let pid = node.id().expect("running");
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(i32::try_from(pid).unwrap()).unwrap(),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let status = wait_exit(&mut node, STOP_TIMEOUT).await;
    assert!(status.success(), "a clean exit on SIGTERM: {status:?}");
    let mut rest = String::new();
    while let Some(line) = log.next_line().await.unwrap() {
        rest.push_str(&line);
        rest.push('\n');
    }
    assert!(
        rest.contains("SIGTERM: shutting down") && rest.contains("stopped"),
        "{rest}"
    );
    let mut stdout = String::new();
    node.stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .await
        .unwrap();
    assert!(
        stdout.is_empty(),
        "SWAMP_QUIET keeps the NURL (and its swissnum) off stdout: {stdout:?}"
    );
    assert!(
        !rest.contains(nurl.swissnum.expose()),
        "the log never carries the swissnum"
    );

    let after = swamp(&["healthcheck"], &envs).await;
    assert!(!after.status.success(), "stopped, so not healthy");
    assert!(
        String::from_utf8_lossy(&after.stderr).contains("not healthy"),
        "{after:?}"
    );
}
