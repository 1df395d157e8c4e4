#!/usr/bin/env bash
# Create (or reuse) the Python venv used by the tests with the real magic-folder
# (tests/magic_folder) and by load-tests/magic-folder-bench.py.
#
#   scripts/magic-folder-venv.sh [VENV_DIR]   (default: <repo>/.venv-magic-folder)
#
# Installs magic-folder 24.3.0, tahoe-lafs 1.20.0, pytest and PyYAML pinned by
# tests/magic_folder/constraints.txt (the full dependency set that resolved for
# them on Python 3.11). A venv of its own: magic-folder brings its own
# dependency versions. Idempotent: when the venv already has everything, it
# returns at once without touching the network. Prints the venv path on the
# last line of stdout.
# Env: PYTHON=/path/to/python3 picks the interpreter (default: python3.11 if
# present, else python3).
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/.." && pwd)"
# shellcheck source=lib/venv.sh
. "$script_dir/lib/venv.sh"

pinned_venv magic-folder-venv "${1:-$repo_root/.venv-magic-folder}" \
    "$repo_root/tests/magic_folder/constraints.txt" \
    "magic-folder==24.3.0 tahoe-lafs==1.20.0 pytest pyyaml" \
    "import magic_folder, allmydata, pytest, yaml" \
    magic-folder
