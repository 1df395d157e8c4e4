"""Every GBS endpoint, driven by Tahoe-LAFS's own HTTP storage client
(allmydata.storage.http_client), against a Swamp node and, as the reference,
against a real Python Tahoe 1.20 storage node. Both parametrizations run the
same assertions, so the assertions themselves are checked against Tahoe.
"""

from __future__ import annotations

import os

import cbor2
import pytest

import interop_lib as L
from gbs_client import GBS, call

from allmydata.storage.http_client import (
    ClientException,
    ReadVector,
    TestVector as TVec,
    TestWriteVectors as TWVecs,
    WriteVector,
)
from allmydata.storage.common import si_b2a

V1 = b"http://allmydata.org/tahoe/protocols/storage/v1"
MiB = 1024 * 1024

BACKENDS = [
    pytest.param(L.PYTHON, id="python"),
    pytest.param(L.SWAMP, id="swamp", marks=pytest.mark.swamp),
]


@pytest.fixture(scope="module", params=BACKENDS)
def node(request, workdir_factory):
    impl = request.param
    if impl == L.SWAMP:
        L.require_swamp()
    base = workdir_factory(f"gbs-{impl}")
    n = L.StorageNode(base / "node", nickname=f"gbs-{impl}", logdir=base / "logs")
    n.create(impl)
    n.start()
    yield n
    n.stop()


@pytest.fixture(scope="module")
def gbs(node):
    g = GBS(node.nurl())
    yield g
    g.close()


def secret(n: int = 32) -> bytes:
    return os.urandom(n)


def new_si() -> bytes:
    return os.urandom(16)


def code_of(excinfo) -> int:
    return excinfo.value.code


class Upload:
    """An immutable upload in progress: SI, secrets, allocation."""

    def __init__(self, gbs: GBS, shares: set[int], size: int, si: bytes | None = None):
        self.gbs = gbs
        self.si = si or new_si()
        self.size = size
        self.upload_secret = secret(20)
        self.renew, self.cancel = secret(), secret()
        self.result = call(gbs.immutables.create, self.si, set(shares), size,
                           self.upload_secret, self.renew, self.cancel)

    def write(self, shnum: int, offset: int, data: bytes, upload_secret: bytes | None = None):
        return call(self.gbs.immutables.write_share_chunk, self.si, shnum,
                    upload_secret or self.upload_secret, offset, data)

    def write_all(self, shnum: int, data: bytes, chunk: int = 1_000_000):
        progress = None
        for off in range(0, len(data), chunk):
            progress = self.write(shnum, off, data[off:off + chunk])
        return progress

    def read(self, shnum: int, offset: int, length: int) -> bytes:
        return call(self.gbs.immutables.read_share_chunk, self.si, shnum, offset, length)


def assert_read_404(fn, *args) -> None:
    """A read of a missing share must fail with ClientException(404). Tahoe's
    read_share_chunk checks Content-Type before the status code, and the
    Python server sets `Content-Type: application/octet-stream` even on this
    404; without it the client raises ValueError instead."""
    try:
        call(fn, *args)
    except ClientException as e:
        assert e.code == 404, e
        return
    except ValueError as e:
        pytest.fail(f"missing-share read: the 404 must carry Content-Type: "
                    f"application/octet-stream (Tahoe's client raised {e!r})")
    pytest.fail("reading a missing share did not fail")


def ranges(progress) -> list[tuple[int, int]]:
    return [(r.start, r.stop) for r in progress.required.ranges() if r.value]


# ---------------------------------------------------------------- general


def test_version(gbs, node):
    v = call(gbs.general.get_version)  # Tahoe validates the CDDL schema here
    assert isinstance(v[b"application-version"], bytes) and v[b"application-version"]
    v1 = v[V1]
    assert v1[b"available-space"] > 0
    # Clients skip servers whose maximum-immutable-share-size is below the
    # share size they want to place; it must allow our uploads.
    assert v1[b"maximum-immutable-share-size"] >= 16 * MiB
    assert v1[b"maximum-mutable-share-size"] >= 16 * MiB

    # The raw message: CBOR map with *byte string* keys, exact key set.
    status, headers, body = L.gbs_version_raw(node.nurl())
    assert status == 200
    assert headers["content-type"].split(";")[0].strip() == "application/cbor"
    raw = cbor2.loads(body)
    assert set(raw) == {V1, b"application-version"}
    assert set(raw[V1]) == {b"maximum-immutable-share-size", b"maximum-mutable-share-size",
                            b"available-space"}


