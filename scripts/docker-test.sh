#!/usr/bin/env bash
# The container tests (tests/docker): builds Swamp's image (scripts/docker-build.sh),
# starts the compose grid of deploy/compose.yaml under a project name of its own, and
# drives it with the `tahoe` CLI in the client container and a real Tahoe-LAFS 1.20
# client on the host. Whatever happens, the project (containers, network, volumes) and
# the image are removed at the end.
#
# Needs Docker Engine and Compose (`docker compose` or `docker-compose`): without them
# it fails, saying so, rather than skipping. Usage: scripts/docker-test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "docker-test.sh: $*" >&2; exit 1; }
command -v docker >/dev/null || fail "the docker command is missing: the container tests need Docker Engine and Compose"
docker info >/dev/null 2>&1 || fail "the Docker daemon does not answer (docker info failed)"
if docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
elif command -v docker-compose >/dev/null; then
    compose=(docker-compose)
else
    fail "neither 'docker compose' nor 'docker-compose' is installed"
fi

suffix="$(date +%s)$$"
export SWAMP_IMAGE="swamp:test-$suffix"
export SWAMP_COMPOSE_PROJECT="swamptest$suffix"
cleanup() {
    SWAMP_IMAGE="$SWAMP_IMAGE" "${compose[@]}" -f deploy/compose.yaml -p "$SWAMP_COMPOSE_PROJECT" \
        down --volumes --remove-orphans --timeout 10 >/dev/null 2>&1 || true
    docker image rm -f "$SWAMP_IMAGE" >/dev/null 2>&1 || true
}
trap cleanup EXIT

started=$SECONDS
scripts/docker-build.sh "$SWAMP_IMAGE" >/dev/null
built=$SECONDS
venv="$(scripts/interop-venv.sh | tail -n 1)"
"$venv/bin/python" -m pytest tests/docker -q -p no:cacheprovider "$@"
echo "== container tests: image built in $((built - started)) s, tests ran in $((SECONDS - built)) s"
