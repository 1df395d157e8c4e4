"""Shared helpers for the Swamp <-> Tahoe-LAFS interop tests.

Process management (start, poll for readiness, SIGTERM by PID), free loopback
ports, node directories for both server implementations (the Swamp binary and
the reference Python storage node), Tahoe client nodes and the `tahoe` CLI.

Nothing here sleeps to wait for readiness: every wait is a bounded polling
loop on an observable condition (a file appearing, a TLS/HTTP endpoint
answering, the client's web API reporting connected servers).
"""

from __future__ import annotations

import base64
import configparser
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Callable, Iterable, Optional

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]

# Timeouts (seconds). Generous for a loaded 2-core CI machine, but bounded.
START_TIMEOUT = 60
STOP_TIMEOUT = 20
CONNECT_TIMEOUT = 60
CLI_TIMEOUT = 180


# --------------------------------------------------------------------------
# environment


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def dry_run_python_servers() -> bool:
    """INTEROP_DRY_RUN_PYTHON_SERVERS=1: every "Swamp" node is a Python
    Tahoe storage node instead. Validates the harness without the binary."""
    return env_flag("INTEROP_DRY_RUN_PYTHON_SERVERS")


def swamp_server_bin() -> Path:
    p = Path(os.environ.get("SWAMP_SERVER_BIN", "target/debug/swamp-server"))
    if not p.is_absolute():
        p = REPO_ROOT / p
    return p


def swamp_tahoe_bin() -> Path:
    """Swamp's `tahoe` CLI: SWAMP_TAHOE_BIN, else next to the swamp-server binary."""
    return Path(os.environ.get("SWAMP_TAHOE_BIN", swamp_server_bin().parent / "tahoe"))


def require_swamp() -> None:
    """Skip (or fail, under SWAMP_REQUIRE_BINARY) when the Swamp binary is missing."""
    if dry_run_python_servers() or swamp_available():
        return
    msg = (f"swamp-server binary not found at {swamp_server_bin()} "
           f"(build it, or point SWAMP_SERVER_BIN at it)")
    if env_flag("SWAMP_REQUIRE_BINARY"):
        pytest.fail(msg + "; SWAMP_REQUIRE_BINARY is set, so this is an error", pytrace=False)
    pytest.skip(msg)


def swamp_available() -> bool:
    p = swamp_server_bin()
    return p.is_file() and os.access(p, os.X_OK)


def tahoe_bin() -> str:
    env = os.environ.get("TAHOE_BIN")
    if env:
        return env
    sibling = Path(sys.executable).parent / "tahoe"
    if sibling.exists():
        return str(sibling)
    found = shutil.which("tahoe")
    if found:
        return found
    raise RuntimeError(
        "no `tahoe` executable: run the tests with the interop venv's python "
        "(scripts/interop-venv.sh) or set TAHOE_BIN"
    )


# --------------------------------------------------------------------------
# ports and polling

_handed_out_ports: set[int] = set()


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a running process (all its threads), from
    /proc; 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A currently free loopback TCP port (bind port 0, close). Never hands
    out the same port twice in one test session."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out_ports:
            _handed_out_ports.add(port)
            return port
    raise RuntimeError("could not find a fresh free port")


class WaitTimeout(AssertionError):
    pass


def wait_until(
    predicate: Callable[[], object],
    timeout: float,
    what: str,
    interval: float = 0.2,
    procs: Iterable["ManagedProcess"] = (),
):
    """Poll predicate() until it returns something truthy (returned) or the
    timeout passes (WaitTimeout). Exceptions from predicate count as "not yet".
    Fails fast if any of procs exits meanwhile."""
    deadline = time.monotonic() + timeout
    last_exc: Optional[BaseException] = None
    while True:
        for p in procs:
            if not p.alive():
                raise AssertionError(
                    f"{p.name} (pid {p.pid}) exited with status {p.returncode()} "
                    f"while waiting for {what}\n--- log tail ---\n{p.log_tail()}"
                )
        try:
            result = predicate()
            if result:
                _trace(f"{timeout - (deadline - time.monotonic()):6.2f}s  waited for {what}")
                return result
        except Exception as e:  # noqa: BLE001 - polling: any failure means "not yet"
            last_exc = e
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_exc!r})" if last_exc else ""
            logs = "".join(
                f"\n--- {p.name} log tail ---\n{p.log_tail()}" for p in procs
            )
            raise WaitTimeout(f"timed out after {timeout}s waiting for {what}{detail}{logs}")
        time.sleep(interval)


