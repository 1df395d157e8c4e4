"""Swamp's image in a compose grid: three nodes and a client container on a private
network (deploy/compose.yaml). Files go in and out through the `tahoe` CLI in the
client container and through a real Tahoe-LAFS 1.20 client on the host; a node is
SIGKILLed and restarted, another cut off its network, and nothing acknowledged may be
lost, uploads must stay happy and `tahoe watch` must keep following.

The tests share one grid and run in file order (the later ones change it).
"""

from __future__ import annotations

import http.client
import json
import queue
import ssl
import threading
import time
from pathlib import Path

import yaml

import docker_lib as D
from docker_lib import L, docker

# Files the first test uploads, for the later ones to read back.
EARLIER: dict[str, tuple[str, bytes]] = {}


def test_nodes_run_healthy_as_their_own_user_on_their_volume(grid):
    for node in D.NODES:
        info = grid.inspect(node)
        assert info["Config"]["User"] == f"{D.NODE_UID}:{D.NODE_UID}"
        assert info["HostConfig"]["ReadonlyRootfs"] is True
        assert info["State"]["Health"]["Status"] == "healthy"
        status = Path(f"/proc/{info['State']['Pid']}/status").read_text()
        uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
        assert uid_line.split()[1:] == [str(D.NODE_UID)] * 4, uid_line
        # A fresh volume took the image's /data: the node's user owns the node
        # directory it made there on its first start.
        volume = json.loads(docker("volume", "inspect", grid.volume(node)).stdout)[0]
        root = Path(volume["Mountpoint"])
        assert root.stat().st_uid == D.NODE_UID
        cfg = root / "tahoe.cfg"
        assert cfg.stat().st_uid == D.NODE_UID
        assert f"tub.location = tcp:{node}:3457" in cfg.read_text()
        assert (root / "private" / "node.pem").stat().st_mode & 0o077 == 0
        # The NURL carries the swissnum: with SWAMP_QUIET it stays out of the log.
        announcement = yaml.safe_load(grid.announcement(node))
        (entry,) = announcement.values()
        swissnum = L.parse_furl(entry["ann"]["anonymous-storage-FURL"])["swissnum"]
        logs = grid.logs(node)
        assert "storage node serving" in logs
        assert swissnum not in logs and "pb://" not in logs


