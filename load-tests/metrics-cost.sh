#!/usr/bin/env bash
# What recording metrics costs the server: the share of a release swamp-server's CPU
# samples (perf, 2 kHz) spent in the metrics crates and Swamp's `Metrics`, while
# swamp-load drives each storage scenario for 7 s. Both figures come from the same
# samples, so the share is a ratio measured in one run. What this misses: allocations
# and hashing the metrics code asks libc for (a few per request; see
# docs/benchmarks.md, "Metrics").
#
# Run with: load-tests/metrics-cost.sh   (needs perf; builds nothing: run
# `cargo build --release -p swamp-server -p swamp-load-tests` first)
#   CARGO_TARGET_DIR  where the release binaries are   [<repo>/target]
# For the end-to-end view, the same binary with metrics off as the baseline:
#   printf '#!/bin/sh\nSWAMP_METRICS=false exec %s "$@"\n' "$PWD/target/release/swamp-server" > /tmp/nometrics
#   chmod +x /tmp/nometrics
#   PYTHON_SERVER=0 BASELINE_SERVER=/tmp/nometrics RTW_WRITERS=32 ROUNDS=3 load-tests/run-benchmarks.sh
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
B=${CARGO_TARGET_DIR:-$ROOT/target}/release
W=$(mktemp -d /tmp/swamp-metrics-cost.XXXXXX)
"$B/swamp-server" create-node "$W/n" >/dev/null
"$B/swamp-server" run "$W/n" >"$W/out" 2>"$W/log" </dev/null &
PID=$!
trap 'kill $PID; wait $PID 2>/dev/null; rm -rf "$W"' EXIT
for _ in $(seq 100); do [ -s "$W/out" ] && break; sleep 0.1; done
head -n1 "$W/out" >"$W/nurl"
share() {
    perf report -i "$1" --no-children --sort dso,symbol --stdio 2>/dev/null | grep -E '^ +[0-9.]+%' |
        awk -v pat="$2" 'tolower($0) ~ pat {s += $1} END {printf "%.2f", s + 0}'
}
for scenario in "version --concurrency 8" "upload --concurrency 8" "download --concurrency 8" "rtw --concurrency 32"; do
    name=${scenario%% *}
    perf record -F 2000 -p "$PID" -o "$W/$name.data" -- sleep 8 >/dev/null 2>&1 &
    recorder=$!
    sleep 0.5
    # shellcheck disable=SC2086
    "$B/swamp-load" run --nurl-file "$W/nurl" --duration 7 --upload-bytes 2GiB --download-set 256MiB $scenario >/dev/null 2>&1
    wait "$recorder"
    echo "$name: $(share "$W/$name.data" metrics)% of the server's samples in metrics code (of $(share "$W/$name.data" .)% sampled)"
done
