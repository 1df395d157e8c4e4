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
venv="${1:-$repo_root/.venv-interop}"
case "$venv" in
    /*) ;;
    *) venv="$PWD/$venv" ;;
esac
constraints="$repo_root/../shared/reference/tahoe-1.20-constraints.txt"
marker="$venv/.swamp-interop-ready"
want="tahoe-lafs==1.20.0 pytest pyyaml"

# Keep the venv out of git whatever the repo's .gitignore says (like Python
# 3.13's venv does).
ignore_self() { [ -d "$venv" ] && [ ! -f "$venv/.gitignore" ] && printf '*\n' > "$venv/.gitignore" || true; }

# Fast path: venv exists, was completed by this script for the same request,
# and the packages still import.
if [ -f "$marker" ] && [ -x "$venv/bin/python" ] && [ -x "$venv/bin/tahoe" ] \
    && [ "$(cat "$marker")" = "$want" ] \
    && "$venv/bin/python" -c 'import allmydata, pytest, yaml' >/dev/null 2>&1; then
    ignore_self
    echo "$venv"
    exit 0
fi

if [ ! -f "$constraints" ]; then
    echo "interop-venv: constraints file not found: $constraints" >&2
    exit 1
fi

if [ -z "${PYTHON:-}" ]; then
    if command -v python3.11 >/dev/null 2>&1; then
        PYTHON=python3.11
    else
        PYTHON=python3
    fi
fi

if [ ! -x "$venv/bin/python" ]; then
    echo "interop-venv: creating $venv with $PYTHON" >&2
    "$PYTHON" -m venv "$venv"
fi
ignore_self

echo "interop-venv: installing $want" >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    -c "$constraints" $want >&2
"$venv/bin/python" -c 'import allmydata, pytest, yaml' >&2
"$venv/bin/tahoe" --version >/dev/null
printf '%s' "$want" > "$marker"
echo "$venv"
