"""Swamp's own `tahoe` CLI and a real Tahoe-LAFS 1.20 client share one grid of
three Swamp nodes (2-of-3) and one client node directory: files either one uploads,
the other downloads byte-exact, and convergent uploads give the same cap. Mutable
files (SDMF and MDMF) either one creates, the other reads and overwrites.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import interop_lib as L

pytestmark = pytest.mark.swamp

MiB = 1024 * 1024




@pytest.fixture(scope="module")
def grid(swamp_grid):
    return swamp_grid


def swamp_tahoe(grid, *args, input: bytes | None = None) -> bytes:
    argv = [str(L.swamp_tahoe_bin()), "-d", str(grid.client.nodedir), *args]
    return L.run_cmd(argv, timeout=120, input=input).stdout


@pytest.mark.parametrize("size", [0, 55, 56, 1000, MiB - 1, MiB + 1, 3 * MiB + 7])
def test_tahoe_reads_what_swamp_put(grid, tmp_path, size):
    data = L.random_bytes(size, seed=size)
    src = tmp_path / "in"
    src.write_bytes(data)
    cap = swamp_tahoe(grid, "put", str(src)).decode().strip()
    assert cap.startswith("URI:LIT:" if size <= 55 else "URI:CHK:"), cap
    assert grid.client.web("GET", f"uri/{cap}") == data


@pytest.mark.parametrize("size", [0, 10, 55, 56, MiB - 1, MiB + 1, 3 * MiB + 7])
def test_swamp_reads_what_tahoe_put(grid, tmp_path, size):
    data = os.urandom(size)
    cap = grid.client.web("PUT", "uri", data=data).decode().strip()
    out = tmp_path / "out"
    swamp_tahoe(grid, "get", cap, str(out))
    assert out.read_bytes() == data


def test_convergent_uploads_give_tahoes_cap(grid, tmp_path):
    data = os.urandom(200_000)
    tahoe_cap = grid.client.web("PUT", "uri", data=data).decode().strip()
    src = tmp_path / "same"
    src.write_bytes(data)
    assert swamp_tahoe(grid, "put", str(src)).decode().strip() == tahoe_cap


@pytest.mark.parametrize("fmt", ["SDMF", "MDMF"])
def test_swamp_reads_tahoes_mutable_files_newest_version(grid, tmp_path, fmt):
    first = os.urandom(5000 if fmt == "SDMF" else 300_000)
    cap = grid.client.web("PUT", f"uri?format={fmt}", data=first).decode().strip()
    out = tmp_path / "out"
    swamp_tahoe(grid, "get", cap, str(out))
    assert out.read_bytes() == first
    second = os.urandom(len(first) + 123)
    grid.client.web("PUT", f"uri/{cap}", data=second)
    swamp_tahoe(grid, "get", cap, str(out))
    assert out.read_bytes() == second, "the newest version wins"


def test_swamp_lists_tahoes_directories(grid):
    import urllib.parse
    dircap = grid.client.web("POST", "uri?t=mkdir").decode().strip()
    q = urllib.parse.quote(dircap)
    names = ["plain.txt", "café ☕.txt", "sub"]
    grid.client.web("PUT", f"uri/{q}/{urllib.parse.quote(names[0])}", data=b"x" * 100)
    grid.client.web("PUT", f"uri/{q}/{urllib.parse.quote(names[1])}", data=b"y")
    grid.client.web("POST", f"uri/{q}/sub?t=mkdir")
    listed = swamp_tahoe(grid, "ls", dircap).decode("utf-8").splitlines()
    assert sorted(listed) == sorted(names)
    long = swamp_tahoe(grid, "ls", "-l", "--uri", dircap).decode("utf-8")
    assert any(line.startswith("drwx") and " sub URI:DIR2:" in line for line in long.splitlines()), long


def mutable_seqnums(grid, cap: str) -> list[int]:
    """The seqnum of every share of the mutable file `cap`, read from the nodes' disks."""
    from allmydata import uri
    from allmydata.util import base32

    si = base32.b2a(uri.from_string(cap).get_storage_index()).decode()
    seqnums = []
    for node in grid.nodes:
        for path in node.share_files():
            if path.parent.name == si:
                share = L.mutable_container_info(path)["share_data"]
                seqnums.append(int.from_bytes(share[1:9], "big"))
    return seqnums


@pytest.mark.parametrize("fmt,size", [
    ("SDMF", 1000), ("MDMF", 1000), ("MDMF", 300_000), ("SDMF", 0), ("MDMF", 0),
])
def test_tahoe_reads_and_overwrites_mutable_files_swamp_created(grid, tmp_path, fmt, size):
    data = L.random_bytes(size, seed=size + 1)
    src = tmp_path / "in"
    src.write_bytes(data)
    args = ["put", "--mutable", str(src)] if fmt == "SDMF" else ["put", "--mutable", f"--format={fmt}", str(src)]
    cap = swamp_tahoe(grid, *args).decode().strip()
    assert cap.startswith("URI:SSK:" if fmt == "SDMF" else "URI:MDMF:"), cap
    assert grid.client.web("GET", f"uri/{cap}") == data
    assert mutable_seqnums(grid, cap) == [1, 1, 1]
    check = grid.client.web_check(cap, verify=True)
    assert check["results"]["healthy"], check
    # Tahoe can write the next version: it decrypts Swamp's signing key and derives
    # the same write enablers.
    second = os.urandom(size + 1000)
    grid.client.web("PUT", f"uri/{cap}", data=second)
    assert mutable_seqnums(grid, cap) == [2, 2, 2]
    out = tmp_path / "out"
    swamp_tahoe(grid, "get", cap, str(out))
    assert out.read_bytes() == second


