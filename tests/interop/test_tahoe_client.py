"""A real Tahoe-LAFS 1.20 client node using three Swamp storage servers
(2-of-3, happy=3) through the `tahoe` CLI: immutable and mutable files,
directories, check --add-lease and deep-check --verify.

With INTEROP_DRY_RUN_PYTHON_SERVERS=1 the three servers are Python Tahoe
storage nodes instead (validates the harness).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

import interop_lib as L

pytestmark = pytest.mark.swamp

MiB = 1024 * 1024
LEASE_SECONDS = 31 * 24 * 3600


@pytest.fixture(scope="module")
def grid(workdir_factory):
    L.require_swamp()
    # Swamp nodes are created without --port: create-node must pick a free
    # loopback port itself and record it in tahoe.cfg.
    g = L.build_grid(workdir_factory("tahoe-client-grid"), L.SWAMP, n_servers=3,
                     needed=2, happy=3, total=3, explicit_ports=False)
    yield g
    g.stop()


@pytest.fixture(scope="module")
def client(grid) -> L.TahoeClient:
    return grid.client


@pytest.fixture(scope="module")
def alias(client) -> str:
    client.cli("create-alias", "interop")
    return "interop:"


@pytest.fixture
def files(tmp_path):
    """files(name, data) -> path of a local file holding data."""
    def make(name: str, data: bytes) -> Path:
        p = tmp_path / name
        p.write_bytes(data)
        return p
    return make


def shares_on_disk(grid, si: str) -> dict[str, list[int]]:
    """{node nickname: [share numbers]} for a storage index, read from the
    nodes' storage directories (Python layout)."""
    out = {}
    for n in grid.nodes:
        d = n.storage_dir / "shares" / si[:2] / si
        out[n.nickname] = sorted(int(p.name) for p in d.iterdir()) if d.is_dir() else []
    return out


def ls_json(client, where: str):
    return json.loads(client.cli("ls", "--json", where).stdout)


# ---------------------------------------------------------------- setup


def test_announcements(grid):
    """What each server announces is self-consistent, as the client needs."""
    seen_ids = set()
    for n in grid.nodes:
        ann_map = n.announcement()
        assert len(ann_map) == 1, ann_map
        (server_id, entry), = ann_map.items()
        assert re.fullmatch(r"v0-[a-z2-7]{52}", server_id), server_id
        seen_ids.add(server_id)
        ann = entry["ann"]
        assert ann["nickname"] == n.nickname
        nurls = ann["anonymous-storage-NURLs"]
        assert nurls == [n.nurl()]
        nurl = L.parse_nurl(nurls[0])
        furl = L.parse_furl(ann["anonymous-storage-FURL"])
        der = L.node_certificate_der(n.nodedir)
        # NURL pins the SPKI of the certificate in private/node.pem.
        assert nurl["hash"] == L.spki_hash_of_der_cert(der)
        # Foolscap's rule, which a Python node enforces on private/storage.furl:
        # tubid = base32(SHA-1(DER certificate)). Clients derive write enablers
        # and lease secrets from it.
        assert furl["tubid"] == L.tubid_of_der_cert(der)
        assert furl["swissnum"] == nurl["swissnum"]
        assert (n.nodedir / "private" / "storage.furl").read_text().strip() == ann["anonymous-storage-FURL"]
        assert nurl["host"] == "127.0.0.1"
        # The port recorded in tahoe.cfg is the one served.
        cfg = L.read_tahoe_cfg(n.nodedir)
        assert str(nurl["port"]) in cfg.get("node", "tub.port")
        seed = ann["permutation-seed-base32"]
        assert re.fullmatch(r"[a-z2-7]+", seed)
    assert len(seen_ids) == 3


def test_client_sees_servers(grid, client):
    servers = client.welcome()["servers"]
    assert len(servers) == 3
    for s in servers:
        assert s["connection_status"] == "connected", s
        assert s["version"], s  # application-version from GET /version
        assert s["available_space"] and s["available_space"] > 0, s
    assert sorted(s["nickname"] for s in servers) == sorted(n.nickname for n in grid.nodes)


# ---------------------------------------------------------------- immutable


