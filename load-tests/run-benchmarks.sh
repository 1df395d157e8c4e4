#!/usr/bin/env bash
# Swamp versus the Python Tahoe-LAFS 1.20 storage server, end to end, on loopback.
#
# Creates two throw-away node directories, starts `swamp-server run` and
# `tahoe run`, drives both with the same `swamp-load` scenarios and parameters,
# stops both by PID, and prints the per-server tables and a Markdown comparison
# (the one in docs/benchmarks.md).
#
# Run with: load-tests/run-benchmarks.sh        (from anywhere in the repository)
#
# Knobs (environment variables):
#   TAHOE_VENV        venv with tahoe-lafs 1.20      [/work/venvs/tahoe]
#   CARGO_TARGET_DIR  where to build                 [<repo>/target]
#   SKIP_BUILD=1      use the binaries already built
#   DURATION          seconds per scenario           [5]
#   CONCURRENCY       requests in flight             [8]
#   SCENARIOS         which of upload, download, version to run [all three]
#   RTW_WRITERS       read-test-write writer counts  [1,8,32]; empty skips rtw
#   UPLOAD_BYTES      upload cap (the duration also ends it) [2GiB]
#   DOWNLOAD_SET      bytes uploaded (untimed) for the download to read [512MiB]
#   NOISE_LIMIT       cores of other CPU that void a measurement [0.5]
#   TRIES             attempts per measurement when the machine is busy [3]
#   ROUNDS            times to run each server, alternating [2]
#   NODE_ROOT         where the node directories go  [/tmp]; /dev/shm takes the
#                     disk (and so fsync) out of the picture
#   OUT               where results go               [a new temp directory]
#   KEEP=1            keep the node directories
#   BASELINE_SERVER   another swamp-server binary (say, the build before a change):
#                     it runs too, on its own node, interleaved with the others in
#                     every round (HTTP/2 and HTTP/1.1), and is compared with the
#                     current one, so before/after comes from the same run
#   QUIET_TRIES       3-second checks for an idle machine before each measurement [100]
#   PYTHON_SERVER=0   leave the Python server out (Swamp against BASELINE_SERVER only;
#                     the system's python3 runs the helpers, no Tahoe venv needed)
#   TAHOE_CLIENT=1    also drive Swamp and Python with Tahoe's own Python storage client
#                     (load-tests/tahoe-client-calibration.py) in every round, and print
#                     each server's CPU per unit of work and Swamp's over Python's
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TAHOE_VENV=${TAHOE_VENV:-/work/venvs/tahoe}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
DURATION=${DURATION:-5}
CONCURRENCY=${CONCURRENCY:-8}
SCENARIOS=${SCENARIOS-upload download version}
RTW_WRITERS=${RTW_WRITERS-1,8,32}
UPLOAD_BYTES=${UPLOAD_BYTES:-2GiB}
DOWNLOAD_SET=${DOWNLOAD_SET:-512MiB}
NOISE_LIMIT=${NOISE_LIMIT:-0.5}
TRIES=${TRIES:-3}
ROUNDS=${ROUNDS:-2}
OUT=${OUT:-$(mktemp -d /tmp/swamp-bench-results.XXXXXX)}
mkdir -p "$OUT"

PYTHON_SERVER=${PYTHON_SERVER:-1}
PY="$TAHOE_VENV/bin/python"
[[ "$PYTHON_SERVER" == 0 ]] && PY=python3
TAHOE="$TAHOE_VENV/bin/tahoe"
SERVER="$TARGET_DIR/release/swamp-server"
LOAD="$TARGET_DIR/release/swamp-load"

if [[ "${SKIP_BUILD:-}" != 1 ]]; then
    (cd "$ROOT" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release -p swamp-server -p swamp-load-tests)
fi

WORK=$(mktemp -d "${NODE_ROOT:-/tmp}/swamp-bench.XXXXXX")
STARTED=()

