#!/usr/bin/env python3
"""Writes formats/tests/fixtures/dirnode/: a directory made by a real Tahoe-LAFS 1.20
client (2-of-3) on three Swamp nodes, with a file, a mutable file, a subdirectory and
non-ASCII names. Files: `cap.txt` (the directory's write cap), `listing.json` (Tahoe's
own `?t=json` listing), and shares 0 and 1 of its backing SDMF file (`<shnum>.share`).

Run from the repository root, after `cargo build -p swamp-server`:
    .venv-interop/bin/python tests/interop/make_dirnode_fixtures.py
"""
import json
import sys
import tempfile
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import interop_lib as L  # noqa: E402
from allmydata import uri  # noqa: E402


def main() -> None:
    out = Path(__file__).resolve().parents[2] / "formats" / "tests" / "fixtures" / "dirnode"
    with tempfile.TemporaryDirectory() as tmp:
        grid = L.build_grid(Path(tmp), L.SWAMP, n_servers=3, needed=2, happy=3, total=3)
        try:
            c = grid.client
            dircap = c.web("POST", "uri?t=mkdir").decode().strip()
            q = urllib.parse.quote(dircap)
            c.web("PUT", f"uri/{q}/hello.txt", data=b"hello, world, from a file long enough to be CHK\n")
            c.web("PUT", f"uri/{q}/tiny", data=b"lit")
            c.web("PUT", f"uri/{q}/{urllib.parse.quote('café ☕.txt')}?format=SDMF", data=b"mutable contents")
            c.web("POST", f"uri/{q}/sub?t=mkdir")
            listing = json.loads(c.web("GET", f"uri/{q}?t=json"))
            si = uri.from_string(dircap).get_storage_index()
            si_b32 = L.b32(si)
            out.mkdir(parents=True, exist_ok=True)
            (out / "cap.txt").write_text(dircap + "\n")
            (out / "listing.json").write_text(json.dumps(listing, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
            for node in grid.nodes:
                for path in node.share_files():
                    if path.parent.name == si_b32 and int(path.name) < 2:
                        info = L.mutable_container_info(path)
                        (out / f"{path.name}.share").write_bytes(info["share_data"])
            print(f"wrote {out}")
        finally:
            grid.stop()


if __name__ == "__main__":
    main()
