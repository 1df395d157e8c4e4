"""Calibration: the same scenarios as swamp-load, driven by Tahoe-LAFS's own Python
HTTP storage client (allmydata.storage.http_client), against any GBS server.

It answers "does swamp-load treat the Python server unfairly?": if Tahoe's own client
gets about the same numbers from the Python server as swamp-load does, the Rust
load generator is not the reason the Python server looks slow. The Python client
is single-threaded and shares the 2 cores with the server, so it is a floor, not a
ceiling.

It also answers "how much server CPU does a unit of work cost when Tahoe's own client
asks for it": given the server's PID, each scenario prints the server's CPU per GiB
(upload, download) or per request (read-test-write, version), read from
/proc/PID/stat, so two servers driven the same way can be compared.

Run with (the venv that has tahoe-lafs 1.20):
    .venv-interop/bin/python load-tests/tahoe-client-calibration.py NURL [SECONDS [SERVER_PID]]
"""

import os
import resource
import sys
import time

from hyperlink import DecodedURL
from twisted.internet import defer, reactor
from twisted.internet.task import react

from allmydata.storage.http_client import (
    StorageClientFactory,
    StorageClientGeneral,
    StorageClientImmutables,
    StorageClientMutables,
    TestVector,
    TestWriteVectors,
    WriteVector,
    ReadVector,
)

CONCURRENCY = 8
SHARES = 4
SHARE_SIZE = 8 << 20
CHUNK = 1 << 20
READ = 512 << 10
WRITE = 1024
MIB = 1 << 20


def pct(samples, p):
    if not samples:
        return 0.0
    s = sorted(samples)
    rank = max(1, min(len(s), int(-(-p * len(s) // 100))))
    return s[rank - 1] * 1000


def report(name, count, nbytes, seconds, lat):
    rate = f"{nbytes / MIB / seconds:.1f} MiB/s" if nbytes else f"{count / seconds:.0f} ops/s"
    print(f"tahoe-client {name}: {rate}, p50 {pct(lat, 50):.2f} ms, p99 {pct(lat, 99):.2f} ms, {count} requests")
    return count, nbytes


def server_cpu(pid):
    """CPU seconds (user + system) the process has used, from /proc/PID/stat."""
    if pid is None:
        return 0.0
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def timed(lat, d):
    start = time.perf_counter()
    result = await d
    lat.append(time.perf_counter() - start)
    return result


async def upload(client, seconds):
    imm = StorageClientImmutables(client)
    chunk = os.urandom(CHUNK)
    deadline = time.monotonic() + seconds
    lat, done = [], []

    async def share(si, secret, n):
        for off in range(0, SHARE_SIZE, CHUNK):
            await timed(lat, imm.write_share_chunk(si, n, secret, off, chunk))
        done.append(SHARE_SIZE)

    async def worker():
        while time.monotonic() < deadline:
            si, secret = os.urandom(16), os.urandom(20)
            await imm.create(si, set(range(SHARES)), SHARE_SIZE, secret, os.urandom(32), os.urandom(32))
            await defer.gatherResults([defer.ensureDeferred(share(si, secret, n)) for n in range(SHARES)])
            uploaded.append(si)

    uploaded = []
    start = time.monotonic()
    await defer.gatherResults([defer.ensureDeferred(worker()) for _ in range(CONCURRENCY // SHARES)])
    return uploaded, report("upload", len(lat), sum(done), time.monotonic() - start, lat)


async def download(client, seconds, uploaded):
    imm = StorageClientImmutables(client)
    deadline = time.monotonic() + seconds
    lat, moved = [], [0]

    async def worker():
        import random
        while time.monotonic() < deadline:
            si = random.choice(uploaded)
            off = random.randrange(SHARE_SIZE // READ) * READ
            data = await timed(lat, imm.read_share_chunk(si, random.randrange(SHARES), off, READ))
            assert len(data) == READ
            moved[0] += len(data)

    start = time.monotonic()
    await defer.gatherResults([defer.ensureDeferred(worker()) for _ in range(CONCURRENCY)])
    return report("download", len(lat), moved[0], time.monotonic() - start, lat)


async def rtw(client, seconds, writers):
    mut = StorageClientMutables(client)
    deadline = time.monotonic() + seconds
    lat = []

    async def worker():
        si, we, renew, cancel = (os.urandom(16), os.urandom(32), os.urandom(32), os.urandom(32))
        seq = 1
        filler = os.urandom(WRITE - 8)
        first = TestWriteVectors(write_vectors=[WriteVector(0, seq.to_bytes(8, "big") + filler)])
        await mut.read_test_write_chunks(si, we, renew, cancel, {0: first}, [ReadVector(0, 8)])
        while time.monotonic() < deadline:
            tw = TestWriteVectors(
                test_vectors=[TestVector(0, 8, seq.to_bytes(8, "big"))],
                write_vectors=[WriteVector(0, (seq + 1).to_bytes(8, "big") + filler)],
            )
            result = await timed(lat, mut.read_test_write_chunks(si, we, renew, cancel, {0: tw}, [ReadVector(0, 8)]))
            assert result.success
            seq += 1

    start = time.monotonic()
    await defer.gatherResults([defer.ensureDeferred(worker()) for _ in range(writers)])
    return report(f"rtw ({writers} writers)", len(lat), 0, time.monotonic() - start, lat)


async def version(client, seconds):
    gen = StorageClientGeneral(client)
    deadline = time.monotonic() + seconds
    lat = []

    async def worker():
        while time.monotonic() < deadline:
            await timed(lat, gen.get_version())

    start = time.monotonic()
    await defer.gatherResults([defer.ensureDeferred(worker()) for _ in range(CONCURRENCY)])
    return report("version", len(lat), 0, time.monotonic() - start, lat)


async def main(nurl, seconds, pid):
    factory = StorageClientFactory({"tcp": "tcp"}, None)
    client = await factory.create_storage_client(DecodedURL.from_text(nurl), reactor)
    # The client's own CPU: when it is near the wall time, the client is the limit.
    cpu = lambda: sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
    for name, run in [
        ("upload", lambda: upload(client, seconds)),
        ("download", lambda: download(client, seconds, uploaded)),
        ("rtw1", lambda: rtw(client, seconds, 1)),
        ("rtw8", lambda: rtw(client, seconds, 8)),
        ("rtw32", lambda: rtw(client, seconds, 32)),
        ("version", lambda: version(client, seconds)),
    ]:
        before, wall, server_before = cpu(), time.monotonic(), server_cpu(pid)
        result = await run()
        if name == "upload":
            uploaded, result = result
        count, nbytes = result
        server = server_cpu(pid) - server_before
        print(f"  (client CPU {cpu() - before:.2f} s in {time.monotonic() - wall:.2f} s)")
        if pid is not None:
            per = f"{server / (nbytes / (1 << 30)):.2f} s/GiB" if nbytes else f"{server / max(count, 1) * 1e6:.0f} us/request"
            print(f"  server CPU {name}: {per} ({server:.2f} s)")
    await client.shutdown()


if __name__ == "__main__":
    nurl = sys.argv[1]
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
    pid = int(sys.argv[3]) if len(sys.argv) > 3 else None
    react(lambda _reactor: defer.ensureDeferred(main(nurl, seconds, pid)))