# Stops exactly the servers this script started: SIGTERM, then SIGKILL after 10 s.
cleanup() {
    for pid in "${STARTED[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    if [[ "${KEEP:-}" == 1 ]]; then echo "node directories kept in $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits (at most 60 s) until a server answers GET /version through swamp-load.
wait_ready() {
    local nurl_file=$1 pid=$2
    for _ in $(seq 120); do
        kill -0 "$pid" 2>/dev/null || { echo "server $pid exited" >&2; return 1; }
        if [[ -s "$nurl_file" ]] && "$LOAD" run --nurl-file "$nurl_file" --requests 1 --timeout 5 version >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.5
    done
    echo "server $pid did not answer within 60 s" >&2
    return 1
}

# --- Swamp ---------------------------------------------------------------------
SWAMP_PORT=$(free_port)
"$SERVER" create-node --port "tcp:$SWAMP_PORT:interface=127.0.0.1" --location "tcp:127.0.0.1:$SWAMP_PORT" "$WORK/swamp" >/dev/null
# `run` prints the NURL as the first line of stdout.
"$SERVER" run "$WORK/swamp" >"$WORK/swamp.out" 2>"$WORK/swamp.log" </dev/null &
SWAMP_PID=$!
STARTED+=("$SWAMP_PID")
for _ in $(seq 100); do [[ -s "$WORK/swamp.out" ]] && break; sleep 0.1; done
head -n 1 "$WORK/swamp.out" >"$WORK/swamp.nurl"
wait_ready "$WORK/swamp.nurl" "$SWAMP_PID"

# --- Baseline Swamp (optional) -----------------------------------------------------
if [[ -n "${BASELINE_SERVER:-}" ]]; then
    BASE_PORT=$(free_port)
    "$BASELINE_SERVER" create-node --port "tcp:$BASE_PORT:interface=127.0.0.1" --location "tcp:127.0.0.1:$BASE_PORT" "$WORK/swamp-base" >/dev/null
    "$BASELINE_SERVER" run "$WORK/swamp-base" >"$WORK/swamp-base.out" 2>"$WORK/swamp-base.log" </dev/null &
    BASE_PID=$!
    STARTED+=("$BASE_PID")
    for _ in $(seq 100); do [[ -s "$WORK/swamp-base.out" ]] && break; sleep 0.1; done
    head -n 1 "$WORK/swamp-base.out" >"$WORK/swamp-base.nurl"
    wait_ready "$WORK/swamp-base.nurl" "$BASE_PID"
fi

# --- Python Tahoe-LAFS ------------------------------------------------------------
if [[ "$PYTHON_SERVER" != 0 ]]; then
TAHOE_PORT=$(free_port)
"$TAHOE" create-node --webport=none --port "tcp:$TAHOE_PORT:interface=127.0.0.1" \
    --location "tcp:127.0.0.1:$TAHOE_PORT" "$WORK/tahoe" >/dev/null
"$TAHOE" run --allow-stdin-close "$WORK/tahoe" >"$WORK/tahoe.log" 2>&1 </dev/null &
TAHOE_PID=$!
STARTED+=("$TAHOE_PID")
# The storage fURL appears once the node is up. NURL = pb://<SPKI hash of node.pem's
# certificate>@127.0.0.1:<port>/<the fURL's swissnum>#v=1.
for _ in $(seq 600); do [[ -s "$WORK/tahoe/private/storage.furl" ]] && break; sleep 0.1; done
"$PY" - "$WORK/tahoe" "$TAHOE_PORT" >"$WORK/tahoe.nurl" <<'EOF'
import base64, hashlib, sys
from cryptography import x509
from cryptography.hazmat.primitives import serialization

node, port = sys.argv[1], sys.argv[2]
cert = x509.load_pem_x509_certificate(open(f"{node}/private/node.pem", "rb").read())
spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                      serialization.PublicFormat.SubjectPublicKeyInfo)
spki_hash = base64.urlsafe_b64encode(hashlib.sha256(spki).digest()).rstrip(b"=").decode()
swissnum = open(f"{node}/private/storage.furl").read().strip().rsplit("/", 1)[1]
print(f"pb://{spki_hash}@127.0.0.1:{port}/{swissnum}#v=1")
EOF
wait_ready "$WORK/tahoe.nurl" "$TAHOE_PID"
fi

# --- Scenarios --------------------------------------------------------------------
COMMON=(--duration "$DURATION" --upload-bytes "$UPLOAD_BYTES" --download-set "$DOWNLOAD_SET" --json)

# CPU ticks (1/100 s) the machine spent busy so far.
busy_ticks() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8}' /proc/stat; }

# Waits (at most 5 minutes) until the machine is idle: under 0.1 cores busy for 3 s.
# On a shared machine a compiler or test run next door would otherwise be measured too.
wait_quiet() {
    local a b
    for _ in $(seq "${QUIET_TRIES:-100}"); do
        a=$(busy_ticks); sleep 3; b=$(busy_ticks)
        (( b - a < 30 )) && return 0
    done
    echo "warning: the machine did not go quiet; measuring anyway" >&2
}

