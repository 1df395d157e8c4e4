"""Grid-manager certificates with the real thing: Tahoe 1.20's own `grid-manager`
certifies two of three Swamp nodes, Tahoe's `tahoe admin add-grid-manager-cert`
installs the certificates, Swamp announces them, and a real Tahoe 1.20 client
with `[grid_managers]` uploads only to the two certified nodes. A second client
without `[grid_managers]` uploads to all three, so the restriction comes from the
certificates.
"""

from __future__ import annotations

import json

import pytest

import interop_lib as L

pytestmark = pytest.mark.swamp

FILE_SIZES = (1_000, 70_000, 400_000, 1_500_000)


@pytest.fixture(scope="module")
def managed(workdir_factory):
    L.require_swamp()
    base = workdir_factory("grid-manager")
    logdir = base / "logs"
    nodes = [L.StorageNode(base / f"storage{i}", nickname=f"gm{i}", logdir=logdir) for i in range(3)]
    # 1-of-3 and happy 2: the two certified nodes can take every upload.
    managed_client = L.TahoeClient(base / "managed-client", logdir, needed=1, happy=2, total=3)
    open_client = L.TahoeClient(base / "open-client", logdir, needed=1, happy=3, total=3)
    things = [managed_client, open_client, *nodes]
    try:
        gm = L.GridManager(base / "gm").create()
        certs = {}
        for n in nodes:
            n.create(L.SWAMP)
            if not (n.nodedir / "node.pubkey").exists():  # a Python node writes it when first run
                n.start()
                n.stop()
        for n in nodes[:2]:
            certs[n.nickname] = gm.certify(n.nickname, n.nodedir, days=30)
            L.add_grid_manager_cert(n.nodedir, "main", certs[n.nickname])
        L.start_nodes(nodes)
        announcements = [n.announcement() for n in nodes]
        for client, managers in ((managed_client, True), (open_client, False)):
            client.create()
            if managers:
                with open(client.nodedir / "tahoe.cfg", "a") as f:
                    f.write(f"\n[grid_managers]\nmain = {gm.public_identity()}\n")
            client.write_servers(announcements)
            client.start()
            client.wait_for_servers(3, procs=[n.proc for n in nodes])
        yield nodes, certs, managed_client, open_client
    finally:
        L.stop_each(things)


def shares_by_node(nodes, client, cap) -> dict[str, list[int]]:
    si = client.web_check(cap)["storage-index"]
    out = {}
    for n in nodes:
        d = n.storage_dir / "shares" / si[:2] / si
        out[n.nickname] = sorted(int(p.name) for p in d.iterdir()) if d.is_dir() else []
    return out


def test_certified_nodes_announce_their_certificates(managed):
    nodes, certs, _, _ = managed
    for n in nodes:
        (server_id, entry), = n.announcement().items()
        ann = entry["ann"]
        if n.nickname in certs:
            want = json.loads(certs[n.nickname].read_text())
            assert ann["grid-manager-certificates"] == [want]
            signed = json.loads(want["certificate"])
            assert signed["public_key"] == "pub-" + server_id
            assert signed["version"] == 1
        else:
            assert "grid-manager-certificates" not in ann


def test_a_managed_client_uploads_only_to_certified_nodes(managed):
    nodes, certs, client, _ = managed
    for i, size in enumerate(FILE_SIZES):
        data = L.random_bytes(size, 9100 + i)
        cap = client.web_upload(data)
        placed = shares_by_node(nodes, client, cap)
        uncertified = [name for name in placed if name not in certs]
        assert all(placed[name] == [] for name in uncertified), placed
        assert sorted(s for name in certs for s in placed[name]) == [0, 1, 2], placed
        assert all(placed[name] for name in certs), placed  # happy=2: both hold shares
        assert client.web_get(cap) == data


def test_a_client_without_grid_managers_uses_every_node(managed):
    nodes, certs, _, client = managed
    data = L.random_bytes(300_000, 9200)
    cap = client.web_upload(data)
    placed = shares_by_node(nodes, client, cap)
    assert all(len(shares) == 1 for shares in placed.values()), placed
    assert client.web_get(cap) == data