# --------------------------------------------------------------------------
# processes

_live_processes: list["ManagedProcess"] = []


class ManagedProcess:
    """A child process we started. Output goes to a log file. Stopped only
    by its own PID (SIGTERM, then SIGKILL after a timeout).

    keep_stdin_open: its stdin is a pipe we hold open until stop() (for
    programs that exit when stdin closes, like `magic-folder run`); otherwise
    /dev/null. env: extra environment variables."""

    def __init__(self, argv: list[str], log_path: Path, name: str, cwd: Optional[Path] = None,
                 keep_stdin_open: bool = False, env: Optional[dict] = None):
        self.argv = [str(a) for a in argv]
        self.name = name
        self.log_path = Path(log_path)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")
        self._log.write(f"\n=== start: {' '.join(self.argv)}\n".encode())
        self._log.flush()
        self.popen = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE if keep_stdin_open else subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=str(cwd) if cwd else None,
            env={**os.environ, **env} if env else None,
            start_new_session=True,  # our Ctrl-C does not reach it; we stop it ourselves
        )
        self.pid = self.popen.pid
        _live_processes.append(self)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def returncode(self):
        return self.popen.poll()

    def log_tail(self, limit: int = 4000) -> str:
        try:
            data = self.log_path.read_bytes()
        except OSError:
            return "<no log>"
        return data[-limit:].decode("utf-8", "replace")

    def stop(self, timeout: float = STOP_TIMEOUT) -> Optional[int]:
        """SIGTERM, wait up to timeout, then SIGKILL. Returns the exit status."""
        if self.alive():
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.popen.wait(10)
        if self in _live_processes:
            _live_processes.remove(self)
        if self.popen.stdin is not None and not self.popen.stdin.closed:
            self.popen.stdin.close()
        if not self._log.closed:
            self._log.close()
        return self.popen.returncode


def terminate(proc: subprocess.Popen, timeout: float = 10) -> None:
    """SIGTERM a child started with Popen (its pipes read by the test), then SIGKILL
    if it has not exited within timeout."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def stop_all_processes() -> None:
    """Last-resort cleanup (session end): stop every process still running."""
    for p in list(_live_processes):
        p.stop()


def run_cmd(argv: list, timeout: float = 60, check: bool = True, input: Optional[bytes] = None,
            cwd: Optional[Path] = None) -> subprocess.CompletedProcess:
    argv = [str(a) for a in argv]
    t0 = time.monotonic()
    try:
        cp = subprocess.run(
            argv, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            timeout=timeout, cwd=str(cwd) if cwd else None,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as e:
        raise AssertionError(
            f"command timed out after {timeout}s: {' '.join(argv)}\n"
            f"stdout: {_dec(e.stdout)}\nstderr: {_dec(e.stderr)}"
        ) from None
    _trace(f"{time.monotonic() - t0:6.2f}s  {' '.join(argv[1:])[:160]}")
    if check and cp.returncode != 0:
        raise AssertionError(
            f"command failed with status {cp.returncode}: {' '.join(argv)}\n"
            f"stdout: {_dec(cp.stdout)}\nstderr: {_dec(cp.stderr)}"
        )
    return cp


def _trace(msg: str) -> None:
    """INTEROP_TRACE=1: timing of every command and wait on stderr (use -s)."""
    if env_flag("INTEROP_TRACE"):
        print(f"[interop] {msg}", file=sys.stderr, flush=True)


def _dec(b) -> str:
    if b is None:
        return ""
    if isinstance(b, str):
        return b[-4000:]
    return b[-4000:].decode("utf-8", "replace")


# --------------------------------------------------------------------------
# identity helpers (NURLs, SPKI hashes, tubids) computed from node files

NURL_RE = re.compile(r"^pb://(?P<hash>[A-Za-z0-9_-]{43})@(?P<host>[^:/]+):(?P<port>\d+)/(?P<swissnum>[^/#]+)#v=1$")
FURL_RE = re.compile(r"^pb://(?P<tubid>[a-z2-7]{32})@(?P<hints>[^/]+)/(?P<swissnum>[^/]+)$")


def b32(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").lower().rstrip("=")


def parse_nurl(nurl: str) -> dict:
    m = NURL_RE.match(nurl.strip())
    if not m:
        raise ValueError(f"not a v1 NURL: {nurl!r}")
    d = m.groupdict()
    d["port"] = int(d["port"])
    return d


def parse_furl(furl: str) -> dict:
    m = FURL_RE.match(furl.strip())
    if not m:
        raise ValueError(f"not a storage FURL: {furl!r}")
    return m.groupdict()


def _first_pem_block(text: str, kind: str) -> bytes:
    m = re.search(rf"-----BEGIN {kind}-----.*?-----END {kind}-----", text, re.S)
    if not m:
        raise ValueError(f"no {kind} block")
    return m.group(0).encode("ascii")


def node_certificate_der(nodedir: Path) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    pem = (Path(nodedir) / "private" / "node.pem").read_text()
    cert = x509.load_pem_x509_certificate(_first_pem_block(pem, "CERTIFICATE"))
    return cert.public_bytes(Encoding.DER)


def spki_hash_of_der_cert(der: bytes) -> str:
    """base64url-nopad(SHA-256(DER SubjectPublicKeyInfo)), as in NURLs."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    cert = x509.load_der_x509_certificate(der)
    spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.urlsafe_b64encode(hashlib.sha256(spki).digest()).decode().rstrip("=")


