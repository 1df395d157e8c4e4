"""Tahoe 1.20's own Python `tahoe` CLI drives a Swamp client node (`tahoe run` of
Swamp's CLI: the web API of swamp-gateway) on Swamp storage nodes, and gets what it
gets from a Python client node on the same grid.

The Swamp node's directory is a copy of the Python client node's (same secrets,
same servers, another web port), so convergent uploads give the same caps on both
nodes and every result can be compared one for one. The CLI finds the node through
`node.url`, as it finds a Python node.
"""

from __future__ import annotations

import filecmp
import json
import os
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest

import interop_lib as L

pytestmark = pytest.mark.swamp


@pytest.fixture(scope="module")
def grid(swamp_grid):
    return swamp_grid


@pytest.fixture(scope="module")
def node(grid, tmp_path_factory):
    base = tmp_path_factory.mktemp("gateway")
    n = L.SwampClientNode.copy_of(grid.client.nodedir, base / "swamp-client", base / "logs").start()
    yield n
    n.stop()


def cli(nodedir: Path, *args, check: bool = True, input: bytes | None = None) -> subprocess.CompletedProcess:
    """Tahoe's own Python CLI against the node in nodedir."""
    env = dict(os.environ, TZ="UTC")
    cp = subprocess.run([L.tahoe_bin(), "-d", str(nodedir), *map(str, args)], input=input,
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=L.CLI_TIMEOUT, env=env)
    if check:
        assert cp.returncode == 0, f"tahoe {' '.join(map(str, args))}: {cp.stderr.decode()}"
    return cp


def out(cp: subprocess.CompletedProcess) -> str:
    return cp.stdout.decode().strip()


def test_welcome_satisfies_magic_folder_and_gridsync(node):
    servers = node.welcome()["servers"]
    assert len(servers) == 3
    for s in servers:
        assert s["connection_status"].startswith("Connected"), s  # GridSync
        assert s["connection_status"].lower().startswith("connected"), s  # magic-folder
        assert isinstance(s["available_space"], int), s
    tokens = (node.nodedir / "private" / "api_auth_token").read_text().strip()
    assert len(tokens) >= 43
    assert node.url.startswith("http://127.0.0.1:")


def test_put_get_same_caps_and_bytes_as_python_node(grid, node, tmp_path):
    py = grid.client.nodedir
    for size in (10, 5_000, 1_500_000):
        src = tmp_path / f"f{size}"
        data = os.urandom(size)
        src.write_bytes(data)
        swamp_cap = out(cli(node.nodedir, "put", src))
        python_cap = out(cli(py, "put", src))
        assert swamp_cap == python_cap, "same secrets, same convergent cap"
        got = tmp_path / f"got{size}"
        cli(node.nodedir, "get", swamp_cap, got)
        assert got.read_bytes() == data
        assert cli(py, "get", swamp_cap).stdout == data
    # Mutable: made on Swamp, overwritten through Swamp, read by both.
    src = tmp_path / "m"
    src.write_bytes(b"mutable one")
    mcap = out(cli(node.nodedir, "put", "--mutable", src))
    assert mcap.startswith("URI:SSK:")
    src.write_bytes(b"mutable two, longer")
    cli(node.nodedir, "put", src, mcap)
    assert cli(py, "get", mcap).stdout == b"mutable two, longer"
    assert cli(node.nodedir, "get", mcap).stdout == b"mutable two, longer"


