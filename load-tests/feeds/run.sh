#!/usr/bin/env bash
# Swamp's change-feed benchmark, end to end, on loopback.
#
# Builds swamp-server and swamp-feed-load (release), creates a throw-away node, starts
# `swamp-server run`, drives it with every swamp-feed-load scenario (idle, latency,
# fanout, fanout-single, reconnect), stops the server by its PID (SIGTERM), and prints the results (a
# Markdown table, and JSON in $OUT/feeds.json).
#
# Run with: load-tests/feeds/run.sh            (from anywhere in the repository)
#
# Knobs (environment variables):
#   CARGO_TARGET_DIR  where to build                     [/work/target-bench]
#   SKIP_BUILD=1      use the binaries already built
#   SCENARIOS         which scenarios, in order  [idle latency fanout fanout-single reconnect]
#   NODE_ROOT         where the node directory goes      [/tmp]; /dev/shm takes the
#                     disk (and so fsync) out of the picture
#   OUT               where results and logs go          [a new temp directory]
#   KEEP=1            keep the node directory
#   SERVER            the swamp-server binary to run [$CARGO_TARGET_DIR/release/swamp-server]
#   FEED_LOAD_ARGS    extra arguments for swamp-feed-load, e.g.
#                     "--idle-connections 20000 --source-ips 4 --fanout-connections 3200"
#
# Each connection is a file descriptor in both the server and the generator: the
# script raises the open-file limit to 65536 (as root; otherwise to the hard limit).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-/work/target-bench}
SCENARIOS=${SCENARIOS:-idle latency fanout fanout-single reconnect}
NODE_ROOT=${NODE_ROOT:-/tmp}
OUT=${OUT:-$(mktemp -d /tmp/swamp-feed-bench.XXXXXX)}
mkdir -p "$OUT"

SERVER=${SERVER:-$TARGET_DIR/release/swamp-server}
LOAD="$TARGET_DIR/release/swamp-feed-load"

if [[ "${SKIP_BUILD:-}" != 1 ]]; then
    (cd "$ROOT" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release -p swamp-server -p swamp-feed-load)
fi

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
echo "open-file limit: $(ulimit -n)" >&2

NODE=$(mktemp -d "$NODE_ROOT/swamp-feed-node.XXXXXX")
SERVER_PID=
cleanup() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ "${KEEP:-}" != 1 ]]; then rm -rf "$NODE"; else echo "node kept in $NODE" >&2; fi
}
trap cleanup EXIT

rmdir "$NODE"   # create-node wants to make it
"$SERVER" create-node "$NODE" >/dev/null
NURL_FILE="$OUT/nurl"
# The first stdout line is the NURL (it holds the swissnum: kept in a file, not argv).
"$SERVER" run "$NODE" >"$NURL_FILE" 2>"$OUT/server.log" &
SERVER_PID=$!
for _ in $(seq 200); do
    [[ -s "$NURL_FILE" ]] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$OUT/server.log" >&2; exit 1; }
    sleep 0.05
done
[[ -s "$NURL_FILE" ]] || { echo "the server printed no NURL" >&2; exit 1; }
echo "server pid $SERVER_PID, node $NODE, results in $OUT" >&2

SECRET_ARGS=()
for _ in $(seq 100); do
    [[ -s "$NODE/private/operator.secret" ]] && break
    sleep 0.05
done
if [[ -s "$NODE/private/operator.secret" ]]; then
    SECRET_ARGS=(--operator-secret-file "$NODE/private/operator.secret")
fi

# shellcheck disable=SC2086 # SCENARIOS and FEED_LOAD_ARGS are word lists
"$LOAD" $SCENARIOS --nurl-file "$NURL_FILE" --server-pid "$SERVER_PID" \
    "${SECRET_ARGS[@]}" --json-out "$OUT/feeds.json" ${FEED_LOAD_ARGS:-} \
    | tee "$OUT/feeds.md"

echo >&2
echo "machine: $(nproc) cores, $(uname -r); node on $(df --output=fstype "$NODE" | tail -1)" >&2
echo "results: $OUT/feeds.md, $OUT/feeds.json; server log: $OUT/server.log" >&2
