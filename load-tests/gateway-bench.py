"""Web API benchmark (issue 13, item 7): a Swamp client node (`tahoe run` of Swamp's
CLI, swamp-gateway) against a Python Tahoe-LAFS 1.20 client node, on the same grid of
three Swamp storage nodes (2-of-3, happy 3), driven over plain HTTP the same way, in
the same run, interleaved.

The Swamp node's directory is a copy of the Python node's (same secrets, same
servers, its own web port), as in tests/interop/test_gateway_cli.py.

- put/get: `PUT /uri` of a fresh random file (streamed from disk) and `GET` of it
  back, wall time per request, and the CPU seconds the node and the three storage
  servers spent on it (from /proc); the order of the nodes alternates. The timed
  `GET` reads and drops the bytes (hashing them would load the benchmark's own
  process, which shares the machine's two cores); an untimed `GET` after it checks
  them.
- json: `GET /uri/$DIRCAP?t=json` of a directory of 1,000 entries, made once
  through the Python node, each node asked `--json-reps` times per round.
- memory: 10 clients at once each stream `GET` of the same 1 GiB file from the
  Swamp node (`--memory-gib`); the node's resident memory is sampled every 20 ms
  and its peak (VmHWM) read after, against its resident memory before.

Run with load-tests/gateway-bench.sh (builds release binaries, picks the venv).
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "interop"))

import interop_lib as L  # noqa: E402

MiB = 1 << 20
CHUNK = 1 << 20


def connection(url: str) -> http.client.HTTPConnection:
    u = urllib.parse.urlsplit(url)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=600)


def put_file(url: str, path: Path) -> tuple[float, str]:
    size = path.stat().st_size
    c = connection(url)
    t0 = time.perf_counter()
    with open(path, "rb") as f:
        c.request("PUT", "/uri", body=f, headers={"Content-Length": str(size)})
        r = c.getresponse()
        body = r.read().decode()
    wall = time.perf_counter() - t0
    c.close()
    if r.status not in (200, 201):
        raise RuntimeError(f"PUT {url}: {r.status} {body}")
    return wall, body.strip()


def get_file(url: str, cap: str, digest: str | None = None) -> float:
    """GET of a file; with `digest`, its bytes are hashed and checked."""
    c = connection(url)
    t0 = time.perf_counter()
    c.request("GET", "/uri/" + urllib.parse.quote(cap, safe=""))
    r = c.getresponse()
    h = hashlib.sha256()
    buf = bytearray(CHUNK)
    while True:
        n = r.readinto(buf)
        if not n:
            break
        if digest is not None:
            h.update(memoryview(buf)[:n])
    wall = time.perf_counter() - t0
    c.close()
    if r.status != 200:
        raise RuntimeError(f"GET {url}: {r.status}")
    if digest is not None and h.hexdigest() != digest:
        raise RuntimeError(f"GET {url} of {cap}: different bytes")
    return wall


def get_json(url: str, cap: str) -> tuple[float, dict]:
    c = connection(url)
    t0 = time.perf_counter()
    c.request("GET", "/uri/" + urllib.parse.quote(cap, safe="") + "?t=json")
    r = c.getresponse()
    body = r.read()
    wall = time.perf_counter() - t0
    c.close()
    if r.status != 200:
        raise RuntimeError(f"t=json {url}: {r.status} {body[:200]!r}")
    return wall, json.loads(body)


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def ratio_line(name: str, rows: list[dict], rounds: int) -> str:
    ratios = []
    for rnd in range(rounds):
        w = {r["node"]: r["wall"] for r in rows if r["op"] == name and r["round"] == rnd}
        if "python" in w and "swamp" in w:
            ratios.append(w["python"] / w["swamp"])
    if not ratios:
        return f"{name}: no pairs"
    return (f"{name}: Python/Swamp wall time ratio median {statistics.median(ratios):.1f}x "
            f"(per round: {', '.join(f'{x:.1f}' for x in ratios)})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mib", type=float, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--entries", type=int, default=1000)
    ap.add_argument("--json-reps", type=int, default=5)
    ap.add_argument("--memory-gib", type=float, default=1.0, help="0 skips the memory run")
    ap.add_argument("--memory-clients", type=int, default=10)
    ap.add_argument("--work", help="directory for the grid and files (default: a new temp dir)")
    ap.add_argument("--json", help="write every measurement here")
    args = ap.parse_args()

    work = Path(args.work or tempfile.mkdtemp(prefix="swamp-gateway-bench."))
    work.mkdir(parents=True, exist_ok=True)
    files = work / "files"
    files.mkdir(exist_ok=True)
    grid = L.build_grid(work / "grid", L.SWAMP, n_servers=3, needed=2, happy=3, total=3)
    swamp = None
    rows: list[dict] = []
    memory: dict = {}
    try:
        swamp = L.SwampClientNode.copy_of(grid.client.nodedir, work / "swamp-client", work).start()
        urls = {
            "swamp": swamp.url,
            "python": (grid.client.nodedir / "node.url").read_text().strip(),
        }
        print(f"# nodes: {urls}", flush=True)
        pids_of = {"swamp": [swamp.proc.pid], "python": [grid.client.proc.pid]}
        size = int(args.size_mib * MiB)

        # A directory of --entries children (LIT files, so making it is cheap).
        children = {f"entry-{i:05d}.txt": ["filenode", {"ro_uri": "URI:LIT:nbswy3dp",
                                                         "metadata": {"mtime": 1700000000.0 + i}}]
                    for i in range(args.entries)}
        c = connection(urls["python"])
        c.request("POST", "/uri?t=mkdir-with-children", body=json.dumps(children).encode())
        r = c.getresponse()
        dircap = r.read().decode().strip()
        assert r.status == 200 and dircap.startswith("URI:DIR2:"), (r.status, dircap)

        names = ["swamp", "python"]
        for rnd in range(args.rounds):
            order = names if rnd % 2 == 0 else list(reversed(names))
            for who in order:
                src = files / f"{who}-{rnd}.in"
                data = os.urandom(size)
                src.write_bytes(data)
                digest = hashlib.sha256(data).hexdigest()
                del data
                pids = {"node": pids_of[who], "servers": [n.proc.pid for n in grid.nodes]}
                cpu0 = {k: sum(L.proc_cpu(p) for p in v) for k, v in pids.items()}
                put_wall, cap = put_file(urls[who], src)
                cpu1 = {k: sum(L.proc_cpu(p) for p in v) for k, v in pids.items()}
                assert cap.startswith("URI:CHK:"), cap
                src.unlink()
                get_wall = get_file(urls[who], cap)
                cpu2 = {k: sum(L.proc_cpu(p) for p in v) for k, v in pids.items()}
                get_file(urls[who], cap, digest)
                walls = []
                for _ in range(args.json_reps):
                    wall, listing = get_json(urls[who], dircap)
                    assert len(listing[1]["children"]) == args.entries
                    walls.append(wall)
                json_wall = statistics.median(walls)
                cpu = {
                    "put": {k: cpu1[k] - cpu0[k] for k in pids},
                    "get": {k: cpu2[k] - cpu1[k] for k in pids},
                    "json": {"node": 0.0, "servers": 0.0},
                }
                for op, wall in (("put", put_wall), ("get", get_wall), ("json", json_wall)):
                    rows.append({"node": who, "op": op, "round": rnd, "wall": wall,
                                 "cpu_node": cpu[op]["node"], "cpu_servers": cpu[op]["servers"]})
                print(f"round {rnd} {who:6} put {put_wall:6.2f} s ({size / MiB / put_wall:6.1f} MiB/s,"
                      f" cpu node {cpu['put']['node']:5.2f} servers {cpu['put']['servers']:5.2f})"
                      f"  get {get_wall:6.2f} s ({size / MiB / get_wall:6.1f} MiB/s,"
                      f" cpu node {cpu['get']['node']:5.2f} servers {cpu['get']['servers']:5.2f})"
                      f"  t=json {json_wall * 1000:7.1f} ms", flush=True)

        if args.memory_gib > 0:
            big = files / "big.in"
            mem_size = int(args.memory_gib * 1024 * MiB)
            h = hashlib.sha256()
            with open(big, "wb") as f:
                left = mem_size
                while left:
                    block = os.urandom(min(left, 8 * MiB))
                    h.update(block)
                    f.write(block)
                    left -= len(block)
            _, bigcap = put_file(urls["swamp"], big)
            big.unlink()
            pid = swamp.proc.pid
            before = rss_kib(pid)
            peak = [before]
            done = threading.Event()

            def sample() -> None:
                while not done.is_set():
                    peak[0] = max(peak[0], rss_kib(pid))
                    time.sleep(0.02)

            sampler = threading.Thread(target=sample)
            sampler.start()
            errors: list[BaseException] = []

            def client() -> None:
                try:
                    get_file(urls["swamp"], bigcap, h.hexdigest())
                except BaseException as e:  # noqa: BLE001 - reported below
                    errors.append(e)

            t0 = time.perf_counter()
            threads = [threading.Thread(target=client) for _ in range(args.memory_clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t0
            done.set()
            sampler.join()
            if errors:
                raise errors[0]
            memory = {"clients": args.memory_clients, "bytes_each": mem_size, "wall": wall,
                      "rss_before_kib": before, "rss_peak_kib": peak[0],
                      "vmhwm_kib": rss_kib(pid, "VmHWM")}
            print(f"memory: {args.memory_clients} clients x {args.memory_gib:g} GiB in {wall:.1f} s "
                  f"({args.memory_clients * mem_size / MiB / wall:.0f} MiB/s together); "
                  f"node RSS {before / 1024:.0f} MiB before, {peak[0] / 1024:.0f} MiB peak sampled, "
                  f"VmHWM {memory['vmhwm_kib'] / 1024:.0f} MiB", flush=True)
    finally:
        if swamp is not None:
            swamp.stop()
        grid.stop()
        shutil.rmtree(work, ignore_errors=True)

    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "memory": memory}, indent=1))
    print()
    print(f"{args.size_mib:g} MiB file, t=json of {args.entries} entries, {args.rounds} rounds; "
          f"median (min-max) wall seconds")
    print()
    print("| op | node | wall s | MiB/s | CPU s: node | 3 servers |")
    print("|---|---|---|---|---|---|")
    for op in ("put", "get", "json"):
        for who in ("swamp", "python"):
            rs = [r for r in rows if r["node"] == who and r["op"] == op]
            walls = [r["wall"] for r in rs]
            m = statistics.median(walls)
            rate = f"{args.size_mib / m:.1f}" if op != "json" else "-"
            cpu = (f"{statistics.median(r['cpu_node'] for r in rs):.2f} | "
                   f"{statistics.median(r['cpu_servers'] for r in rs):.2f}") if op != "json" else "- | -"
            print(f"| {op} | {who} | {m:.3f} ({min(walls):.3f}-{max(walls):.3f}) | {rate} | {cpu} |")
    print()
    for op in ("put", "get", "json"):
        print(ratio_line(op, rows, args.rounds))
    for op in ("put", "get"):
        node = {who: statistics.median(r["cpu_node"] for r in rows if r["node"] == who and r["op"] == op)
                for who in ("swamp", "python")}
        if node["swamp"] > 0:
            print(f"{op}: node CPU, Python/Swamp {node['python'] / node['swamp']:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
