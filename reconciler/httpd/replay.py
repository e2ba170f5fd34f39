"""Signed build requests seen recently, so none is taken twice (a replay).

A body carries its send time and a nonce inside the signed bytes
(``model.buildrequests``). A body whose time is more than ``window`` seconds from the
clock is refused as stale; within the window, each nonce is taken once. Nonces are
remembered for twice the window (so a clock step back cannot revive one), oldest first
out; a full table refuses new requests rather than forgetting one that is still fresh.
Pure but for the clock, which is given.

The table is in memory, so a guard takes nothing sent before the second it was made in:
after a restart, a request captured earlier cannot be replayed (its nonce is forgotten,
but it is older than the guard). A requester whose request straddled the restart is
refused once and sends a new one at its next pass. What is left is a request sent in the
very second the build host restarted, before it did.
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
        self.not_before = int(clock())  # nothing sent before this guard existed

    def refusal(self, stamp: Stamp) -> str | None:
        """Why a body with ``stamp`` is not taken, or None (and its nonce is spent)."""
        now = self.clock()
        if abs(now - stamp.sent_at) > self.window:
            return (f"the request was sent at {stamp.sent_at}, more than {int(self.window)} s "
                    "from this build host's clock: stale, or a replay")
        if stamp.sent_at < self.not_before:
            return (f"the request was sent at {stamp.sent_at}, before this build host's "
                    f"server started ({self.not_before}): it may be a replay; send a new one")
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