def tubid_of_der_cert(der: bytes) -> str:
    """Foolscap tubid: base32(SHA-1(DER certificate))."""
    return b32(hashlib.sha1(der).digest())


def read_tahoe_cfg(nodedir: Path) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(interpolation=None)
    cp.read(Path(nodedir) / "tahoe.cfg")
    return cp


def python_node_nurls(nodedir: Path) -> list[str]:
    """The NURLs a Python Tahoe 1.20 storage node serves. Tahoe computes them
    in memory (protocol_switch.add_storage_server) and never writes them to a
    file: one per tcp: hint in tub.location, hash = SPKI hash of the tub
    certificate in private/node.pem, swissnum = the one in private/storage.furl."""
    nodedir = Path(nodedir)
    furl = parse_furl((nodedir / "private" / "storage.furl").read_text().strip())
    spki = spki_hash_of_der_cert(node_certificate_der(nodedir))
    location = read_tahoe_cfg(nodedir).get("node", "tub.location")
    nurls = []
    for hint in location.split(","):
        hint = hint.strip()
        if hint.startswith("tcp:"):
            _, host, port = hint.split(":")
            nurls.append(f"pb://{spki}@{host}:{int(port)}/{furl['swissnum']}#v=1")
    return nurls


def python_node_announcement(nodedir: Path) -> dict:
    """The static-server entry {server_id: {"ann": {...}}} equivalent to what a
    Python storage node announces (client.py init_storage). Needs files written
    at the node's first start: private/storage.furl, private/node.pem,
    node.pubkey, permutation-seed."""
    nodedir = Path(nodedir)
    furl = (nodedir / "private" / "storage.furl").read_text().strip()
    pub = (nodedir / "node.pubkey").read_text().strip()
    assert pub.startswith("pub-v0-"), pub
    server_id = pub[len("pub-"):]
    ann = {
        "nickname": read_tahoe_cfg(nodedir).get("node", "nickname", fallback=""),
        "anonymous-storage-FURL": furl,
        "anonymous-storage-NURLs": python_node_nurls(nodedir),
        "permutation-seed-base32": (nodedir / "permutation-seed").read_text().strip(),
    }
    cfg = read_tahoe_cfg(nodedir)
    if cfg.getboolean("storage", "grid_management", fallback=False):
        # client.py: the certificate files' objects, unchanged.
        names = cfg["grid_manager_certificates"] if cfg.has_section("grid_manager_certificates") else {}
        ann["grid-manager-certificates"] = [
            json.loads((nodedir / names[name]).read_text()) for name in names
        ]
    return {server_id: {"ann": ann}}


