"""The container tests: Swamp's image (deploy/Dockerfile) in the compose grid of
deploy/compose.yaml, driven by the `tahoe` CLI in the client container and by a real
Tahoe-LAFS 1.20 client on the host. Run them with scripts/docker-test.sh, which builds
the image and cleans up whatever the run leaves.

Environment (set by scripts/docker-test.sh):
  SWAMP_IMAGE              the image to test (required)
  SWAMP_COMPOSE_PROJECT    the compose project name (default: made up here)
"""

from __future__ import annotations

import os
import secrets

import pytest

import docker_lib as D


def pytest_configure(config):
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:pyutil.*")


@pytest.fixture(scope="session")
def grid(tmp_path_factory):
    """The three nodes up and healthy, and a client directory (1-of-3, happy 2) on the
    client volume that lists them by their service names. Torn down at the end, volumes
    included, whatever happened."""
    image = os.environ.get("SWAMP_IMAGE")
    if not image:
        pytest.fail("SWAMP_IMAGE is not set: run the container tests with scripts/docker-test.sh",
                    pytrace=False)
    project = os.environ.get("SWAMP_COMPOSE_PROJECT") or f"swamptest{secrets.token_hex(4)}"
    secret = tmp_path_factory.mktemp("secrets") / "operator"
    secret.write_text(secrets.token_hex(20) + "\n")
    # Bind-mounted as it is: the node's user must be able to read it.
    secret.chmod(0o644)
    secret.parent.chmod(0o755)
    g = D.Grid(project, image, secret)
    try:
        g.up()
        g.wait_healthy()
        announcements = "".join(g.announcement(n) for n in D.NODES)
        g.tahoe("create-client", "--announcement", "/dev/stdin", "--shares-needed", "1",
                "--shares-happy", "2", "--shares-total", "3", input=announcements.encode())
        yield g
    finally:
        g.down()
