"""`t=watch` of a Swamp client node (`tahoe run`), read with nothing but Python's
standard library over plain HTTP, while the real Tahoe 1.20 CLI changes the directory
through a *Python* client node on the same Swamp grid: the push endpoint sees another
writer's changes, and sends the very objects Swamp's `tahoe watch --json` prints.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request

import pytest

import interop_lib as L
from test_gateway_cli import cli, node, out  # noqa: F401 (node is a fixture)
from test_swamp_watch import Watcher

pytestmark = pytest.mark.swamp

WAIT = 60.0


@pytest.fixture(scope="module")
def grid(swamp_grid):
    return swamp_grid


class EventStream:
    """One `text/event-stream` response, event by event (`id`, JSON `data`)."""

    def __init__(self, response):
        self.response = response

    def event(self) -> tuple[str | None, dict]:
        event_id, data = None, []
        while True:
            line = self.response.readline()
            assert line, "the stream ended"
            line = line.decode().rstrip("\r\n")
            if not line:
                if data:
                    return event_id, json.loads("".join(data))
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "id":
                event_id = value
            elif field == "data":
                data.append(value)

    def change(self) -> dict:
        """The next event that is not a notice (its id is its cursor)."""
        while True:
            event_id, event = self.event()
            assert event_id == event["cursor"], event
            if event["event"] != "notice":
                return event


def watch_url(node, cap: str, query: str) -> str:
    return f"{node.url}uri/{urllib.parse.quote(cap, safe='')}?t=watch&{query}"


def test_plain_http_client_gets_a_python_writers_change_as_tahoe_watch_json(grid, node, tmp_path):
    py = grid.client.nodedir
    root = out(cli(node.nodedir, "mkdir"))
    token = (node.nodedir / "private" / "api_auth_token").read_text().strip()

    # Without the token: 401, with the header Tahoe's clients use.
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(watch_url(node, root, ""), timeout=WAIT)
    assert refused.value.code == 401
    assert refused.value.headers["WWW-Authenticate"] == "tahoe-lafs"

    watcher = Watcher(node.nodedir, root)
    try:
        request = urllib.request.Request(
            watch_url(node, root, "snapshot=true"),
            headers={"Authorization": f"tahoe-lafs {token}"},
        )
        with urllib.request.urlopen(request, timeout=WAIT) as response:
            assert response.headers["Content-Type"] == "text/event-stream"
            stream = EventStream(response)
            assert stream.change()["event"] == "ready"
            watcher.expect("ready")

            src = tmp_path / "by-python.txt"
            src.write_bytes(os.urandom(2000))
            cli(py, "put", src, f"{root}/by-python.txt")
            pushed = stream.change()
            _, printed = watcher.expect("added", path="by-python.txt")
            cursor = pushed.pop("cursor")
            assert pushed == printed, "the same object as tahoe watch --json"
            assert pushed["size"] == 2000
            assert pushed["ro_uri"] == out(cli(py, "ls", "--uri", f"{root}/by-python.txt")).split()[-1]

        # The cursor resumes: what happened while away comes first.
        cli(py, "unlink", f"{root}/by-python.txt")
        with urllib.request.urlopen(watch_url(node, root, f"token={urllib.parse.quote(token)}&cursor={cursor}"),
                                    timeout=WAIT) as response:
            removed = EventStream(response).change()
            assert removed["event"] == "removed" and removed["path"] == "by-python.txt", removed
    finally:
        watcher.proc.terminate()
        watcher.proc.wait(timeout=L.STOP_TIMEOUT)
