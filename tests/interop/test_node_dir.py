"""A node directory made by `swamp-server create-node` stays Tahoe's, both ways:
Tahoe 1.20's `tahoe run` serves it with the shares Swamp stored (same NURL,
tubid and write enablers, so an unchanged client reads and overwrites them), and
Tahoe's own `tahoe admin add-grid-manager-cert` works on it, with Swamp then
announcing the certificate that tool installed.

A directory made by an older Swamp (settings in `[swamp]`, no `tahoe-client.tac`)
is what the issue reported: `tahoe run` refuses it and Tahoe's config validator
rejects it; `swamp-server run` migrates it, and both then work.

Needs the Swamp binary (skipped with INTEROP_DRY_RUN_PYTHON_SERVERS=1: the point
is the directory Swamp writes).
"""

from __future__ import annotations

import json

import pytest

import interop_lib as L
from test_disk_compat import (Corpus, assert_mutable_containers, lease_counts, same_announcement,
                              start_with_client, switch)

pytestmark = pytest.mark.swamp

SWAMP_SECTION = "storageserver.plugins.swamp"


@pytest.fixture(autouse=True)
def _needs_real_swamp():
    if L.dry_run_python_servers():
        pytest.skip("tests the directory Swamp itself writes")


@pytest.fixture
def env(workdir_factory, request):
    """A node dir made by `swamp-server create-node` and a client (2-of-3,
    happy=1: every share of a file lands on the one node)."""
    base = workdir_factory(f"nodedir-{request.node.name}")
    logdir = base / "logs"
    node = L.StorageNode(base / "storage", nickname="nodedir", logdir=logdir)
    client = L.TahoeClient(base / "client", logdir, needed=2, happy=1, total=3)
    yield base, node, client
    L.Grid(base, [node], client).stop()


def test_tahoe_serves_a_swamp_made_node_dir_and_adds_a_grid_manager_cert(env):
    base, node, client = env
    node.create(L.SWAMP)
    cfg = (node.nodedir / "tahoe.cfg").read_text()
    assert f"[{SWAMP_SECTION}]" in cfg and "[swamp]" not in cfg, cfg
    assert (node.nodedir / "tahoe-client.tac").is_file()
    # A Swamp setting, to see that Tahoe's tools keep it.
    (node.nodedir / "tahoe.cfg").write_text(cfg + "max_connections = 1234\n")

    swamp_ann = start_with_client(node, client, L.SWAMP)
    corpus = Corpus(client, tag=7000).upload()
    corpus.verify()
    assert_mutable_containers(node)

    # Tahoe 1.20 itself serves the directory Swamp made, with Swamp's shares.
    switch(node, client, L.PYTHON)
    same_announcement(node.announcement(L.PYTHON), swamp_ann)
    corpus.verify()
    checks = corpus.check_all(add_lease=True)
    assert lease_counts(node, checks) == {k: [1, 1, 1] for k in checks}
    corpus.mutate(seed=8000)  # Tahoe accepts the write enablers Swamp stored
    corpus.verify()
    node.stop()

    # Tahoe's own tool installs a grid-manager certificate; it validates and
    # rewrites tahoe.cfg, keeping Swamp's section.
    gm = L.GridManager(base / "gm").create()
    cert = gm.certify("storage0", node.nodedir)
    out = L.add_grid_manager_cert(node.nodedir, "gm0", cert)
    assert b"There are now 1 certificates" in out.stderr, out.stderr
    cfg = L.read_tahoe_cfg(node.nodedir)
    assert cfg.get(SWAMP_SECTION, "max_connections") == "1234"
    assert cfg.get("grid_manager_certificates", "gm0") == "gm0.cert"

    # Swamp serves it again, announcing the certificate as Tahoe would.
    switch(node, client, L.SWAMP)
    (server_id, entry), = node.announcement(L.SWAMP).items()
    assert entry["ann"]["grid-manager-certificates"] == [json.loads(cert.read_text())]
    (_, python_entry), = node.announcement(L.PYTHON).items()
    assert python_entry["ann"]["grid-manager-certificates"] == entry["ann"]["grid-manager-certificates"]
    assert json.loads(json.loads(cert.read_text())["certificate"])["public_key"] == "pub-" + server_id
    corpus.verify()


def test_an_old_swamp_node_dir_is_migrated_so_tahoe_accepts_it(env):
    base, node, _ = env
    node.create(L.SWAMP)
    # As an older Swamp wrote it: settings in [swamp], no .tac file.
    cfg_path = node.nodedir / "tahoe.cfg"
    old = cfg_path.read_text().replace(f"[{SWAMP_SECTION}]", "[swamp]") + "max_connections = 1234\n"
    cfg_path.write_text(old)
    (node.nodedir / "tahoe-client.tac").unlink()

    # What the issue reported, from Tahoe 1.20 itself.
    refused = L.run_cmd([L.tahoe_bin(), "run", "--allow-stdin-close", node.nodedir],
                        check=False, timeout=L.CLI_TIMEOUT)
    assert refused.returncode != 0
    assert b"is not a recognizable node directory" in refused.stderr, refused.stderr
    gm = L.GridManager(base / "gm").create()
    cert = gm.certify("storage0", node.nodedir)
    rejected = L.add_grid_manager_cert(node.nodedir, "gm0", cert, check=False)
    assert rejected.returncode != 0
    assert b"contains unknown section [swamp]" in rejected.stderr, rejected.stderr[-2000:]
    assert cfg_path.read_text() == old

    # `swamp-server run` migrates the directory, says so, and serves it.
    node.start(L.SWAMP)
    node.stop()
    log = node.proc.log_path.read_text()
    assert "moved Swamp's settings from [swamp]" in log, log[-3000:]
    new = cfg_path.read_text()
    assert new == old.replace("[swamp]", f"[{SWAMP_SECTION}]"), new
    assert (node.nodedir / "tahoe-client.tac").is_file()

    # A second start changes nothing and says nothing about it.
    node.start(L.SWAMP)
    node.stop()
    assert cfg_path.read_text() == new
    assert "moved Swamp's settings" not in node.proc.log_path.read_text()

    # Now Tahoe's tool and `tahoe run` accept it.
    L.add_grid_manager_cert(node.nodedir, "gm0", cert)
    assert L.read_tahoe_cfg(node.nodedir).get(SWAMP_SECTION, "max_connections") == "1234"
    node.start(L.PYTHON)  # waits until Tahoe answers GET /storage/v1/version at the NURL
    assert node.nurl(L.PYTHON) == node.nurl(L.SWAMP)
    node.stop()
    node.start(L.SWAMP)  # and back, with the certificate Tahoe's tool added
    (_, entry), = node.announcement(L.SWAMP).items()
    assert entry["ann"]["grid-manager-certificates"] == [json.loads(cert.read_text())]
