#!/usr/bin/env bash
# Builds the container image of Swamp (deploy/Dockerfile): `swamp-server` and the
# `tahoe` CLI, compiled here as static binaries (glibc, crt-static), on an empty base.
# Nothing is pulled, so this works with no registry. The Rust build happens outside
# Docker because the image cannot fetch a toolchain.
#
# Usage: scripts/docker-build.sh [TAG]      (default swamp:latest)
# Prints the tag last. CARGO_TARGET_DIR is honoured; the build context is made in
# <target>/docker-context.
set -euo pipefail
cd "$(dirname "$0")/.."

tag="${1:-swamp:latest}"
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
host="$(rustc -vV | sed -n 's/^host: //p')"
case "$host" in
    *-linux-gnu) ;;
    *) echo "docker-build.sh: builds on a *-linux-gnu host only (this is $host)" >&2; exit 1 ;;
esac
if ! command -v docker >/dev/null; then
    echo "docker-build.sh: the docker command is missing" >&2
    exit 1
fi

# --target, even though it is the host's: then RUSTFLAGS reach only the binaries, not
# build scripts and proc macros (which cannot be static).
echo "== static release build of swamp-server and tahoe ($host)" >&2
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    cargo build --release --locked --target "$host" \
    -p swamp-server -p swamp-cli --bin swamp-server --bin tahoe >&2
bin_dir="$target_dir/$host/release"
for bin in swamp-server tahoe; do
    # A dynamic binary would start nowhere in an image with no libc: say so here.
    if command -v readelf >/dev/null && readelf -l "$bin_dir/$bin" | grep -q 'INTERP'; then
        echo "docker-build.sh: $bin_dir/$bin is dynamically linked" >&2
        exit 1
    fi
done

context="$target_dir/docker-context"
rm -rf "$context"
mkdir -p "$context/rootfs/usr/local/bin" "$context/rootfs/etc" "$context/rootfs/tmp" "$context/data"
cp "$bin_dir/swamp-server" "$bin_dir/tahoe" "$context/rootfs/usr/local/bin/"
# Names for the numeric ids, so that tools (and `ls -n` readers) see who owns what.
printf 'root:x:0:0:root:/:/sbin/nologin\nswamp:x:10001:10001:Swamp storage node:/data:/sbin/nologin\n' \
    >"$context/rootfs/etc/passwd"
printf 'root:x:0:\nswamp:x:10001:\n' >"$context/rootfs/etc/group"
chmod 1777 "$context/rootfs/tmp"
chmod 0700 "$context/data"

echo "== docker build -t $tag" >&2
docker build --quiet -t "$tag" -f deploy/Dockerfile "$context" >&2
size="$(docker image inspect -f '{{.Size}}' "$tag")"
echo "== image $tag: $((size / 1024 / 1024)) MiB" >&2
echo "$tag"
