"""The real magic-folder 24.3 with Swamp's `tahoe magic-folder-push`.

One grid for the module: three Swamp storage nodes, Tahoe 1.20 client nodes for
alice and bob, a magic-folder daemon for each, sharing the folder "docs" with
magic-folder's own polling at an hour (so within a test's time only the bridge can
make bob's daemon look). alice's changes are made the way a user makes them: a file
written or deleted in her local folder, then a local scan asked through her daemon's
API; each test waits until her personal directory holds the new snapshot, so the
change is on the grid before bob's side is watched.

"Arrives" means bob's local file has alice's bytes (or is gone) within ARRIVAL
seconds: generous for a loaded CI machine, and still nothing polling could do with a
poll interval of an hour. The reaction times themselves are measured by
load-tests/magic-folder-bench.py.
"""

from __future__ import annotations

import os
import time

import pytest

import mf_lib as M

L = M.L

FOLDER = "docs"
POLL_INTERVAL = 3600
ARRIVAL = 15.0
# alice's files as they should be everywhere: name -> bytes (None: deleted).
EXPECTED: dict[str, bytes | None] = {}


@pytest.fixture(scope="module")
def grid(mf_base):
    M.require_binaries()
    g = M.build_mf_grid(mf_base / "grid", ["alice", "bob"], [FOLDER],
                        poll_interval=POLL_INTERVAL, scan_interval=POLL_INTERVAL)
    yield g
    g.stop()


@pytest.fixture
def bridge(grid):
    """The bridge for bob, past its start-up poll."""
    b = grid.bridge("bob").start()
    try:
        b.wait_following([FOLDER])
        yield b
    finally:
        b.stop()


def alice_entry(grid, name: str):
    """alice's personal-directory entry for name (its snapshot cap), or None."""
    children = grid.clients["alice"].web_ls(grid.personal_dircap("alice", FOLDER))[1]["children"]
    entry = children.get(name)
    return entry[1].get("ro_uri") if entry else None


