"""Real magic-folder 24.3 daemons on a grid of Swamp storage nodes, and Swamp's
`tahoe magic-folder-push` bridge beside them.

Shared by the tests in this directory and by load-tests/magic-folder-bench.py.
Builds on tests/interop/interop_lib.py (processes, polling waits, storage nodes,
Tahoe client nodes), which it imports rather than copies.

Participants are set up without a magic-wormhole mailbox (magic-folder's invites
need one): the owner creates each folder through its daemon's API; every other
participant gets a personal directory made with its own Tahoe client node and the
folder through `magic-folder migrate` from a pre-24 `private/magic_folders.yaml`
(magic-folder's supported upgrade path); then the owner adds it to the collective
through the API, as an accepted invite would.

Every wait polls an observable condition with a deadline; nothing sleeps for
readiness. Processes are stopped by their own PID.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "tests" / "interop"))

import interop_lib as L  # noqa: E402

# The `magic-folder` run's API is local; anything slower than this is a failure.
API_TIMEOUT = 120
# No mailbox: the URL is stored by `init` and contacted only for invites, which we
# never make (port 9 is "discard"; nothing listens there).
NO_MAILBOX = "ws://127.0.0.1:9/v1"


def venv_bin(name: str) -> str:
    """An executable of this Python's venv (magic-folder, magic-folder-api)."""
    p = Path(sys.executable).parent / name
    if not p.exists():
        raise RuntimeError(
            f"no {name} next to {sys.executable}: run with the venv made by "
            "scripts/magic-folder-venv.sh"
        )
    return str(p)


def require_binaries() -> None:
    """Skip (or fail, under SWAMP_REQUIRE_BINARY) without swamp-server and Swamp's
    `tahoe` (the bridge)."""
    L.require_swamp()
    t = L.swamp_tahoe_bin()
    if not (t.is_file() and os.access(t, os.X_OK)):
        msg = f"Swamp's tahoe binary not found at {t} (build swamp-client, or set SWAMP_TAHOE_BIN)"
        if L.env_flag("SWAMP_REQUIRE_BINARY"):
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)


def ro_cap(client: L.TahoeClient, dircap: str) -> str:
    """The read-only cap of a directory, as its Tahoe client node lists it."""
    kind, info = client.web_ls(dircap)
    assert kind == "dirnode", (kind, info)
    return info["ro_uri"]