def gbs_version_raw(nurl: str, timeout: float = 5.0, swissnum: Optional[str] = None):
    """GET /storage/v1/version over TLS with the standard library, pinning
    the certificate's SPKI hash to the NURL. Returns (status, headers, body)."""
    n = parse_nurl(nurl)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    conn = http.client.HTTPSConnection(n["host"], n["port"], timeout=timeout, context=ctx)
    try:
        conn.connect()
        der = conn.sock.getpeercert(binary_form=True)
        got = spki_hash_of_der_cert(der)
        if got != n["hash"]:
            raise AssertionError(f"server certificate SPKI hash {got} != NURL hash {n['hash']}")
        auth = base64.b64encode((swissnum or n["swissnum"]).encode("ascii")).decode()
        conn.request("GET", "/storage/v1/version",
                     headers={"Authorization": f"Tahoe-LAFS {auth}", "Accept": "application/cbor"})
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, dict((k.lower(), v) for k, v in resp.getheaders()), body
    finally:
        conn.close()


def tcp_listening(host: str, port: int) -> bool:
    with socket.create_connection((host, port), timeout=2):
        return True


def gbs_ready(nurl: str) -> bool:
    status, headers, _ = gbs_version_raw(nurl)
    return status == 200 and headers.get("content-type", "").startswith("application/cbor")


# --------------------------------------------------------------------------
# storage nodes (either implementation over one node directory)

SWAMP = "swamp"
PYTHON = "python"


def effective_impl(impl: str) -> str:
    if impl == SWAMP and dry_run_python_servers():
        return PYTHON
    return impl


def swamp(*args, timeout: float = 60) -> subprocess.CompletedProcess:
    return run_cmd([swamp_server_bin(), *args], timeout=timeout)