# Whether a result file shows another load on the machine: more than NOISE_LIMIT cores
# of "other" CPU (everything but server and load generator, kernel threads included).
noisy() {
    "$PY" - "$1" "$NOISE_LIMIT" <<'EOF'
import json, sys
limit = float(sys.argv[2])
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
sys.exit(0 if any(r["other_cpu_s"] / max(r["seconds"], 1e-9) > limit for r in rows) else 1)
EOF
}

# measure NAME NURL_FILE PID ROUND [swamp-load flags and scenario...]: one scenario,
# run on a quiet machine, retried (up to TRIES times) when something else ran meanwhile.
measure() {
    local name=$1 nurl=$2 pid=$3 round=$4
    shift 4
    local out="$OUT/$name.round$round.jsonl" try_out="$OUT/try.jsonl"
    for try in $(seq "$TRIES"); do
        # Flush every dirty page first: the Python server does not fsync, so without this
        # the kernel would write its uploads back during the next runs.
        sync
        wait_quiet
        # swamp-load exits non-zero when requests failed; the tables still show them.
        "$LOAD" run --nurl-file "$nurl" --label "$name" --server-pid "$pid" "${COMMON[@]}" "$@" \
            >"$try_out" || echo "warning: $name $*: failed requests" >&2
        if ! noisy "$try_out"; then break; fi
        echo "warning: $name $* (try $try): another load ran meanwhile" >&2
    done
    cat "$try_out" >>"$out"
}

