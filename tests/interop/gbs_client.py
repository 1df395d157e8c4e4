"""Drive Tahoe-LAFS's own GBS HTTP client (allmydata.storage.http_client)
synchronously from pytest.

Twisted's reactor cannot be restarted, so it runs once, in a daemon thread,
for the whole test session; ``call()`` hands a coroutine/Deferred-returning
callable to it and blocks (with a timeout) for the result. Exceptions (e.g.
``ClientException`` with the HTTP status in ``.code``) are re-raised in the
test's thread.
"""

from __future__ import annotations

import concurrent.futures
import inspect
import threading
from typing import Any, Callable, Optional

from twisted.internet import reactor
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.python.failure import Failure

_thread: Optional[threading.Thread] = None
_lock = threading.Lock()


def _ensure_reactor() -> None:
    global _thread
    with _lock:
        if _thread is None:
            _thread = threading.Thread(
                target=reactor.run, kwargs={"installSignalHandlers": False},
                name="twisted-reactor", daemon=True,
            )
            _thread.start()


def call(fn: Callable[..., Any], *args, timeout: float = 60, **kwargs) -> Any:
    """Run fn(*args, **kwargs) in the reactor thread; if it returns a
    coroutine or Deferred, wait for its result (at most timeout seconds)."""
    _ensure_reactor()
    fut: concurrent.futures.Future = concurrent.futures.Future()

    def failed(f: Failure):
        if not fut.done():
            fut.set_exception(f.value)

    def succeeded(v):
        if not fut.done():
            fut.set_result(v)

    def go():
        try:
            r = fn(*args, **kwargs)
            if inspect.iscoroutine(r):
                r = ensureDeferred(r)
            if isinstance(r, Deferred):
                r.addCallbacks(succeeded, failed)
            else:
                succeeded(r)
        except BaseException as e:  # noqa: BLE001 - forwarded to the caller
            if not fut.done():
                fut.set_exception(e)

    reactor.callFromThread(go)
    return fut.result(timeout)


def shutdown() -> None:
    """Stop the reactor thread (end of session)."""
    global _thread
    with _lock:
        t = _thread
        _thread = None
    if t is not None and t.is_alive():
        reactor.callFromThread(reactor.stop)
        t.join(10)


class GBS:
    """Tahoe's HTTP storage client objects for one NURL."""

    def __init__(self, nurl: str):
        from hyperlink import DecodedURL
        from allmydata.storage.http_client import (
            StorageClientFactory, StorageClientGeneral, StorageClientImmutables, StorageClientMutables,
        )

        self.nurl = nurl
        factory = StorageClientFactory(default_connection_handlers={"tcp": "tcp"}, tor_provider=None)
        self.client = call(lambda: factory.create_storage_client(DecodedURL.from_text(nurl), reactor))
        self.general = StorageClientGeneral(self.client)
        self.immutables = StorageClientImmutables(self.client)
        self.mutables = StorageClientMutables(self.client)

    def request(self, method: str, path: str, headers: Optional[dict] = None, **kw):
        """Raw request through Tahoe's StorageClient (adds Authorization and
        any secrets passed as keyword args). Returns (code, headers, body) with
        headers as {lowercase name: first value}."""
        import treq
        from twisted.web.http_headers import Headers

        async def go():
            h = Headers({k: [v] for k, v in (headers or {}).items()})
            resp = await self.client.request(method, self.client.relative_url(path), headers=h, **kw)
            body = await treq.content(resp)
            hdrs = {k.decode("latin-1").lower(): v[0].decode("latin-1")
                    for k, v in resp.headers.getAllRawHeaders()}
            return resp.code, hdrs, body

        return call(go)

    def close(self) -> None:
        try:
            call(self.client.shutdown, timeout=10)
        except Exception:  # noqa: BLE001 - best effort at teardown
            pass