def test_wrong_swissnum_is_401(gbs, node):
    status, _, _ = L.gbs_version_raw(node.nurl(), swissnum="x" * 32)
    assert status == 401
    # Through Tahoe's client, with a NURL carrying the wrong swissnum.
    n = L.parse_nurl(node.nurl())
    bad = GBS(f"pb://{n['hash']}@{n['host']}:{n['port']}/{'a' * 32}#v=1")
    try:
        with pytest.raises(ClientException) as e:
            call(bad.immutables.list_shares, new_si())
        assert code_of(e) == 401
    finally:
        bad.close()


def test_early_answers_leave_the_pooled_connection_usable(gbs):
    """An answer given before the body was read (a 415 here) must not hand Tahoe's
    pooled client a connection the node has given up on: before issue 9 was fixed,
    about half the POSTs that followed such an answer on the same pool failed. Small
    bodies (read and dropped by the node) and large ones (answered with
    Connection: close) alternate, each followed by an upload on the same pool."""
    for i in range(30):
        size = 20_000 if i % 2 == 0 else 2 * MiB
        si = si_b2a(new_si()).decode()
        code, _, _ = gbs.request(
            "POST", f"/storage/v1/immutable/{si}", {"Content-Type": "text/plain"},
            data=b"x" * size, lease_renew_secret=secret(), lease_cancel_secret=secret(),
            upload_secret=secret(20),
        )
        assert code == 415, (i, code)
        upload = Upload(gbs, {0}, 10)
        assert upload.result.allocated == {0}, i


def test_certificate_pinning(node):
    """A client whose NURL pins a different SPKI hash must refuse the server."""
    n = L.parse_nurl(node.nurl())
    wrong_hash = "A" * 43 if n["hash"] != "A" * 43 else "B" * 43
    bad = GBS(f"pb://{wrong_hash}@{n['host']}:{n['port']}/{n['swissnum']}#v=1")
    try:
        with pytest.raises(Exception) as e:
            call(bad.general.get_version, timeout=30)
        assert not isinstance(e.value, ClientException), "request got through despite wrong pin"
    finally:
        bad.close()


# ---------------------------------------------------------------- immutable


def test_immutable_allocate_write_read(gbs):
    size = 2_100_000  # > 2 PATCHes of 1,000,000 bytes, like the real uploader
    data0 = L.random_bytes(size, 1)
    data1 = L.random_bytes(size, 2)
    up = Upload(gbs, {0, 1, 2}, size)
    assert up.result.already_have == set()
    assert up.result.allocated == {0, 1, 2}

    # Share 0 in order, 1,000,000-byte PATCHes: 200, 200, then 201.
    p = up.write(0, 0, data0[:1_000_000])
    assert not p.finished and ranges(p) == [(1_000_000, size)]
    p = up.write(0, 1_000_000, data0[1_000_000:2_000_000])
    assert not p.finished and ranges(p) == [(2_000_000, size)]
    p = up.write(0, 2_000_000, data0[2_000_000:])
    assert p.finished and ranges(p) == []

    # Share 1 out of order: the server tracks the holes.
    half = size // 2
    p = up.write(1, half, data1[half:])
    assert not p.finished and ranges(p) == [(0, half)]
    # Overlapping rewrite with identical bytes is fine.
    p = up.write(1, half - 10, data1[half - 10:half + 10])
    assert not p.finished and ranges(p) == [(0, half - 10)]
    p = up.write(1, 0, data1[:half])
    assert p.finished

    # Complete shares are listed; share 2 (in progress) is not.
    assert call(gbs.immutables.list_shares, up.si) == {0, 1}
    assert call(gbs.immutables.list_shares, new_si()) == set()

    # Reads.
    assert up.read(0, 0, size) == data0
    assert up.read(1, 0, size) == data1
    assert up.read(0, 123, 4567) == data0[123:123 + 4567]
    assert up.read(0, size - 10, 100) == data0[-10:]  # short read at the end
    assert up.read(0, size, 10) == b""  # 204
    assert up.read(0, size + 100, 10) == b""

    # A complete share is no longer an upload: PATCH -> 404.
    with pytest.raises(ClientException) as e:
        up.write(0, 0, data0[:10])
    assert code_of(e) == 404

    # A second allocate: already-have lists every complete share, the
    # in-progress share 2 is in neither set, new share 3 is allocated.
    again = Upload(gbs, {0, 2, 3}, size, si=up.si)
    assert again.result.already_have == {0, 1}
    assert again.result.allocated == {3}
    call(gbs.immutables.abort_upload, up.si, 3, again.upload_secret)