def activity_status(host: str, key: str) -> int:
    """The status of the operator's activity stream (totals, once) asked with key."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the node's certificate is self-signed
    conn = http.client.HTTPSConnection(host, 3457, timeout=10, context=ctx)
    try:
        conn.request("GET", f"/storage/v1/activity?key={key}")
        return conn.getresponse().status
    finally:
        conn.close()


def test_secrets_come_from_files(grid):
    """swamp1's operator secret is the compose secret (tests/docker/compose.secrets.yaml),
    not the one generated in its node directory."""
    ip = grid.ip("swamp1")
    assert activity_status(ip, grid.operator_secret) == 200
    volume = json.loads(docker("volume", "inspect", grid.volume("swamp1")).stdout)[0]
    generated = (Path(volume["Mountpoint"]) / "private" / "operator.secret").read_text().strip()
    assert activity_status(ip, generated) == 401
    # The others keep their own.
    assert activity_status(grid.ip("swamp2"), grid.operator_secret) == 401


def test_put_and_get_with_the_tahoe_cli_in_the_client_container(grid):
    data = L.random_bytes(3 * 1024 * 1024 + 17, seed=1)
    cap = grid.tahoe_out("put", "-", input=data)
    assert cap.startswith("URI:CHK:"), cap
    assert grid.tahoe("get", cap).stdout == data
    EARLIER["rust"] = (cap, data)

    dircap = grid.tahoe_out("mkdir")
    note = L.random_bytes(2000, seed=2)
    grid.tahoe("put", "-", f"{dircap}/note.bin", input=note)
    assert grid.tahoe_out("ls", dircap).split() == ["note.bin"]
    assert grid.tahoe("get", f"{dircap}/note.bin").stdout == note


def test_real_tahoe_on_the_host_shares_files_with_the_containers(grid, tmp_path):
    """A Tahoe 1.20 client node on the host reaches the nodes at their addresses on
    the compose network (the announcements name the services, which only the network
    resolves; a NURL pins the key, not the host name)."""
    announcements = []
    for node in D.NODES:
        ann = yaml.safe_load(grid.announcement(node))
        ip = grid.ip(node)
        for entry in ann.values():
            nurls = entry["ann"]["anonymous-storage-NURLs"]
            entry["ann"]["anonymous-storage-NURLs"] = [
                n.replace(f"@{node}:3457/", f"@{ip}:3457/") for n in nurls
            ]
        announcements.append(ann)
    client = L.TahoeClient(tmp_path / "client", tmp_path / "logs", needed=2, happy=2, total=3)
    client.create()
    client.write_servers(announcements)
    client.start()
    try:
        client.wait_for_servers(3)
        rust_cap, rust_data = EARLIER["rust"]
        assert client.web_get(rust_cap) == rust_data

        data = L.random_bytes(2 * 1024 * 1024 + 5, seed=3)
        cap = client.web_upload(data)
        assert grid.tahoe("get", cap).stdout == data

        dircap = client.web_mkdir()
        from_tahoe = L.random_bytes(5000, seed=4)
        client.web_put(f"{dircap}/from-tahoe.bin", from_tahoe)
        from_rust = L.random_bytes(6000, seed=5)
        grid.tahoe("put", "-", f"{dircap}/from-rust.bin", input=from_rust)
        assert sorted(grid.tahoe_out("ls", dircap).split()) == ["from-rust.bin", "from-tahoe.bin"]
        assert client.web_get(f"{dircap}/from-rust.bin") == from_rust
        assert grid.tahoe("get", f"{dircap}/from-tahoe.bin").stdout == from_tahoe
    finally:
        client.stop()


def test_a_killed_node_loses_nothing_it_acknowledged(grid):
    """Uploads run while swamp2 is SIGKILLed (`docker kill`), go on without it, and
    after it is started again on its volume: every acknowledged upload reads back, and
    swamp2 alone still holds every one acknowledged before the kill (with 1-of-3
    encoding each of its shares is a whole file; the client wrote to all three)."""
    dircap = grid.tahoe_out("mkdir")
    swamp2_before = grid.announcement("swamp2")
    acked: list[tuple[str, bytes, str, float]] = []  # name, data, cap, acknowledged at
    failed: list[tuple[str, str]] = []
    lock = threading.Lock()

    def upload(name: str, seed: int) -> None:
        data = L.random_bytes(150_000 + seed, seed=seed)
        cp = grid.tahoe("put", "-", f"{dircap}/{name}", input=data, check=False)
        with lock:
            if cp.returncode == 0:
                acked.append((name, data, cp.stdout.decode().strip(), time.monotonic()))
            else:
                failed.append((name, cp.stderr.decode("utf-8", "replace")))

    def acked_count() -> int:
        with lock:
            return len(acked)

    for i in range(2):
        upload(f"before-{i}", seed=10 + i)
    assert acked_count() == 2, failed

    stop = threading.Event()

    def load():
        i = 0
        while not stop.is_set():
            upload(f"during-{i}", seed=100 + i)
            i += 1

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    try:
        L.wait_until(lambda: acked_count() >= 3, 120, "an upload acknowledged under load")
        killed_at = time.monotonic()
        docker("kill", grid.container("swamp2"))
        n_at_kill = acked_count()
        L.wait_until(lambda: acked_count() >= n_at_kill + 2, 240,
                     f"two uploads acknowledged with swamp2 down (failures: {failed})")
        assert grid.inspect("swamp2")["State"]["Running"] is False
    finally:
        stop.set()
        loader.join(timeout=300)
    assert not loader.is_alive()

    docker("start", grid.container("swamp2"))
    grid.wait_healthy("swamp2")
    assert grid.announcement("swamp2") == swamp2_before, "same identity and location"

    names = set(grid.tahoe_out("ls", dircap).split())
    for name, data, cap, _ in acked:
        assert name in names, f"{name} was acknowledged but is not in the directory"
        assert grid.tahoe("get", cap).stdout == data, f"{name} does not read back"

    grid.tahoe("-d", "/data/only-swamp2", "create-client", "--announcement", "/dev/stdin",
               "--shares-needed", "1", "--shares-happy", "1", "--shares-total", "1",
               input=swamp2_before.encode())
    only2 = ("-d", "/data/only-swamp2")
    names_on_2 = set(grid.tahoe_out(*only2, "ls", dircap).split())
    before_kill = [(n, d, c) for n, d, c, at in acked if at < killed_at]
    assert len(before_kill) >= 3
    for name, data, cap in before_kill:
        assert name in names_on_2, f"{name}: acknowledged before the kill, lost by swamp2"
        assert grid.tahoe(*only2, "get", cap).stdout == data, f"{name}: swamp2's share"


class Watch:
    """`tahoe watch --json` running in a client container; its events as they come."""

    def __init__(self, grid, dircap: str):
        self.grid = grid
        self.name = f"{grid.project}_watch"
        self.proc = grid.compose_popen("run", "--rm", "-T", "--name", self.name, "client",
                                       "watch", "--json", dircap)
        self.events: queue.Queue = queue.Queue()
        self.seen: list[dict] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                self.events.put(json.loads(line))
            except ValueError:
                pass

    def expect(self, what: str, pred, timeout: float) -> float:
        """Waits for an event matching pred; returns the seconds it took."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"watch: no {what} within {timeout}s; events: {self.seen}")
            try:
                event = self.events.get(timeout=min(left, 1.0))
            except queue.Empty:
                if self.proc.poll() is not None:
                    raise AssertionError(f"watch exited ({self.proc.returncode}): "
                                         f"{self.proc.stderr.read().decode()[-3000:]}") from None
                continue
            self.seen.append(event)
            if pred(event):
                return time.monotonic() - t0

    def added(self, name: str, timeout: float = 60) -> float:
        return self.expect(f"'added {name}'",
                           lambda e: e.get("event") == "added" and e.get("path") == name, timeout)

    def stop(self) -> None:
        docker("rm", "-f", self.name, check=False)
        L.terminate(self.proc)