class Daemon:
    """One magic-folder daemon (`magic-folder --config DIR run`) on its own Tahoe
    client node."""

    def __init__(self, name: str, config_dir: Path, client: L.TahoeClient, logdir: Path):
        self.name = name
        self.config_dir = Path(config_dir)
        self.client = client
        self.logdir = Path(logdir)
        self.proc: Optional[L.ManagedProcess] = None
        self._starts = 0

    # -- set-up ------------------------------------------------------------
    def cli(self, *args, timeout: float = L.CLI_TIMEOUT):
        return L.run_cmd([venv_bin("magic-folder"), "--config", self.config_dir, *args], timeout=timeout)

    def init(self) -> "Daemon":
        """A daemon config with no folders (the folder owner's way)."""
        self.cli("init", "-l", "tcp:0:interface=127.0.0.1", "-n", self.client.nodedir, "-m", NO_MAILBOX)
        return self

    def migrate(self, folders: dict[str, dict]) -> "Daemon":
        """A daemon config joined to existing folders (a participant's way):
        folders = {name: {"directory", "collective_dircap" (read-only),
        "upload_dircap" (ours, writable), "poll_interval"}}. magic-folder sets the
        scan interval to the poll interval."""
        yml = self.client.nodedir / "private" / "magic_folders.yaml"
        yml.write_text(yaml.safe_dump({"magic-folders": {
            name: {k: (str(v) if k == "directory" else v) for k, v in f.items()}
            for name, f in folders.items()
        }}))
        try:
            self.cli("migrate", "-l", "tcp:0:interface=127.0.0.1", "-n", self.client.nodedir,
                     "--author", self.name)
        finally:
            yml.unlink()
        return self

    # -- running -----------------------------------------------------------
    def start(self, timeout: float = L.START_TIMEOUT) -> "Daemon":
        assert self.proc is None or not self.proc.alive()
        self._starts += 1
        # `run` exits when its stdin closes: we hold a pipe open until stop().
        self.proc = L.ManagedProcess(
            [venv_bin("magic-folder"), "--config", self.config_dir, "run"],
            self.logdir / f"magic-folder-{self.name}.{self._starts}.log",
            name=f"magic-folder daemon {self.name}", keep_stdin_open=True,
        )
        L.wait_until(lambda: self.api("GET", "magic-folder") is not None, timeout,
                     f"magic-folder {self.name} API", procs=[self.proc])
        return self

    def stop(self) -> Optional[int]:
        return self.proc.stop() if self.proc else None

    def status(self) -> list[dict]:
        """The daemon's whole state as status events (the first message of its
        status WebSocket, through `magic-folder-api monitor --once`)."""
        out = L.run_cmd([venv_bin("magic-folder-api"), "--config", self.config_dir, "monitor", "--once"],
                        timeout=API_TIMEOUT).stdout.decode()
        return [e for line in out.splitlines() if line.startswith("{")
                for e in json.loads(line).get("events", [])]

    def wait_polled(self, folders: Iterable[str], timeout: float = L.START_TIMEOUT) -> None:
        """Until the daemon has finished a remote poll of every folder (it polls each
        once when it starts): later polls are then only those somebody asks for, or
        its poll_interval's."""
        want = set(folders)
        L.wait_until(
            lambda: want <= {e.get("folder") for e in self.status() if e.get("kind") == "poll-completed"},
            timeout, f"magic-folder {self.name}'s first poll of {len(want)} folder(s)",
            interval=0.5, procs=[self.proc],
        )

    def endpoint(self) -> str:
        """The daemon's `api_client_endpoint` file (`tcp:HOST:PORT` or `not running`)."""
        return (self.config_dir / "api_client_endpoint").read_text().strip()

    def base_url(self) -> str:
        ep = self.endpoint()
        kind, host, port = ep.split(":")
        assert kind == "tcp", ep
        return f"http://{host}:{int(port)}/v1/"

    def api(self, method: str, path: str, body=None, timeout: float = API_TIMEOUT):
        """One call of the daemon's HTTP API; the decoded JSON answer."""
        token = (self.config_dir / "api_token").read_text().strip()
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base_url() + path, data=data, method=method,
                                     headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                raw = r.read()
        except urllib.error.HTTPError as e:
            raise AssertionError(f"magic-folder {self.name} {method} {path} -> {e.code}: "
                                 f"{e.read()[-2000:].decode('utf-8', 'replace')}") from None
        return json.loads(raw) if raw else {}

    # -- the calls we use --------------------------------------------------
    def folders(self) -> dict:
        return self.api("GET", "magic-folder?include_secret_information=1")

    def create_folder(self, name: str, local: Path, poll_interval: int, scan_interval: int) -> None:
        Path(local).mkdir(parents=True, exist_ok=True)
        self.api("POST", "magic-folder", {
            "name": name, "author_name": self.name, "local_path": str(local),
            "poll_interval": poll_interval, "scan_interval": scan_interval,
        })

    def add_participant(self, folder: str, author: str, personal_ro: str) -> None:
        self.api("POST", f"magic-folder/{urllib.parse.quote(folder, safe='')}/participants",
                 {"author": {"name": author}, "personal_dmd": personal_ro})

    def scan(self, folder: str) -> None:
        """Scan the local folder now (answers when the scan is done; the uploads
        it queues continue after)."""
        self.api("PUT", f"magic-folder/{urllib.parse.quote(folder, safe='')}/scan-local")


