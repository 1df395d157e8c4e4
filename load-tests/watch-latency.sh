#!/usr/bin/env bash
# `tahoe watch` latency: from the moment the real Tahoe 1.20 `tahoe` command that
# changed a directory returned, to the moment Swamp's `tahoe watch --json` printed the
# line for that change. Three Swamp nodes (2-of-3) on loopback, release builds.
#
# It runs the interop scenario tests/interop/test_swamp_watch.py (add, replace, mkdir,
# MDMF mkdir, nested mkdir and add, unlink of a file and a directory) ROUNDS times and
# prints the latency table of docs/benchmarks.md. The target is 1 s.
#
# Knobs: ROUNDS [5], CARGO_TARGET_DIR [<repo>/target], SKIP_BUILD=1, VENV [<repo>/.venv-interop]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
ROUNDS=${ROUNDS:-5}
VENV=${VENV:-$ROOT/.venv-interop}
[ -x "$VENV/bin/python" ] || "$ROOT/scripts/interop-venv.sh"
if [ -z "${SKIP_BUILD:-}" ]; then
    cargo build --release -p swamp-server -p swamp-cli --manifest-path "$ROOT/Cargo.toml"
fi
OUT=$(mktemp -d)
for round in $(seq 1 "$ROUNDS"); do
    WATCH_LATENCY_OUT="$OUT/round-$round.json" \
    SWAMP_SERVER_BIN="$TARGET_DIR/release/swamp-server" \
    SWAMP_TAHOE_BIN="$TARGET_DIR/release/tahoe" \
        "$VENV/bin/python" -m pytest -q -p no:cacheprovider \
        "$ROOT/tests/interop/test_swamp_watch.py::test_watch_follows_changes_made_by_the_real_tahoe_cli" >/dev/null
done
"$VENV/bin/python" - "$OUT" <<'PY'
import json, pathlib, statistics, sys
samples = []
for f in sorted(pathlib.Path(sys.argv[1]).glob("round-*.json")):
    samples += json.loads(f.read_text())
by = {}
for s in samples:
    by.setdefault(s["change"], []).append(s)
def ms(xs):
    return f"{statistics.median(xs) * 1000:.0f} / {max(xs) * 1000:.0f}"
print(f"{len(samples)} changes; times in ms, median / max")
print("| change | n | writer's command returned -> line printed | writer's command started -> line printed |")
print("|---|---:|---:|---:|")
for change, xs in by.items():
    print(f"| {change} | {len(xs)} | {ms([x['after_return'] for x in xs])} | {ms([x['after_start'] for x in xs])} |")
print(f"| **all** | {len(samples)} | {ms([x['after_return'] for x in samples])} | {ms([x['after_start'] for x in samples])} |")
PY
rm -rf "$OUT"
