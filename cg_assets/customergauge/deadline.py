"""Deadlines a server cannot stretch: for the headers of an answer and for the whole answer.

The read timeout of `CG_HTTP_TIMEOUT` is per socket read: a server that sends one byte a
second, of the headers or the body, never trips it. Here one watchdog thread (for the
whole process) shuts down the socket of an attempt whose deadline has passed; the read
blocked on it returns at once, and `http.attempt` reports the deadline, naming its setting.

The socket is found through the connection urllib3 uses: the session's adapter makes
connections of our own class (`new_adapter`), which tell the attempt running on their
thread that they carry its request (`Watch.attach`).
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

HEADERS_SETTING = "CG_HTTP_HEADERS_DEADLINE_SECONDS"
RESPONSE_SETTING = "CG_HTTP_RESPONSE_DEADLINE_SECONDS"


class Watch:
    """One attempt's deadlines: the headers' and the whole answer's (monotonic seconds)."""

    def __init__(self, headers_seconds: float, response_seconds: float) -> None:
        now = time.monotonic()
        self.started = now
        self.response_deadline = now + response_seconds
        self.headers_seconds = headers_seconds
        self.response_seconds = response_seconds
        # The deadline that applies now: the earlier of both until the headers are in.
        self.deadline = min(now + headers_seconds, self.response_deadline)
        self.setting = HEADERS_SETTING if headers_seconds < response_seconds else RESPONSE_SETTING
        self.fired: str | None = None  # the setting whose deadline passed
        self._connection: Any = None
        self._socket: Any = None
        self._lock = threading.Lock()

    def headers_received(self) -> None:
        with self._lock:
            if self.fired is None:
                self.deadline = self.response_deadline
                self.setting = RESPONSE_SETTING
        _WATCHDOG.changed()

    def attach(self, connection: Any) -> None:
        """`connection` carries this attempt's request (its socket may come later)."""
        with self._lock:
            self._connection = connection
            fired = self.fired is not None
        if fired:
            _shutdown(getattr(connection, "sock", None))

    def hold(self, sock: Any) -> None:
        """The answer is read from `sock`: http.client drops the connection's reference to
        it when the server says it will close, so it is kept here."""
        with self._lock:
            self._socket = sock
            fired = self.fired is not None
        if fired:
            _shutdown(sock)

    def check(self) -> None:
        """Fire now if the deadline has passed (between the chunks of a body)."""
        if time.monotonic() >= self.deadline:
            self.fire()

    def fire(self) -> None:
        with self._lock:
            if self.fired is not None:
                return
            self.fired = self.setting
            sockets = (getattr(self._connection, "sock", None), self._socket)
        for sock in sockets:
            _shutdown(sock)

    def describe(self) -> str:
        seconds = self.headers_seconds if self.fired == HEADERS_SETTING else self.response_seconds
        part = "the answer's headers" if self.fired == HEADERS_SETTING else "the whole answer"
        return f"{part} did not arrive within {seconds:g} s ({self.fired})"

    def __enter__(self) -> Watch:
        _current.watch = self
        _WATCHDOG.add(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _current.watch = None
        _WATCHDOG.remove(self)
        with self._lock:
            self._connection = self._socket = None


def _shutdown(sock: Any) -> None:
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed


class _Watchdog:
    """One daemon thread that fires the watches whose deadline has passed."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._watches: set[Watch] = set()
        self._thread: threading.Thread | None = None

    def add(self, watch: Watch) -> None:
        with self._cond:
            self._watches.add(watch)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="cg-deadlines", daemon=True)
                self._thread.start()
            self._cond.notify()

    def remove(self, watch: Watch) -> None:
        with self._cond:
            self._watches.discard(watch)

    def changed(self) -> None:
        with self._cond:
            self._cond.notify()

    def _loop(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                due = [w for w in self._watches if w.deadline <= now]
                for watch in due:
                    self._watches.discard(watch)
                    watch.fire()
                upcoming = [w.deadline for w in self._watches]
                # Idle: wake now and then to find new watches (add() notifies anyway).
                self._cond.wait(min(upcoming) - now if upcoming else 60.0)


_WATCHDOG = _Watchdog()
_current = threading.local()


def _attach(connection: Any) -> None:
    watch = getattr(_current, "watch", None)
    if watch is not None:
        watch.attach(connection)


def _hold(sock: Any) -> None:
    watch = getattr(_current, "watch", None)
    if watch is not None:
        watch.hold(sock)


class _WatchedHTTPConnection(HTTPConnection):
    def connect(self) -> None:
        _attach(self)
        super().connect()

    def request(self, *args: Any, **kwargs: Any) -> None:
        _attach(self)
        super().request(*args, **kwargs)

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        _hold(self.sock)
        return super().getresponse(*args, **kwargs)


class _WatchedHTTPSConnection(HTTPSConnection):
    def connect(self) -> None:
        _attach(self)
        super().connect()

    def request(self, *args: Any, **kwargs: Any) -> None:
        _attach(self)
        super().request(*args, **kwargs)

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        _hold(self.sock)
        return super().getresponse(*args, **kwargs)


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _WatchedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _WatchedHTTPPool,
            "https": _WatchedHTTPSPool,
        }


def new_adapter() -> HTTPAdapter:
    """An adapter whose connections the watchdog can cut (mount it for http:// and https://)."""
    return _WatchedAdapter()
