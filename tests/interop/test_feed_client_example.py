"""examples/python/feed_client.py, the standard-library feed client written from
docs/feeds.md alone, against a real Swamp node: a change the real Tahoe client makes
to a mutable file shows up as a `slot_changed` event; after the feed client is stopped
and the file changed again, a restarted client resumes from its saved cursor and gets
only the new change.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from allmydata import uri
from allmydata.util import base32

import interop_lib as L

pytestmark = pytest.mark.swamp

WAIT = 30.0
CLIENT = Path(__file__).resolve().parents[2] / "examples" / "python" / "feed_client.py"


@pytest.fixture(scope="module")
def grid(swamp_grid):
    return swamp_grid


class FeedClient:
    """The example as a child process; its JSON lines arrive on a queue."""

    def __init__(self, nurl: str, state: Path, si: str):
        self.proc = subprocess.Popen([sys.executable, str(CLIENT), nurl, str(state), si],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines: queue.Queue = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read(self):
        for raw in self.proc.stdout:
            self.lines.put(json.loads(raw))
        self.lines.put(None)

    def _read_err(self):
        for raw in self.proc.stderr:
            self.stderr.append(raw.decode("utf-8", "replace"))

    def next_event(self) -> dict:
        try:
            event = self.lines.get(timeout=WAIT)
        except queue.Empty:
            raise AssertionError(f"no event within {WAIT}s; stderr: {''.join(self.stderr)[-2000:]}")
        assert event is not None, f"the client ended; stderr: {''.join(self.stderr)[-2000:]}"
        return event

    def until(self, pred) -> list[dict]:
        """Events up to and including the first that satisfies `pred`."""
        seen = []
        while True:
            seen.append(self.next_event())
            if pred(seen[-1]):
                return seen

    def stop(self):
        L.terminate(self.proc)


def saved_cursor(state: Path):
    try:
        return json.loads(state.read_text())["cursor"]
    except FileNotFoundError:
        return None


def wait_saved(state: Path, cursor: str) -> None:
    """The client saves a cursor after printing its event: wait for it on disk."""
    L.wait_until(lambda: saved_cursor(state) == cursor, WAIT, f"cursor {cursor} saved")


def test_python_feed_client_follows_and_resumes_from_its_cursor(grid, tmp_path):
    cap = grid.client.web_upload(b"version 1", fmt="MDMF")
    si = base32.b2a(uri.from_string(cap).get_storage_index()).decode()
    nurl = grid.nodes[0].nurl()
    state = tmp_path / "cursor.json"

    client = FeedClient(nurl, state, si)
    try:
        # Without a cursor the stream starts with `progress`: the subscription is live.
        first = client.next_event()
        assert first["type"] == "progress", first
        grid.client.web_put(cap, b"version 2")
        changed = client.until(lambda e: e["type"] == "slot_changed")[-1]
        assert (changed["si"], changed["seqnum"]) == (si, 2)
        wait_saved(state, changed["cursor"])
    finally:
        client.stop()
    saved = changed["cursor"]

    # Changed while the client is away: it must resume after the saved cursor, so the
    # first change it reports is version 3, never the creation or version 2 again.
    grid.client.web_put(cap, b"version 3")
    client = FeedClient(nurl, state, si)
    try:
        events = client.until(lambda e: e["type"] == "slot_changed")
        assert [e["type"] for e in events] == ["slot_changed"], events
        assert (events[0]["si"], events[0]["seqnum"]) == (si, 3)
        assert events[0]["cursor"] != saved
        wait_saved(state, events[0]["cursor"])
    finally:
        client.stop()
