"""A total deadline per provider call, enforced on the socket, not just per read.

requests' `timeout` bounds each socket read, so a provider that sends one byte every few
seconds (headers or body) keeps a worker thread forever. Here every call runs inside
`deadline(seconds)`: the connections it uses register with it (through `GuardedAdapter`'s
connection classes), and one watchdog thread shuts their sockets down when the time is up.
The blocked read then fails at once, and the caller sees `Deadline.expired`.

Nothing here knows about the Videos API; the client turns an expired deadline into
`ProviderUnavailable`.
"""

from __future__ import annotations

import heapq
import itertools
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.response import HTTPResponse


class DeadlineExceeded(Exception):
    """Raised by a guarded connection asked to start work after its call's deadline.

    Deliberately not an OSError: urllib3 would treat it as a network error and retry.
    """


class Deadline:
    """The end of one call's time budget, and the connections to cut off when it passes."""

    def __init__(self, seconds: float) -> None:
        self.started = time.monotonic()
        self.seconds = seconds
        self.end = self.started + seconds
        self.fired = False  # the watchdog cut the connections off
        self._done = False
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []

    @property
    def expired(self) -> bool:
        return self.fired or time.monotonic() >= self.end

    def remaining(self) -> float:
        return self.end - time.monotonic()

    def extend(self, seconds: float) -> None:
        """Make the budget `seconds` from the start (a download learns its size late)."""
        with self._lock:
            if not self.fired:
                self.seconds = max(self.seconds, seconds)
                self.end = self.started + self.seconds

    def watch(self, sock: socket.socket | None) -> None:
        """Cut `sock` off when the time is up (the socket, not its connection: http.client
        hands a `Connection: close` answer's socket to the response and forgets it)."""
        with self._lock:
            if self.fired:
                raise DeadlineExceeded
            if sock is not None and sock not in self._sockets:
                self._sockets.append(sock)

    def fire(self) -> None:
        with self._lock:
            if self._done or self.fired:
                return
            self.fired = True
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            try:
                # socket.socket's own shutdown: SSLSocket.shutdown would also drop its TLS
                # object under the reading thread's feet. Shutdown (unlike close) wakes a
                # thread blocked in recv on Linux.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        with self._lock:
            self._done = True
            self._sockets = []


class _Watchdog:
    """One daemon thread firing deadlines in order; cancelled ones are dropped when due."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Deadline]] = []
        self._counter = itertools.count()
        self._thread: threading.Thread | None = None

    def add(self, deadline: Deadline) -> None:
        with self._cond:
            count = next(self._counter)
            if count % 1024 == 1023:  # calls end long before their deadline: drop them now
                self._heap = [entry for entry in self._heap if not entry[2]._done]
                heapq.heapify(self._heap)
            heapq.heappush(self._heap, (deadline.end, count, deadline))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="provider-deadlines", daemon=True
                )
                self._thread.start()
            if self._heap[0][2] is deadline:
                # Sooner than what the thread waits for. Otherwise it need not wake: at a
                # hundred calls a second, waking it for each was a thread switch per call.
                self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                end, _, deadline = self._heap[0]
                now = time.monotonic()
                if deadline._done:
                    heapq.heappop(self._heap)
                    continue
                if deadline.end > end:  # extended since it was queued
                    heapq.heapreplace(self._heap, (deadline.end, next(self._counter), deadline))
                    continue
                if end > now:
                    self._cond.wait(end - now)
                    continue
                heapq.heappop(self._heap)
            deadline.fire()

    def reset_after_fork(self) -> None:
        # The child has no watchdog thread, and the lock may have been held at the fork.
        self.__init__()  # type: ignore[misc]  # re-running __init__ is the simplest reset


_watchdog = _Watchdog()
os.register_at_fork(after_in_child=_watchdog.reset_after_fork)
_local = threading.local()


def current() -> Deadline | None:
    """The deadline of the call running on this thread, if any."""
    return getattr(_local, "deadline", None)


@contextmanager
def deadline(seconds: float) -> Iterator[Deadline]:
    """Run a call with a total budget of `seconds`; nested calls keep the outer budget."""
    outer = current()
    if outer is not None:
        yield outer
        return
    guard = Deadline(seconds)
    _watchdog.add(guard)
    _local.deadline = guard
    try:
        yield guard
    finally:
        _local.deadline = None
        guard.close()


class _GuardedHTTPConnection(HTTPConnection):
    """Registers itself with the running call's deadline before each request."""

    def request(self, *args: Any, **kwargs: Any) -> None:
        guard = current()
        if guard is not None:
            guard.watch(self.sock)  # a reused connection: sending may stall too
        super().request(*args, **kwargs)
        if guard is not None:
            guard.watch(self.sock)  # a new connection has its socket only now
            if guard.expired:
                raise DeadlineExceeded  # it fired while connecting, before there was a socket

    # urllib3 itself overrides http.client's getresponse with its own response type.
    def getresponse(self) -> HTTPResponse:  # type: ignore[override]
        guard = current()
        if guard is not None and guard.expired:
            raise DeadlineExceeded
        return super().getresponse()


class _GuardedHTTPSConnection(_GuardedHTTPConnection, HTTPSConnection):
    pass


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


_POOL_CLASSES = {"http": _GuardedHTTPPool, "https": _GuardedHTTPSPool}


class GuardedAdapter(HTTPAdapter):
    """An HTTPAdapter whose connections obey `deadline()`."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOL_CLASSES

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):  # SOCKS pools have their own classes
            manager.pool_classes_by_scheme = _POOL_CLASSES
        return manager