def test_immutable_write_errors(gbs):
    size = 1000
    up = Upload(gbs, {0}, size)
    data = L.random_bytes(size, 3)
    # Wrong upload secret -> 401.
    with pytest.raises(ClientException) as e:
        up.write(0, 0, data[:100], upload_secret=secret(20))
    assert code_of(e) == 401
    p = up.write(0, 0, data[:100])
    assert not p.finished and ranges(p) == [(100, size)]
    # Conflicting bytes over an already-written range -> 409.
    with pytest.raises(ClientException) as e:
        up.write(0, 50, b"\xff" * 100)
    assert code_of(e) == 409
    # Writing past the allocated size is an error (Python: 500).
    with pytest.raises(ClientException) as e:
        up.write(0, size - 10, b"\x00" * 20)
    assert code_of(e) >= 400
    # The upload is still usable and consistent afterwards.
    p = up.write(0, 100, data[100:])
    assert p.finished
    assert up.read(0, 0, size) == data
    # Unknown SI / share: PATCH -> 404.
    with pytest.raises(ClientException) as e:
        call(gbs.immutables.write_share_chunk, new_si(), 0, up.upload_secret, 0, b"x")
    assert code_of(e) == 404


def test_immutable_raw_range_semantics(gbs):
    size = 5000
    data = L.random_bytes(size, 4)
    up = Upload(gbs, {0}, size)
    assert up.write(0, 0, data).finished
    path = f"/storage/v1/immutable/{si_b2a(up.si).decode()}/0"

    code, headers, body = gbs.request("GET", path, {"Range": "bytes=10-19"})
    assert code == 206
    assert headers["content-type"] == "application/octet-stream"
    assert headers["content-range"] == "bytes 10-19/*"
    assert body == data[10:20]

    code, headers, body = gbs.request("GET", path, {"Range": f"bytes={size - 5}-{size + 50}"})
    assert code == 206
    assert headers["content-range"] == f"bytes {size - 5}-{size - 1}/*"
    assert body == data[-5:]

    code, _, body = gbs.request("GET", path, {"Range": f"bytes={size}-{size + 9}"})
    assert code == 204 and body == b""

    code, _, _ = gbs.request("GET", path, {"Range": "bytes=0-"})
    assert code == 416

    code, headers, body = gbs.request("GET", path)  # no Range: whole share
    assert code == 200 and body == data
    assert headers["content-type"] == "application/octet-stream"


def test_immutable_abort(gbs):
    size = 3000
    up = Upload(gbs, {0, 1}, size)
    up.write(0, 0, b"a" * 100)
    # Wrong secret -> 401; unknown share -> 404.
    with pytest.raises(ClientException) as e:
        call(gbs.immutables.abort_upload, up.si, 0, secret(20))
    assert code_of(e) == 401
    with pytest.raises(ClientException) as e:
        call(gbs.immutables.abort_upload, up.si, 7, up.upload_secret)
    assert code_of(e) == 404
    # Abort works (200), after which the share is gone and writes 404.
    call(gbs.immutables.abort_upload, up.si, 0, up.upload_secret)
    with pytest.raises(ClientException) as e:
        up.write(0, 100, b"a" * 100)
    assert code_of(e) == 404
    # Finish share 1; aborting a complete share -> 405.
    assert up.write(1, 0, b"b" * size).finished
    with pytest.raises(ClientException) as e:
        call(gbs.immutables.abort_upload, up.si, 1, up.upload_secret)
    assert code_of(e) == 405
    assert call(gbs.immutables.list_shares, up.si) == {1}
    # The aborted share number can be allocated again.
    again = Upload(gbs, {0}, size, si=up.si)
    assert again.result.allocated == {0}
    assert again.result.already_have == {1}
    assert again.write(0, 0, b"c" * size).finished
    assert call(gbs.immutables.list_shares, up.si) == {0, 1}
    assert again.read(0, 0, size) == b"c" * size


def test_immutable_advise_corrupt(gbs):
    up = Upload(gbs, {0}, 100)
    assert up.write(0, 0, b"z" * 100).finished
    assert call(gbs.immutables.advise_corrupt_share, up.si, 0, "block hash mismatch") is None
    with pytest.raises(ClientException) as e:
        call(gbs.immutables.advise_corrupt_share, up.si, 5, "no such share")
    assert code_of(e) == 404
    with pytest.raises(ClientException) as e:
        call(gbs.immutables.advise_corrupt_share, new_si(), 0, "no such SI")
    assert code_of(e) == 404
    # The share is still served.
    assert up.read(0, 0, 100) == b"z" * 100


