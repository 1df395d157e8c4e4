//! The `tahoe` command line, run as a program on a client node directory made by its
//! own `create-client`, against three real storage servers (2-of-3): aliases, `cp`
//! both ways and grid to grid, `backup` twice, `check` and `deep-check` after shares
//! are deleted, `manifest`. Output is compared with Tahoe's words.

use std::path::{Path, PathBuf};
use std::process::Output;

use swamp_tests::{TestServer, random_bytes};
use tokio::process::Command;

/// A client node directory and its servers.
struct Node {
    servers: [TestServer; 3],
    _base: tempfile::TempDir,
    dir: PathBuf,
    /// A scratch directory for local files.
    local: PathBuf,
}

impl Node {
    async fn new() -> Self {
        Self::with_args(&[]).await
    }

    /// A node directory made with these extra `create-client` arguments.
    async fn with_args(extra: &[&str]) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let servers = TestServer::three().await;
        let base = tempfile::tempdir().expect("tempdir");
        let dir = base.path().join("client");
        let mut create = Command::new(swamp_tests::child::tahoe_binary());
        create.args([
            "create-client",
            "--shares-needed=2",
            "--shares-happy=3",
            "--shares-total=3",
        ]);
        create.args(extra).arg(&dir);
        for s in &servers {
            create.arg("--nurl").arg(s.nurl.to_string());
        }
        let out = create.output().await.expect("create-client");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let local = base.path().join("local");
        std::fs::create_dir(&local).expect("local dir");
        Self {
            servers,
            _base: base,
            dir,
            local,
        }
    }

    /// Runs `tahoe -d DIR args...` in the scratch directory.
    async fn tahoe(&self, args: &[&str]) -> Output {
        Command::new(swamp_tests::child::tahoe_binary())
            .arg("-d")
            .arg(&self.dir)
            .args(args)
            .current_dir(&self.local)
            .output()
            .await
            .expect("tahoe runs")
    }

    /// Runs it, expects success, returns stdout.
    async fn ok(&self, args: &[&str]) -> String {
        let out = self.tahoe(args).await;
        assert!(
            out.status.success(),
            "tahoe {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8 output")
    }

    /// Runs it, expects exit code `code`, returns stderr.
    async fn fails(&self, code: i32, args: &[&str]) -> String {
        let out = self.tahoe(args).await;
        assert_eq!(
            out.status.code(),
            Some(code),
            "tahoe {args:?}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).expect("UTF-8 output")
    }
}

/// Every file under `root`, by relative path, with its contents.
fn tree(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path.clone());
                out.push((
                    format!("{}/", path.strip_prefix(root).unwrap().display()),
                    Vec::new(),
                ));
            } else {
                let rel = path.strip_prefix(root).unwrap().display().to_string();
                out.push((rel, std::fs::read(&path).expect("read")));
            }
        }
    }
    out.sort();
    out
}