class StorageNode:
    """A storage node directory, served by either implementation.

    ``impl`` is the implementation that will serve it next; ``start()`` may be
    given another one to switch (the disk-compatibility tests do that)."""

    def __init__(self, nodedir: Path, nickname: str, logdir: Path):
        self.nodedir = Path(nodedir)
        self.nickname = nickname
        self.logdir = Path(logdir)
        self.proc: Optional[ManagedProcess] = None
        self.impl: Optional[str] = None
        self._starts = 0

    # -- creation --------------------------------------------------------
    def create(self, creator: str, port: Optional[int] = None, explicit_port: bool = True) -> "StorageNode":
        """creator: SWAMP (swamp-server create-node) or PYTHON (tahoe create-node).
        With SWAMP and explicit_port=False, the binary picks the port itself."""
        creator = effective_impl(creator)
        if creator == PYTHON:
            port = port or free_port()
            run_cmd([
                tahoe_bin(), "create-node", "--webport=none", "--nickname", self.nickname,
                "--port", f"tcp:{port}:interface=127.0.0.1", "--location", f"tcp:127.0.0.1:{port}",
                self.nodedir,
            ])
        else:
            args = ["create-node", self.nodedir, "--nickname", self.nickname]
            if explicit_port:
                port = port or free_port()
                args += ["--port", f"tcp:{port}:interface=127.0.0.1", "--location", f"tcp:127.0.0.1:{port}"]
            swamp(*args)
        self.impl = creator
        return self

    # -- running ---------------------------------------------------------
    def launch(self, impl: Optional[str] = None) -> "StorageNode":
        """Start the server process (impl: SWAMP or PYTHON; default: as before)."""
        assert self.proc is None or not self.proc.alive(), "already running"
        impl = effective_impl(impl or self.impl)
        self.impl = impl
        self._starts += 1
        log = self.logdir / f"{self.nodedir.name}.{self._starts}.{impl}.log"
        if impl == PYTHON:
            argv = [tahoe_bin(), "run", "--allow-stdin-close", self.nodedir]
        else:
            argv = [swamp_server_bin(), "run", self.nodedir]
        self.proc = ManagedProcess(argv, log, name=f"{impl} storage node {self.nickname}")
        return self

    def wait_ready(self, timeout: float = START_TIMEOUT) -> "StorageNode":
        """Poll until the server answers GET /storage/v1/version over TLS with
        the certificate its NURL pins."""
        assert self.proc is not None
        # Identity files exist once the server has started (a Python node
        # writes node.pem / storage.furl on its first start; so must Swamp
        # when run on a `tahoe create-node` directory that never ran).
        wait_until(
            lambda: (self.nodedir / "private" / "storage.furl").exists()
            and (self.nodedir / "private" / "node.pem").exists(),
            timeout, f"{self.proc.name} identity files", procs=[self.proc],
        )
        # Listening first, so that `swamp-server nurl` never runs while the
        # server is still initialising the directory.
        host, port = self.listen_address()
        wait_until(lambda: tcp_listening(host, port), timeout,
                   f"{self.proc.name} listening on {host}:{port}", procs=[self.proc])
        nurl = wait_until(lambda: self.nurl(), timeout, f"{self.proc.name} NURL", procs=[self.proc])
        wait_until(lambda: gbs_ready(nurl), timeout,
                   f"{self.proc.name} answering GET /storage/v1/version at {nurl}", procs=[self.proc])
        return self

    def start(self, impl: Optional[str] = None, timeout: float = START_TIMEOUT) -> "StorageNode":
        self.launch(impl)
        try:
            return self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def listen_address(self) -> tuple[str, int]:
        """(interface, port) from tahoe.cfg [node] tub.port, e.g. tcp:P:interface=IP."""
        spec = read_tahoe_cfg(self.nodedir).get("node", "tub.port")
        m = re.match(r"tcp:(\d+)(?::interface=([^:,]+))?", spec.strip())
        assert m, f"unexpected tub.port {spec!r} in {self.nodedir}/tahoe.cfg"
        host = m.group(2) or "127.0.0.1"
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        return host, int(m.group(1))

    def stop(self) -> Optional[int]:
        if self.proc is None:
            return None
        rc = self.proc.stop()
        return rc

    def running(self) -> bool:
        return self.proc is not None and self.proc.alive()

    # -- identity --------------------------------------------------------
    def nurl(self, impl: Optional[str] = None) -> str:
        impl = effective_impl(impl or self.impl)
        if impl == PYTHON:
            nurls = python_node_nurls(self.nodedir)
            assert len(nurls) == 1, nurls
            return nurls[0]
        return swamp("nurl", self.nodedir).stdout.decode().strip()

    def announcement(self, impl: Optional[str] = None) -> dict:
        """{server_id: {"ann": {...}}}, ready to go under `storage:` in servers.yaml."""
        impl = effective_impl(impl or self.impl)
        if impl == PYTHON:
            return python_node_announcement(self.nodedir)
        out = swamp("announcement", self.nodedir).stdout.decode()
        data = yaml.safe_load(out)
        if not isinstance(data, dict):
            raise AssertionError(f"`swamp-server announcement` did not print a YAML mapping: {out!r}")
        return data

    @property
    def storage_dir(self) -> Path:
        return self.nodedir / "storage"

    def share_path(self, si_b32: str, shnum: int) -> Path:
        return self.storage_dir / "shares" / si_b32[:2] / si_b32 / str(shnum)

    def share_files(self) -> list[Path]:
        root = self.storage_dir / "shares"
        if not root.exists():
            return []
        return sorted(p for p in root.glob("*/*/*")
                      if p.is_file() and p.name.isdigit() and p.parts[-3] != "incoming")


# --------------------------------------------------------------------------
# Tahoe client node


