#!/usr/bin/env bash
# Runs Swamp's whole test suite on a fresh machine: the Rust unit and end-to-end tests,
# then the interop tests against real Tahoe-LAFS 1.20, then the tests with the real
# magic-folder 24.3 and `tahoe magic-folder-push` (each pinned venv is created on
# first use), then the container tests (Docker Engine and Compose needed: without them
# this fails, saying so). The tracing test among the Rust tests needs the OTLP
# receiver's venv, made first. Usage: scripts/test.sh [--rust-only]
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" != "--rust-only" ]; then
    echo "== The OTLP receiver's venv (opentelemetry-proto, for the tracing test)"
    otel_venv="$(scripts/otel-venv.sh | tail -n 1)"
    export SWAMP_OTEL_PYTHON="$otel_venv/bin/python"
fi

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

echo "== Tests with the real magic-folder 24.3 and tahoe magic-folder-push"
mf_venv="$(scripts/magic-folder-venv.sh | tail -n 1)"
export SWAMP_TAHOE_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/tahoe"
"$mf_venv/bin/python" -m pytest tests/magic_folder -q -p no:cacheprovider

echo "== Container tests: the image (static release build), a compose grid, real Tahoe against it"
scripts/docker-test.sh
