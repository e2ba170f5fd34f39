"""Log events an attacker can trigger at will, at most once a second each, with a count.

A flood of refused connections (descriptors exhausted, a client over its cap) must not
become a flood of log lines: the first is logged, the rest counted into the next one.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from reconciler import logs

_log = logs.get("reconciler.httpd")


class Throttled:
    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self._next: dict[str, float] = {}
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def warning(self, event: str, **fields: Any) -> None:
        now = time.monotonic()
        with self._lock:
            if now < self._next.get(event, 0.0):
                self._held[event] = self._held.get(event, 0) + 1
                return
            self._next[event] = now + self.interval
            count = self._held.pop(event, 0) + 1
        _log.warning(event, count=count, **fields)
