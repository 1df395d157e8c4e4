#!/usr/bin/env bash
# magic-folder on push (issue 10): reaction time of the real magic-folder 24.3 with
# `tahoe magic-folder-push`, and the storage-server load of 50 idle folders with
# magic-folder's polling versus the bridge. See load-tests/magic-folder-bench.py.
#
# Run with: flock /tmp/swamp-cpu.lock load-tests/magic-folder-bench.sh [--changes N]
#           [--folders M] [--window S] [--json FILE]
#
# Knobs (environment variables):
#   CARGO_TARGET_DIR  where to build                 [<repo>/target]
#   SKIP_BUILD=1      use the release binaries already built
#   MF_VENV           the magic-folder venv          [made by scripts/magic-folder-venv.sh]
#   TMPDIR            where the grids go (default /tmp)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MF_VENV=${MF_VENV:-$("$ROOT/scripts/magic-folder-venv.sh" | tail -n 1)}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
if [[ "${SKIP_BUILD:-}" != 1 ]]; then
    (cd "$ROOT" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release -p swamp-server -p swamp-cli)
fi
export SWAMP_SERVER_BIN="$TARGET_DIR/release/swamp-server"
export SWAMP_TAHOE_BIN="$TARGET_DIR/release/tahoe"
echo "# $(date -u +%FT%TZ) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(git -C "$ROOT" rev-parse --short HEAD)"
exec "$MF_VENV/bin/python" "$ROOT/load-tests/magic-folder-bench.py" "$@"