@pytest.mark.parametrize("size", [0, 55, 56, 1000, int(3.5 * MiB)], ids=lambda s: f"{s}B")
def test_immutable_put_get(grid, client, files, tmp_path, size):
    data = L.random_bytes(size, size)
    cap = client.put(files("in.bin", data))
    if size <= 55:
        assert cap.startswith("URI:LIT:"), cap  # stored in the cap, no server involved
    else:
        assert cap.startswith("URI:CHK:"), cap
    assert client.get_bytes(cap, tmp_path) == data
    if size > 55:
        res = client.check_json(cap)
        r = res["results"]
        assert r["healthy"] is True, res
        assert r["count-shares-good"] == 3
        assert r["count-shares-needed"] == 2 and r["count-shares-expected"] == 3
        assert r["count-good-share-hosts"] == 3
        # happy=3: one share on each Swamp node, stored in the Python layout.
        placed = shares_on_disk(grid, res["storage-index"])
        assert sorted(sum(placed.values(), [])) == [0, 1, 2], placed
        assert all(len(v) == 1 for v in placed.values()), placed


def test_immutable_same_content_dedups(grid, client, files, tmp_path):
    """Convergent encoding: a second upload of the same bytes finds the shares
    already present (allocate's already-have) and yields the same cap."""
    data = L.random_bytes(300_000, 77)
    cap1 = client.put(files("a.bin", data))
    cap2 = client.put(files("b.bin", data))
    assert cap1 == cap2
    assert client.get_bytes(cap2, tmp_path) == data


# ---------------------------------------------------------------- directories


def test_directories(client, alias, files, tmp_path):
    client.cli("mkdir", f"{alias}dirs")
    client.cli("mkdir", f"{alias}dirs/sub")
    client.cli("mkdir", "--format=MDMF", f"{alias}dirs/mdmfsub")
    small = b"hello, swamp\n"
    big = L.random_bytes(200_000, 5)
    client.put(files("small.txt", small), f"{alias}dirs/sub/small.txt")
    client.put(files("big.bin", big), f"{alias}dirs/big.bin")
    client.put(files("x.bin", big[:1000]), f"{alias}dirs/mdmfsub/x.bin")

    names = client.cli("ls", f"{alias}dirs").stdout.decode().split()
    assert sorted(names) == ["big.bin", "mdmfsub", "sub"]
    assert client.cli("ls", f"{alias}dirs/sub").stdout.decode().split() == ["small.txt"]

    kind, info = ls_json(client, f"{alias}dirs")
    assert kind == "dirnode"
    children = info["children"]
    assert children["sub"][0] == "dirnode"
    assert children["mdmfsub"][1]["rw_uri"].startswith("URI:DIR2-MDMF:"), children["mdmfsub"]
    assert children["sub"][1]["rw_uri"].startswith("URI:DIR2:"), children["sub"]
    assert children["big.bin"][0] == "filenode" and children["big.bin"][1]["size"] == len(big)

    assert client.get_bytes(f"{alias}dirs/sub/small.txt", tmp_path) == small
    assert client.get_bytes(f"{alias}dirs/big.bin", tmp_path) == big
    assert client.get_bytes(f"{alias}dirs/mdmfsub/x.bin", tmp_path) == big[:1000]

    # Directory mutation (mutable read + read-test-write): rename, remove.
    client.cli("mv", f"{alias}dirs/big.bin", f"{alias}dirs/sub/moved.bin")
    client.cli("unlink", f"{alias}dirs/sub/small.txt")
    assert client.cli("ls", f"{alias}dirs/sub").stdout.decode().split() == ["moved.bin"]
    assert client.get_bytes(f"{alias}dirs/sub/moved.bin", tmp_path) == big

    # The directory's own cap reads back through a fresh `ls` by cap.
    dircap = info["rw_uri"]
    assert sorted(client.cli("ls", dircap).stdout.decode().split()) == ["mdmfsub", "sub"]


# ---------------------------------------------------------------- mutable


