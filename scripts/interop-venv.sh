#!/usr/bin/env bash
# Create (or reuse) the Python venv used by the Tahoe-LAFS interop tests.
#
#   scripts/interop-venv.sh [VENV_DIR]        (default: <repo>/.venv-interop)
#
# Installs tahoe-lafs 1.20.0, pytest and PyYAML pinned by
# ../shared/reference/tahoe-1.20-constraints.txt (relative to the repo root).
# Idempotent: when the venv already has everything, it returns at once without
# touching the network. Prints the venv path on the last line of stdout.
# Env: PYTHON=/path/to/python3 picks the interpreter (default: python3.11 if
# present, else python3).
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/.." && pwd)"
# shellcheck source=lib/venv.sh
. "$script_dir/lib/venv.sh"

pinned_venv interop-venv "${1:-$repo_root/.venv-interop}" \
    "$repo_root/../shared/reference/tahoe-1.20-constraints.txt" \
    "tahoe-lafs==1.20.0 pytest pyyaml" \
    "import allmydata, pytest, yaml" \
    tahoe
