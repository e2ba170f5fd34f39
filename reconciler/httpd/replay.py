"""Signed build requests seen recently, so none is taken twice (a replay).

A body carries its send time and a nonce inside the signed bytes
(``model.buildrequests``). A body whose time is more than ``window`` seconds from the
clock is refused as stale; within the window, each nonce is taken once. Nonces are
remembered for twice the window (so a clock step back cannot revive one), oldest first
out; a full table refuses new requests rather than forgetting one that is still fresh.
Pure but for the clock, which is given. In memory only: after a restart, a request
captured within the last ``window`` seconds could be replayed once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from reconciler.model.buildrequests import FRESHNESS, Stamp


class ReplayGuard:
    def __init__(self, window: float = FRESHNESS, *, max_nonces: int = 100_000,
                 clock: Callable[[], float] = time.time) -> None:
        self.window = window
        self.max_nonces = max_nonces
        self.clock = clock
        self._seen: dict[str, float] = {}  # nonce -> when it may be forgotten
        self._lock = threading.Lock()

    def refusal(self, stamp: Stamp) -> str | None:
        """Why a body with ``stamp`` is not taken, or None (and its nonce is spent)."""
        now = self.clock()
        if abs(now - stamp.sent_at) > self.window:
            return (f"the request was sent at {stamp.sent_at}, more than {int(self.window)} s "
                    "from this build host's clock: stale, or a replay")
        with self._lock:
            for nonce, until in list(self._seen.items()):
                if until > now:
                    break  # the rest were seen later
                del self._seen[nonce]
            if stamp.nonce in self._seen:
                return "this request was taken already: a replay"
            if len(self._seen) >= self.max_nonces:
                return "too many build requests in the last minutes"
            self._seen[stamp.nonce] = now + 2 * self.window
        return None
