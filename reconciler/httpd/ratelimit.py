"""Per-client token buckets: ``rate`` requests a minute, in bursts of at most ``rate``.

Pure but for the clock, which is given. Clients are peer addresses; the table is bounded
(a full bucket is forgotten first: it is the same as a client never seen), so a flood of
addresses costs memory only up to ``max_clients``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    def __init__(self, per_minute: float, *, max_clients: int = 4096,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = max(1.0, per_minute)
        self.per_second = max(per_minute, 1e-9) / 60.0
        self.max_clients = max_clients
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, client: str) -> float:
        """0 if ``client`` may make a request now (a token is spent), else the seconds
        until it may."""
        now = self.clock()
        with self._lock:
            tokens, at = self._buckets.get(client, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - at) * self.per_second)
            if tokens >= 1.0:
                self._buckets[client] = (tokens - 1.0, now)
                self._forget_full(now)
                return 0.0
            self._buckets[client] = (tokens, now)
            return (1.0 - tokens) / self.per_second

    def _forget_full(self, now: float) -> None:
        if len(self._buckets) <= self.max_clients:
            return
        for client, (tokens, at) in list(self._buckets.items()):
            if tokens + (now - at) * self.per_second >= self.capacity:
                del self._buckets[client]
        while len(self._buckets) > self.max_clients:  # none full: the oldest goes
            del self._buckets[next(iter(self._buckets))]
