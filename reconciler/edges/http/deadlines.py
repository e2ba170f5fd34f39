"""Deadlines of whole HTTP exchanges: a ``Watch`` per exchange, one watchdog thread for all.

A read timeout bounds each ``recv``; a server that sends one byte just within it, again and
again, is bounded only by a deadline on the whole exchange. When a watch's deadline passes,
the sockets its exchange opened are shut down (``shutdown``, not ``close``: the reading
thread still owns them), and the read blocked on them returns at once. The client
(``edges.http.client``) registers each connection's socket and asks ``expired`` to tell a
deadline from any other end of the connection.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time


class Watch:
    """The deadline of one exchange: when it passes, the sockets it watches are shut
    down, so whatever read blocks on them returns at once."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.expired = False
        self.cancelled = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        if seconds is not None:
            _WATCHDOG.watch(time.monotonic() + seconds, self)

    def add(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shut(sock)

    def expire(self) -> None:
        with self._lock:
            if self.cancelled:
                return
            self.expired = True
            for sock in self._sockets:
                _shut(sock)

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            self._sockets.clear()


class Watchdog:
    """One thread for every exchange's deadline (a timer thread each would cost more than
    a HEAD on loopback): a heap of (when, watch), woken when an earlier one comes."""

    def __init__(self) -> None:
        self._due: list[tuple[float, int, Watch]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._prune_at = 1024

    def watch(self, at: float, watch: Watch) -> None:
        with self._wake:
            if len(self._due) > self._prune_at:
                # Exchanges done in time leave their entries until their deadline; a
                # survey of thousands of HEADs a pass would pile them up. Amortised O(1).
                self._due = [entry for entry in self._due if not entry[2].cancelled]
                heapq.heapify(self._due)
                self._prune_at = max(1024, 2 * len(self._due))
            heapq.heappush(self._due, (at, next(self._order), watch))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="http-deadlines",
                                                daemon=True)
                self._thread.start()
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while self._due and self._due[0][2].cancelled:
                    heapq.heappop(self._due)  # done in time: nothing to do
                if not self._due:
                    self._wake.wait()
                    continue
                left = self._due[0][0] - time.monotonic()
                if left > 0:
                    self._wake.wait(left)
                    continue
                _at, _n, watch = heapq.heappop(self._due)
            watch.expire()


_WATCHDOG = Watchdog()


def _shut(sock: socket.socket) -> None:
    # socket.socket's own shutdown, not SSLSocket's: that one also drops the TLS object
    # under a read that may be running in another thread.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
