"""Writes proto/tests/fixtures/empty/: an empty SDMF and an empty MDMF directory as a
real Tahoe-LAFS 1.20 client creates them (`POST /uri?t=mkdir&format=...`) on a 1-of-1
grid, as the share's data region plus the directory's cap. Empty mutable files are a
corner of the format (no segments at all) that the ordinary fixtures miss.

Run with the interop venv: .venv-interop/bin/python tests/interop/make_empty_dir_fixtures.py
(needs SWAMP_SERVER_BIN, or a built target/debug/swamp-server).
"""

import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import interop_lib as L  # noqa: E402
from allmydata import uri  # noqa: E402

OUT = L.REPO_ROOT / "proto" / "tests" / "fixtures" / "empty"
CONTAINER_HEADER = 468


def main() -> None:
    base = Path(tempfile.mkdtemp(prefix="empty-dirs-"))
    grid = L.build_grid(base, L.SWAMP, n_servers=1, needed=1, happy=1, total=1)
    try:
        OUT.mkdir(parents=True, exist_ok=True)
        for fmt in ["SDMF", "MDMF"]:
            cap = grid.client.web("POST", f"uri?t=mkdir&format={fmt}").decode().strip()
            si = L.b32(uri.from_string(cap).get_storage_index())
            share = grid.nodes[0].share_path(si, 0).read_bytes()[CONTAINER_HEADER:]
            (OUT / f"empty_{fmt.lower()}_dir.share").write_bytes(share)
            (OUT / f"empty_{fmt.lower()}_dir.cap").write_text(cap + "\n")
    finally:
        grid.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
