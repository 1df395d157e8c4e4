//! A storage node as a child process: the real `swamp-server` binary serving a node
//! directory made by `swamp-server create-node`, for tests that must kill a node the
//! way a power cut or the OOM killer does (SIGKILL), which an in-process server cannot
//! model: its files, threads and page-cache writes die with the test.
//!
//! `create-node` picks a free loopback port and records it in `tahoe.cfg` (as Tahoe
//! does), so every restart listens on the same port and the NURL clients hold stays
//! valid. Readiness is the NURL line the node prints once its listener is bound and
//! recovery is done: nothing sleeps.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use swamp_proto::Nurl;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// How long a start (with recovery) may take before the test gives up on it.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The `swamp-server` binary: `$SWAMP_SERVER_BIN` if set; otherwise it is built (a
/// no-op when fresh, well under a second) into the target directory this test binary
/// runs from, so a test never runs a stale server after a change to the server's code.
///
/// `CARGO_BIN_EXE_swamp-server` exists only for the server package's own tests; this
/// crate finds the binary next to itself: `<target>/<profile>/deps/<test>` puts it at
/// `<target>/<profile>/swamp-server`. Cargo releases its build lock before it runs
/// tests, so the nested build does not wait on the outer one.
///
/// # Panics
/// If the binary cannot be built.
pub fn server_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| binary("SWAMP_SERVER_BIN", "swamp-server", "swamp-server"))
        .clone()
}

/// The `tahoe` command line: `$SWAMP_TAHOE_BIN` if set, otherwise built as
/// [`server_binary`] is.
///
/// # Panics
/// If the binary cannot be built.
pub fn tahoe_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| binary("SWAMP_TAHOE_BIN", "swamp-cli", "tahoe"))
        .clone()
}

/// `$variable` if set, else `bin` of `package` built into this test's target
/// directory and profile (see [`server_binary`]).
fn binary(variable: &str, package: &str, bin: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(variable) {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binaries run from <target>/<profile>/deps");
    let target_dir = profile_dir.parent().expect("a target directory");
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .expect("a profile directory name");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = std::process::Command::new(cargo);
    // Cargo gives a running test its package's variables (CARGO_PKG_NAME,
    // CARGO_MANIFEST_DIR, OUT_DIR...). Build scripts ask to rerun when those
    // change (ring's does), so inheriting them would make this build and the
    // next ordinary one each rebuild half the tree.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if cargo_sets_for_tests(&name) {
            build.env_remove(&*name);
        }
    }
    build
        .args(["build", "--quiet", "-p", package, "--bin", bin])
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    match profile {
        "debug" => {}
        "release" => {
            build.arg("--release");
        }
        other => {
            build.args(["--profile", other]);
        }
    }
    let out = build.output().expect("running cargo to build a binary");
    assert!(
        out.status.success(),
        "building {bin} failed (set {variable} to use a built one): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    profile_dir.join(bin)
}

/// Whether `name` is one of the variables Cargo sets for the crate it runs (not one
/// the user set to configure Cargo, like `CARGO_HOME` or `CARGO_PROFILE_*`).
fn cargo_sets_for_tests(name: &str) -> bool {
    ["CARGO_PKG_", "CARGO_BIN_", "CARGO_MANIFEST_"]
        .iter()
        .any(|prefix| name.starts_with(prefix))
        || [
            "CARGO_CRATE_NAME",
            "CARGO_PRIMARY_PACKAGE",
            "CARGO_TARGET_TMPDIR",
            "CARGO_RUSTC_CURRENT_DIR",
            "OUT_DIR",
        ]
        .contains(&name)
}

/// A node directory and, while it runs, the `swamp-server run` process serving it.
pub struct NodeProcess {
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// Kept open: the node writes its NURL to stdout, and a closed pipe would make a
    /// later write fail.
    stdout: Option<Lines<BufReader<ChildStdout>>>,
    nurl: Option<Nurl>,
    starts: u32,
    env: Vec<(String, String)>,
    log_from_config: bool,
}

