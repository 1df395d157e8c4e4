//! `tahoe magic-folder-push` end to end: three real Swamp servers, folders laid out
//! as magic-folder lays them out (a collective directory whose entries are the
//! participants, each pointing at that participant's personal directory), and a
//! small fake of the magic-folder daemon's HTTP API that serves the folder list and
//! records each `poll-remote` with the time it arrived. The bridge runs as bob's.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, put};
use swamp_client::dir_edit::Replace;
use swamp_client::grid::Grid;
use swamp_client::magic_folder::{BridgeEvent, BridgeOptions, DaemonApi, run};
use swamp_formats::cap::{Cap, MutableFormat};
use swamp_tests::{TestOptions, TestServer, grid_of};
use tokio::sync::mpsc;

/// A fake magic-folder daemon: its folder list, its token, and the polls it got.
#[derive(Clone)]
struct FakeDaemon {
    folders: Arc<Mutex<serde_json::Value>>,
    token: Arc<Mutex<String>>,
    polls: mpsc::UnboundedSender<(String, Instant)>,
    /// Status events pushed to `/v1/status` clients.
    status: tokio::sync::broadcast::Sender<String>,
}

fn authorized(daemon: &FakeDaemon, headers: &HeaderMap) -> bool {
    let expected = format!("Bearer {}", daemon.token.lock().unwrap());
    headers
        .get("authorization")
        .is_some_and(|v| v.as_bytes() == expected.as_bytes())
}

async fn list(
    State(daemon): State<FakeDaemon>,
    headers: HeaderMap,
) -> Result<axum::Json<serde_json::Value>, StatusCode> {
    if !authorized(&daemon, &headers) {
        return Err(StatusCode::UNAUTHORIZED);
    }
    Ok(axum::Json(daemon.folders.lock().unwrap().clone()))
}

