# Shared by scripts/interop-venv.sh and scripts/magic-folder-venv.sh (source it):
# create or reuse a Python venv holding a pinned set of packages.
#
#   pinned_venv NAME VENV CONSTRAINTS WANT IMPORTS EXE
#
# NAME prefixes the messages; WANT is the pip request ("pkg==v pkg2 ..."),
# pinned by the CONSTRAINTS file; IMPORTS a Python import line that must work
# afterwards; EXE an executable that must exist in VENV/bin. Idempotent: when
# the venv was completed for the same request and still imports, it returns at
# once without touching the network. Prints the venv path on stdout (last line).
# Env: PYTHON=/path/to/python3 picks the interpreter (default: python3.11 if
# present, else python3).

pinned_venv() {
    local name="$1" venv="$2" constraints="$3" want="$4" imports="$5" exe="$6"
    case "$venv" in
        /*) ;;
        *) venv="$PWD/$venv" ;;
    esac
    local marker="$venv/.swamp-venv-ready"

    # Fast path: venv exists, was completed for the same request, and the
    # packages still import.
    if [ -f "$marker" ] && [ -x "$venv/bin/python" ] && [ -x "$venv/bin/$exe" ] \
        && [ "$(cat "$marker")" = "$want" ] \
        && "$venv/bin/python" -c "$imports" >/dev/null 2>&1; then
        _pinned_venv_ignore_self "$venv"
        echo "$venv"
        return 0
    fi

    if [ ! -f "$constraints" ]; then
        echo "$name: constraints file not found: $constraints" >&2
        return 1
    fi

    local python="${PYTHON:-}"
    if [ -z "$python" ]; then
        if command -v python3.11 >/dev/null 2>&1; then
            python=python3.11
        else
            python=python3
        fi
    fi

    if [ ! -x "$venv/bin/python" ]; then
        echo "$name: creating $venv with $python" >&2
        "$python" -m venv "$venv"
    fi
    _pinned_venv_ignore_self "$venv"

    echo "$name: installing $want" >&2
    # shellcheck disable=SC2086 # WANT is a list of requirements
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        -c "$constraints" $want >&2
    "$venv/bin/python" -c "$imports" >&2
    "$venv/bin/$exe" --version >/dev/null
    printf '%s' "$want" > "$marker"
    echo "$venv"
}

# Keep the venv out of git whatever the repo's .gitignore says (like Python
# 3.13's venv does).
_pinned_venv_ignore_self() {
    if [ -d "$1" ] && [ ! -f "$1/.gitignore" ]; then
        printf '*\n' > "$1/.gitignore"
    fi
}