@pytest.mark.parametrize("fmt,size1,size2", [
    ("SDMF", 100_000, 3_000),
    ("MDMF", 700_000, 1_100_000),  # MDMF segments are 128 KiB: several of them
])
def test_mutable_put_overwrite_get(client, alias, files, tmp_path, fmt, size1, size2):
    v1 = L.random_bytes(size1, 100 + size1)
    v2 = L.random_bytes(size2, 200 + size2)
    v3 = L.random_bytes(size1 // 2 + 1, 300)

    cap = client.put(files("v1", v1), opts=["--mutable", f"--format={fmt}"])
    assert cap.startswith("URI:SSK:" if fmt == "SDMF" else "URI:MDMF:"), cap
    assert client.get_bytes(cap, tmp_path) == v1

    # Overwrite in place by putting to the write cap.
    out = client.put(files("v2", v2), cap)
    assert cap in out or out == "" or out.startswith("URI:"), out
    assert client.get_bytes(cap, tmp_path) == v2

    # The same file linked into a directory, overwritten through the path:
    # `tahoe put` modifies an existing mutable in place, keeping its cap.
    path = f"{alias}mutable-{fmt}"
    client.cli("ln", cap, path)
    client.put(files("v3", v3), path)
    kind, info = ls_json(client, path)
    assert kind == "filenode" and info["mutable"] is True
    assert info["rw_uri"] == cap
    assert info["format"] == fmt
    assert client.get_bytes(path, tmp_path) == v3
    # Read-only cap sees the latest version too.
    assert client.get_bytes(info["ro_uri"], tmp_path) == v3


def test_mutable_put_to_path_default_sdmf(client, alias, files, tmp_path):
    data = b"mutable via path\n" * 50
    client.put(files("m", data), f"{alias}m.txt", opts=["--mutable"])
    kind, info = ls_json(client, f"{alias}m.txt")
    assert info["mutable"] is True and info["format"] == "SDMF"
    assert client.get_bytes(f"{alias}m.txt", tmp_path) == data


# ---------------------------------------------------------------- check / leases


def _lease_expiries(grid, si: str) -> list[int]:
    """Expiry times of the leases on every immutable share of si (Python
    container layout: 72-byte lease records at the end of the file)."""
    out = []
    for n in grid.nodes:
        d = n.storage_dir / "shares" / si[:2] / si
        for p in (d.iterdir() if d.is_dir() else []):
            count = L.immutable_lease_count(p)
            raw = p.read_bytes()
            for i in range(count):
                rec = raw[len(raw) - 72 * (count - i):][:72]
                out.append(int.from_bytes(rec[68:72], "big"))
    return out


def test_check_add_lease(grid, client, files):
    data = L.random_bytes(500_000, 42)
    cap = client.put(files("lease.bin", data))
    before = time.time()
    res = client.check_json(cap, "--add-lease")
    r = res["results"]
    assert r["healthy"] is True and r["count-shares-good"] == 3, res
    expiries = _lease_expiries(grid, res["storage-index"])
    # The client's lease secrets for this file are the ones it allocated with,
    # so the lease is renewed, not duplicated: one lease per share, ~31 days.
    assert len(expiries) == 3, expiries
    for e in expiries:
        assert before + LEASE_SECONDS - 120 <= e <= time.time() + LEASE_SECONDS + 120, expiries

    # Mutable files too.
    mcap = client.put(files("lease-m.bin", data[:5000]), opts=["--mutable"])
    res = client.check_json(mcap, "--add-lease")
    assert res["results"]["healthy"] is True and res["results"]["count-shares-good"] == 3, res


def test_check_verify(client, files):
    data = L.random_bytes(int(2.5 * MiB), 43)
    cap = client.put(files("verify.bin", data))
    res = client.check_json(cap, "--verify")
    r = res["results"]
    assert r["healthy"] is True, res
    assert r["count-shares-good"] == 3
    assert r["list-corrupt-shares"] == []
    assert r["count-corrupt-shares"] == 0


def test_deep_check_verify(client, alias, files):
    root = f"{alias}tree"
    client.cli("mkdir", root)
    client.cli("mkdir", f"{root}/d")
    client.put(files("lit", b"tiny"), f"{root}/lit.txt")
    client.put(files("chk", L.random_bytes(150_000, 7)), f"{root}/chk.bin")
    client.put(files("chk2", L.random_bytes(60_000, 8)), f"{root}/d/chk2.bin")
    client.put(files("sdmf", b"s" * 4000), f"{root}/sdmf.txt", opts=["--mutable", "--format=SDMF"])
    client.put(files("mdmf", L.random_bytes(300_000, 9)), f"{root}/d/mdmf.bin",
               opts=["--mutable", "--format=MDMF"])

    lines = client.deep_check_json(root, "--verify", "--add-lease")
    objects = [d for d in lines if d.get("type") in ("file", "directory")]
    by_path = {"/".join(d["path"]): d for d in objects}
    assert set(by_path) == {"", "d", "lit.txt", "chk.bin", "d/chk2.bin", "sdmf.txt", "d/mdmf.bin"}
    for path, d in by_path.items():
        r = d["check-results"]["results"]
        assert r["healthy"] is True, (path, d)
        if d["storage-index"]:  # everything but the LIT file
            assert r["count-shares-good"] == 3, (path, d)
            assert r["list-corrupt-shares"] == [], (path, d)

    # The human-readable summary agrees.
    out = client.cli("deep-check", "--verify", root).stdout.decode()
    assert "done: 7 objects checked, 7 healthy, 0 unhealthy" in out, out
