#!/usr/bin/env python3
"""Writes formats/tests/fixtures/mutable/: SDMF and MDMF mutable files made by a real
Tahoe-LAFS 1.20 client (2-of-3) on three Swamp nodes. For each file: `cap.txt` (the
write cap), `size.txt`, and the data of shares 0 and 1 as they landed on disk
(`<shnum>.share`, the mutable container's data region). The plaintext is
byte j = (j*37 + size) % 256. The MDMF file has two segments; the empty files have
none (an empty SDMF file still has a salt, and segment size 0).

The shares also hold everything needed to re-encode them (the signing key, encrypted
with the cap's write key; the salts; the seqnum), which is how Swamp's encoder is tested
against them.

Run from the repository root, after `cargo build -p swamp-server`:
    .venv-interop/bin/python tests/interop/make_mutable_fixtures.py [NAME...]
(NAMEs limit which files are rewritten; by default all are.)
"""
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import interop_lib as L  # noqa: E402

FILES = [
    ("sdmf", "SDMF", 1000),
    ("mdmf", "MDMF", 200_000),
    ("sdmf-empty", "SDMF", 0),
    ("mdmf-empty", "MDMF", 0),
]


def plaintext(size: int) -> bytes:
    return bytes((j * 37 + size) % 256 for j in range(size))


def main() -> None:
    out = Path(__file__).resolve().parents[2] / "formats" / "tests" / "fixtures" / "mutable"
    with tempfile.TemporaryDirectory() as tmp:
        grid = L.build_grid(Path(tmp), L.SWAMP, n_servers=3, needed=2, happy=3, total=3)
        try:
            wanted = set(sys.argv[1:])
            for name, fmt, size in FILES:
                if wanted and name not in wanted:
                    continue
                before = {p for n in grid.nodes for p in n.share_files()}
                cap = grid.client.web("PUT", f"uri?format={fmt}", data=plaintext(size)).decode().strip()
                new = [p for n in grid.nodes for p in n.share_files() if p not in before]
                d = out / name
                d.mkdir(parents=True, exist_ok=True)
                (d / "cap.txt").write_text(cap + "\n")
                (d / "size.txt").write_text(f"{size}\n")
                for path in new:
                    info = L.mutable_container_info(path)
                    raw = path.read_bytes()
                    shnum = int(path.name)
                    if shnum < 2:
                        (d / f"{shnum}.share").write_bytes(raw[468:468 + info["data_length"]])
            print(f"wrote {out}")
        finally:
            grid.stop()


if __name__ == "__main__":
    main()