def test_mkdir_ls_ln_mv_unlink_as_on_a_python_node(grid, node, tmp_path):
    py = grid.client.nodedir
    root = out(cli(node.nodedir, "mkdir"))
    assert root.startswith("URI:DIR2:")
    src = tmp_path / "a.txt"
    src.write_bytes(os.urandom(3000))
    cli(node.nodedir, "mkdir", f"{root}/sub")
    cli(node.nodedir, "put", src, f"{root}/sub/a.txt")
    cli(node.nodedir, "put", src, f"{root}/top.txt")
    cli(node.nodedir, "put", src, f"{root}/ünï ☂.txt")
    cli(node.nodedir, "ln", f"{root}/sub/a.txt", f"{root}/sub/b.txt")
    cli(node.nodedir, "mv", f"{root}/top.txt", f"{root}/sub/moved.txt")
    cli(node.nodedir, "unlink", f"{root}/sub/b.txt")
    for where in (root, f"{root}/sub"):
        for flags in ([], ["-l"], ["--uri"], ["-l", "-F", "--uri"]):
            want = out(cli(py, "ls", *flags, where))
            got = out(cli(node.nodedir, "ls", *flags, where))
            assert got == want, (where, flags)
    assert out(cli(node.nodedir, "ls", f"{root}/sub")).split() == ["a.txt", "moved.txt"]
    # t=json answers equal the Python node's, for directories and for files reached
    # through them (metadata, caps, verify caps, sizes).
    for where in (root, f"{root}/sub", f"{root}/sub/a.txt"):
        path = "uri/" + "/".join(urllib.parse.quote(p, safe="") for p in where.split("/")) + "?t=json"
        assert json.loads(node.web("GET", path)) == grid.client.web_ls(where), where
        # Byte for byte, too: Python's json.dumps(indent=1), non-ASCII names escaped.
        assert node.web("GET", path) == grid.client.web("GET", path), where
    assert out(cli(node.nodedir, "ls", root)).splitlines() == ["sub", "ünï ☂.txt"]
    assert cli(py, "get", f"{root}/ünï ☂.txt").stdout == src.read_bytes()
    assert cli(node.nodedir, "get", f"{root}/sub/moved.txt").stdout == src.read_bytes()
    # What the Python node changes, the Swamp node sees.
    cli(py, "put", src, f"{root}/sub/by-python.txt")
    assert "by-python.txt" in out(cli(node.nodedir, "ls", f"{root}/sub")).split()
    # Errors come back as from a Python node.
    for args in (["ls", f"{root}/missing"], ["get", f"{root}/missing"], ["unlink", f"{root}/missing"]):
        assert cli(node.nodedir, *args, check=False).returncode == cli(py, *args, check=False).returncode, args


def test_aliases_and_cp_of_a_small_tree(grid, node, tmp_path):
    cli(node.nodedir, "create-alias", "gw")
    tree = tmp_path / "tree"
    (tree / "inner").mkdir(parents=True)
    (tree / "one.txt").write_bytes(b"one")
    (tree / "inner" / "two.bin").write_bytes(os.urandom(70_000))
    cli(node.nodedir, "cp", "-r", tree, "gw:")
    assert sorted(out(cli(node.nodedir, "ls", "gw:tree")).split()) == ["inner", "one.txt"]
    back = tmp_path / "back"
    cli(node.nodedir, "cp", "-r", "gw:tree", back)
    assert not filecmp.dircmp(tree, back / "tree").diff_files
    assert (back / "tree" / "inner" / "two.bin").read_bytes() == (tree / "inner" / "two.bin").read_bytes()


def test_mkdir_immutable_metadata_round_trips_unchanged(grid, node):
    content = node.web("PUT", "uri", os.urandom(2000)).decode()
    metadata_text = ('{"version": 1, "snapshot": {"author": {"name": "alice", '
                     '"signature": "c2lnbmF0dXJl"}}, "mtime": 1712345678.123456}')
    # "deleted" is how magic-folder records a deletion: a child without a cap.
    body = ('{"content": ["filenode", {"ro_uri": "%s", "metadata": %s}], '
            '"deleted": ["filenode", {"ro_uri": null, "metadata": {"mtime": 5}}]}') % (content, metadata_text)
    snapshot = node.web("POST", "uri?t=mkdir-immutable", body.encode()).decode()
    assert snapshot.startswith("URI:DIR2-CHK:")
    sent = json.loads(metadata_text)
    swamp_listing = json.loads(node.web("GET", f"uri/{urllib.parse.quote(snapshot)}?t=json"))
    python_listing = grid.client.web_ls(snapshot)
    for listing in (swamp_listing, python_listing):
        child = listing[1]["children"]["content"][1]
        assert json.dumps(child["metadata"]) == json.dumps(sent)
        assert child["ro_uri"] == content
    assert swamp_listing[1]["children"].keys() == python_listing[1]["children"].keys()
    assert swamp_listing[1]["children"]["deleted"] == python_listing[1]["children"]["deleted"]
    assert swamp_listing[1]["children"]["deleted"][1].get("ro_uri") is None
    assert swamp_listing[1]["ro_uri"] == python_listing[1]["ro_uri"]
    # The same children made by the Python node give the same immutable directory.
    assert grid.client.web("POST", "uri?t=mkdir-immutable", body.encode()).decode() == snapshot