class TahoeClient:
    """A real Tahoe-LAFS client node talking to storage servers listed in
    private/servers.yaml (HTTP only, because every entry carries NURLs)."""

    def __init__(self, nodedir: Path, logdir: Path, needed: int, happy: int, total: int):
        self.nodedir = Path(nodedir)
        self.logdir = Path(logdir)
        self.needed, self.happy, self.total = needed, happy, total
        self.proc: Optional[ManagedProcess] = None
        self.webport: Optional[int] = None
        self._starts = 0

    def create(self) -> "TahoeClient":
        self.webport = free_port()
        run_cmd([
            tahoe_bin(), "create-client", "--nickname", "interop-client",
            f"--webport=tcp:{self.webport}:interface=127.0.0.1",
            f"--shares-needed={self.needed}", f"--shares-happy={self.happy}",
            f"--shares-total={self.total}", self.nodedir,
        ])
        return self

    def write_servers(self, announcements: Iterable[dict]) -> None:
        storage: dict = {}
        for a in announcements:
            storage.update(a)
        (self.nodedir / "private" / "servers.yaml").write_text(yaml.safe_dump({"storage": storage}))

    def start(self, timeout: float = START_TIMEOUT) -> "TahoeClient":
        assert self.proc is None or not self.proc.alive()
        self._starts += 1
        url_file = self.nodedir / "node.url"
        if url_file.exists():
            url_file.unlink()
        self.proc = ManagedProcess(
            [tahoe_bin(), "run", "--allow-stdin-close", self.nodedir],
            self.logdir / f"{self.nodedir.name}.{self._starts}.log", name="tahoe client node",
        )
        wait_until(url_file.exists, timeout, "client node.url", procs=[self.proc])
        wait_until(lambda: self.welcome() is not None, timeout, "client web API", procs=[self.proc])
        return self

    def stop(self) -> Optional[int]:
        return self.proc.stop() if self.proc else None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.webport}/"

    def welcome(self) -> dict:
        with urllib.request.urlopen(self.url + "?t=json", timeout=10) as r:
            return json.loads(r.read())

    def connected_servers(self, since: Optional[float] = None) -> list[dict]:
        """Servers the client currently considers connected (HTTP servers:
        connection_status == "connected", i.e. the last GET /version poll
        succeeded). With since, the last successful poll must be newer."""
        out = []
        for s in self.welcome()["servers"]:
            if s.get("connection_status") != "connected" or s.get("version") is None:
                continue
            if since is not None and (s.get("last_received_data") or 0) < since:
                continue
            out.append(s)
        return out

    def wait_for_servers(self, n: int, since: Optional[float] = None,
                         timeout: float = CONNECT_TIMEOUT, procs: Iterable[ManagedProcess] = ()) -> list[dict]:
        return wait_until(
            lambda: (lambda c: c if len(c) >= n else None)(self.connected_servers(since)),
            timeout, f"client to see {n} connected storage servers",
            interval=0.25, procs=[self.proc, *procs],
        )

    # -- web API (what the CLI calls, minus ~1.3 s of interpreter start-up) --
    def web(self, method: str, path: str, data: Optional[bytes] = None,
            timeout: float = CLI_TIMEOUT) -> bytes:
        req = urllib.request.Request(self.url + path.lstrip("/"), data=data, method=method)
        t0 = time.monotonic()
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                body = r.read()
        except urllib.error.HTTPError as e:
            raise AssertionError(
                f"web API {method} {path} -> {e.code}: {e.read()[-4000:].decode('utf-8', 'replace')}"
            ) from None
        _trace(f"{time.monotonic() - t0:6.2f}s  web {method} {path[:100]}")
        return body

    @staticmethod
    def _q(where: str) -> str:
        """cap[/path] -> URL path under /uri/."""
        cap, _, rest = where.partition("/")
        out = "uri/" + urllib.parse.quote(cap, safe="")
        if rest:
            out += "/" + "/".join(urllib.parse.quote(p, safe="") for p in rest.split("/"))
        return out

    def web_upload(self, data: bytes, fmt: str = "CHK") -> str:
        """PUT /uri?format=F: an unlinked file; returns its (write) cap."""
        return self.web("PUT", f"uri?format={fmt}", data).decode().strip()

    def web_put(self, where: str, data: bytes) -> str:
        """PUT /uri/CAP[/PATH]: overwrite a mutable in place, or link a new file."""
        return self.web("PUT", self._q(where), data).decode().strip()

    def web_get(self, where: str) -> bytes:
        return self.web("GET", self._q(where))

    def web_mkdir(self) -> str:
        return self.web("POST", "uri?t=mkdir").decode().strip()

    def web_ls(self, dircap: str) -> dict:
        return json.loads(self.web("GET", self._q(dircap) + "?t=json"))

    def web_check(self, where: str, verify: bool = False, add_lease: bool = False) -> dict:
        q = "?t=check&output=JSON" + ("&verify=true" if verify else "") + ("&add-lease=true" if add_lease else "")
        return json.loads(self.web("POST", self._q(where) + q))

    # -- CLI -------------------------------------------------------------
    def cli(self, *args, input: Optional[bytes] = None, timeout: float = CLI_TIMEOUT,
            check: bool = True) -> subprocess.CompletedProcess:
        return run_cmd([tahoe_bin(), "-d", self.nodedir, *args], timeout=timeout, check=check, input=input)

    def put(self, local: Path, target: Optional[str] = None, opts: Iterable[str] = ()) -> str:
        """`tahoe put [opts] LOCAL [TARGET]`; returns stdout stripped (the cap)."""
        args = ["put", *opts, local] + ([target] if target else [])
        return self.cli(*args).stdout.decode().strip()

    def get_bytes(self, where: str, tmpdir: Path) -> bytes:
        out = Path(tmpdir) / f"get-{time.monotonic_ns()}"
        self.cli("get", where, out)
        data = out.read_bytes()
        out.unlink()
        return data

    def check_json(self, where: str, *flags) -> dict:
        return json.loads(self.cli("check", "--raw", *flags, where).stdout)

    def deep_check_json(self, where: str, *flags) -> list[dict]:
        out = self.cli("deep-check", "--raw", *flags, where).stdout.decode()
        return [json.loads(line) for line in out.splitlines() if line.strip()]


