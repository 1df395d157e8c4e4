#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/fuzz_targets/) for SECONDS each (default 20) on
# nightly, starting from its committed seed corpus (fuzz/corpus/<target>/, never
# written to: new inputs go to a scratch directory), and fails on the first crash,
# hang (an input taking over 10 s) or out-of-memory (over 2 GiB resident, or one
# allocation over 512 MiB). Installs nightly and cargo-fuzz (from crates.io) if missing.
# Prints one line per target: name, seconds, executions.
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
# A failing input is kept in fuzz/artifacts/<target>/; replay it with
# `cd fuzz && cargo +nightly fuzz run <target> <file>`.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-20}"
shift || true

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
cargo +nightly fuzz --version >/dev/null 2>&1 || cargo +nightly install cargo-fuzz --locked

cd fuzz
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

echo "== cargo fuzz build (${#targets[@]} targets)"
cargo +nightly fuzz build

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
summary=()
for target in "${targets[@]}"; do
    echo "== fuzz $target for ${seconds}s"
    mkdir -p "$scratch/$target"
    log="$scratch/$target.log"
    if ! cargo +nightly fuzz run "$target" "$scratch/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512 \
        -print_final_stats=1 2>"$log"; then
        tail -n 60 "$log" >&2
        echo "fuzz target $target failed; the input is in fuzz/artifacts/$target/" >&2
        exit 1
    fi
    execs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')"
    summary+=("$(printf '%-16s %6ss %12s executions' "$target" "$seconds" "$execs")")
done

echo "== fuzz summary"
printf '%s\n' "${summary[@]}"
