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
        create.arg(&dir);
        for s in &servers {
            create.arg("--nurl").arg(s.nurl.to_string());
        }
        let out = create.output().await.expect("create-client");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
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
    assert_eq!(node.ok(&["create-alias", "work:"]).await, "Alias 'work' created\n");
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
    assert_eq!(node.ok(&["add-alias", "tahoe", cap]).await, "Alias 'tahoe' added\n");
    assert_eq!(
        node.ok(&["list-aliases"]).await,
        format!("  tahoe: {cap}\n   work: {cap}\n")
    );
    let ro = node.ok(&["list-aliases", "--readonly-uri"]).await;
    assert!(ro.lines().all(|l| l.contains(": URI:DIR2-RO:")), "{ro}");
    let json: serde_json::Value =
        serde_json::from_str(&node.ok(&["list-aliases", "--json"]).await).expect("JSON");
    assert_eq!(json["work"]["readwrite"], cap);
    assert!(json["work"]["readonly"].as_str().unwrap().starts_with("URI:DIR2-RO:"));

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
        listing,
        "big.bin\nempty/\nnothing\nsmall.txt\nsub/\n",
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
        node.ok(&["cp", "work:new/one.txt", "work:linked.txt"]).await,
        "Success: file linked\n"
    );
    node.ok(&["cp", "src/small.txt", "src/big.bin", "work:new"]).await;
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
    node.ok(&["cp", "-r", "--caps-only", "work:src", "caps"]).await;
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
        (&["cp", "-r", "src", "one.txt"], "cannot copy directory into a file\n"),
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
    let _ = &node.servers;
}
