"""Swamp's `tahoe` CLI behaves like the real one: `ls` prints the same lines as the
real `tahoe ls` for the same directory, paths and aliases resolve the same way, the
exit codes match, and `tahoe create-client` makes a node directory that a real Tahoe
client node runs on.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

import interop_lib as L

pytestmark = pytest.mark.swamp




@pytest.fixture(scope="module")
def grid(swamp_grid):
    return swamp_grid


def swamp(nodedir, *args, check=True) -> subprocess.CompletedProcess:
    return L.run_cmd([L.swamp_tahoe_bin(), "-d", nodedir, *args], timeout=120, check=check)


def real(grid, *args, check=True) -> subprocess.CompletedProcess:
    env = dict(os.environ, TZ="UTC")
    cp = subprocess.run([L.tahoe_bin(), "-d", str(grid.client.nodedir), *args],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120, env=env)
    if check:
        assert cp.returncode == 0, cp.stderr.decode()
    return cp


@pytest.fixture(scope="module")
def tree(grid, tmp_path_factory):
    """A directory made with the real CLI: files of several kinds, a subdirectory,
    a non-ASCII name; also registered as the `work:` alias."""
    tmp = tmp_path_factory.mktemp("tree")
    dircap = grid.client.web_mkdir()
    small, big = tmp / "small", tmp / "big"
    small.write_bytes(b"tiny")
    big.write_bytes(os.urandom(70_000))
    real(grid, "put", str(small), f"{dircap}/lit.txt")
    real(grid, "put", str(big), f"{dircap}/big.bin")
    real(grid, "put", "--mutable", str(small), f"{dircap}/mutable.txt")
    real(grid, "mkdir", f"{dircap}/sub")
    real(grid, "put", str(small), f"{dircap}/sub/ünïcode ☂.txt")
    real(grid, "add-alias", "work", dircap)
    return dircap


@pytest.mark.parametrize("flags", [[], ["-l"], ["--uri"], ["--readonly-uri"], ["-F"], ["-l", "-F", "--uri"]])
def test_ls_prints_what_real_tahoe_prints(grid, tree, flags):
    for where in [tree, f"{tree}/sub", "work:", "work:sub", f"{tree}/big.bin"]:
        want = real(grid, "ls", *flags, where).stdout.decode()
        got = swamp(grid.client.nodedir, "ls", *flags, where).stdout.decode()
        assert got == want, f"ls {' '.join(flags)} {where}"


def test_get_follows_paths_and_aliases(grid, tree, tmp_path):
    out = tmp_path / "out"
    swamp(grid.client.nodedir, "get", "work:sub/ünïcode ☂.txt", str(out))
    assert out.read_bytes() == b"tiny"
    assert swamp(grid.client.nodedir, "get", f"{tree}/mutable.txt").stdout == b"tiny"


def test_exit_codes_match_real_tahoe(grid, tree):
    for args in (["ls", f"{tree}/missing"], ["ls", "nosuchalias:x"], ["get", f"{tree}/missing"]):
        want = real(grid, *args, check=False).returncode
        got = swamp(grid.client.nodedir, *args, check=False)
        assert got.returncode == want, (args, got.stderr)
        assert got.stderr, "a failure says why"


def test_create_client_makes_a_directory_real_tahoe_runs_on(grid, tmp_path):
    nodedir = tmp_path / "newclient"
    announcement = tmp_path / "ann.yaml"
    first, *rest = grid.nodes
    announcement.write_text(L.swamp("announcement", first.nodedir).stdout.decode())
    nurls = [n.nurl() for n in rest]
    webport = L.free_port()
    args = ["create-client", str(nodedir), "--shares-needed=2", "--shares-happy=3", "--shares-total=3",
            f"--webport=tcp:{webport}:interface=127.0.0.1", "--announcement", str(announcement)]
    for nurl in nurls:
        args += ["--nurl", nurl]
    L.run_cmd([L.swamp_tahoe_bin(), *args])
    assert swamp(nodedir, "create-client", str(nodedir), check=False).returncode == 1, "never overwrites"

    # Swamp's CLI uses it...
    data = os.urandom(123_456)
    src = tmp_path / "src"
    src.write_bytes(data)
    cap = swamp(nodedir, "put", str(src)).stdout.decode().strip()
    # ... and so does a real Tahoe client node, which reads what Swamp wrote.
    client = L.TahoeClient(nodedir, tmp_path / "logs", needed=2, happy=3, total=3)
    client.webport = webport
    client.start()
    try:
        client.wait_for_servers(3)
        assert client.web("GET", f"uri/{cap}") == data
    finally:
        client.stop()


def test_directories_swamp_changes_are_what_real_tahoe_sees(grid, tmp_path):
    nd = grid.client.nodedir
    src = tmp_path / "src"
    src.write_bytes(os.urandom(5000))
    root = swamp(nd, "mkdir").stdout.decode().strip()
    assert root.startswith("URI:DIR2:")
    mdmf = swamp(nd, "mkdir", "--format=MDMF", f"{root}/m").stdout.decode().strip()
    assert mdmf.startswith("URI:DIR2-MDMF:")
    assert swamp(nd, "mkdir", f"{root}/m").stdout.decode().strip() == mdmf, "existing dir kept"
    swamp(nd, "mkdir", f"{root}/a/b")  # intermediate directory made
    name = "ünï ☂.txt"
    file_cap = swamp(nd, "put", str(src), f"{root}/a/b/{name}").stdout.decode().strip()
    assert file_cap.startswith("URI:CHK:")
    mut_cap = swamp(nd, "put", "--mutable", str(src), f"{root}/mut").stdout.decode().strip()
    assert mut_cap.startswith("URI:SSK:")
    # put onto an existing mutable file overwrites it in place (same cap).
    src.write_bytes(b"second version of the mutable file")
    assert swamp(nd, "put", str(src), f"{root}/mut").stdout.decode().strip() == mut_cap
    assert swamp(nd, "ln", f"{root}/a/b/{name}", f"{root}/m/").stdout == b"OK\n"
    assert swamp(nd, "mv", f"{root}/m/{name}", f"{root}/m/moved").stdout == b"OK\n"
    swamp(nd, "rm", f"{root}/a/b/{name}")

    for where in [root, f"{root}/a", f"{root}/a/b", f"{root}/m"]:
        want = real(grid, "ls", "-l", "--uri", where).stdout.decode()
        got = swamp(nd, "ls", "-l", "--uri", where).stdout.decode()
        assert got == want, where
    assert real(grid, "ls", f"{root}/m").stdout.decode().split() == ["moved"]
    assert real(grid, "get", f"{root}/mut").stdout == b"second version of the mutable file"
    assert swamp(nd, "get", f"{root}/m/moved").stdout == real(grid, "get", f"{root}/m/moved").stdout

    # Real Tahoe changes Swamp's directories, and Swamp sees it.
    real(grid, "put", str(src), f"{root}/a/b/by-tahoe")
    assert swamp(nd, "ls", f"{root}/a/b").stdout.decode().split() == ["by-tahoe"]

    # A directory is never replaced by a file, in both CLIs, with the same exit code.
    for args in (["mv", f"{root}/mut", f"{root}/a"], ["ln", f"{root}/mut", f"{root}/m"]):
        want = real(grid, *args, check=False)
        got = swamp(nd, *args, check=False)
        assert (got.returncode, bool(got.stderr)) == (want.returncode, True), args
    assert swamp(nd, "rm", f"{root}/nothing", check=False).returncode == 1