class SwampClientNode:
    """`tahoe run` of Swamp's CLI on a client node directory: a client node serving
    Tahoe's web API (swamp-gateway)."""

    def __init__(self, nodedir: Path, logdir: Path):
        self.nodedir = nodedir
        self.logdir = logdir
        self.proc = None

    @classmethod
    def copy_of(cls, src: Path, nodedir: Path, logdir: Path) -> "SwampClientNode":
        """A node on a copy of the client node directory `src`: the same secrets
        and servers (so convergent uploads give the same caps as `src`'s node), its
        own web port."""
        (nodedir / "private").mkdir(parents=True)
        for name in ("secret", "convergence", "servers.yaml"):
            shutil.copy(src / "private" / name, nodedir / "private" / name)
        cfg = configparser.ConfigParser()
        cfg.read(src / "tahoe.cfg")
        cfg["node"]["web.port"] = f"tcp:{free_port()}:interface=127.0.0.1"
        with open(nodedir / "tahoe.cfg", "w") as f:
            cfg.write(f)
        return cls(nodedir, logdir)

    def start(self) -> "SwampClientNode":
        url_file = self.nodedir / "node.url"
        if url_file.exists():
            url_file.unlink()
        self.proc = ManagedProcess(
            [swamp_tahoe_bin(), "run", "--allow-stdin-close", self.nodedir],
            self.logdir / "swamp-client-node.log", name="swamp client node",
        )
        wait_until(url_file.exists, START_TIMEOUT, "swamp node.url", procs=[self.proc])
        wait_until(lambda: "client running" in self.proc.log_tail(), START_TIMEOUT,
                   "the 'client running' line", procs=[self.proc])
        return self

    def stop(self):
        return self.proc.stop() if self.proc else None

    @property
    def url(self) -> str:
        return (self.nodedir / "node.url").read_text().strip()

    def web(self, method: str, path: str, data: bytes | None = None) -> bytes:
        req = urllib.request.Request(self.url + path.lstrip("/"), data=data, method=method)
        with urllib.request.urlopen(req, timeout=CLI_TIMEOUT) as r:
            return r.read()

    def welcome(self) -> dict:
        return json.loads(self.web("GET", "?t=json"))


# --------------------------------------------------------------------------
# grids

class Grid:
    """N storage nodes + one Tahoe client node whose servers.yaml lists them."""

    def __init__(self, base: Path, nodes: list[StorageNode], client: TahoeClient):
        self.base = base
        self.nodes = nodes
        self.client = client

    def stop(self) -> None:
        stop_each([self.client, *self.nodes])


def stop_each(things: Iterable) -> None:
    """Call stop() on every one of things, even when some fail; then raise the
    first failure."""
    errors = []
    for thing in things:
        try:
            thing.stop()
        except Exception as e:  # noqa: BLE001 - stop everything, report later
            errors.append(e)
    if errors:
        raise errors[0]


def start_nodes(nodes: list[StorageNode], impl: Optional[str] = None) -> None:
    """Start several nodes concurrently (launch all, then wait for each)."""
    for n in nodes:
        n.launch(impl)
    for n in nodes:
        n.wait_ready()