def alice_changes(grid, name: str, data: bytes | None) -> None:
    """alice writes (or, with None, deletes) a file in her folder and scans; returns
    once her personal directory holds the new snapshot."""
    path = grid.local("alice", FOLDER) / name
    before = alice_entry(grid, name)
    if data is None:
        path.unlink()
    else:
        tmp = path.with_name(f".{name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    EXPECTED[name] = data
    grid.daemons["alice"].scan(FOLDER)
    L.wait_until(lambda: alice_entry(grid, name) not in (None, before), 60,
                 f"alice's snapshot of {name} in her personal directory",
                 procs=[grid.daemons["alice"].proc])


def bob_has(grid, name: str, data: bytes | None) -> bool:
    path = grid.local("bob", FOLDER) / name
    if data is None:
        return not path.exists()
    try:
        return path.read_bytes() == data
    except FileNotFoundError:
        return False


def arrives(grid, name: str, data: bytes | None, timeout: float = ARRIVAL, procs=()) -> None:
    what = f"bob's folder to {'lose' if data is None else 'have alice’s ' + str(len(data)) + ' bytes of'} {name}"
    L.wait_until(lambda: bob_has(grid, name, data), timeout, what,
                 procs=[grid.daemons["bob"].proc, *procs])


def payload(tag: str, size: int = 3000) -> bytes:
    return (tag.encode() + b"\n") + os.urandom(size)


def test_without_the_bridge_a_change_does_not_arrive(grid):
    alice_changes(grid, "quiet.txt", payload("quiet"))
    deadline = time.monotonic() + ARRIVAL
    while time.monotonic() < deadline:
        assert not (grid.local("bob", FOLDER) / "quiet.txt").exists(), \
            "bob's daemon fetched alice's change without the bridge: is it polling after all?"
        time.sleep(0.5)
    # With the bridge started, its start-up poll brings the change in.
    b = grid.bridge("bob").start()
    try:
        arrives(grid, "quiet.txt", EXPECTED["quiet.txt"], procs=[b.proc])
    finally:
        b.stop()


def test_a_new_file_arrives(grid, bridge):
    n = len(bridge.polls(FOLDER))
    alice_changes(grid, "new.bin", payload("new", 70_000))
    arrives(grid, "new.bin", EXPECTED["new.bin"], procs=[bridge.proc])
    caused = [p for p in bridge.polls(FOLDER)[n:] if "alice" in p.get("causes", [])]
    assert caused, f"no poll caused by alice in {bridge.polls(FOLDER)[n:]}"


def test_a_modification_arrives(grid, bridge):
    alice_changes(grid, "edit.txt", payload("v1"))
    arrives(grid, "edit.txt", EXPECTED["edit.txt"], procs=[bridge.proc])
    alice_changes(grid, "edit.txt", payload("v2", 500))
    arrives(grid, "edit.txt", EXPECTED["edit.txt"], procs=[bridge.proc])


def test_a_deletion_arrives(grid, bridge):
    # magic-folder 24.3 records a deletion as a snapshot without content; a
    # participant downloading it removes its local file.
    alice_changes(grid, "doomed.txt", payload("doomed"))
    arrives(grid, "doomed.txt", EXPECTED["doomed.txt"], procs=[bridge.proc])
    alice_changes(grid, "doomed.txt", None)
    arrives(grid, "doomed.txt", None, procs=[bridge.proc])


def test_bob_daemon_restart_loses_nothing(grid, bridge):
    bob = grid.daemons["bob"]
    old_endpoint = bob.endpoint()
    bob.stop()
    alice_changes(grid, "while-bob-down.txt", payload("down"))
    bob.start()
    print(f"bob's daemon API: {old_endpoint} before the restart, {bob.endpoint()} after")
    arrives(grid, "while-bob-down.txt", EXPECTED["while-bob-down.txt"], procs=[bridge.proc])
    # The bridge found the restarted daemon (new port, re-read token): a change now
    # is pushed, not left to the hour's poll.
    alice_changes(grid, "after-bob-restart.txt", payload("after"))
    arrives(grid, "after-bob-restart.txt", EXPECTED["after-bob-restart.txt"], procs=[bridge.proc])


def test_storage_node_restart_loses_nothing(grid, bridge):
    node = grid.nodes[0]
    node.stop()
    try:
        # 2-of-3 with happy 2: alice can still upload to the other two.
        alice_changes(grid, "while-node-down.txt", payload("node-down"))
        arrives(grid, "while-node-down.txt", EXPECTED["while-node-down.txt"], procs=[bridge.proc])
    finally:
        node.start()
    alice_changes(grid, "after-node-back.txt", payload("node-back"))
    arrives(grid, "after-node-back.txt", EXPECTED["after-node-back.txt"], procs=[bridge.proc])


def test_a_folder_added_is_followed_at_once(grid):
    """magic-folder's status stream announces a new folder; the bridge follows it at
    once instead of at its 30 s refresh of the folder list."""
    b = grid.bridge("alice").start()
    try:
        b.wait_following([FOLDER])
        grid.daemons["alice"].create_folder("later", grid.local("alice", "later"),
                                            POLL_INTERVAL, POLL_INTERVAL)
        L.wait_until(lambda: "later" in {e["folder"] for e in b.events("following")}, ARRIVAL,
                     "alice's bridge to follow the new folder", procs=[b.proc])
    finally:
        b.stop()


def test_bob_ends_with_exactly_alices_files(grid):
    """Nothing lost and nothing extra over the whole module (runs last)."""
    want = {name: data for name, data in EXPECTED.items() if data is not None}
    folder = grid.local("bob", FOLDER)
    have = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    assert sorted(have) == sorted(want)
    for name, data in want.items():
        assert have[name] == data, name
    alice = {p.name for p in grid.local("alice", FOLDER).iterdir() if p.is_file()}
    assert alice == set(want)
