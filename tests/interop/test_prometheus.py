"""A real Prometheus server (Debian's `prometheus` package) scrapes a Swamp node's
operator listener while Tahoe's own storage client drives it; the test then asks
Prometheus, through its HTTP API, for the request count, the request rate and the
p99 latency, and checks them against what the test did and what it timed.

Needs `prometheus` on PATH (.ci/run installs it)."""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

import interop_lib as L
from gbs_client import GBS, call

from allmydata.storage.http_client import TestWriteVectors as TWVecs, WriteVector

pytestmark = pytest.mark.swamp

WRITES = 120


def prometheus_bin() -> str:
    found = shutil.which("prometheus")
    if not found:
        pytest.fail("prometheus is not installed: apt-get install prometheus (.ci/run does)")
    return found


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def query(port: int, promql: str) -> list:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    answer = get_json(url)
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def scalar(port: int, promql: str) -> float | None:
    result = query(port, promql)
    if not result:
        return None
    assert len(result) == 1, result
    return float(result[0]["value"][1])


@pytest.fixture(scope="module")
def node(workdir_factory):
    L.require_swamp()
    base = workdir_factory("prometheus")
    n = L.StorageNode(base / "node", nickname="prom", logdir=base / "logs")
    n.create(L.SWAMP)
    n.start()
    yield n
    n.stop()


@pytest.fixture(scope="module")
def prometheus(node, workdir_factory):
    base = workdir_factory("prometheus-server")
    operator = L.wait_until(
        lambda: (node.nodedir / "operator.url").exists()
        and (node.nodedir / "operator.url").read_text().strip(),
        30, "operator.url written",
    )
    target = urllib.parse.urlparse(operator).netloc
    (base / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n  - job_name: swamp\n    static_configs:\n"
        f"      - targets: ['{target}']\n"
    )
    port = L.free_port()
    proc = L.ManagedProcess(
        [prometheus_bin(), f"--config.file={base / 'prometheus.yml'}",
         f"--storage.tsdb.path={base / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
        base / "prometheus.log", name="prometheus",
    )
    try:
        L.wait_until(lambda: L.tcp_listening("127.0.0.1", port), 60, "prometheus listening",
                     procs=[proc])
        # Wait until the target is up, so every sample from here on is scraped.
        L.wait_until(lambda: scalar(port, 'up{job="swamp"}') == 1.0, 60,
                     "prometheus scraping the node", procs=[proc])
        yield port
    finally:
        proc.stop()


def test_prometheus_sees_the_requests_their_rate_and_latency(node, prometheus):
    gbs = GBS(node.nurl())
    si, we = os.urandom(16), os.urandom(32)
    renew, cancel = os.urandom(32), os.urandom(32)
    count = 'sum(swamp_requests_total{job="swamp",endpoint="read_test_write"})'

    def write(i: int):
        return call(gbs.mutables.read_test_write_chunks, si, we, renew, cancel,
                    {0: TWVecs(write_vectors=[WriteVector(0, bytes([i % 256]) * 200)])}, [])

    # One write first, seen by a scrape: the series then exist before the load, so
    # Prometheus sees the load's whole increase.
    try:
        assert write(0).success
        L.wait_until(lambda: scalar(prometheus, count) == 1, 30, "the first write scraped")
    except BaseException:
        gbs.close()
        raise
    slowest = 0.0
    started = time.monotonic()
    try:
        for i in range(WRITES):
            t = time.monotonic()
            result = write(i + 1)
            slowest = max(slowest, time.monotonic() - t)
            assert result.success
    finally:
        gbs.close()
    took = time.monotonic() - started

    L.wait_until(lambda: scalar(prometheus, count) == WRITES + 1, 30,
                 f"Prometheus counting {WRITES + 1} read-test-writes")
    # Tahoe's own name for the same counter.
    assert scalar(prometheus, 'tahoe_counters_storage_server_writev{job="swamp"}') == WRITES + 1

    # Over a window that holds the whole load: exactly the load's writes, as scraped,
    # and a request rate no higher than they allow (they took `took` seconds at least;
    # Prometheus's rate spreads them over the window).
    window = int(took) + 30
    series = 'swamp_requests_total{job="swamp",endpoint="read_test_write",status="200"}'
    grown = scalar(prometheus, f"max_over_time({series}[{window}s]) - min_over_time({series}[{window}s])")
    assert grown == WRITES, (grown, WRITES)
    rate = scalar(prometheus, f"rate({series}[{window}s])")
    assert rate is not None and 0 < rate <= WRITES / max(took, 0.001) * 1.5, (rate, WRITES, took)

    # The server's p99 from its histogram: above zero, and no more than the slowest
    # request the client timed (plus one histogram bucket's width of slack: Prometheus
    # interpolates inside the bucket that holds the 99th percentile).
    p99 = scalar(prometheus,
                 "histogram_quantile(0.99, sum by (le) (increase("
                 f'swamp_request_duration_seconds_bucket{{endpoint="read_test_write"}}[{window}s])))')
    assert p99 is not None and 0 < p99, p99
    buckets = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
               0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]
    ceiling = next((b for b in buckets if b >= slowest), 30.0)
    assert p99 <= ceiling, (p99, slowest)

    # The write-ahead log synced them all.
    synced = scalar(prometheus, 'swamp_wal_group_entries_sum{job="swamp"}')
    assert synced is not None and synced >= WRITES, synced
