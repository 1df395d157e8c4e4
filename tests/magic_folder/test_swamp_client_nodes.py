"""The real magic-folder 24.3 on Swamp client nodes: alice's and bob's daemons talk
to `tahoe run` of Swamp's CLI (the web API of swamp-gateway) instead of Python
client nodes, on three Swamp storage nodes, with no Python client node anywhere.

magic-folder's own polling is set to an hour; each step asks the daemons through
their API (scan the local folder, poll the remote side), so what is tested is the
web API they use: uploads, immutable snapshot directories with signed metadata,
links into personal directories, listings and downloads.
"""

from __future__ import annotations

import os
import urllib.parse

import pytest

import mf_lib as M

L = M.L

FOLDER = "shared"
POLL_INTERVAL = 3600


@pytest.fixture(scope="module")
def grid(mf_base):
    M.require_binaries()
    g = M.build_mf_grid(mf_base / "swamp-clients", ["alice", "bob"], [FOLDER],
                        poll_interval=POLL_INTERVAL, scan_interval=POLL_INTERVAL,
                        client_node=M.SwampClientNode)
    yield g
    g.stop()


def change(grid, who: str, name: str, data: bytes | None) -> None:
    """who writes (or, with None, deletes) a file and scans; returns once its
    personal directory holds the new snapshot."""
    daemon, client = grid.daemons[who], grid.clients[who]
    personal = grid.personal_dircap(who, FOLDER)

    def entry():
        children = client.web_ls(personal)[1]["children"]
        e = children.get(name)
        return e[1].get("ro_uri") if e else None

    before = entry()
    path = grid.local(who, FOLDER) / name
    if data is None:
        path.unlink()
    else:
        tmp = path.with_name(f".{name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    daemon.scan(FOLDER)
    L.wait_until(lambda: entry() not in (None, before), 60, f"{who}'s snapshot of {name}",
                 procs=[daemon.proc, client.proc])


def arrives(grid, who: str, name: str, data: bytes | None) -> None:
    """who's daemon polls (the change is on the grid already), and its folder ends
    up with data (or without name). A poll answers once done; the download it starts
    may take a moment more, so each poll gets a while before the next."""
    daemon = grid.daemons[who]
    path = grid.local(who, FOLDER) / name

    def there():
        if data is None:
            return not path.exists()
        return path.exists() and path.read_bytes() == data

    for attempt in range(3):
        daemon.api("PUT", f"magic-folder/{urllib.parse.quote(FOLDER, safe='')}/poll-remote")
        try:
            L.wait_until(there, 15, f"{name} at {who}'s", interval=0.2,
                         procs=[daemon.proc, grid.clients[who].proc])
            return
        except L.WaitTimeout:
            if attempt == 2:
                raise


def test_files_added_changed_and_deleted_propagate_both_ways(grid):
    one = b"from alice\n" + os.urandom(70_000)
    change(grid, "alice", "one.bin", one)
    arrives(grid, "bob", "one.bin", one)

    two = b"from bob\n" + os.urandom(2_000)
    change(grid, "bob", "two.txt", two)
    arrives(grid, "alice", "two.txt", two)

    edited = b"alice again\n" + os.urandom(500)
    change(grid, "alice", "one.bin", edited)
    arrives(grid, "bob", "one.bin", edited)

    change(grid, "bob", "two.txt", None)
    arrives(grid, "alice", "two.txt", None)
