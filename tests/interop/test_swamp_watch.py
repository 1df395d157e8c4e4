"""`tahoe watch` (Swamp's CLI) follows directories changed by the real Tahoe-LAFS 1.20
CLI: on Swamp nodes through their change feeds, on Python nodes by polling.

Each change is timed from the moment the real `tahoe` command returned to the moment
the watcher printed its line; with WATCH_LATENCY_OUT set, the latencies are written
there as JSON (load-tests/watch-latency.sh turns them into the benchmark table).
The tests only require that every change shows up; the 1 s target is a benchmark.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
from pathlib import Path

import pytest

import interop_lib as L

pytestmark = pytest.mark.swamp

WAIT = 30.0
LATENCIES: list[dict] = []
WRITER = ["real"]  # which `tahoe` makes the changes: the real one, or Swamp's




@pytest.fixture(scope="module")
def grid(swamp_grid):
    return swamp_grid


def teardown_module(_module):
    out = os.environ.get("WATCH_LATENCY_OUT")
    if out and LATENCIES:
        Path(out).write_text(json.dumps(LATENCIES, indent=1))


class Watcher:
    """A running `tahoe watch --json`; its stdout lines arrive on a queue with the
    time each was read."""

    def __init__(self, nodedir: Path, *args: str):
        argv = [str(L.swamp_tahoe_bin()), "-d", str(nodedir), "watch", "--json", *args]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines: queue.Queue = queue.Queue()
        self.stderr: list[str] = []
        self.notices: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read(self):
        for raw in self.proc.stdout:
            self.lines.put((time.monotonic(), json.loads(raw)))
        self.lines.put((time.monotonic(), None))

    def _read_err(self):
        for raw in self.proc.stderr:
            self.stderr.append(raw.decode("utf-8", "replace"))

    def expect(self, what: str, **fields) -> tuple[float, dict]:
        """The next event whose fields match; earlier non-matching events are
        skipped only if they are notices."""
        deadline = time.monotonic() + WAIT
        while True:
            left = deadline - time.monotonic()
            try:
                at, event = self.lines.get(timeout=max(left, 0.01))
            except queue.Empty:
                raise AssertionError(f"no {what} {fields} within {WAIT}s; stderr: {''.join(self.stderr)[-2000:]}")
            assert event is not None, f"watch ended early; stderr: {''.join(self.stderr)[-2000:]}"
            if event["event"] == "notice":
                self.notices.append(event["message"])
                continue
            assert event["event"] == what and all(event.get(k) == v for k, v in fields.items()), (
                f"expected {what} {fields}, got {event}"
            )
            return at, event

    def stop(self):
        L.terminate(self.proc)


def timed(grid, watcher: Watcher, label: str, args: list[str], what: str, **fields) -> dict:
    started = time.monotonic()
    if WRITER[0] == "real":
        grid.client.cli(*args)
    else:
        L.run_cmd([str(L.swamp_tahoe_bin()), "-d", str(grid.client.nodedir), *args], timeout=120)
    done = time.monotonic()
    at, event = watcher.expect(what, **fields)
    # Negative: the line was printed before the writer's `tahoe` process had exited.
    LATENCIES.append({"change": f"{label} ({WRITER[0]} tahoe)", "after_return": at - done, "after_start": at - started})
    return event


@pytest.mark.parametrize("writer", ["real", "swamp"])
def test_watch_follows_changes_made_by_the_real_tahoe_cli(grid, tmp_path, writer):
    """Changes made with the real `tahoe` CLI (and, the same steps, with Swamp's)."""
    WRITER[0] = writer
    dircap = grid.client.web_mkdir()
    w = Watcher(grid.client.nodedir, "--recursive", dircap)
    try:
        w.expect("ready")
        small, big = tmp_path / "small", tmp_path / "big"
        small.write_bytes(b"hello watcher")
        big.write_bytes(os.urandom(100_000))
        name = "café ☕.txt"

        ev = timed(grid, w, "add", ["put", str(small), f"{dircap}/{name}"], "added", path=name)
        assert (ev["kind"], ev["size"], ev["cap_type"]) == ("file", 13, "LIT")

        ev = timed(grid, w, "replace", ["put", str(big), f"{dircap}/{name}"], "modified", path=name)
        assert (ev["size"], ev["cap_type"]) == (100_000, "CHK")
        assert ev["old"]["cap_type"] == "LIT"

        ev = timed(grid, w, "mkdir", ["mkdir", f"{dircap}/sub"], "added", path="sub")
        assert (ev["kind"], ev["cap_type"]) == ("dir", "DIR2")

        ev = timed(grid, w, "mkdir MDMF", ["mkdir", "--format=MDMF", f"{dircap}/m"], "added", path="m")
        assert ev["cap_type"] == "DIR2-MDMF"
        timed(grid, w, "add in MDMF dir", ["put", str(small), f"{dircap}/m/y"], "added", path="m/y")

        ev = timed(grid, w, "nested mkdir", ["mkdir", f"{dircap}/sub/deeper"], "added", path="sub/deeper")
        ev = timed(grid, w, "nested add", ["put", str(small), f"{dircap}/sub/deeper/x"], "added", path="sub/deeper/x")

        timed(grid, w, "rm", ["unlink", f"{dircap}/{name}"], "removed", path=name)
        timed(grid, w, "rm dir", ["unlink", f"{dircap}/sub"], "removed", path="sub")
        # The removed subtree is no longer followed: a change inside it prints nothing,
        # and the next change at the top is the next line.
        grid.client.web("PUT", f"{L.TahoeClient._q(dircap)}/after", data=b"z" * 80)
        w.expect("added", path="after")
    finally:
        w.stop()


def test_watch_snapshot_then_mutable_file_versions(grid):
    dircap = grid.client.web_mkdir()
    grid.client.web("PUT", f"{L.TahoeClient._q(dircap)}/present", data=b"p" * 70)
    w = Watcher(grid.client.nodedir, "--snapshot", dircap)
    try:
        ev = w.expect("exists", path="present")
        assert ev[1]["size"] == 70
        w.expect("ready")
    finally:
        w.stop()

    filecap = grid.client.web("PUT", "uri?format=MDMF", data=b"v1").decode().strip()
    w = Watcher(grid.client.nodedir, "--snapshot", filecap)
    try:
        _, first = w.expect("version")
        w.expect("ready")
        grid.client.web("PUT", f"uri/{filecap}", data=b"version two")
        _, second = w.expect("version", size=len(b"version two"))
        assert second["seqnum"] > first["seqnum"]
    finally:
        w.stop()


def test_watch_survives_a_server_restart(grid, tmp_path):
    dircap = grid.client.web_mkdir()
    w = Watcher(grid.client.nodedir, dircap)
    try:
        w.expect("ready")
        for node in grid.nodes:
            node.stop()
            node.start()
        grid.client.wait_for_servers(len(grid.nodes))
        grid.client.web("PUT", f"{L.TahoeClient._q(dircap)}/after-restart", data=b"r" * 90)
        w.expect("added", path="after-restart")
    finally:
        w.stop()


def test_watch_polls_servers_without_feeds(workdir_factory):
    g = L.build_grid(workdir_factory("python-watch-grid"), L.PYTHON, n_servers=1, needed=1, happy=1, total=1)
    try:
        dircap = g.client.web_mkdir()
        w = Watcher(g.client.nodedir, "--poll-interval", "0.3", dircap)
        try:
            w.expect("ready")
            g.client.web("PUT", f"{L.TahoeClient._q(dircap)}/polled", data=b"q" * 60)
            w.expect("added", path="polled")
            assert any("no change feed" in n for n in w.notices), w.notices
        finally:
            w.stop()
    finally:
        g.stop()