/// A local tree: a big file, a small one, an empty one, a non-ASCII name, nested
/// and empty directories.
fn make_tree(root: &Path) {
    std::fs::create_dir_all(root.join("sub/deeper")).unwrap();
    std::fs::create_dir_all(root.join("empty")).unwrap();
    std::fs::write(root.join("big.bin"), random_bytes(300_000)).unwrap();
    std::fs::write(root.join("small.txt"), b"tiny").unwrap();
    std::fs::write(root.join("nothing"), b"").unwrap();
    std::fs::write(root.join("sub/ünï ☂.txt"), random_bytes(5000)).unwrap();
    std::fs::write(root.join("sub/deeper/leaf"), b"leaf").unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aliases_are_made_listed_and_refused_as_tahoe_does() {
    let node = Node::new().await;
    assert_eq!(
        node.ok(&["create-alias", "work:"]).await,
        "Alias 'work' created\n"
    );
    assert_eq!(
        node.fails(1, &["create-alias", "work"]).await,
        "Alias 'work' already exists!\n"
    );
    assert_eq!(
        node.fails(1, &["create-alias", "a:b"]).await,
        "Alias names cannot contain colons.\n"
    );
    assert_eq!(
        node.fails(1, &["add-alias", "a b", "URI:LIT:"]).await,
        "Alias names cannot contain spaces.\n"
    );
    let aliases = std::fs::read_to_string(node.dir.join("private/aliases")).unwrap();
    let cap = aliases
        .strip_prefix("work: ")
        .and_then(|rest| rest.strip_suffix('\n'))
        .expect("one line: work: CAP");
    assert!(cap.starts_with("URI:DIR2:"), "{cap}");
    assert_eq!(
        node.ok(&["add-alias", "tahoe", cap]).await,
        "Alias 'tahoe' added\n"
    );
    assert_eq!(
        node.ok(&["list-aliases"]).await,
        format!("  tahoe: {cap}\n   work: {cap}\n")
    );
    let ro = node.ok(&["list-aliases", "--readonly-uri"]).await;
    assert!(ro.lines().all(|l| l.contains(": URI:DIR2-RO:")), "{ro}");
    let json: serde_json::Value =
        serde_json::from_str(&node.ok(&["list-aliases", "--json"]).await).expect("JSON");
    assert_eq!(json["work"]["readwrite"], cap);
    assert!(
        json["work"]["readonly"]
            .as_str()
            .unwrap()
            .starts_with("URI:DIR2-RO:")
    );

    // The new alias works, for the default alias too, and unlink says Tahoe's words.
    std::fs::write(node.local.join("f"), b"data").unwrap();
    node.ok(&["put", "f", "work:f"]).await;
    assert_eq!(node.ok(&["ls", "tahoe:"]).await, "f\n");
    assert_eq!(node.ok(&["unlink", "f"]).await, "200 OK\n");
    assert_eq!(
        node.fails(1, &["unlink", "work:"]).await,
        "\n'tahoe unlink' can only unlink directory entries, so a path must be given.\n"
    );
    assert_eq!(
        node.fails(1, &["ls", "nosuch:"]).await,
        "error: Unknown alias 'nosuch', please create it with 'tahoe add-alias' or 'tahoe create-alias'.\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cp_copies_trees_both_ways_and_between_grid_directories() {
    let node = Node::new().await;
    node.ok(&["create-alias", "work"]).await;
    let src = node.local.join("src");
    make_tree(&src);

    // A named local directory is copied as a directory under the target.
    assert_eq!(
        node.ok(&["cp", "-r", "src", "work:"]).await,
        "Success: files copied\n"
    );
    let listing = node.ok(&["ls", "-F", "work:src"]).await;
    assert_eq!(
        listing, "big.bin\nempty/\nnothing\nsmall.txt\nsub/\n",
        "{listing}"
    );
    // Back again, into a directory that does not exist yet.
    node.ok(&["cp", "-r", "work:src", "back"]).await;
    assert_eq!(tree(&node.local.join("back/src")), tree(&src));
    // An unnamed source (the alias itself) has its contents copied.
    node.ok(&["cp", "-r", "work:", "contents"]).await;
    assert_eq!(tree(&node.local.join("contents/src")), tree(&src));

    // Grid to grid: immutable files are linked, so the caps stay the same.
    node.ok(&["cp", "-r", "work:src", "work:copy"]).await;
    let caps = |listing: String| {
        listing
            .lines()
            .filter(|l| l.contains("URI:CHK:"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        caps(node.ok(&["ls", "--uri", "work:copy/src/sub"]).await),
        caps(node.ok(&["ls", "--uri", "work:src/sub"]).await)
    );

    // One file: to a local file, to a grid file, into a directory by its name.
    assert_eq!(
        node.ok(&["cp", "work:src/small.txt", "one.txt"]).await,
        "Success: file copied\n"
    );
    assert_eq!(std::fs::read(node.local.join("one.txt")).unwrap(), b"tiny");
    assert_eq!(
        node.ok(&["cp", "one.txt", "work:new/one.txt"]).await,
        "Success: file copied\n"
    );
    assert_eq!(
        node.ok(&["cp", "work:new/one.txt", "work:linked.txt"])
            .await,
        "Success: file linked\n"
    );
    node.ok(&["cp", "src/small.txt", "src/big.bin", "work:new"])
        .await;
    assert_eq!(
        node.ok(&["ls", "work:new"]).await,
        "big.bin\none.txt\nsmall.txt\n"
    );
    // A mutable file at the target is written in place: its cap stays.
    let mutable = node.ok(&["put", "--mutable", "one.txt", "work:m"]).await;
    node.ok(&["cp", "src/big.bin", "work:m"]).await;
    let listed = node.ok(&["ls", "--uri", "work:m"]).await;
    assert!(listed.contains(mutable.trim()), "{listed}");
    node.ok(&["cp", "work:m", "m.out"]).await;
    assert_eq!(
        std::fs::read(node.local.join("m.out")).unwrap(),
        std::fs::read(src.join("big.bin")).unwrap()
    );

    // --caps-only writes the caps instead of the data.
    node.ok(&["cp", "-r", "--caps-only", "work:src", "caps"])
        .await;
    let cap = std::fs::read_to_string(node.local.join("caps/src/big.bin")).unwrap();
    assert!(cap.starts_with("URI:CHK:"), "{cap}");

    // Tahoe's refusals, word for word.
    for (args, said) in [
        (
            &["cp", "src", "work:x"][..],
            "cannot copy directories without --recursive\n",
        ),
        (
            &["cp", "src/small.txt", "work:y/"],
            "target is not a directory, but ends with a slash\n",
        ),
        (
            &["cp", "src/small.txt", "src/big.bin", "one.txt"],
            "copying multiple things requires target be a directory\n",
        ),
        (
            &["cp", "-r", "src", "one.txt"],
            "cannot copy directory into a file\n",
        ),
        (
            &["cp", "work:nope", "x"],
            "No such file or directory 'work:nope'\n",
        ),
        (
            &["cp", "src/small.txt", "back/src/small.txt", "work:new"],
            "cannot copy multiple files with the same name into the same target directory\n",
        ),
    ] {
        assert_eq!(node.fails(1, args).await, said, "{args:?}");
    }

    // A symlink back up the tree is not followed round: the copy ends, without it.
    std::os::unix::fs::symlink("..", src.join("sub/up")).unwrap();
    node.ok(&["cp", "-r", "src", "work:looped"]).await;
    assert_eq!(
        node.ok(&["ls", "work:looped/src/sub"]).await,
        "deeper\nünï ☂.txt\n"
    );
}

/// The summary line of a backup (its last but one line).
fn summary(out: &str) -> &str {
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines
            .last()
            .is_some_and(|l| l.starts_with(" backup done, elapsed time: ")),
        "{out}"
    );
    lines[lines.len() - 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_makes_archives_and_reuses_what_did_not_change() {
    let node = Node::new().await;
    node.ok(&["create-alias", "work"]).await;
    let src = node.local.join("src");
    make_tree(&src);

    let first = node.ok(&["backup", "src", "work:bk"]).await;
    // A progress line per file and directory, then Tahoe's summary.
    assert!(first.starts_with("Backing up 1/9... 0h 0m "), "{first}");
    assert!(first.contains("Backing up 9/9... "), "{first}");
    assert_eq!(
        summary(&first),
        " 5 files uploaded (0 reused), 0 files skipped, 4 directories created (0 reused), 0 directories skipped"
    );
    assert_eq!(node.ok(&["ls", "work:bk"]).await, "Archives\nLatest\n");
    let archives = node.ok(&["ls", "--uri", "work:bk/Archives"]).await;
    let (name, snapshot) = archives.trim().split_once(' ').expect("one archive");
    assert!(
        name.len() == 20 && name.ends_with('Z') && name.as_bytes()[10] == b'_',
        "{name}"
    );
    assert!(snapshot.starts_with("URI:DIR2-CHK:"), "{snapshot}");
    let latest = node.ok(&["ls", "--uri", "work:bk"]).await;
    assert!(latest.contains(&format!("Latest {snapshot}")), "{latest}");
    assert_eq!(
        node.ok(&["ls", "-F", "work:bk/Latest"]).await,
        "big.bin\nempty/\nnothing\nsmall.txt\nsub/\n"
    );
    assert_eq!(
        node.ok(&["get", "work:bk/Latest/sub/deeper/leaf"]).await,
        "leaf"
    );
    // Each link carries the local file's stat, as Tahoe's backup writes it.
    let listing: serde_json::Value =
        serde_json::from_str(&node.ok(&["ls", "--json", "work:bk/Latest"]).await).unwrap();
    let metadata = &listing[1]["children"]["small.txt"][1]["metadata"];
    let keys: Vec<&String> = metadata.as_object().expect("metadata").keys().collect();
    assert_eq!(
        keys,
        [
            "ctime", "mtime", "st_mode", "st_ino", "st_dev", "st_uid", "st_gid"
        ]
    );
    use std::os::unix::fs::MetadataExt;
    let stat = std::fs::metadata(src.join("small.txt")).unwrap();
    assert_eq!(metadata["st_ino"], stat.ino());
    assert_eq!(
        metadata["mtime"].as_f64().map(|t| t as i64),
        Some(stat.mtime())
    );

    // Nothing changed: everything reused, the same snapshot.
    let second = node.ok(&["backup", "-v", "src", "work:bk"]).await;
    assert_eq!(
        summary(&second).trim_end(),
        " 0 files checked, 0 directories checked"
    );
    assert!(
        second.contains(
            " 0 files uploaded (5 reused), 0 files skipped, 0 directories created (4 reused), 0 directories skipped"
        ),
        "{second}"
    );
    assert!(second.contains("skipping '"), "{second}");
    assert!(second.contains(" re-using old directory for '"), "{second}");
    assert!(
        node.ok(&["ls", "--uri", "work:bk"])
            .await
            .contains(&format!("Latest {snapshot}")),
        "the same snapshot"
    );

    // One deep file changed: it, and the directories above it, are new.
    std::fs::write(src.join("sub/deeper/leaf"), b"a longer leaf").unwrap();
    let third = node.ok(&["backup", "src", "work:bk"]).await;
    assert_eq!(
        summary(&third),
        " 1 files uploaded (4 reused), 0 files skipped, 3 directories created (1 reused), 0 directories skipped"
    );
    assert_eq!(
        node.ok(&["get", "work:bk/Latest/sub/deeper/leaf"]).await,
        "a longer leaf"
    );

    // --exclude (and --exclude-from-utf-8) leave names out; a symlink is skipped
    // with Tahoe's warning, exit 2.
    std::os::unix::fs::symlink("small.txt", src.join("link")).unwrap();
    std::fs::write(node.local.join("excluded"), "\n  *.bin  \n").unwrap();
    let out = node
        .tahoe(&[
            "backup",
            "--exclude-from-utf-8",
            "excluded",
            "src",
            "work:bk",
        ])
        .await;
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        stderr,
        format!(
            "WARNING: cannot backup symlink '{}'\n",
            src.join("link").display()
        )
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        summary(&stdout),
        " 0 files uploaded (4 reused), 1 files skipped, 1 directories created (3 reused), 0 directories skipped"
    );
    assert_eq!(
        node.ok(&["ls", "work:bk/Latest"]).await,
        "empty\nnothing\nsmall.txt\nsub\n"
    );

    // The record is Swamp's own file; --no-backupdb uploads everything again.
    assert!(node.dir.join("private/backupdb.jsonl").exists());
    std::fs::remove_file(src.join("link")).unwrap();
    let all = node
        .ok(&["backup", "--no-backupdb", "src", "work:bk"])
        .await;
    assert_eq!(
        summary(&all),
        " 5 files uploaded (0 reused), 0 files skipped, 4 directories created (0 reused), 0 directories skipped"
    );
}

/// Deletes one share of the file `cap` from whichever server holds it.
fn delete_a_share(servers: &[TestServer], cap: &str) {
    let cap: swamp_formats::cap::Cap = cap.trim().parse().expect("a cap");
    let si = cap.storage_index().expect("a storage index");
    for server in servers {
        for shnum in 0..3 {
            let path = swamp_tests::share_file(&server.shares_dir(), &si, shnum);
            if std::fs::remove_file(&path).is_ok() {
                return;
            }
        }
    }
    panic!("no share to delete");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_and_deep_check_report_and_repair_in_tahoes_words() {
    let node = Node::new().await;
    node.ok(&["create-alias", "work"]).await;
    std::fs::write(node.local.join("big"), random_bytes(300_000)).unwrap();
    std::fs::write(node.local.join("lit"), b"tiny").unwrap();
    let big = node.ok(&["put", "big", "work:big"]).await;
    node.ok(&["put", "lit", "work:lit"]).await;
    node.ok(&["put", "lit", "work:sub/f"]).await;
    let si = big
        .trim()
        .parse::<swamp_formats::cap::Cap>()
        .unwrap()
        .storage_index()
        .unwrap()
        .to_base32();

    assert_eq!(
        node.ok(&["check", "work:big"]).await,
        format!(
            "Summary: Healthy\n storage index: {si}\n good-shares: 3 (encoding is 2-of-3)\n wrong-shares: 0\n"
        )
    );
    assert_eq!(
        node.ok(&["check", "work:lit"]).await,
        "Summary: Healthy (LIT)\n storage index: \n"
    );
    let raw = node.ok(&["check", "--raw", "--verify", "work:big"]).await;
    assert!(
        raw.starts_with("{\n \"storage-index\": ") && raw.ends_with("}\n\n"),
        "{raw}"
    );
    let json: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(json["summary"], "Healthy");
    assert_eq!(
        node.ok(&["deep-check", "work:"]).await,
        "done: 5 objects checked, 5 healthy, 0 unhealthy\n"
    );

    delete_a_share(&node.servers, &big);
    let unhealthy = node.ok(&["check", "work:big"]).await;
    assert!(
        unhealthy.starts_with("Summary: Not Healthy")
            && unhealthy.contains(" good-shares: 2 (encoding is 2-of-3)\n"),
        "{unhealthy}"
    );
    let deep = node.ok(&["deep-check", "-v", "work:"]).await;
    assert!(deep.contains("\n'big': Not Healthy"), "{deep}");
    assert!(deep.starts_with("'<root>': Healthy\n"), "{deep}");
    assert!(
        deep.ends_with("done: 5 objects checked, 4 healthy, 1 unhealthy\n"),
        "{deep}"
    );
    let raw = node.ok(&["deep-check", "--raw", "work:"]).await;
    let lines: Vec<serde_json::Value> = raw
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 6, "five objects and the stats");
    assert!(lines[..5].iter().all(|l| l["check-results"].is_object()));
    assert_eq!(lines[5]["type"], "stats");

    let repaired = node.ok(&["deep-check", "--repair", "work:"]).await;
    assert!(
        repaired.ends_with(
            " repair successful\ndone: 5 objects checked\n pre-repair: 4 healthy, 1 unhealthy\n 1 repairs attempted, 1 successful, 0 failed\n post-repair: 5 healthy, 0 unhealthy\n"
        ),
        "{repaired}"
    );
    assert!(
        node.ok(&["check", "work:big"])
            .await
            .starts_with("Summary: Healthy\n")
    );
    // One file, check --repair: Tahoe's lines for a file that needed none.
    assert_eq!(
        node.ok(&["check", "--repair", "work:big"]).await,
        format!(
            "Summary: healthy\n storage index: {si}\n good-shares: 3 (encoding is 2-of-3)\n wrong-shares: 0\n"
        )
    );
    delete_a_share(&node.servers, &big);
    assert!(
        node.ok(&["check", "--repair", "work:big"])
            .await
            .ends_with(" wrong-shares: 0\n repair successful\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifest_and_stats_walk_the_tree_in_tahoes_words() {
    let node = Node::new().await;
    node.ok(&["create-alias", "work"]).await;
    std::fs::write(node.local.join("big"), random_bytes(300_000)).unwrap();
    std::fs::write(node.local.join("lit"), b"tiny").unwrap();
    let big = node.ok(&["put", "big", "work:big"]).await;
    let lit = node.ok(&["put", "lit", "work:sub/ü f"]).await;
    let mutable = node.ok(&["put", "--mutable", "lit", "work:m"]).await;
    let root = std::fs::read_to_string(node.dir.join("private/aliases")).unwrap();
    let root = root.trim().strip_prefix("work: ").unwrap().to_string();
    let sub = node.ok(&["ls", "--uri", "work:"]).await;
    let sub = sub
        .lines()
        .find_map(|l| l.strip_prefix("sub "))
        .expect("sub listed")
        .to_string();

    // Tahoe's order: the directory, its files by name, then each subdirectory.
    assert_eq!(
        node.ok(&["manifest", "work:"]).await,
        format!(
            "{root} \n{big} big\n{mutable} m\n{sub} sub\n{lit} sub/ü f\n",
            big = big.trim(),
            mutable = mutable.trim(),
            lit = lit.trim()
        )
    );
    let sis = node.ok(&["manifest", "--storage-index", "work:"]).await;
    assert_eq!(sis.lines().count(), 4, "no line for the LIT file: {sis}");
    let verify = node.ok(&["manifest", "--verify-cap", "work:"]).await;
    assert!(
        verify.lines().any(|l| l.starts_with("URI:CHK-Verifier:")),
        "{verify}"
    );
    let raw = node.ok(&["manifest", "--raw", "work:"]).await;
    let last: serde_json::Value = serde_json::from_str(raw.lines().last().unwrap()).unwrap();
    assert_eq!(last["type"], "stats");
    assert_eq!(last["stats"]["count-files"], 3);

    let stats = node.ok(&["stats", "work:"]).await;
    assert!(stats.starts_with("Counts and Total Sizes:\n"), "{stats}");
    for line in [
        "\n count-immutable-files: 1\n",
        "\n   count-mutable-files: 1\n",
        "\n   count-literal-files: 1\n",
        "\n           count-files: 3\n",
        "\n     count-directories: 2\n",
        "\n  size-immutable-files: 300000    (300.00 kB, 292.97 kiB)\n",
        "\nlargest-immutable-file: 300000    (300.00 kB, 292.97 kiB)\n",
        "\nSize Histogram:\n",
        "\n     4-10     : 1    (10 B, 10 B)\n",
        "\n     ...\n",
        "100001-316227 : 1    (316.23 kB, 308.82 kiB)\n",
    ] {
        assert!(stats.contains(line), "{line:?} in\n{stats}");
    }
    let raw: serde_json::Value =
        serde_json::from_str(&node.ok(&["stats", "--raw", "work:"]).await).unwrap();
    assert_eq!(raw["finished"], true);
    assert_eq!(raw["count-directories"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reads_the_running_node_as_tahoe_does() {
    use std::process::Stdio;
    use tokio::io::AsyncBufReadExt;
    let node = Node::with_args(&["--webport=tcp:0:interface=127.0.0.1"]).await;
    // No node running yet: Tahoe's message and exit code.
    std::fs::write(node.dir.join("node.url"), "http://127.0.0.1:1/\n").unwrap();
    std::fs::write(node.dir.join("private/api_auth_token"), "token\n").unwrap();
    let said = node.fails(2, &["status"]).await;
    assert!(said.starts_with("failed to retrieve data: "), "{said}");
    std::fs::remove_file(node.dir.join("node.url")).unwrap();

    let mut child = Command::new(swamp_tests::child::tahoe_binary())
        .arg("run")
        .arg(&node.dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("tahoe run");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    tokio::time::timeout(std::time::Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.expect("a line") {
            if line.contains("client running") {
                return;
            }
        }
        panic!("tahoe run ended before it was running");
    })
    .await
    .expect("running in time");

    let idle = node.ok(&["status"]).await;
    assert!(
        idle.contains("    uploaded 0 B in 0 files\n  downloaded 0 B in 0 files\n\nNo active operations.\nNo recent operations.\n"),
        "{idle}"
    );
    let url = std::fs::read_to_string(node.dir.join("node.url")).unwrap();
    let http = reqwest::Client::new();
    let data = random_bytes(200_000);
    let cap = http
        .put(format!("{}uri", url.trim()))
        .body(data.clone())
        .send()
        .await
        .expect("put")
        .text()
        .await
        .expect("cap");
    let got = http
        .get(format!("{}uri/{cap}", url.trim()))
        .send()
        .await
        .expect("get")
        .bytes()
        .await
        .expect("body");
    assert_eq!(got.len(), data.len());
    let si = cap
        .parse::<swamp_formats::cap::Cap>()
        .unwrap()
        .storage_index()
        .unwrap()
        .to_base32();
    let busy = node.ok(&["status"]).await;
    assert!(busy.starts_with("Statistics (for last "), "{busy}");
    for line in [
        "    uploaded 200.00 kB in 1 files\n",
        "  downloaded 200.00 kB in 1 files\n",
        "\nRecent operations:\n\u{2553} type  \u{2565} storage index",
        &format!("\u{2551}  get  \u{2551} {si} \u{2551} 200.00 kB  \u{2551} Finished\n"),
        &format!("\u{2551}  put  \u{2551} {si} \u{2551} 200.00 kB  \u{2551} Finished\n"),
    ] {
        assert!(busy.contains(line), "{line:?} in\n{busy}");
    }
    drop(child.stdin.take());
    let _ = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait()).await;
}