def test_missing_share_reads_404(gbs):
    up = Upload(gbs, {0}, 100)
    assert up.write(0, 0, b"r" * 100).finished
    assert_read_404(gbs.immutables.read_share_chunk, up.si, 7, 0, 10)  # unknown shnum
    assert_read_404(gbs.immutables.read_share_chunk, new_si(), 0, 0, 10)  # unknown SI
    si, we = new_si(), secret()
    assert rtw(gbs, si, we, {0: TWVecs(write_vectors=[WriteVector(0, b"m" * 10)])}).success
    assert_read_404(gbs.mutables.read_share_chunk, si, 3, 0, 10)
    assert_read_404(gbs.mutables.read_share_chunk, new_si(), 0, 0, 10)


# ---------------------------------------------------------------- leases


def test_lease_add_and_renew_immutable(gbs, node):
    up = Upload(gbs, {0}, 200)
    assert up.write(0, 0, b"L" * 200).finished
    path = node.share_path(si_b2a(up.si).decode(), 0)
    assert L.immutable_lease_count(path) == 1  # the allocate's lease
    # New secrets add a lease (204).
    r2, c2 = secret(), secret()
    assert call(gbs.general.add_or_renew_lease, up.si, r2, c2) is None
    assert L.immutable_lease_count(path) == 2
    # Known secrets renew in place.
    call(gbs.general.add_or_renew_lease, up.si, up.renew, up.cancel)
    call(gbs.general.add_or_renew_lease, up.si, r2, c2)
    assert L.immutable_lease_count(path) == 2
    # Data is untouched by the lease records.
    assert up.read(0, 0, 1000) == b"L" * 200
    # Unknown SI -> 404.
    with pytest.raises(ClientException) as e:
        call(gbs.general.add_or_renew_lease, new_si(), r2, c2)
    assert code_of(e) == 404


def test_lease_add_and_renew_mutable(gbs, node):
    si, we, r, c = new_si(), secret(), secret(), secret()
    res = rtw(gbs, si, we, {0: TWVecs(write_vectors=[WriteVector(0, b"m" * 300)])}, r=r, c=c)
    assert res.success
    path = node.share_path(si_b2a(si).decode(), 0)
    assert L.mutable_container_info(path)["leases"] == 1
    r2, c2 = secret(), secret()
    call(gbs.general.add_or_renew_lease, si, r2, c2)
    assert L.mutable_container_info(path)["leases"] == 2
    call(gbs.general.add_or_renew_lease, si, r, c)
    assert L.mutable_container_info(path)["leases"] == 2
    assert call(gbs.mutables.read_share_chunk, si, 0, 0, 1000) == b"m" * 300


# ---------------------------------------------------------------- mutable


def rtw(gbs, si, we, twv, reads=(), r=None, c=None):
    return call(gbs.mutables.read_test_write_chunks, si, we, r or secret(), c or secret(),
                twv, list(reads))


EMPTY = TVec(0, 1, b"")  # passes iff the share is absent/empty