bench() {
    local name=$1 nurl=$2 pid=$3 round=$4
    shift 4
    for scenario in $SCENARIOS; do
        measure "$name" "$nurl" "$pid" "$round" "$@" --concurrency "$CONCURRENCY" "$scenario"
    done
    for writers in ${RTW_WRITERS//,/ }; do
        if [[ "$writers" == 1 ]]; then
            # The disk's own 1 KiB write + fdatasync on the node's file system, right
            # before the one-writer read-test-write it is the floor of.
            "$LOAD" disk-sync --dir "$WORK" --json >>"$OUT/disk-$name.round$round.jsonl"
        fi
        measure "$name" "$nurl" "$pid" "$round" "$@" --concurrency "$writers" rtw
    done
}

# tahoe_client NAME NURL_FILE PID ROUND: the scenarios again, asked for by Tahoe's own
# Python storage client, with the server's CPU per unit of work.
tahoe_client() {
    local name=$1 nurl=$2 pid=$3 round=$4
    sync
    wait_quiet
    "$PY" "$ROOT/load-tests/tahoe-client-calibration.py" "$(head -n 1 "$nurl")" "$DURATION" "$pid" \
        >"$OUT/tahoe-client-$name.round$round.txt" 2>&1 || echo "warning: tahoe client against $name failed" >&2
}

# Alternate the servers, so slow drifts of the machine hit both alike.
for round in $(seq "$ROUNDS"); do
    if [[ "${TAHOE_CLIENT:-}" == 1 ]]; then
        echo "=== round $round: Tahoe's own client against Swamp, then Python ===" >&2
        tahoe_client swamp "$WORK/swamp.nurl" "$SWAMP_PID" "$round"
        tahoe_client python "$WORK/tahoe.nurl" "$TAHOE_PID" "$round"
    fi
    if [[ -n "${BASELINE_SERVER:-}" ]]; then
        echo "=== round $round: baseline Swamp (HTTP/2) ===" >&2
        bench swamp-base "$WORK/swamp-base.nurl" "$BASE_PID" "$round"
    fi
    echo "=== round $round: Swamp (HTTP/2) ===" >&2
    bench swamp "$WORK/swamp.nurl" "$SWAMP_PID" "$round"
    if [[ "$PYTHON_SERVER" != 0 ]]; then
        echo "=== round $round: Python Tahoe-LAFS 1.20 (HTTP/1.1: it offers no ALPN) ===" >&2
        bench python "$WORK/tahoe.nurl" "$TAHOE_PID" "$round"
    fi
    echo "=== round $round: Swamp, HTTP/1.1 only ===" >&2
    bench swamp-http1 "$WORK/swamp.nurl" "$SWAMP_PID" "$round" --http1
    if [[ -n "${BASELINE_SERVER:-}" ]]; then
        echo "=== round $round: baseline Swamp, HTTP/1.1 only ===" >&2
        bench swamp-base-http1 "$WORK/swamp-base.nurl" "$BASE_PID" "$round" --http1
    fi
done

echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
    "$(free -g | awk '/^Mem:/ {print $2}') GiB RAM, Linux $(uname -r); nodes on $(df --output=fstype "$WORK" | tail -1)"
echo "Parameters: SCENARIOS=\"$SCENARIOS\" DURATION=$DURATION CONCURRENCY=$CONCURRENCY RTW_WRITERS=$RTW_WRITERS" \
    "UPLOAD_BYTES=$UPLOAD_BYTES DOWNLOAD_SET=$DOWNLOAD_SET NOISE_LIMIT=$NOISE_LIMIT"
for round in $(seq "$ROUNDS"); do
    # Nothing to compare when only Tahoe's own client ran (SCENARIOS= RTW_WRITERS=).
    [[ -s "$OUT/swamp.round$round.jsonl" ]] || continue
    if [[ "$PYTHON_SERVER" != 0 ]]; then
    echo
    echo "## Round $round: Swamp (HTTP/2) vs Python (HTTP/1.1)"
    echo
    "$LOAD" compare --candidate "$OUT/swamp.round$round.jsonl" --baseline "$OUT/python.round$round.jsonl" \
        --candidate-name Swamp --baseline-name Python
    echo
    echo "## Round $round: Swamp (HTTP/1.1) vs Python (HTTP/1.1)"
    echo
    "$LOAD" compare --candidate "$OUT/swamp-http1.round$round.jsonl" --baseline "$OUT/python.round$round.jsonl" \
        --candidate-name "Swamp h1" --baseline-name Python
    fi
    if [[ -n "${BASELINE_SERVER:-}" ]]; then
        for proto in "" -http1; do
            echo
            echo "## Round $round: Swamp$proto vs baseline Swamp$proto; baseline Swamp$proto vs Python"
            echo
            "$LOAD" compare --candidate "$OUT/swamp$proto.round$round.jsonl" --baseline "$OUT/swamp-base$proto.round$round.jsonl" \
                --candidate-name "Swamp$proto" --baseline-name "before$proto"
            [[ "$PYTHON_SERVER" != 0 ]] || continue
            echo
            "$LOAD" compare --candidate "$OUT/swamp-base$proto.round$round.jsonl" --baseline "$OUT/python.round$round.jsonl" \
                --candidate-name "before$proto" --baseline-name Python
        done
    fi
done
if [[ "${TAHOE_CLIENT:-}" == 1 ]]; then
    echo
    echo "## Server CPU per unit of work, driven by Tahoe's own Python storage client"
    echo
    "$PY" - "$OUT" "$ROUNDS" <<'EOF'
import re, sys
out, rounds = sys.argv[1], int(sys.argv[2])
line = re.compile(r"server CPU (\S+): ([0-9.]+) (\S+)")
def read(name, r):
    try:
        text = open(f"{out}/tahoe-client-{name}.round{r}.txt").read()
    except FileNotFoundError:
        return {}
    return {m[1]: (float(m[2]), m[3]) for m in line.finditer(text)}
print("| round | scenario | Swamp | Python | Swamp / Python |")
print("|---|---|---:|---:|---:|")
for r in range(1, rounds + 1):
    swamp, python = read("swamp", r), read("python", r)
    for scenario, (value, unit) in swamp.items():
        if scenario in python and python[scenario][0] > 0:
            print(f"| {r} | {scenario} | {value:g} {unit} | {python[scenario][0]:g} {unit} | {value / python[scenario][0]:.3f}x |")
EOF
fi
if [[ ",$RTW_WRITERS," == *,1,* ]]; then
    echo
    echo "## Read-test-write with one writer against the disk's own 1 KiB write + fdatasync (target: p50 at most 1.5x)"
    echo
    "$PY" - "$OUT" "$ROUNDS" <<'EOF'
import json, os, sys
out, rounds = sys.argv[1], int(sys.argv[2])
print("| round | server | rtw p50 ms | disk p50 ms | ratio | met? |")
print("|---|---|---:|---:|---:|---|")
for r in range(1, rounds + 1):
    for name in ("swamp", "swamp-http1", "swamp-base", "swamp-base-http1", "python"):
        rtw_file, disk_file = f"{out}/{name}.round{r}.jsonl", f"{out}/disk-{name}.round{r}.jsonl"
        if not (os.path.exists(rtw_file) and os.path.exists(disk_file)):
            continue
        rtw = [m for m in map(json.loads, filter(str.strip, open(rtw_file)))
               if m["scenario"] == "rtw" and m["concurrency"] == 1]
        disk = [json.loads(l) for l in open(disk_file) if l.strip()]
        if rtw and disk:
            a, b = rtw[-1]["p50_ms"], disk[-1]["p50_ms"]
            print(f"| {r} | {name} | {a:.3f} | {b:.3f} | {a / b:.2f}x | {'yes' if a <= 1.5 * b else 'no'} |")
EOF
fi
echo
echo "raw results (JSON lines): $OUT" >&2
