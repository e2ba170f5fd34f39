"""The clock: the one seam for time, so waits and schedules can be tested without waiting.

``SystemClock`` is the real one; ``FakeClock`` (beside it, as ``FakeEngine`` is beside the
Docker client) only moves when told to, or by what its ``sleep`` was asked to wait. Both
keep the two kinds of time apart: ``monotonic`` for durations and deadlines, ``time``
(seconds since the epoch) for what is shown or stored.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes back: for durations and deadlines."""
        ...

    def time(self) -> float:
        """Seconds since the epoch: for timestamps people and files read."""
        ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The machine's clocks."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class FakeClock:
    """A clock that moves only by ``advance`` and ``sleep``: a sleep returns at once,
    the time it would have waited having passed. Safe to read and move from threads."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()
        self.slept: list[float] = []  # every sleep asked for, in order

    def monotonic(self) -> float:
        with self._lock:
            return self._now

    def time(self) -> float:
        return self.monotonic()

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)
            self._now += max(0.0, seconds)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds
