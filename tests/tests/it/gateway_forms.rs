//! HTML forms on the client node's web API: what a browser posts to Tahoe's pages
//! (`multipart/form-data` with `t=`, `name=`, `when_done=` as fields, a file part
//! named `file`), against a gateway over three real servers. Uploads are streamed to
//! the spool directory, which is empty afterwards; every bound answers 400 or 413.

use futures::SinkExt;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use swamp_gateway::Limits;
use swamp_tests::random_bytes;

use crate::gateway::{Node, node_with, seg};

const BOUNDARY: &str = "----swampFormBoundary7MA4YWxk";

/// A part: field name, file name (for a file input), contents.
type Part<'a> = (&'a str, Option<&'a str>, &'a [u8]);

fn multipart(parts: &[Part<'_>]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, filename, data) in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        let filename = filename.map_or(String::new(), |f| format!("; filename=\"{f}\""));
        body.extend_from_slice(
            format!("Content-Disposition: form-data; name=\"{name}\"{filename}\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

async fn post(
    node: &Node,
    path: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> (StatusCode, HeaderMap, String) {
    let response = node
        .http
        .post(format!("{}{path}", node.url))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("request");
    let (status, headers) = (response.status(), response.headers().clone());
    (status, headers, response.text().await.expect("body"))
}

async fn post_form(node: &Node, path: &str, parts: &[Part<'_>]) -> (StatusCode, HeaderMap, String) {
    let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
    post(node, path, &content_type, multipart(parts)).await
}

async fn get(node: &Node, path: &str) -> (StatusCode, Vec<u8>) {
    let response = node
        .http
        .get(format!("{}{path}", node.url))
        .send()
        .await
        .expect("get");
    let status = response.status();
    (status, response.bytes().await.expect("body").to_vec())
}

async fn mkdir(node: &Node) -> String {
    node.ok_text(reqwest::Method::POST, "/uri?t=mkdir", "")
        .await
}

fn spool_is_empty(node: &Node) -> bool {
    std::fs::read_dir(node.spool_dir()).map_or(true, |mut d| d.next().is_none())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn form_uploads_link_into_directories_with_name_and_replace() {
    let node = node_with(Limits::default()).await;
    let dir = mkdir(&node).await;
    let here = format!("/uri/{}", seg(&dir));
    let first = random_bytes(3000);

    // Tahoe's own directory form: t= and when_done= are fields, the name is the file's.
    let (status, _, cap) = post_form(
        &node,
        &format!("{here}/"),
        &[
            ("t", None, b"upload"),
            ("file", Some("hello.txt"), &first),
            ("format", None, b"chk"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{cap}");
    assert!(cap.starts_with("URI:CHK:"), "{cap}");
    assert_eq!(get(&node, &format!("{here}/hello.txt")).await.1, first);

    // name= (a field) wins over the file's name; replace=false refuses an existing child.
    let second = random_bytes(2000);
    let (status, _, _) = post_form(
        &node,
        &format!("{here}?t=upload"),
        &[("name", None, b"hello.txt"), ("file", Some("x"), &second)],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(get(&node, &format!("{here}/hello.txt")).await.1, second);
    let (status, _, text) = post_form(
        &node,
        &format!("{here}?t=upload&replace=false"),
        &[("name", None, b"hello.txt"), ("file", Some("x"), &first)],
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{text}");
    assert_eq!(get(&node, &format!("{here}/hello.txt")).await.1, second);

    // A path: missing directories are made, the last name is the file's.
    let (status, _, text) = post_form(
        &node,
        &format!("{here}/sub/deeper.bin?t=upload"),
        &[("file", None, &first)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(get(&node, &format!("{here}/sub/deeper.bin")).await.1, first);

    // No name anywhere: Tahoe's "unknown-filename". Only spaces, or a slash: 400.
    let (status, _, _) = post_form(
        &node,
        &format!("{here}?t=upload"),
        &[("name", None, b""), ("file", Some(""), b"data")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        get(&node, &format!("{here}/unknown-filename")).await.1,
        b"data"
    );
    for (name, filename) in [(&b"  "[..], Some("")), (b"a/b", Some("f"))] {
        let (status, _, text) = post_form(
            &node,
            &format!("{here}?t=upload"),
            &[("name", None, name), ("file", filename, b"data")],
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    }

    // A mutable file there is overwritten in place: its cap stays.
    let (status, _, mutable) = post_form(
        &node,
        &format!("{here}?t=upload&format=MDMF"),
        &[
            ("name", None, b"notes"),
            ("file", Some("n"), b"version one"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(mutable.starts_with("URI:MDMF:"), "{mutable}");
    let (_, _, again) = post_form(
        &node,
        &format!("{here}/notes?t=upload"),
        &[("file", Some("n"), b"version two")],
    )
    .await;
    assert_eq!(again, mutable);
    assert_eq!(get(&node, &format!("{here}/notes")).await.1, b"version two");
    assert!(spool_is_empty(&node));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlinked_form_uploads_answer_as_tahoe() {
    let node = node_with(Limits::default()).await;
    let data = random_bytes(5000);

    // Immutable: Tahoe's "File Uploaded" page, with the cap.
    let (status, headers, page) = post_form(
        &node,
        "/uri",
        &[("file", Some("a"), &data), ("t", None, b"upload")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let start = page.find("URI:CHK:").expect("a cap on the page");
    let cap: String = page[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == ':')
        .collect();
    assert_eq!(get(&node, &format!("/uri/{}", seg(&cap))).await.1, data);

    // when_done= with %(uri)s: a 302 to the new file.
    let (status, headers, _) = post_form(
        &node,
        "/uri?t=upload",
        &[
            ("file", Some("a"), &data),
            ("when_done", None, b"/uri/%(uri)s?t=json"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::FOUND);
    let location = headers["location"].to_str().unwrap();
    assert_eq!(location, format!("/uri/{}?t=json", seg(&cap)));

    // Mutable: the cap as text.
    let (status, _, cap) = post_form(
        &node,
        "/uri?t=upload&format=sdmf",
        &[("file", Some("a"), b"small")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(cap.starts_with("URI:SSK:"), "{cap}");
    assert_eq!(get(&node, &format!("/uri/{}", seg(&cap))).await.1, b"small");

    // No file part: 400.
    let (status, _, _) = post_form(&node, "/uri?t=upload", &[("name", None, b"x")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(spool_is_empty(&node));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_form_upload_is_streamed_through_the_spool() {
    let node = node_with(Limits::default()).await;
    let dir = mkdir(&node).await;
    let data = random_bytes(20 << 20);
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&data);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    // Sent in 64 KiB pieces through a channel: the first half, then (once the spool
    // file holds most of it, so it was written as it came) the rest.
    let (mut pieces, receiver) =
        futures::channel::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let request = node
        .http
        .post(format!("{}/uri/{}?t=upload", node.url, seg(&dir)))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(reqwest::Body::wrap_stream(receiver))
        .send();
    let request = tokio::spawn(request);
    let half = body.len() / 2;
    for piece in body[..half].chunks(64 << 10) {
        pieces.send(Ok(piece.to_vec())).await.expect("send");
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let spooled: u64 = std::fs::read_dir(node.spool_dir())
            .map(|d| {
                d.flatten()
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0);
        if spooled >= (half as u64) - (1 << 20) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "only {spooled} of the {half} bytes sent reached the spool file"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for piece in body[half..].chunks(64 << 10) {
        pieces.send(Ok(piece.to_vec())).await.expect("send");
    }
    drop(pieces);
    let response = request.await.expect("task").expect("request");
    let status = response.status();
    let cap = response.text().await.expect("body");
    assert_eq!(status, StatusCode::OK, "{cap}");
    let (status, got) = get(&node, &format!("/uri/{}/big.bin", seg(&dir))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(got == data, "the 20 MiB came back changed");
    assert!(spool_is_empty(&node), "the spool file is gone");

    // Over max_upload: 413, and nothing is left in the spool.
    let small = node_with(Limits {
        max_upload: 1 << 20,
        ..Limits::default()
    })
    .await;
    let dir = mkdir(&small).await;
    let big = random_bytes(2 << 20);
    let (status, _, _) = post_form(
        &small,
        &format!("/uri/{}?t=upload", seg(&dir)),
        &[("file", Some("big"), &big)],
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(spool_is_empty(&small));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_forms_are_refused() {
    let node = node_with(Limits::default()).await;
    let dir = mkdir(&node).await;
    let path = format!("/uri/{}?t=upload", seg(&dir));
    let form_type = format!("multipart/form-data; boundary={BOUNDARY}");

    // No closing boundary (the body ends inside the file part).
    let mut cut = multipart(&[("file", Some("f"), b"some data")]);
    cut.truncate(cut.len() - BOUNDARY.len() - 10);
    let (status, _, text) = post(&node, &path, &form_type, cut).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    assert!(text.contains("malformed multipart"), "{text}");

    // No boundary= at all; a part without a name; not form-data.
    let (status, _, _) = post(&node, &path, "multipart/form-data", "x").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let nameless =
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data\r\n\r\nx\r\n--{BOUNDARY}--\r\n");
    let (status, _, _) = post(&node, &path, &form_type, nameless).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Too many parts; a field too long; headers too long: 413.
    let many: Vec<Part<'_>> = (0..100).map(|_| ("x", None, &b"1"[..])).collect();
    let (status, _, text) = post_form(&node, &path, &many).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{text}");
    let long = vec![b'a'; 70 * 1024];
    let (status, _, _) = post_form(&node, &path, &[("name", None, &long)]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let header = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{}\"\r\n\r\nx\r\n--{BOUNDARY}--\r\n",
        "n".repeat(10_000)
    );
    let (status, _, _) = post(&node, &path, &form_type, header).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    // Two file parts.
    let (status, _, _) = post_form(
        &node,
        &path,
        &[("file", Some("a"), b"1"), ("file", Some("b"), b"2")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(spool_is_empty(&node));
    // The directory is untouched.
    let (_, listing) = get(&node, &format!("/uri/{}?t=json", seg(&dir))).await;
    let listing: serde_json::Value = serde_json::from_slice(&listing).expect("json");
    assert_eq!(listing[1]["children"], serde_json::json!({}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_done_redirects_home_and_never_off_site() {
    let node = node_with(Limits::default()).await;
    let dir = mkdir(&node).await;
    let here = format!("/uri/{}/", seg(&dir));

    // mkdir from the directory page's form: a 302 back to ".".
    let (status, headers, _) = post_form(
        &node,
        &here,
        &[
            ("t", None, b"mkdir"),
            ("when_done", None, b"."),
            ("name", None, b"made"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(headers["location"], ".");
    // The same with this node's own absolute URL is followed.
    let own = format!("{}/uri/{}/", node.url, seg(&dir));
    let (status, headers, _) = post_form(
        &node,
        &format!("{here}?t=uri&name=again"),
        &[
            ("uri", None, dir.as_bytes()),
            ("when_done", None, own.as_bytes()),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(headers["location"].to_str().unwrap(), own);

    // rename (t=rename-form's form), then unlink as the listing's button sends it
    // (URL-encoded, no enctype).
    let (status, _, _) = post_form(
        &node,
        &here,
        &[
            ("t", None, b"rename"),
            ("when_done", None, b"."),
            ("from_name", None, b"made"),
            ("to_name", None, b"renamed"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::FOUND);
    let (status, headers, _) = post(
        &node,
        &here,
        "application/x-www-form-urlencoded",
        "t=unlink&name=renamed&when_done=.",
    )
    .await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(headers["location"], ".");
    let (_, listing) = get(&node, &format!("{here}?t=json")).await;
    let listing: serde_json::Value = serde_json::from_slice(&listing).expect("json");
    let children = listing[1]["children"].as_object().expect("children");
    assert_eq!(children.keys().collect::<Vec<_>>(), ["again"]);

    // Off-site: refused before anything is done.
    for far in [
        "http://example.org/",
        "//example.org/",
        "https://example.org@evil/",
    ] {
        let (status, _, text) = post_form(
            &node,
            &here,
            &[
                ("t", None, b"mkdir"),
                ("name", None, b"never"),
                ("when_done", None, far.as_bytes()),
            ],
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{far}: {text}");
    }
    let (status, _) = get(&node, &format!("{here}never?t=json")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A failed operation is answered, not redirected.
    let (status, _, _) = post_form(
        &node,
        &here,
        &[
            ("t", None, b"unlink"),
            ("name", None, b"missing"),
            ("when_done", None, b"."),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mkdir_redirect_to_result_and_the_pages_with_forms() {
    let node = node_with(Limits::default()).await;

    // The welcome page's form: fields in a multipart body, a 303 to the new directory.
    let (status, headers, _) = post_form(
        &node,
        "/uri",
        &[
            ("format", None, b"mdmf"),
            ("t", None, b"mkdir"),
            ("redirect_to_result", None, b"true"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let location = headers["location"].to_str().unwrap().to_string();
    assert!(location.starts_with("uri/URI%3ADIR2-MDMF%3A"), "{location}");
    let (status, _) = get(&node, &format!("/{location}?t=json")).await;
    assert_eq!(status, StatusCode::OK);
    // In the query, too; without it, the cap as text.
    let (status, headers, _) = post(
        &node,
        "/uri?t=mkdir&redirect_to_result=true",
        "text/plain",
        "",
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        headers["location"]
            .to_str()
            .unwrap()
            .starts_with("uri/URI%3ADIR2%3A")
    );
    let dir = mkdir(&node).await;
    assert!(dir.starts_with("URI:DIR2:"));

    // The rename form: the name escaped, posting t=rename back to the directory.
    let evil = "<b>\"x\"&";
    let (status, page) = get(
        &node,
        &format!(
            "/uri/{}?t=rename-form&name={}",
            seg(&dir),
            "%3Cb%3E%22x%22%26"
        ),
    )
    .await;
    let page = String::from_utf8(page).expect("html");
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(!page.contains(evil));
    assert!(
        page.contains("value=\"&lt;b&gt;&quot;x&quot;&amp;\""),
        "{page}"
    );
    assert!(page.contains("name=\"t\" value=\"rename\""));
    assert!(page.contains(&format!("action=\"/uri/{}/\"", seg(&dir))));

    // A child with a hostile name: listed escaped, with its unlink and rename forms.
    node.ok_text(
        reqwest::Method::PUT,
        &format!("/uri/{}/{}", seg(&dir), "%3Cscript%3E"),
        "x",
    )
    .await;
    let (_, page) = get(&node, &format!("/uri/{}/", seg(&dir))).await;
    let page = String::from_utf8(page).expect("html");
    assert!(!page.contains("<script>"), "{page}");
    assert!(page.contains("name=\"name\" value=\"&lt;script&gt;\""));
    for t in ["upload", "mkdir", "uri", "unlink", "rename-form"] {
        assert!(page.contains(&format!("name=\"t\" value=\"{t}\"")), "{t}");
    }
    // A read-only directory has none.
    let readonly = node
        .ok_text(
            reqwest::Method::GET,
            &format!("/uri/{}?t=readonly-uri", seg(&dir)),
            "",
        )
        .await;
    let (_, page) = get(&node, &format!("/uri/{}/", seg(&readonly))).await;
    let page = String::from_utf8(page).expect("html");
    assert!(page.contains("directory is read-only"));
    assert!(!page.contains("value=\"unlink\""));

    let (_, page) = get(&node, "/").await;
    let page = String::from_utf8(page).expect("html");
    assert!(page.contains("enctype=\"multipart/form-data\""));
    assert!(page.contains("name=\"redirect_to_result\" value=\"true\""));
}

/// A page (on another origin) whose script fills a form like the directory page's
/// upload form, puts a file in its file input, and submits it natively into a frame:
/// Chromium's own multipart encoding, then the `when_done=` redirect followed.
fn upload_page(action: &str) -> String {
    format!(
        r#"<!DOCTYPE html><html><body>
<iframe name="target"></iframe>
<form id="f" action="{action}" method="post" enctype="multipart/form-data" target="target">
<input type="hidden" name="t" value="upload"><input type="hidden" name="when_done" value=".">
<input type="file" name="file" id="file"></form>
<script>{}
window.addEventListener("load", () => {{
  const data = new DataTransfer();
  data.items.add(new File(["from a browser\r\n--not a boundary\r\n"], "café ünïcode.txt"));
  document.getElementById("file").files = data.files;
  document.querySelector("iframe").onload = () => report({{ kind: "frame_loaded" }});
  document.getElementById("f").submit();
  report({{ kind: "submitted" }});
}});
</script></body></html>"#,
        crate::browser_kit::REPORT_JS
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_uploads_through_the_directory_form() {
    use crate::browser_kit::{Browser, chromium_present, serve_pages};
    if !chromium_present() {
        return;
    }
    let node = node_with(Limits::default()).await;
    let dir = mkdir(&node).await;
    let action = format!("{}/uri/{}/", node.url, seg(&dir));
    let (tx, mut reports) = tokio::sync::mpsc::unbounded_channel();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let pages_addr = listener.local_addr().expect("address");
    let pages = std::collections::HashMap::from([("/upload.html", upload_page(&action))]);
    tokio::spawn(serve_pages(listener, std::sync::Arc::new(pages), tx));
    let mut browser = Browser::launch(None, &format!("http://{pages_addr}/upload.html"));
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    browser
        .wait_for(&mut reports, &mut seen, deadline, |r| {
            r["kind"] == "frame_loaded"
        })
        .await;
    let (status, got) = get(
        &node,
        &format!("/uri/{}/caf%C3%A9%20%C3%BCn%C3%AFcode.txt", seg(&dir)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{seen:?}");
    assert_eq!(got, b"from a browser\r\n--not a boundary\r\n");
    assert!(spool_is_empty(&node));
}