impl NodeProcess {
    /// Makes a node directory with `swamp-server create-node` (a free loopback port,
    /// kept for every start).
    ///
    /// # Panics
    /// If `create-node` fails.
    pub fn create() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = std::process::Command::new(server_binary())
            .arg("create-node")
            .arg(dir.path().join("node"))
            .output()
            .expect("running swamp-server create-node");
        assert!(
            out.status.success(),
            "create-node: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self {
            dir,
            child: None,
            stdout: None,
            nurl: None,
            starts: 0,
            env: Vec::new(),
            log_from_config: false,
        }
    }

    /// Leaves `SWAMP_LOG` (which the node is started with, at info) unset, so the log
    /// filter comes from `tahoe.cfg`.
    pub fn log_filter_from_config(&mut self) {
        self.log_from_config = true;
    }

    /// Sets an environment variable (a setting, see `docs/configuration.md`) for the
    /// next starts.
    pub fn set_env(&mut self, name: &str, value: &str) {
        self.env.retain(|(n, _)| n != name);
        self.env.push((name.into(), value.into()));
    }

    /// The node directory.
    pub fn node_dir(&self) -> PathBuf {
        self.dir.path().join("node")
    }

    /// Its storage directory.
    pub fn storage_dir(&self) -> PathBuf {
        self.node_dir().join("storage")
    }

    /// The node's log (stderr of every run, appended).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// Sends the running node `signal` (SIGHUP reloads it).
    ///
    /// # Panics
    /// If it is not running.
    pub fn signal(&self, signal: rustix::process::Signal) {
        use rustix::process::{Pid, kill_process};
        let pid = self
            .child
            .as_ref()
            .and_then(Child::id)
            .and_then(|id| Pid::from_raw(id as i32))
            .expect("the node is running");
        kill_process(pid, signal).expect("signalling the node");
    }

    /// The NURL of the last completed start.
    ///
    /// # Panics
    /// Before the first start.
    pub fn nurl(&self) -> &Nurl {
        self.nurl.as_ref().expect("the node was started")
    }

    /// Starts `swamp-server run` without waiting for it to serve (to kill it during
    /// its recovery).
    ///
    /// # Panics
    /// If it is already running or cannot be spawned.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "the node is already running");
        self.starts += 1;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("log file");
        let mut command = Command::new(server_binary());
        if self.log_from_config {
            command.env_remove("SWAMP_LOG");
        } else {
            command.env("SWAMP_LOG", "swamp_server=info");
        }
        let mut child = command
            .arg("run")
            .arg(self.node_dir())
            .env("NO_COLOR", "1")
            .envs(self.env.iter().map(|(n, v)| (n, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("spawning swamp-server run");
        let stdout = child.stdout.take().expect("piped stdout");
        self.stdout = Some(BufReader::new(stdout).lines());
        self.child = Some(child);
    }

    /// Starts the node and waits until it serves (it prints its NURL once listening,
    /// after recovery); the NURL must be the one of every earlier start.
    ///
    /// # Panics
    /// If it exits or says nothing within a minute, or its NURL changed.
    pub async fn start(&mut self) -> Nurl {
        self.spawn();
        let lines = self.stdout.as_mut().expect("spawned");
        let line = tokio::time::timeout(START_TIMEOUT, lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("no NURL within {START_TIMEOUT:?}; {}", self.log_tail(30)))
            .expect("reading the node's stdout");
        let Some(line) = line else {
            panic!("the node exited during start; {}", self.log_tail(30));
        };
        let nurl: Nurl = line.trim().parse().expect("the first line is a NURL");
        if let Some(before) = &self.nurl {
            assert_eq!(
                nurl.to_string(),
                before.to_string(),
                "a restart keeps the port and identity"
            );
        }
        self.nurl = Some(nurl.clone());
        nurl
    }

    /// Kills the node with SIGKILL and reaps it.
    ///
    /// # Panics
    /// If it is not running, or had already exited (it should never stop by itself).
    pub async fn kill(&mut self) {
        let mut child = self.child.take().expect("the node is running");
        let exited_before = child.try_wait().expect("try_wait");
        child.start_kill().expect("SIGKILL");
        child.wait().await.expect("reaping the node");
        self.stdout = None;
        assert!(
            exited_before.is_none(),
            "the node had exited by itself ({exited_before:?}); {}",
            self.log_tail(30)
        );
    }

    /// Stops the node the way an operator does (SIGTERM: a graceful shutdown) and
    /// waits for it to exit.
    ///
    /// # Panics
    /// If it is not running, does not exit within a minute, or exits with an error.
    pub async fn stop(&mut self) {
        use rustix::process::{Pid, Signal, kill_process};
        let mut child = self.child.take().expect("the node is running");
        let pid = child
            .id()
            .and_then(|id| Pid::from_raw(id as i32))
            .expect("a running child has a pid");
        kill_process(pid, Signal::TERM).expect("SIGTERM");
        let status = tokio::time::timeout(START_TIMEOUT, child.wait())
            .await
            .unwrap_or_else(|_| panic!("no exit within {START_TIMEOUT:?} of SIGTERM"))
            .expect("reaping the node");
        self.stdout = None;
        assert!(status.success(), "{status}; {}", self.log_tail(30));
    }

    /// How many times the node was spawned.
    pub fn starts(&self) -> u32 {
        self.starts
    }

    /// The last `lines` lines of the node's log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        let tail = all[all.len().saturating_sub(lines)..].join("\n");
        format!(
            "node log ({}), last lines:\n{tail}",
            self.log_path().display()
        )
    }
}