def test_a_node_cut_off_leaves_uploads_happy_and_watch_following(grid):
    dircap = grid.tahoe_out("mkdir")
    watch = Watch(grid, dircap)
    swamp3 = grid.container("swamp3")
    try:
        watch.expect("ready", lambda e: e.get("event") == "ready", 90)
        grid.tahoe("put", "-", f"{dircap}/a.bin", input=L.random_bytes(4000, seed=20))
        watch.added("a.bin")

        docker("network", "disconnect", grid.network, swamp3)
        try:
            b = L.random_bytes(300_000, seed=21)
            # Happy is 2: swamp1 and swamp2 are enough.
            grid.tahoe("put", "-", f"{dircap}/b.bin", input=b)
            took = watch.added("b.bin")
            print(f"watch saw b.bin {took:.1f}s after its upload, swamp3 cut off")
            c = L.random_bytes(400_000, seed=22)
            cap_c = grid.tahoe_out("put", "-", input=c)
            assert grid.tahoe("get", cap_c).stdout == c
            assert grid.tahoe("get", f"{dircap}/b.bin").stdout == b
        finally:
            docker("network", "connect", "--alias", "swamp3", grid.network, swamp3)

        grid.tahoe("put", "-", f"{dircap}/d.bin", input=L.random_bytes(5000, seed=23))
        watch.added("d.bin")
    finally:
        watch.stop()


def test_docker_stop_ends_a_node_cleanly_and_it_comes_back(grid):
    node = grid.container("swamp1")
    t0 = time.monotonic()
    docker("stop", "--time", "30", node)
    took = time.monotonic() - t0
    state = grid.inspect("swamp1")["State"]
    assert state["ExitCode"] == 0, state
    assert took < 10, f"docker stop took {took:.1f}s: SIGTERM was not acted on at once"
    logs = grid.logs("swamp1")
    assert "SIGTERM: shutting down" in logs and "stopped" in logs, logs[-2000:]

    docker("start", node)
    grid.wait_healthy("swamp1")
    cap, data = EARLIER["rust"]
    assert grid.tahoe("get", cap).stdout == data
