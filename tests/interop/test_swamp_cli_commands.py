"""Swamp's `tahoe` CLI (talking to storage servers directly) and Tahoe 1.20's own
CLI (through a real Tahoe client node), side by side on one client node directory
and one grid of Swamp storage nodes: aliases, `cp -r` both ways, `backup`,
`check`/`deep-check` before and after shares are deleted, `manifest` and `stats`.
Where the commands see the same grid they must print the same text and exit with
the same code; where one writes, the other must read what it wrote.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

import interop_lib as L

pytestmark = pytest.mark.swamp


@pytest.fixture(scope="module")
def grid(swamp_grid):
    return swamp_grid


def swamp(grid, *args, check=True, cwd=None) -> subprocess.CompletedProcess:
    cp = subprocess.run([str(L.swamp_tahoe_bin()), "-d", str(grid.client.nodedir), *args],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=180, cwd=cwd)
    if check:
        assert cp.returncode == 0, (args, cp.stderr.decode())
    return cp


def real(grid, *args, check=True, cwd=None) -> subprocess.CompletedProcess:
    env = dict(os.environ, TZ="UTC")
    cp = subprocess.run([L.tahoe_bin(), "-d", str(grid.client.nodedir), *args],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=180, env=env, cwd=cwd)
    if check:
        assert cp.returncode == 0, (args, cp.stderr.decode())
    return cp


def out(cp) -> str:
    return cp.stdout.decode()


def make_tree(root: Path) -> None:
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "big.bin").write_bytes(os.urandom(100_000))
    (root / "small.txt").write_bytes(b"tiny")
    (root / "nothing").write_bytes(b"")
    (root / "sub" / "ünï ☂.txt").write_bytes(os.urandom(3000))
    (root / "sub" / "deeper" / "leaf").write_bytes(b"leaf")


def files_of(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
            for p in sorted(root.rglob("*"))}


def test_aliases_read_and_written_alike(grid, tmp_path):
    assert out(swamp(grid, "create-alias", "swamp-made")) == "Alias 'swamp-made' created\n"
    assert out(real(grid, "create-alias", "tahoe-made:")) == "Alias 'tahoe-made' created\n"
    cap = out(real(grid, "mkdir")).strip()
    assert out(swamp(grid, "add-alias", "added", cap)) == "Alias 'added' added\n"
    for flags in ([], ["--readonly-uri"], ["--json"]):
        assert out(swamp(grid, "list-aliases", *flags)) == out(real(grid, "list-aliases", *flags)), flags
    # Both see each other's aliases, and refuse alike.
    real(grid, "ls", "swamp-made:")
    swamp(grid, "ls", "tahoe-made:")
    for args in (["create-alias", "swamp-made"], ["create-alias", "a:b"], ["add-alias", "a b", cap],
                 ["add-alias", "tahoe-made", cap]):
        want, got = real(grid, *args, check=False), swamp(grid, *args, check=False)
        assert (got.returncode, got.stderr, got.stdout) == (want.returncode, want.stderr, want.stdout), args


def test_cp_recursive_both_ways_round_trips(grid, tmp_path):
    real(grid, "create-alias", "cpa")
    src = tmp_path / "src"
    make_tree(src)
    # Swamp uploads, Tahoe downloads...
    assert out(swamp(grid, "cp", "-r", str(src), "cpa:")) == "Success: files copied\n"
    real(grid, "cp", "-r", "cpa:src", str(tmp_path / "by-tahoe"))
    assert files_of(tmp_path / "by-tahoe" / "src") == files_of(src)
    # ... Tahoe uploads, Swamp downloads.
    real(grid, "cp", "-r", str(src), "cpa:again")
    swamp(grid, "cp", "-r", "cpa:again", str(tmp_path / "by-swamp"))
    assert files_of(tmp_path / "by-swamp" / "again" / "src") == files_of(src)
    for where in ("cpa:src", "cpa:src/sub", "cpa:again/src/sub/deeper"):
        assert out(swamp(grid, "ls", "-F", where)) == out(real(grid, "ls", "-F", where)), where
    # The same refusals, in the same words, with the same exit codes.
    (tmp_path / "one.txt").write_bytes(b"one")
    for args in (["cp", str(src), "cpa:x"],
                 ["cp", str(tmp_path / "one.txt"), "cpa:y/"],
                 ["cp", str(tmp_path / "one.txt"), str(src / "small.txt"), str(tmp_path / "one.txt")],
                 ["cp", "-r", str(src), str(tmp_path / "one.txt")],
                 ["cp", "cpa:nope", str(tmp_path / "x")],
                 ["cp", str(src / "small.txt"), str(tmp_path / "by-tahoe" / "src" / "small.txt"), "cpa:"]):
        want, got = real(grid, *args, check=False), swamp(grid, *args, check=False)
        assert (got.returncode, got.stderr) == (want.returncode, want.stderr), args
    # One file either way.
    assert out(swamp(grid, "cp", str(tmp_path / "one.txt"), "cpa:one")) == "Success: file copied\n"
    assert real(grid, "get", "cpa:one").stdout == b"one"


def summary(text: str) -> str:
    return text.splitlines()[-2]


def test_backup_layout_is_tahoes_and_a_second_backup_reuses(grid, tmp_path):
    real(grid, "create-alias", "bk")
    src = tmp_path / "src"
    make_tree(src)
    first = out(swamp(grid, "backup", str(src), "bk:swamp"))
    want = out(real(grid, "backup", str(src), "bk:tahoe"))
    assert summary(first) == summary(want) == (
        " 5 files uploaded (0 reused), 0 files skipped, 4 directories created (0 reused), 0 directories skipped")
    assert [l.split("...")[0] for l in first.splitlines()[:-2]] == \
        [l.split("...")[0] for l in want.splitlines()[:-2]], "the same progress lines"
    # Tahoe reads Swamp's layout as its own.
    assert out(real(grid, "ls", "bk:swamp")) == "Archives\nLatest\n"
    assert len(out(real(grid, "ls", "bk:swamp/Archives")).split()) == 1
    for where in ("", "/sub", "/sub/deeper"):
        assert out(real(grid, "ls", "-F", f"bk:swamp/Latest{where}")) == \
            out(real(grid, "ls", "-F", f"bk:tahoe/Latest{where}")), where
    assert real(grid, "get", "bk:swamp/Latest/sub/deeper/leaf").stdout == b"leaf"
    # Same files, same caps (convergent), same link metadata as Tahoe's backup writes.
    ours = json.loads(out(real(grid, "ls", "--json", "bk:swamp/Latest")))[1]["children"]
    theirs = json.loads(out(real(grid, "ls", "--json", "bk:tahoe/Latest")))[1]["children"]
    for name in ("big.bin", "small.txt", "nothing"):
        assert ours[name][1]["ro_uri"] == theirs[name][1]["ro_uri"], name
        assert ours[name][1]["metadata"] == theirs[name][1]["metadata"], name
    assert ours["sub"][1]["ro_uri"].startswith("URI:DIR2-CHK:")

    # Nothing changed: both reuse everything.
    again = out(swamp(grid, "backup", str(src), "bk:swamp"))
    assert summary(again) == summary(out(real(grid, "backup", str(src), "bk:tahoe"))) == (
        " 0 files uploaded (5 reused), 0 files skipped, 0 directories created (4 reused), 0 directories skipped")
    # One file changed: it and its directories are new.
    (src / "sub" / "deeper" / "leaf").write_bytes(b"a longer leaf")
    third = out(swamp(grid, "backup", str(src), "bk:swamp"))
    assert summary(third) == (
        " 1 files uploaded (4 reused), 0 files skipped, 3 directories created (1 reused), 0 directories skipped")
    assert real(grid, "get", "bk:swamp/Latest/sub/deeper/leaf").stdout == b"a longer leaf"


def test_check_deep_check_and_repair_print_what_tahoe_prints(grid, tmp_path):
    real(grid, "create-alias", "ck")
    (tmp_path / "big").write_bytes(os.urandom(200_000))
    (tmp_path / "lit").write_bytes(b"tiny")
    big = out(real(grid, "put", str(tmp_path / "big"), "ck:big")).strip()
    real(grid, "put", str(tmp_path / "lit"), "ck:lit")
    real(grid, "put", "--mutable", str(tmp_path / "lit"), "ck:sub/mut")

    def same(*args):
        want, got = real(grid, *args, check=False), swamp(grid, *args, check=False)
        assert (got.returncode, out(got)) == (want.returncode, out(want)), args
        return out(got)

    for args in (["check", "ck:big"], ["check", "ck:lit"], ["check", "ck:sub/mut"], ["check", "ck:"],
                 ["check", "--verify", "ck:big"], ["deep-check", "ck:"], ["deep-check", "-v", "ck:"],
                 ["deep-check", "--verify", "-v", "ck:"]):
        same(*args)

    # A share gone: both say so alike; Swamp's deep repair is what Tahoe then sees.
    si = L.b32(__import__("allmydata.uri", fromlist=["uri"]).from_string(big).get_storage_index())
    gone = [p for node in grid.nodes for n in range(3) if (p := node.share_path(si, n)).exists()][0]
    gone.unlink()
    assert same("check", "ck:big").startswith("Summary: Not Healthy")
    assert "1 unhealthy" in same("deep-check", "-v", "ck:")
    repaired = out(swamp(grid, "deep-check", "--repair", "ck:"))
    assert repaired.endswith(
        " repair successful\ndone: 5 objects checked\n pre-repair: 4 healthy, 1 unhealthy\n"
        " 1 repairs attempted, 1 successful, 0 failed\n post-repair: 5 healthy, 0 unhealthy\n"), repaired
    assert out(real(grid, "check", "ck:big")).startswith("Summary: Healthy\n")
    same("check", "--repair", "ck:big")


def test_manifest_and_stats_are_tahoes(grid, tmp_path):
    real(grid, "create-alias", "mf")
    (tmp_path / "big").write_bytes(os.urandom(150_000))
    (tmp_path / "lit").write_bytes(b"tiny")
    real(grid, "put", str(tmp_path / "big"), "mf:big")
    real(grid, "put", str(tmp_path / "lit"), "mf:a/ünï ☂")
    real(grid, "put", "--mutable", str(tmp_path / "lit"), "mf:a/b/mut")
    real(grid, "mkdir", "mf:empty")
    for args in (["manifest", "mf:"], ["manifest", "--storage-index", "mf:"], ["manifest", "--verify-cap", "mf:"],
                 ["manifest", "--repair-cap", "mf:"], ["manifest", "--raw", "mf:"], ["manifest", "mf:a"],
                 ["stats", "mf:"], ["stats", "mf:a"]):
        want, got = real(grid, *args), swamp(grid, *args)
        assert out(got) == out(want), args
    want = json.loads(out(real(grid, "stats", "--raw", "mf:")))
    got = json.loads(out(swamp(grid, "stats", "--raw", "mf:")))
    assert got == want


def test_status_of_a_python_node_prints_what_tahoe_prints(grid, tmp_path):
    # The Python client node has done uploads, downloads, publishes and retrieves.
    (tmp_path / "f").write_bytes(os.urandom(30_000))
    real(grid, "put", str(tmp_path / "f"))
    cap = out(real(grid, "put", "--mutable", str(tmp_path / "f"))).strip()
    real(grid, "get", cap)
    for flags in ([], ["--verbose"]):
        want, got = real(grid, "status", *flags), swamp(grid, "status", *flags)
        assert got.returncode == want.returncode == 0
        # Everything but the uptime, which moves between the two calls.
        assert out(got).splitlines()[1:] == out(want).splitlines()[1:], flags
