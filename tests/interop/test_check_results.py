"""Check results from Swamp's client library against Tahoe 1.20's own: a Tahoe
client node and the library (the `check` example, reading the same node
directory) check the same files on the same grid (three Swamp storage nodes,
2-of-3), and must give the same JSON, healthy or not; a repair by the library
leaves files Tahoe finds healthy.

Needs target/debug/check: `cargo build -p swamp-examples --bin check`
(SWAMP_CHECK_BIN overrides).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import interop_lib as L

pytestmark = pytest.mark.swamp


def check_bin() -> Path:
    return Path(os.environ.get("SWAMP_CHECK_BIN", L.swamp_server_bin().parent / "check"))


@pytest.fixture(scope="module")
def grid(workdir_factory):
    L.require_swamp()
    if not check_bin().is_file():
        pytest.skip(f"no {check_bin()} (cargo build -p swamp-examples --bin check)")
    g = L.build_grid(workdir_factory("check-grid"), L.SWAMP, n_servers=3,
                     needed=2, happy=3, total=3, explicit_ports=False)
    yield g
    g.stop()


def swamp_check(grid, cap: str, *flags: str) -> dict:
    out = L.run_cmd([str(check_bin()), str(grid.client.nodedir), cap, *flags]).stdout
    return json.loads(out)


def normalised(res: dict) -> dict:
    """Tahoe lists servers-responding in set order: compare them sorted."""
    res = json.loads(json.dumps(res))
    for part in (res, res.get("pre-repair-results"), res.get("post-repair-results")):
        if part and "servers-responding" in part.get("results", {}):
            part["results"]["servers-responding"].sort()
    return res


def assert_same(grid, cap: str) -> dict:
    for verify in (False, True):
        tahoe = grid.client.web_check(cap, verify=verify)
        swamp = swamp_check(grid, cap, *(["verify"] if verify else []))
        assert normalised(swamp) == normalised(tahoe), (verify, swamp, tahoe)
    return tahoe


def drop_share(grid, si: str, shnum: int) -> None:
    holders = [n for n in grid.nodes if n.share_path(si, shnum).exists()]
    assert holders, f"nobody holds share {shnum} of {si}"
    holders[0].share_path(si, shnum).unlink()


@pytest.mark.parametrize("fmt", ["CHK", "SDMF", "MDMF"])
def test_same_results_as_tahoe_healthy_unhealthy_and_repaired(grid, fmt):
    data = L.random_bytes(300_000, 51)
    cap = grid.client.web_upload(data, fmt)
    healthy = assert_same(grid, cap)
    assert healthy["results"]["healthy"] is True, healthy

    drop_share(grid, healthy["storage-index"], 1)
    unhealthy = assert_same(grid, cap)
    assert unhealthy["results"]["healthy"] is False, unhealthy
    assert unhealthy["results"]["count-shares-good"] == 2

    repaired = swamp_check(grid, cap, "repair")
    assert repaired["repair-attempted"] is True and repaired["repair-successful"] is True, repaired
    after = grid.client.web_check(cap, verify=True)
    assert after["results"]["healthy"] is True, after
    assert after["results"]["count-shares-good"] == 3
    assert grid.client.web_get(cap) == data


def corrupt_first_block(path: Path, mutable: bool) -> None:
    """Flips a byte of the share's first block (in the container file)."""
    raw = bytearray(path.read_bytes())
    if mutable:
        share = 468
        if raw[share] == 0:  # SDMF: u32 offsets
            at = share + int.from_bytes(raw[share + 87:share + 91], "big") + 1
        else:  # MDMF: u64 offsets; a block starts with its salt
            at = share + int.from_bytes(raw[share + 99:share + 107], "big") + 20
    else:
        share = 12
        version = int.from_bytes(raw[share:share + 4], "big")
        at = share + (0x24 if version == 1 else 0x44) + 5
    raw[at] ^= 0x40
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("fmt", ["CHK", "SDMF", "MDMF"])
def test_same_corrupt_shares_as_tahoe(grid, fmt):
    data = L.random_bytes(200_000, 52)
    cap = grid.client.web_upload(data, fmt)
    si = grid.client.web_check(cap)["storage-index"]
    holder = next(n for n in grid.nodes if n.share_path(si, 0).exists())
    corrupt_first_block(holder.share_path(si, 0), mutable=fmt != "CHK")
    checked = grid.client.web_check(cap)
    assert checked["results"]["healthy"] is True, "a check reads no blocks"
    verified = assert_same(grid, cap)
    assert verified["results"]["count-corrupt-shares"] == 1, verified
    assert verified["results"]["healthy"] is False, verified