@pytest.mark.parametrize("fmt,size", [("SDMF", 5000), ("MDMF", 300_000)])
def test_swamp_overwrites_tahoes_mutable_files(grid, tmp_path, fmt, size):
    cap = grid.client.web("PUT", f"uri?format={fmt}", data=os.urandom(size)).decode().strip()
    second = os.urandom(size + 4321)
    src = tmp_path / "second"
    src.write_bytes(second)
    assert swamp_tahoe(grid, "put", str(src), cap).decode().strip() == cap
    assert grid.client.web("GET", f"uri/{cap}") == second
    assert mutable_seqnums(grid, cap) == [2, 2, 2]
    # Tahoe writes again over Swamp's version: both derived the same write enablers.
    third = os.urandom(size // 3)
    grid.client.web("PUT", f"uri/{cap}", data=third)
    assert grid.client.web("GET", f"uri/{cap}") == third
    assert mutable_seqnums(grid, cap) == [3, 3, 3]
    out = tmp_path / "out"
    swamp_tahoe(grid, "get", cap, str(out))
    assert out.read_bytes() == third


@pytest.mark.parametrize("fmt", ["SDMF", "MDMF"])
def test_swamp_overwrites_its_own_mutable_file(grid, tmp_path, fmt):
    src = tmp_path / "in"
    src.write_bytes(b"first version")
    cap = swamp_tahoe(grid, "put", f"--format={fmt}", str(src)).decode().strip()
    assert mutable_seqnums(grid, cap) == [1, 1, 1]
    for seqnum, size in [(2, 200_000), (3, 10)]:
        data = L.random_bytes(size, seed=seqnum)
        swamp_tahoe(grid, "put", "-", cap, input=data)
        assert mutable_seqnums(grid, cap) == [seqnum] * 3
        assert grid.client.web("GET", f"uri/{cap}") == data
        out = tmp_path / "out"
        swamp_tahoe(grid, "get", cap, str(out))
        assert out.read_bytes() == data


def flip_bytes(path: Path, offset: int, count: int = 8) -> None:
    """Corrupts a share file on disk in place."""
    with open(path, "r+b") as f:
        f.seek(offset)
        chunk = f.read(count)
        f.seek(offset)
        f.write(bytes(b ^ 0xFF for b in chunk))


def shares_of(grid, cap: str) -> list[tuple[object, Path]]:
    """The file's shares, in the order a client tries their servers (permuted by
    storage index), so the first is one a reader uses."""
    import hashlib
    from allmydata import uri
    from allmydata.util import base32
    si_bytes = uri.from_string(cap).get_storage_index()
    si = L.b32(si_bytes)

    def rank(node):
        [ann] = node.announcement().values()
        seed = base32.a2b(ann["ann"]["permutation-seed-base32"].encode())
        return hashlib.sha1(si_bytes + seed).digest()

    return [(node, p) for node in sorted(grid.nodes, key=rank)
            for p in node.share_files() if p.parent.name == si]


def advisories(node) -> list[Path]:
    d = node.storage_dir / "corruption-advisories"
    return sorted(d.iterdir()) if d.exists() else []


@pytest.mark.parametrize("kind", ["CHK", "SDMF", "MDMF"])
def test_swamp_tolerates_a_damaged_and_a_missing_share(grid, tmp_path, kind):
    """Real Tahoe writes; one share is damaged on disk: Swamp still reads the file
    byte-exact from the other k, and tells that share's server (a corruption
    advisory, as Tahoe sends). With a second share gone too, fewer than k remain:
    a clear failure, not wrong data."""
    data = os.urandom(400_000)
    query = "uri" if kind == "CHK" else f"uri?format={kind}"
    cap = grid.client.web("PUT", query, data=data).decode().strip()
    # Damage share 0: a reader uses it first (a primary share, on the first server).
    shares = sorted(shares_of(grid, cap), key=lambda np: np[1].name != "0")
    (victim_node, victim), (_, other), *_ = shares
    before = advisories(victim_node)
    # Damage the share's data well inside the container (past any header).
    flip_bytes(victim, victim.stat().st_size // 2)
    out = tmp_path / "out"
    swamp_tahoe(grid, "get", cap, str(out))
    assert out.read_bytes() == data
    assert len(advisories(victim_node)) > len(before), "the damaged share was reported"

    saved = other.read_bytes()
    other.unlink()
    try:
        failed = L.run_cmd([str(L.swamp_tahoe_bin()), "-d", str(grid.client.nodedir), "get", cap, str(out)],
                           timeout=120, check=False)
        assert failed.returncode == 1
        assert b"good shares" in failed.stderr or b"shares" in failed.stderr, failed.stderr
    finally:
        other.write_bytes(saved)
