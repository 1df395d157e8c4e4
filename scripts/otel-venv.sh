#!/usr/bin/env bash
# Create (or reuse) the Python venv of the OTLP receiver that the tracing test runs
# (tests/otlp/otlp_receiver.py, driven by tests/tests/it/otel.rs).
#
#   scripts/otel-venv.sh [VENV_DIR]        (default: <repo>/.venv-otel)
#
# Installs opentelemetry-proto (the official OpenTelemetry protobuf definitions) and
# protobuf, pinned by tests/otlp/constraints.txt. Idempotent: when the venv already
# has them it returns at once without touching the network. Prints the venv path on
# the last line of stdout.
# Env: PYTHON=/path/to/python3 picks the interpreter (default: python3.11 if present,
# else python3).
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/.." && pwd)"
# shellcheck source=lib/venv.sh
. "$script_dir/lib/venv.sh"

pinned_venv otel-venv "${1:-$repo_root/.venv-otel}" \
    "$repo_root/tests/otlp/constraints.txt" \
    "opentelemetry-proto protobuf" \
    "from opentelemetry.proto.collector.trace.v1 import trace_service_pb2" \
    python