def test_mutable_read_test_write(gbs, node):
    si, we = new_si(), secret()
    d0 = L.random_bytes(1000, 10)
    d1 = L.random_bytes(700, 11)

    # Create two shares. Reads happen before writes: nothing existed yet.
    res = rtw(gbs, si, we, {
        0: TWVecs(test_vectors=[EMPTY], write_vectors=[WriteVector(0, d0)]),
        1: TWVecs(test_vectors=[EMPTY], write_vectors=[WriteVector(0, d1)]),
    }, reads=[ReadVector(0, 10)])
    assert res.success is True
    assert dict(res.reads) == {}
    assert call(gbs.mutables.list_shares, si) == {0, 1}

    # The write enabler and this server's tubid are in the container header.
    info = L.mutable_container_info(node.share_path(si_b2a(si).decode(), 0))
    assert info["share_data"] == d0
    tubid = L.parse_furl(node.announcement()[next(iter(node.announcement()))]["ann"]
                         ["anonymous-storage-FURL"])["tubid"]
    assert L.b32(info["nodeid"]) == tubid

    # A failing test: no write, HTTP 200 with success=false, and reads of
    # EVERY share of the SI (not only those named in the vectors).
    res = rtw(gbs, si, we, {
        0: TWVecs(test_vectors=[TVec(0, 10, b"not it....")],
                            write_vectors=[WriteVector(0, b"X" * 10)]),
    }, reads=[ReadVector(0, 10), ReadVector(995, 10)])
    assert res.success is False
    assert dict(res.reads) == {0: [d0[:10], d0[995:]], 1: [d1[:10], b""]}
    assert call(gbs.mutables.read_share_chunk, si, 0, 0, 2000) == d0

    # A passing test; reads return pre-write data; writes past the end
    # zero-fill the gap.
    res = rtw(gbs, si, we, {
        0: TWVecs(test_vectors=[TVec(0, 10, d0[:10])],
                            write_vectors=[WriteVector(5, b"NEW"), WriteVector(1500, b"TAIL")]),
    }, reads=[ReadVector(0, 10)])
    assert res.success is True
    assert dict(res.reads) == {0: [d0[:10]], 1: [d1[:10]]}
    expect0 = d0[:5] + b"NEW" + d0[8:] + b"\x00" * 500 + b"TAIL"
    assert call(gbs.mutables.read_share_chunk, si, 0, 0, 5000) == expect0

    # new-length shrinks; a larger new-length never extends.
    res = rtw(gbs, si, we, {0: TWVecs(new_length=600)})
    assert res.success
    assert call(gbs.mutables.read_share_chunk, si, 0, 0, 5000) == expect0[:600]
    res = rtw(gbs, si, we, {0: TWVecs(new_length=10_000)})
    assert res.success
    assert call(gbs.mutables.read_share_chunk, si, 0, 0, 20_000) == expect0[:600]

    # Wrong write enabler -> 401, nothing changes.
    with pytest.raises(ClientException) as e:
        rtw(gbs, si, secret(), {0: TWVecs(write_vectors=[WriteVector(0, b"evil")])})
    assert code_of(e) == 401
    assert call(gbs.mutables.read_share_chunk, si, 0, 0, 4) == expect0[:4]

    # new-length 0 deletes the share.
    res = rtw(gbs, si, we, {1: TWVecs(new_length=0)})
    assert res.success
    assert call(gbs.mutables.list_shares, si) == {0}
    code, _, _ = gbs.request("GET", f"/storage/v1/mutable/{si_b2a(si).decode()}/1", {"Range": "bytes=0-9"})
    assert code == 404


def test_mutable_large_rtw(gbs):
    """SDMF/MDMF publishes send a whole share in one request."""
    si, we = new_si(), secret()
    big = L.random_bytes(3 * MiB + 17, 12)
    assert rtw(gbs, si, we, {3: TWVecs(test_vectors=[EMPTY],
                                                 write_vectors=[WriteVector(0, big)])}).success
    got = b"".join(call(gbs.mutables.read_share_chunk, si, 3, off, 512 * 1024)
                   for off in range(0, len(big), 512 * 1024))
    assert got == big


def test_mutable_read_and_list(gbs):
    si, we = new_si(), secret()
    data = L.random_bytes(4000, 13)
    assert call(gbs.mutables.list_shares, si) == set()
    assert rtw(gbs, si, we, {2: TWVecs(write_vectors=[WriteVector(0, data)]),
                             5: TWVecs(write_vectors=[WriteVector(0, data[::-1])])}).success
    assert call(gbs.mutables.list_shares, si) == {2, 5}
    rd = lambda sh, off, n: call(gbs.mutables.read_share_chunk, si, sh, off, n)  # noqa: E731
    assert rd(2, 0, 4000) == data
    assert rd(5, 0, 4000) == data[::-1]
    assert rd(2, 100, 50) == data[100:150]
    assert rd(2, 3990, 100) == data[3990:]
    assert rd(2, 4000, 10) == b""

    path = f"/storage/v1/mutable/{si_b2a(si).decode()}/2"
    code, headers, body = gbs.request("GET", path, {"Range": "bytes=0-3999"})
    assert code == 206 and body == data
    assert headers["content-range"] == "bytes 0-3999/*"
    assert headers["content-type"] == "application/octet-stream"
    code, _, _ = gbs.request("GET", path, {"Range": "bytes=4000-4001"})
    assert code == 204
    code, _, _ = gbs.request("GET", path, {"Range": "bytes=-100"})
    assert code == 416
    code, _, body = gbs.request("GET", path)
    assert code == 200 and body == data


def test_mutable_advise_corrupt(gbs):
    si, we = new_si(), secret()
    assert rtw(gbs, si, we, {0: TWVecs(write_vectors=[WriteVector(0, b"q" * 50)])}).success
    assert call(gbs.mutables.advise_corrupt_share, si, 0, "signature mismatch") is None
    with pytest.raises(ClientException) as e:
        call(gbs.mutables.advise_corrupt_share, si, 9, "no such share")
    assert code_of(e) == 404
    with pytest.raises(ClientException) as e:
        call(gbs.mutables.advise_corrupt_share, new_si(), 0, "no such SI")
    assert code_of(e) == 404
    assert call(gbs.mutables.read_share_chunk, si, 0, 0, 100) == b"q" * 50
