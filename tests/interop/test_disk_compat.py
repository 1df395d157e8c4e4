"""On-disk compatibility: one node directory served alternately by the
Python Tahoe storage node and by Swamp, with a real Tahoe client node that
never changes its configuration (same NURL, same announcement).

* Python writes, Swamp serves (and overwrites mutables, proving the write
  enabler / tubid match), then Python serves again what Swamp wrote.
* A `tahoe create-node` directory that Python never ran: Swamp creates the
  node identity and stores shares; then the Python node runs on it, with the
  same identity, and serves/overwrites them.

With INTEROP_DRY_RUN_PYTHON_SERVERS=1 "Swamp" is the Python node again.
"""

from __future__ import annotations

import signal
import time

import pytest

import interop_lib as L

pytestmark = pytest.mark.swamp

MiB = 1024 * 1024


class Corpus:
    """Files of each kind uploaded through the client node (its web API, the
    same calls the `tahoe` CLI makes), with the bytes expected back."""

    def __init__(self, client: L.TahoeClient, tag: int):
        self.client = client
        self.tag = tag
        self.expected: dict[str, bytes] = {}  # cap[/path] -> bytes
        self.caps: dict[str, str] = {}

    def upload(self) -> "Corpus":
        c, t = self.client, self.tag
        for kind, fmt, size in (("chk", "CHK", int(1.5 * MiB)), ("sdmf", "SDMF", 20_000),
                                ("mdmf", "MDMF", 400_000)):
            data = L.random_bytes(size, t + size)
            self.caps[kind] = c.web_upload(data, fmt)
            self.expected[self.caps[kind]] = data
        self.caps["dir"] = c.web_mkdir()
        child = L.random_bytes(70_000, t + 4)
        c.web_put(f"{self.caps['dir']}/child.bin", child)
        self.expected[f"{self.caps['dir']}/child.bin"] = child
        assert self.caps["chk"].startswith("URI:CHK:")
        assert self.caps["sdmf"].startswith("URI:SSK:")
        assert self.caps["mdmf"].startswith("URI:MDMF:")
        assert self.caps["dir"].startswith("URI:DIR2:")
        return self

    def verify(self) -> None:
        for where, data in self.expected.items():
            got = self.client.web_get(where)
            assert got == data, f"{where}: got {len(got)} bytes, expected {len(data)}"
        kind, info = self.client.web_ls(self.caps["dir"])
        assert kind == "dirnode"
        want = sorted(w.rsplit("/", 1)[1] for w in self.expected if w.startswith(self.caps["dir"] + "/"))
        assert sorted(info["children"]) == want

    def mutate(self, seed: int) -> None:
        """Overwrite both mutable files and add a directory entry. Needs the
        server to accept the client's write enabler for existing shares."""
        for kind, size in (("sdmf", 9_000), ("mdmf", 650_000)):
            data = L.random_bytes(size, seed + size)
            self.client.web_put(self.caps[kind], data)
            self.expected[self.caps[kind]] = data
        extra = L.random_bytes(12_345, seed)
        path = f"{self.caps['dir']}/added-{seed}.bin"
        self.client.web_put(path, extra)
        self.expected[path] = extra

    def add(self, data: bytes) -> str:
        cap = self.client.web_upload(data)
        self.expected[cap] = data
        return cap

    def check_all(self, verify: bool = False, add_lease: bool = False) -> dict[str, dict]:
        out = {}
        for kind in ("chk", "sdmf", "mdmf", "dir"):
            res = self.client.web_check(self.caps[kind], verify=verify, add_lease=add_lease)
            r = res["results"]
            assert r["healthy"] is True, (kind, res)
            assert r["count-shares-good"] == 3, (kind, res)
            if verify:
                assert r["list-corrupt-shares"] == [], (kind, res)
            out[kind] = res
        return out


def assert_mutable_containers(node: L.StorageNode) -> None:
    """Every mutable container records this server's tubid as nodeid (it is
    also what clients derive write enablers from)."""
    tubid = L.tubid_of_der_cert(L.node_certificate_der(node.nodedir))
    n = 0
    for p in node.share_files():
        if p.read_bytes()[:len(L.MUTABLE_MAGIC_PREFIX)] == L.MUTABLE_MAGIC_PREFIX:
            info = L.mutable_container_info(p)
            assert L.b32(info["nodeid"]) == tubid, p
            assert info["leases"] >= 1, p
            n += 1
    assert n > 0, "no mutable shares found"


def lease_counts(node: L.StorageNode, checks: dict[str, dict]) -> dict[str, list[int]]:
    out = {}
    for kind, res in checks.items():
        si = res["storage-index"]
        counts = []
        for shnum in range(3):
            p = node.share_path(si, shnum)
            if kind == "chk":
                counts.append(L.immutable_lease_count(p))
            else:
                counts.append(L.mutable_container_info(p)["leases"])
        out[kind] = counts
    return out


