"""HTML forms, posted as a browser posts them from Tahoe's pages, to a Python
Tahoe 1.20 client node and to a Swamp client node on the same grid (same secrets,
so convergent uploads give the same caps): the same statuses, redirects and caps.
The one intended difference: Swamp refuses a `when_done=` naming another site.
"""

from __future__ import annotations

import http.client
import json
import os
import urllib.parse

import pytest

from test_gateway_cli import grid, node  # noqa: F401  (module fixtures)

pytestmark = pytest.mark.swamp

BOUNDARY = "----interopFormBoundary"


def multipart(parts: list[tuple[str, str | None, bytes]]) -> bytes:
    out = b""
    for name, filename, data in parts:
        fn = f'; filename="{filename}"' if filename is not None else ""
        out += (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"{fn}\r\n\r\n"
                .encode() + data + b"\r\n")
    return out + f"--{BOUNDARY}--\r\n".encode()


def request(base: str, method: str, path: str, body: bytes = b"",
            content_type: str | None = None) -> tuple[int, dict, bytes]:
    """One request, redirects not followed."""
    u = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    headers = {"Content-Type": content_type} if content_type else {}
    conn.request(method, path, body=body, headers=headers)
    r = conn.getresponse()
    out = (r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    conn.close()
    return out


def form(base: str, path: str, parts) -> tuple[int, dict, bytes]:
    return request(base, "POST", path, multipart(parts),
                   f"multipart/form-data; boundary={BOUNDARY}")


def children(base: str, dircap: str) -> dict:
    status, _, body = request(base, "GET", f"/uri/{urllib.parse.quote(dircap, safe='')}?t=json")
    assert status == 200, body
    return {k: v[1].get("ro_uri") for k, v in json.loads(body)[1]["children"].items()}


def test_forms_answer_as_on_a_python_node(grid, node):  # noqa: F811
    bases = {"python": grid.client.url, "swamp": node.url}
    data = os.urandom(3000)
    got: dict[str, dict] = {}
    for who, base in bases.items():
        seen: dict = {}
        # The welcome page's mkdir form: a 303 to uri/$DIRCAP.
        status, headers, _ = form(base, "/uri", [
            ("format", None, b"sdmf"), ("t", None, b"mkdir"),
            ("redirect_to_result", None, b"true")])
        assert status == 303, who
        assert headers["location"].startswith("uri/URI%3ADIR2%3A"), (who, headers)
        dircap = urllib.parse.unquote(headers["location"][len("uri/"):])
        here = f"/uri/{urllib.parse.quote(dircap, safe='')}/"

        # The directory page's upload form: a 302 to when_done.
        status, headers, body = form(base, here, [
            ("t", None, b"upload"), ("when_done", None, b"."),
            ("file", "hello.txt", data), ("format", None, b"chk")])
        assert (status, headers.get("location")) == (302, "."), (who, status, body)
        # No name anywhere: "unknown-filename"; spaces only, or a slash: 400.
        status, _, _ = form(base, here + "?t=upload", [("file", "", b"x")])
        seen["nameless"] = status
        status, _, _ = form(base, here + "?t=upload", [("name", None, b"  "), ("file", "", b"x")])
        seen["spaces"] = status
        status, _, _ = form(base, here + "?t=upload", [("name", None, b"a/b"), ("file", "f", b"x")])
        seen["slash"] = status
        # Without when_done: the cap as text, the same cap on both nodes.
        status, _, body = form(base, here + "?t=upload", [("name", None, b"plain"), ("file", "f", data)])
        seen["plain"] = (status, body.strip())
        status, _, body = form(base, "/uri?t=upload&format=sdmf", [("file", "f", b"small")])
        seen["mutable"] = (status, body.startswith(b"URI:SSK:"))
        # replace=false on an existing name: 409.
        status, _, _ = form(base, here + "?t=upload&replace=false",
                            [("name", None, b"hello.txt"), ("file", "f", b"other")])
        seen["no-replace"] = status

        # mkdir and rename through forms, unlink as the listing's button (URL-encoded).
        status, headers, _ = form(base, here, [
            ("t", None, b"mkdir"), ("name", None, b"sub"), ("when_done", None, b".")])
        seen["mkdir"] = (status, headers.get("location"))
        status, _, page = request(base, "GET", here + "?t=rename-form&name=sub")
        assert status == 200 and b'value="rename"' in page and b"sub" in page, who
        status, headers, _ = form(base, here, [
            ("t", None, b"rename"), ("from_name", None, b"sub"),
            ("to_name", None, b"renamed"), ("when_done", None, b".")])
        seen["rename"] = (status, headers.get("location"))
        status, headers, _ = request(base, "POST", here, b"t=unlink&name=renamed&when_done=.",
                                     "application/x-www-form-urlencoded")
        seen["unlink"] = (status, headers.get("location"))
        seen["children"] = children(base, dircap)

        # An unlinked upload with when_done=%(uri)s: a 302 to the new file.
        status, headers, _ = form(base, "/uri?t=upload", [
            ("file", "a", data), ("when_done", None, b"/uri/%(uri)s")])
        assert status == 302, who
        seen["unlinked"] = urllib.parse.urlsplit(headers["location"]).path
        # Without when_done: an HTML page holding the cap.
        status, headers, page = form(base, "/uri", [("t", None, b"upload"), ("file", "a", data)])
        assert status == 200 and headers["content-type"].startswith("text/html"), who
        seen["page-has-cap"] = seen["children"]["hello.txt"].encode() in page

        # Another site in when_done: Python follows it, Swamp refuses (400).
        status, headers, _ = form(base, here, [
            ("t", None, b"mkdir"), ("name", None, b"x"),
            ("when_done", None, b"http://example.org/")])
        seen["off-site"] = status
        got[who] = seen

    assert got["python"].pop("off-site") == 302
    assert got["swamp"].pop("off-site") == 400
    assert got["python"] == got["swamp"]
    assert got["swamp"]["nameless"] == 200
    assert got["swamp"]["spaces"] == got["swamp"]["slash"] == 400
    assert got["swamp"]["no-replace"] == 409
    assert got["swamp"]["mkdir"] == (302, ".")
    assert sorted(got["swamp"]["children"]) == ["hello.txt", "plain", "unknown-filename"]
    assert got["swamp"]["plain"][0] == 200 and got["swamp"]["mutable"] == (200, True)
    assert got["swamp"]["page-has-cap"]
