"""Client benchmark (issue 4): `tahoe put` and `tahoe get` of one large file with
Swamp's `tahoe` CLI and with the real Tahoe-LAFS 1.20 CLI, on the same grid of three
Swamp storage nodes (2-of-3, happy 3), in the same run, interleaved.

The real CLI talks to its client node's web API; the node is started once, before
any timing, and is not counted (in Tahoe's favour: its start-up costs seconds).
Swamp's CLI reads the same node directory (private/servers.yaml, secrets) and talks
to the storage servers itself. Each measurement is the wall time of one CLI process
from spawn to exit; CPU time is that of the CLI process (from wait4), of the Tahoe
client node (from /proc), and of the three storage servers together (from /proc).

Every round puts a fresh random file with each client (so no convergent upload can
find its shares already there) and gets it back, checking the bytes. The order of the
two clients alternates from round to round.

Run with load-tests/client-bench.sh, which builds the release binaries and picks the
venv; or directly:
    SWAMP_SERVER_BIN=.../release/swamp-server SWAMP_TAHOE_BIN=.../release/tahoe \
        .venv-interop/bin/python load-tests/client-bench.py [--size-mib 100] [--rounds 3]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "interop"))

import interop_lib as L  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
MiB = 1 << 20


def machine_busy() -> tuple[float, float]:
    """(busy jiffies, total jiffies) of the whole machine, from /proc/stat."""
    cpu = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    vals = [int(x) for x in cpu]
    idle = vals[3] + vals[4]
    return (sum(vals) - idle) / TICK, sum(vals) / TICK


def timed(argv: list[str], watch: dict[str, list[int]]) -> dict:
    """Runs argv, returns wall and CPU times; raises on failure."""
    before = {k: sum(L.proc_cpu(p) for p in pids) for k, pids in watch.items()}
    busy0, _ = machine_busy()
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate()
    # communicate() has reaped it; its rusage went into RUSAGE_CHILDREN.
    wall = time.perf_counter() - t0
    busy1, _ = machine_busy()
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({p.returncode}): {err.decode()[-2000:]}")
    after = {k: sum(L.proc_cpu(pid) for pid in pids) for k, pids in watch.items()}
    result = {"wall": wall, "stdout": out.decode().strip()}
    for k in watch:
        result[f"cpu_{k}"] = after[k] - before[k]
    result["cpu_machine"] = busy1 - busy0
    return result


def child_cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_one(argv, watch):
    c0 = child_cpu()
    r = timed(argv, watch)
    r["cpu_cli"] = child_cpu() - c0
    return r


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mib", type=float, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", choices=["swamp", "tahoe"], help="run one client only")
    ap.add_argument("--work", help="directory for the grid and files (default: a new temp dir)")
    ap.add_argument("--json", help="write every measurement here")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--serve", action="store_true",
                    help="only start the grid, print the client node directory, run until stopped "
                         "(for profiling by hand)")
    args = ap.parse_args()

    size = int(args.size_mib * MiB)
    swamp_tahoe = os.environ.get("SWAMP_TAHOE_BIN") or str(L.swamp_server_bin().parent / "tahoe")
    real_tahoe = L.tahoe_bin()
    for b in (L.swamp_server_bin(), Path(swamp_tahoe)):
        if not Path(b).is_file():
            print(f"missing binary {b}", file=sys.stderr)
            return 2
    work = Path(args.work or tempfile.mkdtemp(prefix="swamp-client-bench."))
    work.mkdir(parents=True, exist_ok=True)
    files = work / "files"
    files.mkdir(exist_ok=True)
    print(f"# work dir {work}; swamp-server {L.swamp_server_bin()}; swamp tahoe {swamp_tahoe}; "
          f"real tahoe {real_tahoe}", flush=True)
    grid = L.build_grid(work / "grid", L.SWAMP, n_servers=3, needed=2, happy=3, total=3)
    nodedir = str(grid.client.nodedir)
    if args.serve:
        import signal

        print(f"nodedir {nodedir}", flush=True)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        try:
            signal.pause()
        finally:
            grid.stop()
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)
        return 0
    watch = {
        "servers": [n.proc.pid for n in grid.nodes],
        "node": [grid.client.proc.pid],
    }
    clients = {
        "swamp": lambda *a: [swamp_tahoe, "-d", nodedir, *a],
        "tahoe": lambda *a: [real_tahoe, "-d", nodedir, *a],
    }
    names = [args.only] if args.only else ["swamp", "tahoe"]
    rows = []
    try:
        for rnd in range(args.rounds):
            order = names if rnd % 2 == 0 else list(reversed(names))
            for who in order:
                src = files / f"{who}-{rnd}.in"
                data = os.urandom(size)
                src.write_bytes(data)
                digest = hashlib.sha256(data).hexdigest()
                del data
                put = run_one(clients[who]("put", str(src)), watch)
                cap = put.pop("stdout")
                assert cap.startswith("URI:CHK:"), cap
                dst = files / f"{who}-{rnd}.out"
                get = run_one(clients[who]("get", cap, str(dst)), watch)
                get.pop("stdout")
                with open(dst, "rb") as f:
                    ok = hashlib.file_digest(f, "sha256").hexdigest() == digest
                if not ok:
                    raise RuntimeError(f"{who} get of {cap} returned different bytes")
                src.unlink()
                dst.unlink()
                for op, r in (("put", put), ("get", get)):
                    r.update(client=who, op=op, round=rnd, load=os.getloadavg()[0])
                    rows.append(r)
                    print(f"round {rnd} {who:5} {op}: {r['wall']:7.2f} s  {size / MiB / r['wall']:7.1f} MiB/s"
                          f"  cpu cli {r['cpu_cli']:6.2f}  node {r['cpu_node']:6.2f}"
                          f"  servers {r['cpu_servers']:6.2f}  machine {r['cpu_machine']:6.2f}"
                          f"  load {r['load']:.1f}", flush=True)
    finally:
        grid.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    if args.json:
        Path(args.json).write_text(json.dumps({"size": size, "rows": rows}, indent=1))
    print()
    print(f"{args.size_mib:g} MiB file, {args.rounds} rounds, median (min-max) wall seconds; "
          f"CPU seconds are medians")
    print()
    print("| op | client | wall s | MiB/s | CPU s: CLI | Tahoe node | 3 servers |")
    print("|---|---|---|---|---|---|---|")
    med = {}
    for op in ("put", "get"):
        for who in names:
            rs = [r for r in rows if r["client"] == who and r["op"] == op]
            walls = [r["wall"] for r in rs]
            m = statistics.median(walls)
            med[(op, who)] = m
            print(f"| {op} | {who} | {m:.2f} ({min(walls):.2f}-{max(walls):.2f}) | {size / MiB / m:.1f} "
                  f"| {statistics.median(r['cpu_cli'] for r in rs):.2f} "
                  f"| {statistics.median(r['cpu_node'] for r in rs):.2f} "
                  f"| {statistics.median(r['cpu_servers'] for r in rs):.2f} |")
    if len(names) == 2:
        print()
        for op in ("put", "get"):
            ratios = []
            for rnd in range(args.rounds):
                w = {r["client"]: r["wall"] for r in rows if r["op"] == op and r["round"] == rnd}
                ratios.append(w["tahoe"] / w["swamp"])
            print(f"{op}: Tahoe/Swamp wall time ratio median {statistics.median(ratios):.1f}x "
                  f"(per round: {', '.join(f'{x:.1f}' for x in ratios)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