async fn poll_remote(
    State(daemon): State<FakeDaemon>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> StatusCode {
    if !authorized(&daemon, &headers) {
        return StatusCode::UNAUTHORIZED;
    }
    let _ = daemon.polls.send((name, Instant::now()));
    StatusCode::OK
}

/// `/v1/status`: the state first (a `folder-added` per folder), then pushed events.
async fn status(
    State(daemon): State<FakeDaemon>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> axum::response::Response {
    if !authorized(&daemon, &headers) {
        return axum::response::IntoResponse::into_response(StatusCode::UNAUTHORIZED);
    }
    ws.on_upgrade(move |mut socket| async move {
        let mut pushed = daemon.status.subscribe();
        let names: Vec<String> = daemon
            .folders
            .lock()
            .unwrap()
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        let events: Vec<_> = names
            .iter()
            .map(|n| serde_json::json!({"kind": "folder-added", "folder": n}))
            .collect();
        let state = serde_json::json!({"events": events}).to_string();
        if socket.send(Message::Text(state.into())).await.is_err() {
            return;
        }
        while let Ok(event) = pushed.recv().await {
            if socket.send(Message::Text(event.into())).await.is_err() {
                return;
            }
        }
    })
}

/// The daemon's side of a test: its config directory and the polls it recorded.
struct Daemon {
    state: FakeDaemon,
    config: tempfile::TempDir,
    polls: mpsc::UnboundedReceiver<(String, Instant)>,
}

impl Daemon {
    /// Serves the fake API on 127.0.0.1:0 and writes the config directory the way
    /// magic-folder does (`api_client_endpoint`, `api_token`).
    async fn start() -> Self {
        let (polls_tx, polls) = mpsc::unbounded_channel();
        let state = FakeDaemon {
            folders: Arc::new(Mutex::new(serde_json::json!({}))),
            token: Arc::new(Mutex::new("dG9rZW4tb25l".into())),
            polls: polls_tx,
            status: tokio::sync::broadcast::channel(16).0,
        };
        let config = tempfile::tempdir().unwrap();
        let daemon = Self {
            state,
            config,
            polls,
        };
        daemon.serve().await;
        std::fs::write(daemon.config.path().join("api_token"), "dG9rZW4tb25l").unwrap();
        daemon
    }

    /// Starts (another) listener and points `api_client_endpoint` at it, as a
    /// restarted daemon does.
    async fn serve(&self) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = axum::Router::new()
            .route("/v1/magic-folder", get(list))
            .route("/v1/magic-folder/{name}/poll-remote", put(poll_remote))
            .route("/v1/status", get(status))
            .with_state(self.state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        std::fs::write(
            self.config.path().join("api_client_endpoint"),
            format!("tcp:127.0.0.1:{port}\n"),
        )
        .unwrap();
    }

    fn set_folder(&self, name: &str, author: &str, collective: &Cap) {
        self.state.folders.lock().unwrap()[name] = serde_json::json!({
            "name": name,
            "author": {"name": author, "verify_key": "x", "signing_key": "y"},
            "magic_path": "/tmp/x", "stash_path": "/tmp/y",
            "poll_interval": 3600, "scan_interval": 3600, "is_admin": false,
            "collective_dircap": collective.to_string(),
            "upload_dircap": "URI:DIR2:unused:unused",
        });
    }

    /// The next poll request, within `within`.
    async fn next_poll(&mut self, within: Duration) -> (String, Instant) {
        tokio::time::timeout(within, self.polls.recv())
            .await
            .expect("a poll-remote in time")
            .expect("the fake daemon runs")
    }

    /// Every poll that arrives within `window`.
    async fn polls_within(&mut self, window: Duration) -> Vec<(String, Instant)> {
        let end = tokio::time::Instant::now() + window;
        let mut got = Vec::new();
        while let Ok(Some(poll)) = tokio::time::timeout_at(end, self.polls.recv()).await {
            got.push(poll);
        }
        got
    }
}

/// One folder laid out as magic-folder does, with alice and bob in it.
struct Folder {
    collective: Cap,
    alice: Cap,
    bob: Cap,
}

async fn make_folder(grid: &Grid) -> Folder {
    let collective = grid.create_dir(MutableFormat::Sdmf).await.unwrap();
    let alice = grid.create_dir(MutableFormat::Sdmf).await.unwrap();
    let bob = grid.create_dir(MutableFormat::Sdmf).await.unwrap();
    for (name, personal) in [("alice", &alice), ("bob", &bob)] {
        grid.link(&collective, name, &personal.read_only(), Replace::Never)
            .await
            .unwrap();
    }
    Folder {
        collective,
        alice,
        bob,
    }
}

/// A new version of `name` in a personal directory (a snapshot cap; its content
/// does not matter to the bridge).
async fn snapshot(grid: &Grid, personal: &Cap, name: &str, version: u32) {
    let cap = Cap::Lit(format!("snapshot {version}").into_bytes());
    grid.link(personal, name, &cap, Replace::Always)
        .await
        .unwrap();
}

/// Starts the bridge for `daemon`; its events go to the returned receiver.
fn start_bridge(
    servers: &[TestServer],
    daemon: &Daemon,
    options: BridgeOptions,
) -> mpsc::Receiver<BridgeEvent> {
    let (tx, rx) = mpsc::channel(1024);
    let api = DaemonApi::new(daemon.config.path().to_path_buf(), Duration::from_secs(30)).unwrap();
    tokio::spawn(run(Arc::new(grid_of(servers)), api, options, tx));
    rx
}

/// The next bridge event that `wanted` accepts (others are skipped).
async fn next_event_where(
    events: &mut mpsc::Receiver<BridgeEvent>,
    wanted: impl Fn(&BridgeEvent) -> bool,
) -> BridgeEvent {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .expect("a bridge event in time")
            .expect("the bridge runs");
        if wanted(&event) {
            return event;
        }
    }
}

/// The causes of the next poll the bridge reports.
async fn next_poll_causes(
    events: &mut mpsc::Receiver<BridgeEvent>,
) -> (String, Vec<String>, Duration) {
    let poll = |e: &BridgeEvent| matches!(e, BridgeEvent::PollRequested { .. });
    match next_event_where(events, poll).await {
        BridgeEvent::PollRequested {
            folder,
            causes,
            latency,
        } => (folder, causes, latency),
        other => panic!("expected a poll, got {other:?}"),
    }
}

/// Three servers, one folder "docs" with alice and bob, the fake daemon listing it
/// for bob, and the bridge running with `options`, past its start-up poll (the sign
/// that the feeds are subscribed).
struct Scene {
    /// Kept so the servers run as long as the scene.
    servers: [TestServer; 3],
    grid: Grid,
    folder: Folder,
    daemon: Daemon,
    events: mpsc::Receiver<BridgeEvent>,
}

async fn scene(options: BridgeOptions) -> Scene {
    let servers = TestServer::three().await;
    let grid = grid_of(&servers);
    let folder = make_folder(&grid).await;
    let mut daemon = Daemon::start().await;
    daemon.set_folder("docs", "bob", &folder.collective.read_only());
    let mut events = start_bridge(&servers, &daemon, options);
    let (name, _) = daemon.next_poll(Duration::from_secs(10)).await;
    assert_eq!(name, "docs");
    assert_eq!(next_poll_causes(&mut events).await.1, ["resync"]);
    Scene {
        servers,
        grid,
        folder,
        daemon,
        events,
    }
}

#[tokio::test]
async fn a_participant_change_asks_for_one_prompt_poll_and_a_burst_for_few() {
    let mut s = scene(BridgeOptions::default()).await;

    // Bob's own upload needs no poll; alice's right after it gets exactly one,
    // naming only alice.
    snapshot(&s.grid, &s.folder.bob, "mine", 1).await;
    let changed = Instant::now();
    snapshot(&s.grid, &s.folder.alice, "theirs", 1).await;
    let (name, at) = s.daemon.next_poll(Duration::from_secs(5)).await;
    assert_eq!(name, "docs");
    let reaction = at.saturating_duration_since(changed);
    assert!(reaction < Duration::from_secs(2), "poll after {reaction:?}");
    let (folder_name, causes, latency) = next_poll_causes(&mut s.events).await;
    assert_eq!(
        (folder_name.as_str(), causes),
        ("docs", vec!["alice".to_string()])
    );
    assert!(latency < Duration::from_millis(500), "latency {latency:?}");
    assert!(
        s.daemon
            .polls_within(Duration::from_secs(1))
            .await
            .is_empty(),
        "one change, one poll"
    );

    // A burst of changes: a few polls, not one each.
    let changes = 10;
    for version in 0..changes {
        snapshot(
            &s.grid,
            &s.folder.alice,
            &format!("f{}", version % 3),
            version,
        )
        .await;
    }
    let polls = s.daemon.polls_within(Duration::from_secs(3)).await;
    assert!(
        !polls.is_empty() && polls.len() <= 4,
        "{} polls for {changes} changes",
        polls.len()
    );
    assert!(polls.iter().all(|(name, _)| name == "docs"));
}

#[tokio::test]
async fn a_storage_server_away_and_back_asks_for_one_poll() {
    let mut s = scene(BridgeOptions::default()).await;
    let [first, second, third] = s.servers;
    let addr = first.addr;
    let (dir, storage_dir, identity) = first.stop().await;
    let _keep = (dir, second, third);
    let lost = |e: &BridgeEvent| matches!(e, BridgeEvent::Info(t) if t.contains("lost"));
    next_event_where(&mut s.events, lost).await;
    let _back = TestServer::start_at(storage_dir, identity, TestOptions::default(), addr).await;
    // Its feed resumes: changes may have been missed while it was away.
    let (name, _) = s.daemon.next_poll(Duration::from_secs(15)).await;
    assert_eq!(name, "docs");
    assert_eq!(next_poll_causes(&mut s.events).await.1, ["resync"]);
}

#[tokio::test]
async fn participants_joining_and_leaving_are_followed() {
    let mut s = scene(BridgeOptions::default()).await;

    // carol joins: a poll for the collective change, then her directory is followed.
    let carol = s.grid.create_dir(MutableFormat::Sdmf).await.unwrap();
    s.grid
        .link(
            &s.folder.collective,
            "carol",
            &carol.read_only(),
            Replace::Never,
        )
        .await
        .unwrap();
    s.daemon.next_poll(Duration::from_secs(5)).await;
    assert_eq!(next_poll_causes(&mut s.events).await.1, ["carol (added)"]);
    snapshot(&s.grid, &carol, "hello", 1).await;
    s.daemon.next_poll(Duration::from_secs(5)).await;
    assert_eq!(next_poll_causes(&mut s.events).await.1, ["carol"]);

    // A directory deeper than a personal directory is not followed, whoever links it.
    let deep = s
        .grid
        .make_dirs(&s.folder.alice, &["deep"], MutableFormat::Sdmf)
        .await
        .unwrap();
    s.daemon.next_poll(Duration::from_secs(5)).await;
    assert_eq!(next_poll_causes(&mut s.events).await.1, ["alice"]);
    snapshot(&s.grid, &deep, "hidden", 1).await;
    assert!(
        s.daemon
            .polls_within(Duration::from_secs(1))
            .await
            .is_empty(),
        "a change two levels down is not followed"
    );

    // alice leaves: her directory is no longer followed.
    s.grid.unlink(&s.folder.collective, "alice").await.unwrap();
    s.daemon.next_poll(Duration::from_secs(5)).await;
    assert_eq!(next_poll_causes(&mut s.events).await.1, ["alice (removed)"]);
    snapshot(&s.grid, &s.folder.alice, "late", 1).await;
    snapshot(&s.grid, &carol, "hello", 2).await;
    s.daemon.next_poll(Duration::from_secs(5)).await;
    assert_eq!(
        next_poll_causes(&mut s.events).await.1,
        ["carol"],
        "alice's change after leaving causes nothing"
    );
}

#[tokio::test]
async fn a_daemon_away_or_with_a_new_token_loses_no_poll() {
    let mut s = scene(BridgeOptions {
        refresh: Duration::from_millis(500),
        ..BridgeOptions::default()
    })
    .await;

    // The daemon stops (it writes "not running"); alice changes meanwhile.
    std::fs::write(
        s.daemon.config.path().join("api_client_endpoint"),
        "not running\n",
    )
    .unwrap();
    snapshot(&s.grid, &s.folder.alice, "while-away", 1).await;
    let failed = |e: &BridgeEvent| matches!(e, BridgeEvent::PollFailed { .. });
    next_event_where(&mut s.events, failed).await;
    // It comes back on a new port with a new token: the kept poll arrives there.
    *s.daemon.state.token.lock().unwrap() = "dG9rZW4tdHdv".into();
    std::fs::write(s.daemon.config.path().join("api_token"), "dG9rZW4tdHdv").unwrap();
    s.daemon.serve().await;
    let (name, _) = s.daemon.next_poll(Duration::from_secs(15)).await;
    assert_eq!(name, "docs");

    // A folder added to the daemon's list is followed at the next refresh.
    let other = make_folder(&s.grid).await;
    s.daemon.set_folder("photos", "bob", &other.collective);
    let mut seen = Vec::new();
    while !seen.iter().any(|n| n == "photos") {
        seen.push(s.daemon.next_poll(Duration::from_secs(10)).await.0);
    }
    snapshot(&s.grid, &other.alice, "pic", 1).await;
    loop {
        let (name, _) = s.daemon.next_poll(Duration::from_secs(5)).await;
        if name == "photos" {
            break;
        }
    }
}

#[tokio::test]
async fn a_folder_added_is_followed_at_once_on_the_status_push() {
    // The periodic refresh is far beyond this test's time: only the push can work.
    let mut s = scene(BridgeOptions {
        refresh: Duration::from_secs(3600),
        ..BridgeOptions::default()
    })
    .await;

    let other = make_folder(&s.grid).await;
    s.daemon
        .set_folder("photos", "bob", &other.collective.read_only());
    s.daemon
        .state
        .status
        .send(r#"{"events": [{"kind": "folder-added", "folder": "photos"}]}"#.into())
        .unwrap();
    let (name, _) = s.daemon.next_poll(Duration::from_secs(5)).await;
    assert_eq!(
        name, "photos",
        "followed from the push, with its first poll"
    );
    snapshot(&s.grid, &other.alice, "pic", 1).await;
    let (name, _) = s.daemon.next_poll(Duration::from_secs(5)).await;
    assert_eq!(name, "photos");
}

#[tokio::test]
async fn servers_without_a_feed_are_polled_at_the_interval() {
    // No transport to try: every server looks like a Python one, without a feed.
    let mut options = BridgeOptions {
        poll_interval: Duration::from_millis(300),
        ..BridgeOptions::default()
    };
    options.watch.feed.transports.clear();
    let mut s = scene(options).await;

    snapshot(&s.grid, &s.folder.alice, "theirs", 1).await;
    let (name, _) = s.daemon.next_poll(Duration::from_secs(5)).await;
    assert_eq!(name, "docs");
    assert_eq!(next_poll_causes(&mut s.events).await.1, ["alice"]);
    assert!(
        s.daemon
            .polls_within(Duration::from_secs(1))
            .await
            .is_empty(),
        "polling the grid finds no change: no poll for the daemon"
    );
}