def unordered(check: dict) -> dict:
    """Check results with `servers-responding` sorted: Tahoe lists them from a set,
    so their order means nothing (and differs between runs of the same node)."""
    if "servers-responding" in check["results"]:  # a LIT file's results have none
        check["results"]["servers-responding"] = sorted(check["results"]["servers-responding"])
    return check


def test_tahoe_check_gives_what_a_python_node_gives(grid, node, tmp_path):
    py = grid.client.nodedir
    src = tmp_path / "checked"
    src.write_bytes(os.urandom(120_000))
    cap = out(cli(node.nodedir, "put", src))
    root = out(cli(node.nodedir, "mkdir"))
    cli(node.nodedir, "ln", cap, f"{root}/checked")
    for where in (cap, root):
        # --raw prints the node's JSON as it came (t=check&output=JSON).
        for flags in (["--raw"], ["--raw", "--verify"], ["--raw", "--add-lease"]):
            swamp = unordered(json.loads(out(cli(node.nodedir, "check", *flags, where))))
            python = unordered(json.loads(out(cli(py, "check", *flags, where))))
            assert swamp == python, (where, flags)
        for flags in ([], ["--verify"], ["--repair"]):
            assert out(cli(node.nodedir, "check", *flags, where)) == out(cli(py, "check", *flags, where)), (where, flags)


def make_tree(py: Path, tmp_path: Path) -> str:
    """A directory with a CHK file, a LIT file, a mutable file, a subdirectory
    holding a file, and the subdirectory linked a second time; made by the Python
    node, so neither side's writes are under test here."""
    root = out(cli(py, "mkdir"))
    for name, size in (("big.bin", 80_000), ("tiny.txt", 30), ("sub/inner.bin", 9_000)):
        src = tmp_path / name.replace("/", "_")
        src.write_bytes(os.urandom(size))
        cli(py, "put", src, f"{root}/{name}")
    src = tmp_path / "mutable"
    src.write_bytes(b"a mutable file")
    cli(py, "put", "--mutable", src, f"{root}/mutable")
    cli(py, "ln", f"{root}/sub", f"{root}/sub-again")
    return root


def test_manifest_and_stats_as_on_a_python_node(grid, node, tmp_path):
    py = grid.client.nodedir
    root = make_tree(py, tmp_path)
    # --raw prints the node's t=stream-manifest lines as they came: byte for byte.
    for flags in ([], ["--storage-index"], ["--verify-cap"], ["--repair-cap"], ["--raw"]):
        assert out(cli(node.nodedir, "manifest", *flags, root)) == out(cli(py, "manifest", *flags, root)), flags
    # tahoe stats runs t=start-deep-stats and polls /operations/$HANDLE.
    for flags in ([], ["--raw"]):
        assert out(cli(node.nodedir, "stats", *flags, root)) == out(cli(py, "stats", *flags, root)), flags


def unordered_line(line: dict) -> dict:
    results = line.get("check-results") or line.get("check-and-repair-results")
    if results is not None:
        for key in ("pre-repair-results", "post-repair-results"):
            if key in results:
                unordered(results[key])
        if "results" in results:
            unordered(results)
    return line