class Bridge:
    """Swamp's `tahoe magic-folder-push --json` beside one daemon. Its JSON lines
    go to a log file, read back by events()."""

    def __init__(self, daemon: Daemon, logdir: Path):
        self.daemon = daemon
        self.logdir = Path(logdir)
        self.proc: Optional[L.ManagedProcess] = None
        self._starts = 0

    def start(self) -> "Bridge":
        assert self.proc is None or not self.proc.alive()
        self._starts += 1
        self.proc = L.ManagedProcess(
            [L.swamp_tahoe_bin(), "-d", self.daemon.client.nodedir, "magic-folder-push",
             "--config", self.daemon.config_dir, "--json"],
            self.logdir / f"bridge-{self.daemon.name}.{self._starts}.log",
            name=f"magic-folder-push for {self.daemon.name}",
        )
        return self

    def stop(self) -> Optional[int]:
        return self.proc.stop() if self.proc else None

    def events(self, kind: Optional[str] = None) -> list[dict]:
        """The JSON events of the current run so far (optionally one kind)."""
        out = []
        if self.proc is None:
            return out
        text = self.proc.log_path.read_text("utf-8", "replace")
        for line in text.split("\n=== start: ")[-1].splitlines():
            if line.startswith("{"):
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue  # a line still being written
                if kind is None or ev.get("event") == kind:
                    out.append(ev)
        return out

    def polls(self, folder: Optional[str] = None) -> list[dict]:
        return [e for e in self.events("poll") if folder is None or e.get("folder") == folder]

    def wait_following(self, folders: Iterable[str], timeout: float = L.START_TIMEOUT) -> None:
        """Until the bridge follows every folder and has made its start-up poll of
        each (so later polls are reactions, not the start-up resync)."""
        want = set(folders)
        L.wait_until(
            lambda: want <= {e["folder"] for e in self.events("following")}
            and want <= {e["folder"] for e in self.polls()},
            timeout, f"bridge for {self.daemon.name} following {len(want)} folder(s)",
            procs=[self.proc, self.daemon.proc],
        )


class Monitor:
    """`magic-folder-api --config DIR monitor`: the daemon's status events, one JSON
    object per line, as they happen (uploads, downloads, polls)."""

    def __init__(self, daemon: Daemon, logdir: Path):
        self.daemon = daemon
        self.proc = L.ManagedProcess(
            [venv_bin("magic-folder-api"), "--config", daemon.config_dir, "monitor"],
            Path(logdir) / f"monitor-{daemon.name}.log", name=f"monitor of {daemon.name}",
            env={"PYTHONUNBUFFERED": "1"},
        )

    def events(self, kind: Optional[str] = None) -> list[dict]:
        """Every event so far (each message is {"events": [...]}), optionally one kind."""
        out = []
        for line in self.proc.log_path.read_text("utf-8", "replace").splitlines():
            if line.startswith("{"):
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue  # a line still being written
                out.extend(e for e in msg.get("events", []) if kind is None or e.get("kind") == kind)
        return out

    def wait_connected(self, timeout: float = L.START_TIMEOUT) -> None:
        """Until the daemon has sent its first state message (we are subscribed)."""
        L.wait_until(lambda: self.events(), timeout, f"status of {self.daemon.name}",
                     procs=[self.proc, self.daemon.proc])

    def stop(self) -> None:
        self.proc.stop()


class SwampClientNode(L.TahoeClient):
    """A Swamp client node on the same kind of node directory: `tahoe run` of
    Swamp's CLI, which serves Tahoe's web API (swamp-gateway) in place of the Python
    client node. Its servers' status reads "Connected to ...", which magic-folder
    counts as connected."""

    def start(self, timeout: float = L.START_TIMEOUT) -> "SwampClientNode":
        assert self.proc is None or not self.proc.alive()
        self._starts += 1
        url_file = self.nodedir / "node.url"
        if url_file.exists():
            url_file.unlink()
        self.proc = L.ManagedProcess(
            [L.swamp_tahoe_bin(), "run", "--allow-stdin-close", self.nodedir],
            self.logdir / f"{self.nodedir.name}.swamp.{self._starts}.log", name="swamp client node",
        )
        L.wait_until(url_file.exists, timeout, "swamp client node.url", procs=[self.proc])
        L.wait_until(lambda: self.welcome() is not None, timeout, "swamp client web API", procs=[self.proc])
        return self

    def connected_servers(self, since: Optional[float] = None) -> list[dict]:
        return [s for s in self.welcome()["servers"]
                if s.get("connection_status", "").lower().startswith("connected")]


