"""Fixtures for the tests with the real magic-folder 24.3 (see README.md here).

They run with the venv made by scripts/magic-folder-venv.sh and reuse the interop
harness (tests/interop/interop_lib.py, through mf_lib).

Environment: as for tests/interop (SWAMP_SERVER_BIN, SWAMP_REQUIRE_BINARY,
INTEROP_LOG_DIR, INTEROP_TRACE), plus SWAMP_TAHOE_BIN: Swamp's `tahoe` CLI, which
runs the bridge (default: next to swamp-server; not the venv's Python `tahoe`).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import mf_lib as M

L = M.L


def pytest_configure(config):
    try:
        import magic_folder  # noqa: F401
        import allmydata  # noqa: F401
    except ImportError:
        raise pytest.UsageError(
            "the magic-folder tests need magic-folder 24.3 and tahoe-lafs 1.20 importable: run "
            "scripts/magic-folder-venv.sh and use .venv-magic-folder/bin/python -m pytest tests/magic_folder"
        ) from None
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning")


def pytest_sessionfinish(session, exitstatus):
    # Last resort: anything a fixture did not stop (e.g. on KeyboardInterrupt).
    L.stop_all_processes()


def pytest_report_header(config):
    return [f"magic-folder: {M.venv_bin('magic-folder')}",
            f"swamp-server: {L.swamp_server_bin()}", f"bridge (Swamp's tahoe): {L.swamp_tahoe_bin()}"]


@pytest.fixture(scope="session")
def mf_base(tmp_path_factory) -> Path:
    keep = os.environ.get("INTEROP_LOG_DIR")
    if keep:
        p = Path(keep).resolve() / "magic-folder"
        p.mkdir(parents=True, exist_ok=True)
        return p
    return tmp_path_factory.getbasetemp() / "magic-folder"