def test_deep_check_verify_and_repair_as_on_a_python_node(grid, node, tmp_path):
    py = grid.client.nodedir
    root = make_tree(py, tmp_path)
    for flags in ([], ["--verify"], ["--add-lease"], ["-v"]):
        assert out(cli(node.nodedir, "deep-check", *flags, root)) == out(cli(py, "deep-check", *flags, root)), flags
    swamp_raw = [unordered_line(json.loads(l)) for l in out(cli(node.nodedir, "deep-check", "--raw", root)).splitlines()]
    python_raw = [unordered_line(json.loads(l)) for l in out(cli(py, "deep-check", "--raw", root)).splitlines()]
    assert swamp_raw == python_raw

    # One share of sub/inner.bin gone: both nodes see it, and both repair it alike.
    inner = json.loads(out(cli(py, "ls", "--json", f"{root}/sub/inner.bin")))[1]
    si = inner["verify_uri"].split(":")[2]
    def delete_a_share() -> None:
        holders = [n.share_path(si, s) for n in grid.nodes for s in range(3) if n.share_path(si, s).exists()]
        assert len(holders) == 3, holders
        holders[0].unlink()
    delete_a_share()
    unhealthy = out(cli(node.nodedir, "deep-check", root, check=False))
    assert unhealthy == out(cli(py, "deep-check", root, check=False))
    assert "5 healthy, 1 unhealthy" in unhealthy, unhealthy
    repaired = out(cli(node.nodedir, "deep-check", "--repair", root))
    assert "1 repairs attempted, 1 successful, 0 failed" in repaired, repaired
    assert "post-repair: 6 healthy, 0 unhealthy" in repaired, repaired
    assert out(cli(py, "deep-check", "--verify", root)) == out(cli(node.nodedir, "deep-check", "--verify", root))
    assert "6 healthy, 0 unhealthy" in out(cli(py, "deep-check", "--verify", root))
    # The same damage repaired by the Python node reads the same.
    delete_a_share()
    assert out(cli(py, "deep-check", "--repair", root)) == repaired


def test_backup_twice_reuses_unchanged_files(grid, node, tmp_path):
    src = tmp_path / "home"
    (src / "docs").mkdir(parents=True)
    (src / "docs" / "letter.txt").write_bytes(os.urandom(4000))
    (src / "photo.jpg").write_bytes(os.urandom(90_000))
    (src / "note").write_bytes(b"short")
    cli(node.nodedir, "create-alias", "backups")
    first = out(cli(node.nodedir, "backup", src, "backups:home"))
    assert " 3 files uploaded (0 reused)" in first, first
    second = out(cli(node.nodedir, "backup", src, "backups:home"))
    assert " 0 files uploaded (3 reused)" in second, second
    (src / "note").write_bytes(b"changed, and longer")
    # Archive names are Tahoe's UTC timestamps to the second: a backup in the same
    # second as the last replaces its archive. Let the clock move on.
    time.sleep(1.1)
    third = out(cli(node.nodedir, "backup", src, "backups:home"))
    assert " 1 files uploaded (2 reused)" in third, third
    archives = out(cli(node.nodedir, "ls", "backups:home/Archives")).split()
    assert len(archives) >= 2, archives
    # The Python node reads what the Swamp node backed up, and Latest is the newest.
    py = grid.client.nodedir
    aliases = (node.nodedir / "private" / "aliases").read_text()
    cap = next(l.split(": ", 1)[1] for l in aliases.splitlines() if l.startswith("backups:"))
    assert cli(py, "get", f"{cap}/home/Latest/note").stdout == b"changed, and longer"
    assert cli(py, "get", f"{cap}/home/Archives/{archives[0]}/note").stdout == b"short"
    assert cli(py, "get", f"{cap}/home/Latest/docs/letter.txt").stdout == (src / "docs" / "letter.txt").read_bytes()


def test_tahoe_status_of_the_swamp_node_reads_alike_from_both_clis(node, tmp_path):
    src = tmp_path / "s"
    src.write_bytes(os.urandom(40_000))
    cap = out(cli(node.nodedir, "put", src))
    cli(node.nodedir, "get", cap, tmp_path / "back")
    for flags in ([], ["--verbose"]):
        theirs = cli(node.nodedir, "status", *flags).stdout.decode()
        ours = L.run_cmd([L.swamp_tahoe_bin(), "-d", node.nodedir, "status", *flags]).stdout.decode()
        assert "  downloaded " in theirs and "Recent operations:" in theirs, theirs
        # Everything but the uptime, which moves between the two calls.
        assert ours.splitlines()[1:] == theirs.splitlines()[1:], (flags, ours, theirs)
        assert ours.startswith("Statistics (for last ") and theirs.startswith("Statistics (for last ")
