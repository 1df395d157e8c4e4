"""Fixtures shared by the Swamp <-> Tahoe-LAFS interop tests.

Environment:
  SWAMP_SERVER_BIN        path to swamp-server (default target/debug/swamp-server,
                          relative paths resolved against the repo root)
  SWAMP_REQUIRE_BINARY=1  a missing binary fails the Swamp tests instead of skipping them (CI)
  INTEROP_DRY_RUN_PYTHON_SERVERS=1
                          every Swamp node is replaced by a Python Tahoe storage
                          node: validates this harness without the binary
  INTEROP_LOG_DIR         keep node logs/dirs there instead of pytest's tmp dir
  TAHOE_BIN               the `tahoe` executable (default: next to sys.executable)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
import pytest

import interop_lib as L


def pytest_configure(config):
    try:
        import allmydata  # noqa: F401
    except ImportError:
        raise pytest.UsageError(
            "the interop tests need tahoe-lafs 1.20 importable: run scripts/interop-venv.sh "
            "and use .venv-interop/bin/python -m pytest tests/interop"
        ) from None
    config.addinivalue_line(
        "markers",
        "swamp: needs the swamp-server binary (skipped when it is missing, "
        "unless SWAMP_REQUIRE_BINARY is set, then it fails)",
    )
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:pyutil.*")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    # Runs before any fixture (including module-scoped grids) is set up.
    if item.get_closest_marker("swamp") is not None:
        L.require_swamp()


def pytest_sessionfinish(session, exitstatus):
    # Last resort: anything a fixture did not stop (e.g. on KeyboardInterrupt).
    L.stop_all_processes()
    gbs_client = sys.modules.get("gbs_client")
    if gbs_client is not None:
        gbs_client.shutdown()


def pytest_report_header(config):
    lines = [f"tahoe: {L.tahoe_bin()}"]
    if L.dry_run_python_servers():
        lines.append("INTEROP_DRY_RUN_PYTHON_SERVERS: Swamp nodes are replaced by Python Tahoe storage nodes")
    else:
        lines.append(f"swamp-server: {L.swamp_server_bin()} "
                     f"({'present' if L.swamp_available() else 'MISSING'}"
                     f"{', required' if L.env_flag('SWAMP_REQUIRE_BINARY') else ''})")
    return lines


@pytest.fixture(scope="session")
def interop_base(tmp_path_factory) -> Path:
    keep = os.environ.get("INTEROP_LOG_DIR")
    if keep:
        p = Path(keep).resolve()
        p.mkdir(parents=True, exist_ok=True)
        return p
    return tmp_path_factory.getbasetemp() / "interop"


def _unique_dir(base: Path, name: str) -> Path:
    base.mkdir(parents=True, exist_ok=True)
    i = 0
    while True:
        p = base / (name if i == 0 else f"{name}-{i}")
        try:
            p.mkdir()
            return p
        except FileExistsError:
            i += 1


@pytest.fixture(scope="session")
def workdir_factory(interop_base):
    """workdir_factory(name) -> a fresh directory under the session's base."""
    return lambda name: _unique_dir(interop_base, name)


@pytest.fixture(scope="session")
def swamp_grid(workdir_factory):
    """Three Swamp nodes (2-of-3, happy 3) and a real Tahoe client node using them,
    shared by the test modules that drive Swamp's `tahoe` CLI (starting a grid costs
    seconds; every test makes its own files and directories)."""
    L.require_swamp()
    g = L.build_grid(workdir_factory("swamp-cli-grid"), L.SWAMP, n_servers=3, needed=2, happy=3, total=3)
    yield g
    g.stop()