def tahoe_deep_check(grid, dircap: str, *flags: str) -> dict:
    """Tahoe's deep-check operation, started and followed to its end."""
    import time
    handle = f"deep{time.monotonic_ns()}"
    extra = "".join(f"&{f}=true" for f in flags)
    grid.client.web("POST", grid.client._q(dircap)
                    + f"?t=start-deep-check&ophandle={handle}&output=JSON{extra}")
    return L.wait_until(
        lambda: (lambda r: r if r["finished"] else None)(
            json.loads(grid.client.web("GET", f"operations/{handle}?output=JSON"))),
        60, "the deep-check to finish", interval=0.1,
    )


def comparable(deep: dict) -> dict:
    deep = json.loads(json.dumps(deep))
    deep.pop("stats", None)
    for key in ("list-unhealthy-files", "list-corrupt-shares", "list-remaining-corrupt-shares"):
        if key in deep:
            deep[key] = sorted((normalised_pair(x) for x in deep[key]), key=json.dumps)
    return deep


def normalised_pair(item):
    if isinstance(item, list) and len(item) == 2 and isinstance(item[1], dict):
        return [item[0], normalised(item[1])]
    return item


def test_same_deep_check_as_tahoe_and_a_deep_repair(grid):
    c = grid.client
    root = c.web_mkdir()
    sub = c.web("POST", c._q(root) + "?t=mkdir&name=sub").decode().strip()
    c.web_put(f"{root}/top.bin", L.random_bytes(100_000, 61))
    c.web_put(f"{root}/tiny.txt", b"lit")
    deep_file = c.web("PUT", c._q(f"{sub}/deep.bin") + "?format=MDMF",
                      L.random_bytes(120_000, 62)).decode().strip()
    chk = c.web_put(f"{sub}/chk.bin", L.random_bytes(90_000, 63))

    healthy = tahoe_deep_check(grid, root, "verify")
    assert healthy["count-objects-checked"] == 5, healthy
    assert comparable(swamp_check(grid, root, "deep", "verify")) == comparable(healthy)
    assert_same_stream(grid, root)

    chk_si = c.web_check(chk)["storage-index"]
    drop_share(grid, chk_si, 2)
    deep_si = c.web_check(deep_file)["storage-index"]
    holder = next(n for n in grid.nodes if n.share_path(deep_si, 1).exists())
    corrupt_first_block(holder.share_path(deep_si, 1), mutable=True)
    for flags in ((), ("verify",)):
        tahoe = tahoe_deep_check(grid, root, *flags)
        swamp = swamp_check(grid, root, "deep", *flags)
        assert comparable(swamp) == comparable(tahoe), (flags, swamp, tahoe)
    assert tahoe["count-objects-unhealthy"] == 2, tahoe
    assert_same_stream(grid, root)

    repaired = swamp_check(grid, root, "deep", "verify", "repair")
    assert repaired["count-repairs-attempted"] == 2, repaired
    assert repaired["count-repairs-successful"] == 2, repaired
    after = tahoe_deep_check(grid, root, "verify")
    assert after["count-objects-healthy"] == 5, after


def assert_same_stream(grid, root: str) -> None:
    """`tahoe deep-check --raw --verify` (Tahoe's t=stream-deep-check) and the
    library's lines, object by object."""
    def by_path(lines):
        out = {}
        for d in lines:
            if d.get("type") == "stats":
                continue
            if "check-results" in d:
                d["check-results"] = normalised(d["check-results"])
            out["/".join(d["path"])] = d
        return out
    tahoe = by_path(grid.client.deep_check_json(root, "--verify"))
    out = L.run_cmd([str(check_bin()), str(grid.client.nodedir), root, "stream", "verify"]).stdout
    swamp = by_path(json.loads(line) for line in out.decode().splitlines() if line.strip())
    assert len(tahoe) == 6, tahoe  # the root, sub, three files and the LIT file
    assert swamp == tahoe, (swamp, tahoe)
