#!/usr/bin/env bash
# Client benchmark (issue 4): `tahoe put` / `tahoe get` of a 100 MiB file with Swamp's
# `tahoe` CLI and with the real Tahoe-LAFS 1.20 CLI, on one grid of three Swamp
# storage nodes (2-of-3), in the same run, interleaved. See load-tests/client-bench.py.
#
# Run with: load-tests/client-bench.sh [--rounds N] [--size-mib M] [--json FILE]
# Knobs: see load-tests/python-bench-env.sh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/python-bench-env.sh"
exec "$TAHOE_VENV/bin/python" "$ROOT/load-tests/client-bench.py" "$@"