@dataclass
class MfGrid:
    """Swamp storage nodes, one Tahoe client node and one magic-folder daemon per
    participant, all sharing the same folders."""

    base: Path
    nodes: list[L.StorageNode]
    clients: dict[str, L.TahoeClient] = field(default_factory=dict)
    daemons: dict[str, Daemon] = field(default_factory=dict)
    folders: list[str] = field(default_factory=list)
    bridges: list[Bridge] = field(default_factory=list)

    def local(self, participant: str, folder: str) -> Path:
        return self.base / "folders" / participant / folder

    def bridge(self, participant: str) -> Bridge:
        b = Bridge(self.daemons[participant], self.base / "logs")
        self.bridges.append(b)
        return b

    def personal_dircap(self, participant: str, folder: str) -> str:
        """A participant's personal directory as its own daemon lists it."""
        return self.daemons[participant].folders()[folder]["upload_dircap"]

    def stop(self) -> None:
        L.stop_each([*self.bridges, *self.daemons.values(), *self.clients.values(), *self.nodes])


def build_mf_grid(base: Path, participants: list[str], folders: list[str], poll_interval: int,
                  scan_interval: int, n_servers: int = 3, needed: int = 2, happy: int = 2,
                  total: int = 3, client_node: type = L.TahoeClient) -> MfGrid:
    """Start n_servers Swamp nodes, a Tahoe client node and a magic-folder daemon per
    participant; the first participant creates the folders (its scan_interval as
    given), the others join them (magic-folder makes their scan interval equal to
    poll_interval). Every folder has every participant. client_node is the kind of
    client node each participant runs (a Python one, or SwampClientNode). On failure
    everything started is stopped."""
    base = Path(base)
    base.mkdir(parents=True, exist_ok=True)
    logdir = base / "logs"
    grid = MfGrid(base=base, nodes=[], folders=list(folders))
    try:
        for i in range(n_servers):
            node = L.StorageNode(base / f"storage{i}", nickname=f"swamp{i}", logdir=logdir)
            node.create(L.SWAMP, explicit_port=False)
            grid.nodes.append(node)
        L.start_nodes(grid.nodes)
        announcements = [n.announcement() for n in grid.nodes]
        clients = grid.clients
        for name in participants:
            c = client_node(base / f"node-{name}", logdir, needed=needed, happy=happy, total=total)
            c.create()
            c.write_servers(announcements)
            clients[name] = c
        for c in clients.values():
            c.start()
        for c in clients.values():
            c.wait_for_servers(n_servers, procs=[n.proc for n in grid.nodes])

        owner, *others = participants
        admin = Daemon(owner, base / f"mf-{owner}", clients[owner], logdir).init()
        grid.daemons[owner] = admin
        admin.start()
        for f in folders:
            admin.create_folder(f, grid.local(owner, f), poll_interval, scan_interval)
        listed = admin.folders()
        collectives = {f: ro_cap(clients[owner], listed[f]["collective_dircap"]) for f in folders}
        for name in others:
            joined = {}
            for f in folders:
                personal = clients[name].web_mkdir()
                grid.local(name, f).mkdir(parents=True, exist_ok=True)
                joined[f] = {"directory": grid.local(name, f), "collective_dircap": collectives[f],
                             "upload_dircap": personal, "poll_interval": poll_interval}
                admin.add_participant(f, name, ro_cap(clients[name], personal))
            grid.daemons[name] = Daemon(name, base / f"mf-{name}", clients[name], logdir).migrate(joined)
        for name in others:
            grid.daemons[name].start()
        for d in grid.daemons.values():
            d.wait_polled(folders, timeout=max(L.START_TIMEOUT, 2.0 * len(folders)))
        return grid
    except BaseException:
        grid.stop()
        raise