def same_announcement(a: dict, b: dict) -> None:
    (ida, anna), = a.items()
    (idb, annb), = b.items()
    anna, annb = anna["ann"], annb["ann"]
    assert ida == idb, "server id (v0-<node.pubkey>)"
    assert anna["anonymous-storage-FURL"] == annb["anonymous-storage-FURL"], "storage FURL (tubid, swissnum)"
    assert list(anna["anonymous-storage-NURLs"]) == list(annb["anonymous-storage-NURLs"]), "NURL"
    assert anna["permutation-seed-base32"] == annb["permutation-seed-base32"], "permutation seed"
    assert anna.get("nickname") == annb.get("nickname"), "nickname"


@pytest.fixture
def env(workdir_factory, request):
    """A storage node dir made by `tahoe create-node` + a client (2-of-3,
    happy=1, so all three shares of each file land on the one node)."""
    base = workdir_factory(f"disk-{request.node.name}")
    logdir = base / "logs"
    node = L.StorageNode(base / "storage", nickname="compat", logdir=logdir)
    client = L.TahoeClient(base / "client", logdir, needed=2, happy=1, total=3)
    yield node, client
    L.Grid(base, [node], client).stop()


def start_with_client(node: L.StorageNode, client: L.TahoeClient, impl: str) -> dict:
    """Serve the node dir with impl, then create and start the client with the
    node's announcement as its only server; returns the announcement."""
    node.start(impl)
    ann = node.announcement(impl)
    client.create()
    client.write_servers([ann])
    client.start()
    client.wait_for_servers(1, procs=[node.proc])
    return ann


def switch(node: L.StorageNode, client: L.TahoeClient, impl: str) -> None:
    """Stop whatever serves the node dir, serve it with impl, and wait until
    the (unchanged) client has polled the new server successfully."""
    was = node.impl if node.running() else None
    rc = node.stop()
    assert rc != -signal.SIGKILL, f"{was} server ignored SIGTERM and had to be killed"
    t0 = time.time()
    node.start(impl)
    client.wait_for_servers(1, since=t0, procs=[node.proc])


def test_python_shares_served_by_swamp(env):
    node, client = env
    node.create(L.PYTHON)
    py_ann = start_with_client(node, client, L.PYTHON)

    corpus = Corpus(client, tag=1000).upload()
    corpus.verify()
    node.stop()

    # Swamp derives the very same identity from the Python node's files.
    assert node.nurl(L.SWAMP) == node.nurl(L.PYTHON)
    same_announcement(node.announcement(L.SWAMP), py_ann)

    switch(node, client, L.SWAMP)
    corpus.verify()
    # Lease secrets: the client's --add-lease must renew the lease Python
    # wrote (BLAKE2b-hashed secrets in v2 containers), not add another.
    checks = corpus.check_all(add_lease=True)
    assert lease_counts(node, checks) == {k: [1, 1, 1] for k in checks}
    corpus.check_all(verify=True)
    # Write enablers: overwriting Python-created mutables through Swamp.
    corpus.mutate(seed=2000)
    corpus.verify()
    assert_mutable_containers(node)
    # A new immutable through Swamp.
    corpus.add(L.random_bytes(300_000, 3000))
    corpus.verify()

    # And back: Python serves what Swamp wrote, and can still overwrite it.
    switch(node, client, L.PYTHON)
    corpus.verify()
    corpus.mutate(seed=4000)
    corpus.verify()
    checks = corpus.check_all(add_lease=True)
    assert lease_counts(node, checks) == {k: [1, 1, 1] for k in checks}


def test_swamp_on_fresh_tahoe_node_dir_then_python(env):
    node, client = env
    node.create(L.PYTHON)  # `tahoe create-node`, never run by Python
    if not L.dry_run_python_servers():
        assert not (node.nodedir / "private" / "node.pem").exists()
    # Swamp must create a Tahoe-compatible identity here.
    swamp_ann = start_with_client(node, client, L.SWAMP)
    der = L.node_certificate_der(node.nodedir)
    (_, entry), = swamp_ann.items()
    furl = L.parse_furl(entry["ann"]["anonymous-storage-FURL"])
    assert furl["tubid"] == L.tubid_of_der_cert(der), "Python refuses a storage.furl whose tubid != SHA-1(cert)"
    assert L.parse_nurl(node.nurl(L.SWAMP))["hash"] == L.spki_hash_of_der_cert(der)

    corpus = Corpus(client, tag=5000).upload()
    corpus.verify()
    assert_mutable_containers(node)

    node.stop()
    switch(node, client, L.PYTHON)  # Python runs on Swamp's identity files
    same_announcement(node.announcement(L.PYTHON), swamp_ann)
    corpus.verify()
    checks = corpus.check_all(add_lease=True)
    assert lease_counts(node, checks) == {k: [1, 1, 1] for k in checks}
    corpus.check_all(verify=True)
    corpus.mutate(seed=6000)  # Python accepts the write enablers Swamp stored
    corpus.verify()
    assert_mutable_containers(node)
