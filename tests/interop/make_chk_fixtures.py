#!/usr/bin/env python3
"""Writes formats/tests/fixtures/chk.txt: immutable files uploaded by a real Tahoe-LAFS
1.20 client (2-of-3, a fixed convergence secret) to three Swamp nodes, and the SHA-256
of every share's bytes as they landed on disk, so swamp-formats' CHK encoder can be
checked byte for byte against Tahoe's.

Run from the repository root, after `cargo build -p swamp-server`:
    .venv-interop/bin/python tests/interop/make_chk_fixtures.py

Each line: size cap shnum:sha256 ... ; the plaintext is byte j = (j*131 + size) % 256.
"""
import hashlib
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import interop_lib as L  # noqa: E402

CONVERGENCE = "aaaqeayeaudaocajbifqydiob4ibceqtcqkrmfyydenbwha5dypq"  # base32 of bytes 0..31
SIZES = [56, 1000, 131073, 1024 * 1024 + 1, 3 * 1024 * 1024 - 7]


def plaintext(size: int) -> bytes:
    return bytes((j * 131 + size) % 256 for j in range(size))


def share_data(path: Path) -> bytes:
    raw = path.read_bytes()
    leases = int.from_bytes(raw[8:12], "big")
    return raw[12:len(raw) - 72 * leases]


def main() -> None:
    out = Path(__file__).resolve().parents[2] / "formats" / "tests" / "fixtures" / "chk.txt"
    with tempfile.TemporaryDirectory() as tmp:
        grid = L.build_grid(Path(tmp), L.SWAMP, n_servers=3, needed=2, happy=3, total=3)
        try:
            grid.client.stop()
            (grid.client.nodedir / "private" / "convergence").write_text(CONVERGENCE + "\n")
            grid.client.start()
            grid.client.wait_for_servers(3, procs=[n.proc for n in grid.nodes])
            lines = ["# made by tests/interop/make_chk_fixtures.py with tahoe-lafs 1.20.0 (2-of-3)",
                     f"# convergence secret: {CONVERGENCE}"]
            for size in SIZES:
                cap = grid.client.web("PUT", "uri", data=plaintext(size)).decode().strip()
                shares = {}
                for node in grid.nodes:
                    for path in node.share_files():
                        shares.setdefault(path.parent.name, {})[int(path.name)] = hashlib.sha256(share_data(path)).hexdigest()
                # This file's storage index is the one not seen before.
                seen = {line.split()[2] for line in lines if not line.startswith("#")}
                (bucket, by_shnum), = [(b, s) for b, s in shares.items() if b not in seen]
                fields = " ".join(f"{n}:{h}" for n, h in sorted(by_shnum.items()))
                lines.append(f"{size} {cap} {bucket} {fields}")
            out.write_text("\n".join(lines) + "\n")
            print(f"wrote {out}")
        finally:
            grid.stop()


if __name__ == "__main__":
    main()
