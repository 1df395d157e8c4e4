"""magic-folder on push (issue 10): reaction time and storage-server load of the real
magic-folder 24.3 with Swamp's `tahoe magic-folder-push`, on grids of three Swamp
storage nodes with Tahoe 1.20 client nodes (2-of-3, happy 2), all on loopback.

Reaction (--changes N, default 100): alice and bob share one folder, magic-folder's
own polling at an hour, the bridge running for bob. N times: alice's daemon is asked
to snapshot a new file (`POST /v1/magic-folder/F/snapshot?path=`), and the benchmark
waits until bob's folder has the bytes and the bridge has made no poll for a second
before the next change. Measured per change:
  - reaction: from alice's upload finished, i.e. the `upload-finished` status event of
    alice's daemon (sent once her personal directory's write has returned; its
    timestamp is the daemon's wall clock), to the bridge's `poll` line with cause alice
    (its `time` is when the poll-remote request went to bob's daemon). Both are Unix
    times on this machine.
  - bridge latency: the `latency_ms` of that poll line (from the bridge seeing the
    change on a feed to its request).
  - end to end: from alice's `upload-finished` to bob's `download-finished` (bob's
    daemon has listed, downloaded and written the file).

Load (--folders M, default 50): alice, bob and carol share M folders, idle. Two
grids, one after the other: magic-folder's default 60 s polling; polling at an hour
with the bridge running for each of the three daemons. After setup settles (for the
bridge grid: every bridge follows every folder and has made its start-up poll), the
Swamp servers' operator counters (`GET /storage/v1/activity`) are read at the start
and the end of a window (--window seconds, default 180) and give requests per minute
per kind over the three servers. The Tahoe client nodes' own `GET /storage/v1/version`
heartbeats (about one a second per server per client node, with or without
magic-folder) are reported apart and left out of the ratio; so is the benchmark's own
activity read (counted as "other").

Run with load-tests/magic-folder-bench.sh (builds release binaries, makes the venv),
under `flock /tmp/swamp-cpu.lock`; or directly:
    SWAMP_SERVER_BIN=target/release/swamp-server SWAMP_TAHOE_BIN=target/release/tahoe \\
        .venv-magic-folder/bin/python load-tests/magic-folder-bench.py
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import ssl
import statistics
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "magic_folder"))

import mf_lib as M  # noqa: E402

L = M.L

# Seconds without a poll that end one change of the reaction run.
QUIET = 1.0

# Request kinds that are not storage requests: byte and outcome counters.
NOT_REQUESTS = {"bytes_in", "bytes_out", "uploads_started", "uploads_completed", "uploads_aborted",
                "lease_renewals", "client_errors", "server_errors"}


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(-(-p * len(s) // 100)) - 1))
    return s[k]


def summary(values: list[float]) -> dict:
    return {"n": len(values), "p50": percentile(values, 50), "p99": percentile(values, 99),
            "min": min(values), "max": max(values), "mean": statistics.fmean(values)}


# --------------------------------------------------------------------------
# reaction time


def reaction(base: Path, changes: int) -> dict:
    g = M.build_mf_grid(base, ["alice", "bob"], ["bench"], poll_interval=3600, scan_interval=3600)
    try:
        alice, bob = g.daemons["alice"], g.daemons["bob"]
        mon_a, mon_b = M.Monitor(alice, base / "logs"), M.Monitor(bob, base / "logs")
        mon_a.wait_connected()
        mon_b.wait_connected()
        bridge = g.bridge("bob").start()
        bridge.wait_following(["bench"])
        rows = []
        for i in range(changes):
            name = f"change-{i:03}.bin"
            data = os.urandom(1000 + i)
            (g.local("alice", "bench") / name).write_bytes(data)
            n_polls = len(bridge.polls("bench"))
            alice.api("POST", f"magic-folder/bench/snapshot?path={urllib.parse.quote(name)}", timeout=60)
            target = g.local("bob", "bench") / name
            L.wait_until(lambda: target.exists() and target.read_bytes() == data, 60,
                         f"bob to have {name}", interval=0.02,
                         procs=[bridge.proc, alice.proc, bob.proc])
            up = L.wait_until(lambda: [e for e in mon_a.events("upload-finished") if e["relpath"] == name],
                              30, f"alice's upload-finished for {name}", interval=0.02)[0]
            down = L.wait_until(lambda: [e for e in mon_b.events("download-finished") if e["relpath"] == name],
                                30, f"bob's download-finished for {name}", interval=0.02)[0]
            # Let any further poll of this change come (a write reaches three servers;
            # causes arriving while a poll is in flight make one more) before the
            # next change, so that each change's polls are its own.
            L.wait_until(lambda: time.time() - bridge.polls("bench")[-1]["time"] >= QUIET, 30,
                         "the bridge to be quiet", interval=0.05)
            polls = [p for p in bridge.polls("bench")[n_polls:] if "alice" in p.get("causes", [])]
            assert polls, f"{name} reached bob without a poll caused by alice: {bridge.polls('bench')[n_polls:]}"
            rows.append({"change": name, "reaction_s": polls[0]["time"] - up["timestamp"],
                         "bridge_latency_s": polls[0]["latency_ms"] / 1000,
                         "end_to_end_s": down["timestamp"] - up["timestamp"],
                         "polls": len(polls)})
        mon_a.stop()
        mon_b.stop()
        return {
            "changes": changes,
            "reaction_s": summary([r["reaction_s"] for r in rows]),
            "bridge_latency_s": summary([r["bridge_latency_s"] for r in rows]),
            "end_to_end_s": summary([r["end_to_end_s"] for r in rows]),
            "polls_per_change": summary([float(r["polls"]) for r in rows]),
            "rows": rows,
        }
    finally:
        g.stop()


# --------------------------------------------------------------------------
# load of idle folders


def activity(node: L.StorageNode) -> dict:
    """The node's operator view: {"totals": counters, "feeds": open connections and
    subscriptions, ...}."""
    secret = (node.nodedir / "private" / "operator.secret").read_text().strip()
    host, port = node.listen_address()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # loopback, our own node; the secret is the guard
    conn = http.client.HTTPSConnection(host, port, timeout=30, context=ctx)
    try:
        conn.request("GET", "/storage/v1/activity", headers={"Authorization": f"Swamp-Operator {secret}"})
        r = conn.getresponse()
        body = r.read()
        assert r.status == 200, (r.status, body[:200])
        return json.loads(body)
    finally:
        conn.close()


def load(base: Path, folders: int, window: float, settle: float, with_bridge: bool) -> dict:
    names = [f"folder-{i:02}" for i in range(folders)]
    interval = 3600 if with_bridge else 60
    t_setup = time.monotonic()
    g = M.build_mf_grid(base, ["alice", "bob", "carol"], names, poll_interval=interval, scan_interval=interval)
    try:
        bridges = []
        if with_bridge:
            bridges = [g.bridge(p).start() for p in ("alice", "bob", "carol")]
            for b in bridges:
                b.wait_following(names, timeout=600)
        setup_s = time.monotonic() - t_setup
        # Settling and the window are the measurement itself, not a readiness wait.
        time.sleep(settle)
        before = [activity(n)["totals"] for n in g.nodes]
        t0 = time.monotonic()
        time.sleep(window)
        end = [activity(n) for n in g.nodes]
        elapsed = time.monotonic() - t0
        after = [a["totals"] for a in end]
        procs = [*(d.proc for d in g.daemons.values()), *(b.proc for b in bridges),
                 *(n.proc for n in g.nodes)]
        dead = [p.name for p in procs if not p.alive()]
        assert not dead, f"exited during the window: {dead}"
        per_min = {}
        for kind in before[0]:
            if kind in NOT_REQUESTS:
                continue
            d = sum(a[kind] - b[kind] for a, b in zip(after, before))
            if kind == "other":
                d -= len(g.nodes)  # our own first activity read, counted once it answered
            per_min[kind] = d * 60 / elapsed
        version = per_min.pop("version")
        requests = sum(sum(a[k] - b[k] for a, b in zip(after, before))
                       for k in per_min) - len(g.nodes)
        polls = sum(len(b.polls()) for b in bridges)
        return {"mode": "bridge, poll_interval 3600" if with_bridge else "magic-folder polling, 60 s",
                "folders": folders, "participants": 3, "servers": len(g.nodes),
                "window_s": elapsed, "setup_s": setup_s,
                "requests_per_min": per_min, "total_per_min": sum(per_min.values()),
                "requests_in_window": requests,
                "feed_connections": sum(a["feeds"]["connections"] for a in end),
                "feed_subscriptions": sum(a["feeds"]["subscriptions"] for a in end),
                "version_heartbeats_per_min": version,
                "bridge_polls_total": polls}
    finally:
        g.stop()


# --------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--changes", type=int, default=100)
    ap.add_argument("--folders", type=int, default=50)
    ap.add_argument("--window", type=float, default=180.0, help="seconds counted per load mode")
    ap.add_argument("--settle", type=float, default=30.0, help="seconds after setup before counting")
    ap.add_argument("--skip-reaction", action="store_true")
    ap.add_argument("--skip-load", action="store_true")
    ap.add_argument("--json", type=Path, help="write the results here too")
    ap.add_argument("--keep", action="store_true", help="keep the grids' directories and logs")
    args = ap.parse_args()
    for b in (L.swamp_server_bin(), L.swamp_tahoe_bin()):
        if not (b.is_file() and os.access(b, os.X_OK)):
            sys.exit(f"missing binary {b}: build it or set SWAMP_SERVER_BIN / SWAMP_TAHOE_BIN")

    base = Path(tempfile.mkdtemp(prefix="mf-bench-"))
    print(f"# grids under {base}", file=sys.stderr)
    results: dict = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    try:
        if not args.skip_reaction:
            r = reaction(base / "reaction", args.changes)
            results["reaction"] = r
            for k in ("reaction_s", "bridge_latency_s", "end_to_end_s"):
                s = r[k]
                print(f"{k:18} n={s['n']} p50={s['p50'] * 1000:7.1f} ms  p99={s['p99'] * 1000:7.1f} ms  "
                      f"min={s['min'] * 1000:7.1f} ms  max={s['max'] * 1000:7.1f} ms")
            print(f"polls per change   mean={r['polls_per_change']['mean']:.2f} max={r['polls_per_change']['max']:.0f}")
        if not args.skip_load:
            modes = []
            for with_bridge in (False, True):
                m = load(base / ("load-bridge" if with_bridge else "load-polling"), args.folders,
                         args.window, args.settle, with_bridge)
                modes.append(m)
                kinds = ", ".join(f"{k} {v:.1f}" for k, v in m["requests_per_min"].items() if v)
                print(f"{m['mode']:28} {m['total_per_min']:8.1f} requests/min ({kinds}); "
                      f"version heartbeats {m['version_heartbeats_per_min']:.0f}/min apart; "
                      f"feed connections {m['feed_connections']}, subscriptions {m['feed_subscriptions']}; "
                      f"window {m['window_s']:.0f} s, setup {m['setup_s']:.0f} s")
            results["load"] = modes
            polling, bridged = modes
            if bridged["requests_in_window"] > 0:
                ratio = polling["total_per_min"] / bridged["total_per_min"]
                print(f"ratio polling / bridge: {ratio:.0f}x fewer requests with the bridge")
            else:
                # None in the window: the ratio is unbounded; bound it by counting one.
                ratio = polling["total_per_min"] / (60 / bridged["window_s"])
                print(f"ratio polling / bridge: the bridge grid made no request in "
                      f"{bridged['window_s']:.0f} s; counting one: more than {ratio:.0f}x fewer")
            results["load_ratio_at_least"] = ratio
    finally:
        L.stop_all_processes()
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
