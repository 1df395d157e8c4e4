#!/usr/bin/env bash
# Web API benchmark (issue 13): a Swamp client node (`tahoe run`) against a Python
# Tahoe-LAFS 1.20 client node on one grid of three Swamp storage nodes: 100 MiB PUT
# and GET, t=json of a 1,000-entry directory, and the Swamp node's memory while 10
# clients stream a 1 GiB file. See load-tests/gateway-bench.py.
#
# Run with: load-tests/gateway-bench.sh [--rounds N] [--size-mib M] [--memory-gib G] [--json FILE]
# Knobs: see load-tests/python-bench-env.sh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/python-bench-env.sh"
exec "$TAHOE_VENV/bin/python" "$ROOT/load-tests/gateway-bench.py" "$@"
