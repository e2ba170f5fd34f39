"""systemd's notify protocol (sd_notify) over the ``NOTIFY_SOCKET`` datagram socket.

``READY=1`` once the server serves, ``STATUS=...`` as passes come and go, ``STOPPING=1``
on the way out, and ``WATCHDOG=1`` every half ``WATCHDOG_USEC`` from a thread that only
pings while the daemon says it is healthy (a pass that hangs stops the pings). Without
``NOTIFY_SOCKET`` (not under systemd) everything here is a no-op.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable, Mapping

from reconciler import logs

log = logs.get(__name__)


class Notifier:
    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        where = env.get("NOTIFY_SOCKET", "")
        # An abstract socket is spelled with a leading "@" and addressed with a NUL.
        self.address = "\0" + where[1:] if where.startswith("@") else where
        self._sock: socket.socket | None = None
        if self.address:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.watchdog_interval = _watchdog_interval(env)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def send(self, *fields: str) -> None:
        if self._sock is None:
            return
        try:
            self._sock.sendto("\n".join(fields).encode(), self.address)
        except OSError as exc:  # systemd gone or socket full: never fatal for the daemon
            log.debug("notify.failed", error=str(exc))

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}", f"MAINPID={os.getpid()}")

    def status(self, text: str) -> None:
        self.send(f"STATUS={text}")

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=stopping")

    def start_watchdog(self, alive: Callable[[], bool]) -> None:
        """Ping every half interval while ``alive()``: a wedged loop stops the pings."""
        interval = self.watchdog_interval
        if self._sock is None or interval is None:
            return

        def ping() -> None:
            while not self._stop.wait(interval / 2):
                if alive():
                    self.send("WATCHDOG=1")

        self._thread = threading.Thread(target=ping, name="sd-watchdog", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None  # the watchdog is meant for another process
    return int(usec) / 1_000_000
