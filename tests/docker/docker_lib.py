"""Driving the compose grid of deploy/compose.yaml from the tests: Docker and Compose
commands with timeouts, the nodes' health, addresses and announcements, and the
`tahoe` CLI in the client container.

Works with Compose v2 (`docker compose`) and v1 (`docker-compose`). Every wait is a
bounded poll of something observable (a container's health, a command's answer);
nothing sleeps for readiness.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "tests" / "interop"))

import interop_lib as L  # noqa: E402  (the interop tests' helpers: real Tahoe clients)

COMPOSE_FILE = REPO_ROOT / "deploy" / "compose.yaml"
# swamp1's operator secret from a file (a compose secret).
SECRETS_FILE = Path(__file__).resolve().parent / "compose.secrets.yaml"
NODES = ("swamp1", "swamp2", "swamp3")
# The node's user in the image (deploy/Dockerfile).
NODE_UID = 10001
HEALTHY_TIMEOUT = 90
CMD_TIMEOUT = 120


def docker(*args, timeout: float = CMD_TIMEOUT, check: bool = True,
           input: Optional[bytes] = None) -> subprocess.CompletedProcess:
    return L.run_cmd(["docker", *args], timeout=timeout, check=check, input=input)


def compose_command() -> list[str]:
    """`docker compose` where the plugin is installed, else `docker-compose`."""
    probe = subprocess.run(["docker", "compose", "version"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=30)
    if probe.returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    raise RuntimeError("neither `docker compose` nor `docker-compose` is installed")


class Grid:
    """One compose project of deploy/compose.yaml: three nodes, a client volume."""

    def __init__(self, project: str, image: str, operator_secret_file: Path):
        self.project = project
        self.image = image
        self.operator_secret = operator_secret_file.read_text().strip()
        self.compose_cmd = compose_command()
        self._containers: dict[str, str] = {}
        self.env = {
            **os.environ,
            "SWAMP_IMAGE": image,
            # Health is checked often here, so that waiting for it is short.
            "SWAMP_HEALTH_INTERVAL": "2s",
            "SWAMP_TEST_OPERATOR_SECRET": str(operator_secret_file),
        }

    # -- compose -----------------------------------------------------------
    def _compose_base(self) -> list[str]:
        return [*self.compose_cmd, "-f", str(COMPOSE_FILE), "-f", str(SECRETS_FILE),
                "-p", self.project]

    def compose(self, *args, timeout: float = CMD_TIMEOUT, check: bool = True,
                input: Optional[bytes] = None) -> subprocess.CompletedProcess:
        argv = [*self._compose_base(), *args]
        t0 = time.monotonic()
        try:
            cp = subprocess.run(argv, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                timeout=timeout, env=self.env,
                                stdin=None if input is not None else subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            raise AssertionError(f"timed out after {timeout}s: {' '.join(argv)}\n"
                                 f"stderr: {L._dec(e.stderr)}") from None
        L._trace(f"{time.monotonic() - t0:6.2f}s  compose {' '.join(str(a) for a in args)[:140]}")
        if check and cp.returncode != 0:
            raise AssertionError(f"failed ({cp.returncode}): {' '.join(argv)}\n"
                                 f"stdout: {L._dec(cp.stdout)}\nstderr: {L._dec(cp.stderr)}")
        return cp

    def compose_popen(self, *args) -> subprocess.Popen:
        argv = [*self._compose_base(), *args]
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=self.env)

    def up(self) -> None:
        self.compose("up", "-d", *NODES, timeout=180)

    def down(self) -> None:
        """Everything of the project, volumes and one-off containers included."""
        self.compose("down", "--volumes", "--remove-orphans", "--timeout", "30",
                     timeout=180, check=False)
        # One-off `run` containers that outlived their command (a test that failed
        # while one ran): they keep the network alive, so they go first.
        left = docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={self.project}",
                      check=False).stdout.decode().split()
        if left:
            docker("rm", "-f", *left, check=False)
            self.compose("down", "--volumes", "--remove-orphans", timeout=180, check=False)

    # -- containers --------------------------------------------------------
    def container(self, service: str) -> str:
        """The service's container (kept: a container keeps its id across stops)."""
        if service not in self._containers:
            cid = self.compose("ps", "-q", service).stdout.decode().strip()
            assert cid, f"no container for {service}"
            self._containers[service] = cid
        return self._containers[service]

    @property
    def network(self) -> str:
        return f"{self.project}_grid"

    def volume(self, name: str) -> str:
        return f"{self.project}_{name}"

    def inspect(self, service: str) -> dict:
        return json.loads(docker("inspect", self.container(service)).stdout)[0]

    def ip(self, service: str) -> str:
        nets = self.inspect(service)["NetworkSettings"]["Networks"]
        return nets[self.network]["IPAddress"]

    def health(self, service: str) -> str:
        state = self.inspect(service)["State"]
        return (state.get("Health") or {}).get("Status", "none")

    def wait_healthy(self, *services: str, timeout: float = HEALTHY_TIMEOUT) -> None:
        """Until Docker's own health check (the image's HEALTHCHECK, run by Docker)
        says healthy: `swamp-server healthcheck` in the container answered 0."""
        for service in services or NODES:
            L.wait_until(lambda: self.health(service) == "healthy", timeout,
                         f"{service} to be healthy (logs: docker logs {self.container(service)})",
                         interval=0.3)

    def exec_node(self, service: str, *args, timeout: float = CMD_TIMEOUT) -> bytes:
        return self.compose("exec", "-T", service, "swamp-server", *args, timeout=timeout).stdout

    def announcement(self, service: str) -> str:
        """What `swamp-server announcement` prints in the node's container (the NURL
        names the service, which the network resolves)."""
        return self.exec_node(service, "announcement").decode()

    def logs(self, service: str) -> str:
        cp = docker("logs", self.container(service))
        return (cp.stdout + cp.stderr).decode("utf-8", "replace")

    # -- the client container ---------------------------------------------
    def tahoe(self, *args, input: Optional[bytes] = None, timeout: float = CMD_TIMEOUT,
              check: bool = True) -> subprocess.CompletedProcess:
        """`tahoe ARGS` in a one-off client container (its directory on the client
        volume, /data/.tahoe unless -d says otherwise)."""
        return self.compose("run", "--rm", "-T", "client", *args, input=input,
                            timeout=timeout, check=check)

    def tahoe_out(self, *args, input: Optional[bytes] = None) -> str:
        return self.tahoe(*args, input=input).stdout.decode().strip()
