# Sourced by the benchmarks that drive Python programs against Swamp binaries
# (client-bench.sh, gateway-bench.sh): picks the venv with tahoe-lafs 1.20, builds
# the release binaries (unless SKIP_BUILD=1), exports where they are, and prints
# the machine line every result starts with.
#
# Knobs (environment variables):
#   TAHOE_VENV        venv with tahoe-lafs 1.20 (and pytest, pyyaml): the first of
#                     <repo>/.venv-interop, /work/main/.venv-interop that exists
#   CARGO_TARGET_DIR  where to build                 [<repo>/target]
#   SKIP_BUILD=1      use the release binaries already built
#   TMPDIR            where the grid and the files go (default /tmp)

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ -z "${TAHOE_VENV:-}" ]]; then
    for v in "$ROOT/.venv-interop" /work/main/.venv-interop; do
        if [[ -x "$v/bin/tahoe" ]]; then TAHOE_VENV=$v; break; fi
    done
fi
if [[ -z "${TAHOE_VENV:-}" || ! -x "$TAHOE_VENV/bin/tahoe" ]]; then
    echo "no venv with tahoe-lafs 1.20: run scripts/interop-venv.sh or set TAHOE_VENV" >&2
    exit 2
fi
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
if [[ "${SKIP_BUILD:-}" != 1 ]]; then
    (cd "$ROOT" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release -p swamp-server -p swamp-cli)
fi
export SWAMP_SERVER_BIN="$TARGET_DIR/release/swamp-server"
export SWAMP_TAHOE_BIN="$TARGET_DIR/release/tahoe"
export TAHOE_BIN="$TAHOE_VENV/bin/tahoe"
echo "# $(date -u +%FT%TZ) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(git -C "$ROOT" rev-parse --short HEAD)"
