#!/usr/bin/env bash
# Runs Swamp's whole test suite on a fresh machine: the Rust unit and end-to-end tests,
# then the interop tests against real Tahoe-LAFS 1.20 (its pinned venv is created on
# first use). Usage: scripts/test.sh [--rust-only]
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== Rust tests (unit + end-to-end over real TLS)"
cargo build --workspace --all-targets
cargo test --workspace

if [ "${1:-}" = "--rust-only" ]; then
    exit 0
fi

echo "== Interop tests against real Tahoe-LAFS 1.20"
venv="$(scripts/interop-venv.sh | tail -n 1)"
export SWAMP_SERVER_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/swamp-server"
export SWAMP_REQUIRE_BINARY=1
"$venv/bin/python" -m pytest tests/interop -q -p no:cacheprovider