def build_grid(base: Path, impl: str, n_servers: int, needed: int, happy: int, total: int,
               explicit_ports: bool = False) -> Grid:
    """Create and start storage nodes made by `impl` and a client using them
    all. On any failure, everything already started is stopped."""
    logdir = base / "logs"
    nodes: list[StorageNode] = []
    client = TahoeClient(base / "client", logdir, needed=needed, happy=happy, total=total)
    grid = Grid(base, nodes, client)
    try:
        for i in range(n_servers):
            node = StorageNode(base / f"storage{i}", nickname=f"{impl}{i}", logdir=logdir)
            node.create(impl, explicit_port=explicit_ports)
            nodes.append(node)
        start_nodes(nodes)
        client.create()
        client.write_servers(n.announcement() for n in nodes)
        client.start()
        client.wait_for_servers(n_servers, procs=[n.proc for n in nodes])
        return grid
    except BaseException:
        grid.stop()
        raise


# --------------------------------------------------------------------------
# on-disk share containers (Python layout, which Swamp keeps)

MUTABLE_MAGIC_PREFIX = b"Tahoe mutable container v"


def immutable_lease_count(path: Path) -> int:
    with open(path, "rb") as f:
        header = f.read(12)
    version, _legacy_len, nleases = (int.from_bytes(header[i:i + 4], "big") for i in (0, 4, 8))
    assert version in (1, 2), f"{path}: not an immutable container (version {version})"
    return nleases


def mutable_container_info(path: Path) -> dict:
    """Parse the mutable container header + lease slots."""
    data = Path(path).read_bytes()
    assert data.startswith(MUTABLE_MAGIC_PREFIX), f"{path}: not a mutable container"
    nodeid = data[32:52]
    data_length = int.from_bytes(data[84:92], "big")
    extra_offset = int.from_bytes(data[92:100], "big")
    leases = 0
    for i in range(4):
        rec = data[100 + 92 * i: 100 + 92 * (i + 1)]
        if int.from_bytes(rec[0:4], "big") != 0:
            leases += 1
    if extra_offset + 4 <= len(data):
        leases += int.from_bytes(data[extra_offset:extra_offset + 4], "big")
    return {"nodeid": nodeid, "data_length": data_length, "leases": leases,
            "share_data": data[468:468 + data_length]}


def random_bytes(n: int, seed: int) -> bytes:
    import random

    return random.Random(seed).randbytes(n)


# --------------------------------------------------------------------------
# grid manager (Tahoe 1.20's own `grid-manager` command)


def grid_manager_bin() -> str:
    """`grid-manager`, installed with tahoe-lafs next to `tahoe`."""
    return str(Path(tahoe_bin()).parent / "grid-manager")


class GridManager:
    """A grid manager's configuration directory, driven by Tahoe's own tool."""

    def __init__(self, config_dir: Path):
        self.config_dir = Path(config_dir)

    def create(self) -> "GridManager":
        run_cmd([grid_manager_bin(), "--config", self.config_dir, "create"])
        return self

    def public_identity(self) -> str:
        """pub-v0-<base32>: what clients list under [grid_managers]."""
        out = run_cmd([grid_manager_bin(), "--config", self.config_dir, "public-identity"])
        return out.stdout.decode().strip()

    def certify(self, name: str, nodedir: Path, days: int = 30) -> Path:
        """`add NAME <node.pubkey>` then `sign NAME DAYS`; returns the certificate
        file written beside the configuration directory."""
        pubkey = (Path(nodedir) / "node.pubkey").read_text().strip()
        run_cmd([grid_manager_bin(), "--config", self.config_dir, "add", name, pubkey])
        out = run_cmd([grid_manager_bin(), "--config", self.config_dir, "sign", name, str(days)])
        cert = self.config_dir.parent / f"{name}.cert"
        cert.write_bytes(out.stdout)
        return cert


def add_grid_manager_cert(nodedir: Path, name: str, cert: Path,
                          check: bool = True) -> subprocess.CompletedProcess:
    """Tahoe's own `tahoe admin add-grid-manager-cert` on a node directory: it
    validates tahoe.cfg, rewrites it with [storage] grid_management and
    [grid_manager_certificates], and copies the file in as NAME.cert."""
    return run_cmd([tahoe_bin(), "-d", nodedir, "admin", "add-grid-manager-cert",
                    "--name", name, "--filename", cert], check=check)
